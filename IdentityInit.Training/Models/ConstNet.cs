using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace IdentityInit.Training.Models;

/// <summary>
/// The paper's Wide-ResNet layout with single-conv pre-activation blocks (BN -> ReLU -> conv3x3 [-> dropout], x + branch).
/// Module names are model.py's (block1.layer.0.bn, .conv, .conv_res), so exported weights load into the reference.
/// Initialised by <see cref="Initialization.Initializer"/>; the constructor's random init is always overwritten.
/// </summary>
public sealed class ConstNet : ImageModel
{
    readonly Conv2d conv1;
    readonly Module<Tensor, Tensor> stemDropout;
    readonly NetworkBlock block1, block2, block3;
    readonly Linear fc;

    public ConstNet(int depth, int widen, int classes, int inChannels, bool batchNorm, double dropout, double stemDropout)
        : base(nameof(ConstNet))
    {
        if (DepthError(depth) is { } error) throw new ArgumentException(error, nameof(depth));
        var n = (depth - 4) / 3;
        int[] widths = [16, 16 * widen, 32 * widen, 64 * widen];
        conv1 = Conv2d(inChannels, widths[0], 3, padding: 1, bias: false);
        this.stemDropout = stemDropout > 0 ? Dropout(stemDropout) : Identity();
        block1 = new NetworkBlock(n, widths[0], widths[1], 1, batchNorm, dropout);
        block2 = new NetworkBlock(n, widths[1], widths[2], 2, batchNorm, dropout);
        block3 = new NetworkBlock(n, widths[2], widths[3], 2, batchNorm, dropout);
        fc = Linear(widths[3], classes);
        RegisterComponents();
    }

    public static string? DepthError(int depth) =>
        depth >= 7 && (depth - 4) % 3 == 0 ? null
            : $"depth must be 3n + 4 with n >= 1 blocks per group (7, 10, 13, 16, 19, 22, 28, 40, ...), got {depth}";

    public override Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps)
    {
        x = stemDropout.call(conv1.call(x));
        taps?.Add(("conv1", x));
        x = Blocks(x, [("block1", block1.layer), ("block2", block2.layer), ("block3", block3.layer)], taps);
        return Classify(functional.relu(x), fc, taps);
    }

    protected override WeightRole RoleOf(string layer) => WideResNetRole(layer);

    /// <summary>One group of n blocks (model.py's NetworkBlock); its forward runs the blocks once, see the note in Forward.</summary>
    sealed class NetworkBlock : Module<Tensor, Tensor>
    {
        internal readonly Sequential layer;

        public NetworkBlock(int n, int inPlanes, int outPlanes, int stride, bool batchNorm, double dropout) : base(nameof(NetworkBlock))
        {
            layer = Sequential(Enumerable.Range(0, n).Select(i => (Module<Tensor, Tensor>)new BasicBlock(
                i == 0 ? inPlanes : outPlanes, outPlanes, i == 0 ? stride : 1, batchNorm, dropout)).ToArray());
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => layer.call(x);
    }

    /// <summary>Pre-activation block with one 3x3 conv; a 1x1 shortcut on relu(bn(x)) when width or stride changes.</summary>
    sealed class BasicBlock : Module<Tensor, Tensor>
    {
        readonly Module<Tensor, Tensor> bn;
        readonly Conv2d conv;
        readonly Module<Tensor, Tensor> dropout;
        readonly Module<Tensor, Tensor> conv_res;
        readonly bool projects;

        public BasicBlock(int inPlanes, int outPlanes, int stride, bool batchNorm, double dropout) : base(nameof(BasicBlock))
        {
            bn = batchNorm ? BatchNorm2d(inPlanes) : Identity();
            conv = Conv2d(inPlanes, outPlanes, 3, stride: stride, padding: 1, bias: false);
            this.dropout = dropout > 0 ? Dropout(dropout) : Identity();
            projects = inPlanes != outPlanes || stride != 1;
            conv_res = projects ? Conv2d(inPlanes, outPlanes, 1, stride: stride, bias: false) : Identity();
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var o = functional.relu(bn.call(x));
            var branch = dropout.call(conv.call(o));
            return (projects ? conv_res.call(o) : x) + branch;
        }
    }
}
