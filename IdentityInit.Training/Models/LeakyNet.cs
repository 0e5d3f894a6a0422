using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace IdentityInit.Training.Models;

/// <summary>
/// Plain CNN with the ConstNet widths and strides and no skips: 13 convs (stem + 4 per group), a learnable scalar bias
/// added before each conv, BatchNorm after every second (odd-indexed) conv, LeakyReLU after every conv.
/// </summary>
public sealed class LeakyNet : ImageModel
{
    public const int Layers = 13;
    readonly ModuleList<Conv2d> convs;
    readonly ParameterList biases;
    readonly ModuleList<Module<Tensor, Tensor>> bns;
    readonly Linear fc;
    readonly double alpha;

    public LeakyNet(int widen, int classes, int inChannels, double alpha, bool batchNorm) : base(nameof(LeakyNet))
    {
        this.alpha = alpha;
        convs = new ModuleList<Conv2d>();
        biases = new ParameterList();
        bns = new ModuleList<Module<Tensor, Tensor>>();
        var inPlanes = inChannels;
        for (var l = 0; l < Layers; l++)
        {
            var (outPlanes, stride) = Shape(l, widen);
            convs.Add(Conv2d(inPlanes, outPlanes, 3, stride: stride, padding: 1, bias: false));
            biases.Add(Parameter(zeros(1)));
            bns.Add(batchNorm && l % 2 == 1 ? BatchNorm2d(outPlanes) : Identity());
            inPlanes = outPlanes;
        }
        fc = Linear(inPlanes, classes);
        RegisterComponents();
    }

    public double Alpha => alpha;

    /// <summary>Output width and stride of conv l: stem 16, then 4 convs of 16k, 32k (stride 2 first), 64k (stride 2 first).</summary>
    public static (int Width, int Stride) Shape(int layer, int widen) => layer switch
    {
        0 => (16, 1),
        <= 4 => (16 * widen, 1),
        <= 8 => (32 * widen, layer == 5 ? 2 : 1),
        _ => (64 * widen, layer == 9 ? 2 : 1),
    };

    /// <summary>The 13 init letters of a string like "1_iiii_11ii_iiii"; underscores are ignored.</summary>
    public static string Letters(string init) => init.Replace("_", "", StringComparison.Ordinal);

    public static string? InitStringError(string init)
    {
        var letters = 0;
        for (var i = 0; i < init.Length; i++)
        {
            if (init[i] == '_') continue;
            if (init[i] is not ('h' or 'i' or '1'))
                return $"'{init}': character {i + 1} ('{init[i]}') is not h (random), i (identity) or 1 (averaging)\n" +
                       $"  {init}\n  {new string(' ', i)}^";
            letters++;
        }
        return letters == Layers ? null
            : $"'{init}' has {letters} init letters; it needs {Layers} (stem + 12 convs), e.g. h_hhhh_hhhh_hhhh";
    }

    public override Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps)
    {
        for (var l = 0; l < Layers; l++)
        {
            x = convs[l].call(x + biases[l]);
            x = functional.leaky_relu(bns[l].call(x), alpha);
            taps?.Add(($"convs.{l}", x));
        }
        x = functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
        x = fc.call(x);
        taps?.Add(("fc", x));
        return x;
    }

    protected override WeightRole RoleOf(string layer) => layer switch
    {
        "convs.0" => WeightRole.Stem,
        "fc" => WeightRole.Classifier,
        _ => WeightRole.Hidden,
    };
}
