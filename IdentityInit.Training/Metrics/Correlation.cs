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

    /// <summary>Mean over distinct pairs (strict lower triangle) with NaN counted as 1; at most 5000 rows, sampled.</summary>
    public static double MeanOffDiagonal(Tensor rows, Generator? sampler = null)
    {
        using var scope = NewDisposeScope();
        var r = rows.shape[0];
        if (r < 2) return 1.0; // one channel: nothing to tell apart
        if (r > MaxRows) rows = rows.index_select(0, randperm(r, generator: sampler)[..MaxRows]);
        var c = Matrix(rows).nan_to_num(1.0);
        var n = c.shape[0];
        return (c.sum().item<double>() - c.trace().item<double>()) / (n * (n - 1));
    }

    /// <summary>-log|rho|: 0 for identical channels, growing as they decorrelate.</summary>
    public static double NegLogAbs(double rho) => -Math.Log(Math.Abs(rho));
}
