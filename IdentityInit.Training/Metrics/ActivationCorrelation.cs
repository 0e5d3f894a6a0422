using static TorchSharp.torch;

namespace IdentityInit.Training.Metrics;

/// <summary>Inter-channel correlation of one layer's activations on the probe batch.</summary>
internal sealed record ActivationCorrelation(double Mean, int Size, float[] Matrix)
{
    public const int MaxDisplay = 64;

    /// <summary>Channels of A[N, C, ...] as rows of length N*H*W; the C x C matrix is block-averaged to at most 64 x 64.</summary>
    public static ActivationCorrelation Of(Tensor activations)
    {
        using var scope = NewDisposeScope();
        var a = activations.detach().cpu();
        var channels = a.shape[1];
        var rows = a.transpose(0, 1).reshape(channels, -1);
        var mean = Correlation.MeanOffDiagonal(rows);
        var matrix = Correlation.Matrix(rows).nan_to_num(1.0).to(float32);
        if (channels > MaxDisplay)
            matrix = nn.functional.adaptive_avg_pool2d(matrix.unsqueeze(0).unsqueeze(0), [MaxDisplay, MaxDisplay]).squeeze();
        var size = (int)matrix.shape[0];
        return new ActivationCorrelation(mean, size, matrix.contiguous().data<float>().ToArray());
    }
}
