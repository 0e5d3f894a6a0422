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

    /// <summary>Per-channel mean and std of the training images in [0, 1], for datasets without published constants.</summary>
    public static (float[] Mean, float[] Std) Statistics(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = images.to(float64).div(255).transpose(0, 1).flatten(1);
        return (x.mean([1]).to(float32).data<float>().ToArray(), x.std(1).to(float32).data<float>().ToArray());
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
