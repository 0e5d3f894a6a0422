using static TorchSharp.torch;

namespace IdentityInit.Training.Data;

/// <summary>
/// A learnable in-process dataset for demos and tests: each of 10 classes has a smooth random 3x32x32 prototype
/// (a 4x4 pattern upsampled), and each example is its class prototype plus pixel noise. Fixed seed: always the same data.
/// </summary>
internal static class Synthetic
{
    public const int Classes = 10;

    public static ImageDataset Create(int train = 5000, int test = 1000)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(20200707);
        var prototypes = nn.functional.interpolate(rand([Classes, 3, 4, 4], generator: generator),
            [32, 32], mode: InterpolationMode.Bilinear, align_corners: false);
        (Tensor Images, Tensor Labels) Split(int n)
        {
            var labels = arange(n) % Classes;
            labels = labels.index_select(0, randperm(n, generator: generator));
            // prototype + 0.35 noise, clamped to [0, 1], in bytes; in place, so that a run's start does not allocate and
            // fault in six more float copies of the set (the same elementwise kernels, so the same bytes).
            var images = randn([n, 3, 32, 32], generator: generator).mul_(0.35).add_(prototypes.index_select(0, labels));
            return (images.clamp_(0, 1).mul_(255).round_().to(uint8), labels);
        }
        var (trainImages, trainLabels) = Split(train);
        var (testImages, testLabels) = Split(test);
        var (mean, std) = ImageDataset.Statistics(trainImages);
        return new ImageDataset("synthetic", trainImages.MoveToOuterDisposeScope(), trainLabels.MoveToOuterDisposeScope(),
            testImages.MoveToOuterDisposeScope(), testLabels.MoveToOuterDisposeScope(), Classes, mean, std);
    }
}
