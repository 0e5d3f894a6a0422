using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training.Metrics;

/// <summary>The reference code's three correlations of one conv/linear weight W[O, I, kh, kw].</summary>
internal sealed record WeightCorrelation(double Forward, double Backward, double Kernel)
{
    /// <summary>
    /// forward: the O rows W[o]; backward: the I rows of W transposed; kernel: the O*I kh x kw kernels. A view with a single
    /// row has no pair to correlate: its value is NaN (undefined), e.g. the backward correlation of a grayscale stem.
    /// </summary>
    public static WeightCorrelation Of(Tensor weight, Generator? sampler = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w = weight.detach().cpu();
        if (w.dim() == 2) w = w.unsqueeze(-1).unsqueeze(-1);
        var (o, i) = (w.shape[0], w.shape[1]);
        return new WeightCorrelation(
            o < 2 ? double.NaN : Correlation.MeanOffDiagonal(w.reshape(o, -1), sampler),
            i < 2 ? double.NaN : Correlation.MeanOffDiagonal(w.transpose(0, 1).reshape(i, -1), sampler),
            o * i < 2 ? double.NaN : Correlation.MeanOffDiagonal(w.reshape(o * i, -1), sampler));
    }

    /// <summary>
    /// Diversity = sum over layers of log sqrt(1 - rho_backward^2); -infinity while any layer is fully symmetric. Layers
    /// with a single input channel (a grayscale stem) have no backward pair and are left out, so the sum stays finite.
    /// </summary>
    public static double Diversity(IEnumerable<WeightCorrelation> layers) =>
        layers.Where(l => !double.IsNaN(l.Backward)).Sum(l => Math.Log(Math.Sqrt(1 - l.Backward * l.Backward)));
}
