using static TorchSharp.torch;

namespace IdentityInit.Training.Metrics;

/// <summary>Pearson correlation between the rows of a matrix, as numpy.corrcoef, computed in float64.</summary>
public static class Correlation
{
    public const int MaxRows = 5000;

    /// <summary>R x R correlation matrix of the rows of <paramref name="rows"/>; a constant row gives NaN, as corrcoef.</summary>
    public static Tensor Matrix(Tensor rows)
    {
        using var scope = NewDisposeScope();
        var x = rows.to(float64).flatten(1);
        x = x - x.mean([1], keepdim: true);
        var norms = x.norm(1, keepdim: true);
        var c = x.matmul(x.t()) / norms.matmul(norms.t());
        return c.clamp(-1, 1).MoveToOuterDisposeScope(); // clamp keeps NaN, trims rounding past +-1
    }

    /// <summary>
    /// Mean over distinct pairs (strict lower triangle) with NaN counted as 1; at most 5000 rows, sampled. Computed
    /// without the n x n matrix: with z_i the centred rows scaled to unit length, the sum over ordered pairs i != j of
    /// z_i . z_j is |sum z_i|^2 - n; each ordered pair that involves a constant row (NaN in corrcoef) adds 1 instead.
    /// </summary>
    public static double MeanOffDiagonal(Tensor rows, Generator? sampler = null)
    {
        using var scope = NewDisposeScope();
        var r = rows.shape[0];
        if (r < 2) return 1.0; // one channel: nothing to tell apart
        if (r > MaxRows) rows = rows.index_select(0, randperm(r, generator: sampler)[..MaxRows]);
        var x = rows.to(float64).flatten(1);
        x = x - x.mean([1], keepdim: true);
        var norms = x.norm(1, keepdim: true);
        var varying = norms.squeeze(1) > 0;
        var z = x.index_select(0, varying.nonzero().squeeze(1)) / norms.index_select(0, varying.nonzero().squeeze(1));
        double n = rows.shape[0], k = z.shape[0];
        var sum = z.sum([0L]);
        var pairs = sum.square().sum().item<double>() - k; // ordered pairs of varying rows
        var constantPairs = n * (n - 1) - k * (k - 1);     // ordered pairs with a constant row: NaN, counted as 1
        return Math.Clamp((pairs + constantPairs) / (n * (n - 1)), -1, 1); // rounding must not push |rho| past 1
    }

    /// <summary>-log|rho|: 0 for identical channels, growing as they decorrelate.</summary>
    public static double NegLogAbs(double rho) => -Math.Log(Math.Abs(rho));
}
