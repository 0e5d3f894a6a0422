using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training.Symmetry;

/// <summary>
/// How far a layer's channels are from identical: the max absolute difference between two channel slices.
/// Exactly 0 means the layer is still symmetric bit for bit.
/// </summary>
public static class ChannelSpread
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
        return (slices.amax([0]) - slices.amin([0])).max();
    }

    /// <summary>Activation spread of A[N, C, ...]: the max over positions of (max - min) across channels.</summary>
    public static Tensor OfActivation(Tensor a) => (a.amax([1]) - a.amin([1])).max();

    /// <summary>Spreads of all layers in one host transfer.</summary>
    public static double[] OfWeights(IReadOnlyList<WeightLayer> layers) => OfWeightsWithFingerprint(layers, []).Spreads;

    /// <summary>
    /// Spreads, plus a float64 digest of every parameter (sum of w + pi * sum of w^2): equal for bitwise-equal weights,
    /// and in practice different as soon as any weight differs. One host transfer for both.
    /// </summary>
    public static (double[] Spreads, double Fingerprint) OfWeightsWithFingerprint(IReadOnlyList<WeightLayer> layers, IReadOnlyList<Tensor> parameters)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var device = layers.Count > 0 ? layers[0].Weight.device : CPU;
        var values = layers.Select(l => OfWeight(l.Weight, l.Role, l.Copies).to(float64)).ToList();
        var digest = zeros([], float64, device);
        foreach (var p in parameters)
        {
            var d = p.detach().to(float64);
            digest = digest + d.sum() + Math.PI * d.square().sum();
        }
        var all = stack([.. values, digest]).cpu().data<double>().ToArray();
        return (all[..^1], all[^1]);
    }
}
