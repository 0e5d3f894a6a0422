using static TorchSharp.torch;

namespace IdentityInit.Training.Data;

/// <summary>A whole dataset as tensors: images uint8 [N, C, H, W], labels int64 [N]; never one managed object per image.</summary>
internal sealed record ImageDataset(
    string Name, Tensor TrainImages, Tensor TrainLabels, Tensor TestImages, Tensor TestLabels, int Classes,
    float[] Mean, float[] Std) : IDisposable
{
    public int Channels => (int)TrainImages.shape[1];
    public int Height => (int)TrainImages.shape[2];
    public int Width => (int)TrainImages.shape[3];
    public long TrainCount => TrainImages.shape[0];
    public long TestCount => TestImages.shape[0];

    /// <summary>The first <paramref name="train"/>/<paramref name="test"/> examples (0 = all).</summary>
    public ImageDataset Limit(int train, int test) => this with
    {
        TrainImages = train > 0 && train < TrainCount ? TrainImages[..train] : TrainImages,
        TrainLabels = train > 0 && train < TrainCount ? TrainLabels[..train] : TrainLabels,
        TestImages = test > 0 && test < TestCount ? TestImages[..test] : TestImages,
        TestLabels = test > 0 && test < TestCount ? TestLabels[..test] : TestLabels,
    };

    /// <summary>
    /// Per-channel mean and (unbiased) std of the training images in [0, 1], for datasets without published constants.
    /// Exact integer sums of the bytes and of their squares, a chunk of images at a time, then one division each: the
    /// float32 figures of a float64 computation (DataTests holds them to the bit) without a float64 copy of the whole set,
    /// which was 376 MB and most of a run's start for Fashion-MNIST.
    /// </summary>
    public static (float[] Mean, float[] Std) Statistics(Tensor images)
    {
        var (n, channels) = (images.shape[0], (int)images.shape[1]);
        var count = n * images.shape[2] * images.shape[3];
        var (sums, squares) = (new Int128[channels], new Int128[channels]);
        const long chunk = 1024;
        for (long start = 0; start < n; start += chunk)
        {
            using var scope = NewDisposeScope();
            var x = images.narrow(0, start, Math.Min(chunk, n - start)).to(int64);
            var sum = x.sum([0, 2, 3]).data<long>().ToArray();
            var square = x.mul(x).sum([0, 2, 3]).data<long>().ToArray();
            for (var c = 0; c < channels; c++) (sums[c], squares[c]) = (sums[c] + sum[c], squares[c] + square[c]);
        }
        var mean = sums.Select(s => (float)((double)s / count / 255)).ToArray();
        // (count * sum of squares - sum^2) / (count (count - 1)) is the unbiased variance of the bytes, exact up to the division.
        var std = sums.Zip(squares, (s, q) => count < 2 ? float.NaN
            : (float)(Math.Sqrt((double)(count * q - s * s) / ((double)count * (count - 1))) / 255)).ToArray();
        return (mean, std);
    }

    public void Dispose()
    {
        TrainImages.Dispose();
        TrainLabels.Dispose();
        TestImages.Dispose();
        TestLabels.Dispose();
    }
}

/// <summary>A dataset that is on none of the places looked at and could not be fetched; the message says how to provide it.</summary>
internal sealed class DatasetMissingException(string message) : Exception(message);

/// <summary>A dataset file that is missing, truncated or not in the expected format; the message names the file.</summary>
internal sealed class DatasetFormatException(string path, string problem) : Exception($"{path}: {problem}")
{
    public string Path { get; } = path;
}
