using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace IdentityInit.Training.Models;

/// <summary>How a weight's channel axes relate to the layer's hidden units, for the channel-spread probe.</summary>
public enum WeightRole
{
    /// <summary>Input is the data (stem conv, toy hidden layer): only output channels must agree.</summary>
    Stem,
    /// <summary>Hidden to hidden (block convs, shortcuts): output and input channels must agree.</summary>
    Hidden,
    /// <summary>Hidden to classes: only input channels must agree.</summary>
    Classifier,
}

/// <summary>A conv/linear weight; <paramref name="Copies"/> &gt; 0 when hidden unit j is meant to copy unit j mod Copies.</summary>
public sealed record WeightLayer(string Name, Tensor Weight, WeightRole Role, int Copies = 0);

/// <summary>A classifier whose forward pass can report each layer's output (the activation taps).</summary>
public abstract class ImageModel(string name) : nn.Module<Tensor, Tensor>(name)
{
    public abstract Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps);

    public override Tensor forward(Tensor x) => Forward(x, null);

    /// <summary>Every conv/linear weight in forward order, named as in named_parameters without ".weight".</summary>
    public IReadOnlyList<WeightLayer> WeightLayers() =>
        named_parameters()
            .Where(p => p.name.EndsWith(".weight", StringComparison.Ordinal) && p.parameter.dim() is 2 or 4)
            .Select(p => new WeightLayer(p.name[..^".weight".Length], p.parameter, RoleOf(p.name[..^".weight".Length]), CopyPeriod))
            .ToList();

    protected abstract WeightRole RoleOf(string layer);

    // The Wide-ResNet layout ConstNet and LeakyNet share (model.py's names): a stem conv1, three groups of blocks, an
    // activation, average pooling and the classifier fc.

    /// <summary>conv1 reads the data, fc maps to classes, every other conv is hidden to hidden.</summary>
    protected static WeightRole WideResNetRole(string layer) => layer switch
    {
        "conv1" => WeightRole.Stem,
        "fc" => WeightRole.Classifier,
        _ => WeightRole.Hidden,
    };

    /// <summary>The groups' blocks in order, each output tapped as "block{g}.layer.{i}".</summary>
    protected static Tensor Blocks(Tensor x, IEnumerable<(string Name, Sequential Layer)> groups, List<(string Layer, Tensor Output)>? taps)
    {
        foreach (var (groupName, layer) in groups)
            foreach (var (blockName, block) in layer.named_children())
            {
                x = ((nn.Module<Tensor, Tensor>)block).call(x);
                taps?.Add(($"{groupName}.layer.{blockName}", x));
            }
        return x;
    }

    /// <summary>Average pooling and the classifier, its output tapped as "fc".</summary>
    protected static Tensor Classify(Tensor x, Linear fc, List<(string Layer, Tensor Output)>? taps)
    {
        x = nn.functional.adaptive_avg_pool2d(x, [1, 1]).flatten(1);
        x = fc.call(x);
        taps?.Add(("fc", x));
        return x;
    }

    /// <summary>K when the hidden units are K features copied (the toy model); symmetry then means copies stay equal.</summary>
    protected virtual int CopyPeriod => 0;
}
