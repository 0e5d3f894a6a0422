using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace IdentityInit.Training.Models;

/// <summary>
/// remodel.py's LRNet: a plain CNN with ConstNet's widths and strides and no skips. Stem conv1 (no bias, activation or
/// BN); then 3n blocks numbered i = 0..3n-1 across the groups, each out = lrelu(conv(x + b_i)) [-> dropout] [-> BN when
/// i is odd]; one LeakyReLU after the last block, average pool, fc. Module names are the reference's (every block owns
/// a BatchNorm and two scalar biases, as there, though even blocks never use their BN and nothing uses biases.1), so
/// the state dict loads into LRNet. Initialised by the letters of its init string (see Initializer).
/// </summary>
public sealed class LeakyNet : ImageModel
{
    readonly Conv2d conv1;
    readonly NetworkBlock block1, block2, block3;
    readonly Linear fc;
    readonly double alpha;

    public LeakyNet(int depth, int widen, int classes, int inChannels, double alpha, bool batchNorm, double dropout)
        : base(nameof(LeakyNet))
    {
        if (ConstNet.DepthError(depth) is { } error) throw new ArgumentException(error, nameof(depth));
        this.alpha = alpha;
        var n = (depth - 4) / 3;
        int[] widths = [16, 16 * widen, 32 * widen, 64 * widen];
        conv1 = Conv2d(inChannels, widths[0], 3, padding: 1, bias: false);
        block1 = new NetworkBlock(n, 0, widths[0], widths[1], 1, alpha, batchNorm, dropout);
        block2 = new NetworkBlock(n, n, widths[1], widths[2], 2, alpha, batchNorm, dropout);
        block3 = new NetworkBlock(n, 2 * n, widths[2], widths[3], 2, alpha, batchNorm, dropout);
        fc = Linear(widths[3], classes);
        RegisterComponents();
    }

    public double Alpha => alpha;

    /// <summary>The init letters of a string like "1_iiii_11ii_iiii" (underscores ignored): the stem's, then one per block.</summary>
    public static string Letters(string init) => init.Replace("_", "", StringComparison.Ordinal);

    /// <summary>h random, i identity, 1 averaging, k noisy identity, a noisy averaging (remodel.py: any other letter).</summary>
    public static string? InitStringError(string init, int depth)
    {
        var needed = (depth - 4) / 3 * 3 + 1;
        var letters = 0;
        for (var i = 0; i < init.Length; i++)
        {
            if (init[i] == '_') continue;
            if (init[i] is not ('h' or 'i' or '1' or 'k' or 'a'))
                return $"'{init}': character {i + 1} ('{init[i]}') is not h (random), i (identity), 1 (averaging), k (noisy identity) or " +
                    "a (noisy averaging)\n" +
                       $"  {init}\n  {new string(' ', i)}^";
            letters++;
        }
        return letters == needed ? null
            : $"'{init}' has {letters} init letters; depth {depth} needs {needed} (stem + {needed - 1} blocks), e.g. {InitExample(depth)}";
    }

    static string InitExample(int depth)
    {
        var n = (depth - 4) / 3;
        return "h_" + string.Join("_", Enumerable.Repeat(new string('h', n), 3));
    }

    public override Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps)
    {
        x = conv1.call(x);
        taps?.Add(("conv1", x));
        x = Blocks(x, [("block1", block1.layer), ("block2", block2.layer), ("block3", block3.layer)], taps);
        return Classify(functional.leaky_relu(x, alpha), fc, taps);
    }

    protected override WeightRole RoleOf(string layer) => WideResNetRole(layer);

    sealed class NetworkBlock : Module<Tensor, Tensor>
    {
        internal readonly Sequential layer;

        public NetworkBlock(int n, int first, int inPlanes, int outPlanes, int stride, double alpha, bool batchNorm, double dropout)
            : base(nameof(NetworkBlock))
        {
            layer = Sequential(Enumerable.Range(0, n).Select(i => (Module<Tensor, Tensor>)new BasicBlock(
                i == 0 ? inPlanes : outPlanes, outPlanes, i == 0 ? stride : 1, first + i, alpha, batchNorm, dropout)).ToArray());
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => layer.call(x);
    }

    /// <summary>Block i: lrelu(conv(x + biases[0])), dropout, then BN only when i is odd (phase -1), i.e. after the activation.</summary>
    sealed class BasicBlock : Module<Tensor, Tensor>
    {
        readonly BatchNorm2d bn;
        readonly Conv2d conv;
        readonly ParameterList biases;
        readonly Module<Tensor, Tensor> dropout;
        readonly double alpha;
        readonly bool normalises;

        public BasicBlock(int inPlanes, int outPlanes, int stride, int index, double alpha, bool batchNorm, double dropout)
            : base(nameof(BasicBlock))
        {
            bn = BatchNorm2d(outPlanes);
            conv = Conv2d(inPlanes, outPlanes, 3, stride: stride, padding: 1, bias: false);
            biases = new ParameterList(Parameter(zeros(1)), Parameter(zeros(1)));
            this.dropout = dropout > 0 ? Dropout(dropout) : Identity();
            this.alpha = alpha;
            normalises = batchNorm && index % 2 == 1;
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var o = dropout.call(functional.leaky_relu(conv.call(x + biases[0]), alpha));
            return normalises ? bn.call(o) : o;
        }
    }
}
