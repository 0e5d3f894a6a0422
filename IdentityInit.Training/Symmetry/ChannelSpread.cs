using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training.Symmetry;

/// <summary>
/// How far a layer's channels are from identical: the max absolute difference between two channel slices.
/// Exactly 0 means the layer is still symmetric bit for bit.
/// </summary>
internal static class ChannelSpread
{
    /// <summary>Weight spread over the axes that hold hidden units (see <see cref="WeightRole"/>).</summary>
    public static Tensor OfWeight(Tensor w, WeightRole role, int copies = 0)
    {
        if (copies > 0)
        {
            var axis = role == WeightRole.Classifier ? 1 : 0; // the hidden-unit axis
            var originals = w.index_select(axis, arange(w.shape[axis], device: w.device) % copies);
            return (w - originals).abs().max();
        }
        var slices = role switch
        {
            WeightRole.Stem => w.flatten(1),                               // [O, I*k*k]: output channels
            WeightRole.Hidden => w.reshape(w.shape[0] * w.shape[1], -1),   // [O*I, k*k]: every kernel
            _ => w.flatten(1).t(),                                         // [I, classes]: input channels
        };
        var (min, max) = slices.aminmax(0); // one pass over the weights for both extremes
        return (max - min).max();
    }

    /// <summary>Activation spread of A[N, C, ...]: the max over positions of (max - min) across channels.</summary>
    public static Tensor OfActivation(Tensor a)
    {
        var (min, max) = a.aminmax(1);
        return (max - min).max();
    }

    /// <summary>
    /// Channels of A[N, C, ...] that are exactly 0 for every probe example and position: dead units (a ReLU below 0 on all
    /// inputs passes no gradient, so no symmetry breaker that scales gradients can revive it).
    /// </summary>
    public static int DeadChannels(Tensor a)
    {
        using var scope = NewDisposeScope();
        return (int)a.transpose(0, 1).reshape(a.shape[1], -1).ne(0).any(1).logical_not().sum().item<long>();
    }

    /// <summary>Spreads of all layers as one float64 tensor on their device (no host transfer).</summary>
    public static Tensor Stacked(IReadOnlyList<WeightLayer> layers)
    {
        using var noGrad = no_grad();
        return stack(layers.Select(l => OfWeight(l.Weight, l.Role, l.Copies)).ToArray()).to(float64);
    }

    /// <summary>Spreads of all layers in one host transfer.</summary>
    public static double[] OfWeights(IReadOnlyList<WeightLayer> layers)
    {
        using var scope = NewDisposeScope();
        return Stacked(layers).cpu().data<double>().ToArray();
    }

    /// <summary>
    /// A float64 digest of every parameter (sum of w + pi * sum of w^2): equal for bitwise-equal weights, and in
    /// practice different as soon as any weight differs.
    /// </summary>
    public static double Fingerprint(IReadOnlyList<Tensor> parameters)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var all = cat(parameters.Select(p => p.detach().flatten()).ToList(), 0).to(float64);
        return (all.sum() + Math.PI * all.square().sum()).item<double>();
    }
}
