using System.Diagnostics;
using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training;

/// <summary>What a config will cost, before it is queued: parameters, memory, and a measured time per image.</summary>
public sealed record Estimate(long Parameters, long WeightBytes, long ActivationBytes, double ImagesPerSecond, long Steps, double Seconds,
    string Basis = "")
{
    public long TotalBytes => WeightBytes + ActivationBytes;
}

/// <summary>A model's size from its config alone, without building it (a depth of 10^6 must be refused, not allocated).</summary>
public sealed record ModelSize(double Parameters, double TrainingBytes)
{
    /// <summary>
    /// Exact parameter count of the model <see cref="ModelFactory"/> builds, and the memory one training step needs:
    /// weights, gradients and momentum (12 bytes a parameter) plus the activations kept for the backward pass (the
    /// outputs of every layer, x3 for the pre-activation, activation and branch sum), at the config's batch size.
    /// Doubles, so that absurd configs do not overflow.
    /// </summary>
    public static ModelSize Of(ExperimentConfig c)
    {
        var (channels, height, width, classes, _) = DatasetCatalog.Shape(c.Dataset);
        if (c.Architecture == Architectures.Toy)
        {
            double inputs = channels * height * width, hidden = c.ToyHidden;
            var toyParameters = inputs * hidden + hidden + hidden * classes + classes;
            return new ModelSize(toyParameters, toyParameters * 12 + (double)c.BatchSize * (hidden * 2 + classes) * 4 * 3);
        }
        var n = Math.Max(1, (c.Depth - 4) / 3);
        double[] widths = [16, 16.0 * c.Widen, 32.0 * c.Widen, 64.0 * c.Widen];
        var leaky = c.Architecture == Architectures.LeakyNet;
        double parameters = channels * widths[0] * 9, activations = widths[0] * height * width;
        double side = (double)height * width;
        for (var g = 0; g < 3; g++)
        {
            if (g > 0) side /= 4; // stride 2
            for (var i = 0; i < n; i++)
            {
                var (inPlanes, outPlanes) = (i == 0 ? widths[g] : widths[g + 1], widths[g + 1]);
                var projects = i == 0 && (inPlanes != outPlanes || g > 0);
                parameters += inPlanes * outPlanes * 9
                              + (leaky ? 2 * outPlanes + 2 : (c.BatchNorm ? 2 * inPlanes : 0) + (projects ? inPlanes * outPlanes : 0));
                activations += outPlanes * side;
            }
        }
        parameters += widths[3] * classes + classes;
        return new ModelSize(parameters, parameters * 12 + (double)c.BatchSize * activations * 4 * 3);
    }
}

public static class Estimator
{
    /// <summary>
    /// Builds the model on the CPU, counts parameters (x4 bytes for weights, grads and momentum, plus the probe),
    /// sums the activations of one forward pass per image (x3 for the backward pass) and times two training steps
    /// of a small batch on this machine. Needs no dataset files: shapes come from the catalog.
    /// </summary>
    public static Estimate Of(ExperimentConfig config)
    {
        ConfigValidation.ThrowIfInvalid(config);
        TorchRuntime.Initialize();
        var (channels, height, width, classes, trainCount) = DatasetCatalog.Shape(config.Dataset);
        using var random = TorchRuntime.GlobalRandom.EnterScope(); // default init, randn and dropout draw from the global generator
        using var scope = NewDisposeScope();
        using var model = ModelFactory.Create(config, channels, height, width, classes);
        Initializer.Apply(model, config with { InitNoise = 0 });
        var parameters = model.parameters().Sum(p => p.numel());
        long activationsPerImage;
        using (no_grad())
        {
            var taps = new List<(string Layer, Tensor Output)>();
            model.Forward(zeros(1, channels, height, width), taps);
            activationsPerImage = taps.Sum(t => t.Output.numel());
        }
        // The real batch (up to 64: a bigger one costs the estimate seconds but changes little per image); two warm-up
        // steps first (allocation, kernel selection), then three timed. Smaller batches and cold steps once made this 10x low.
        var batch = Math.Min(config.BatchSize, 64);
        var x = randn(batch, channels, height, width);
        var y = zeros(batch, dtype: int64);
        var clock = new Stopwatch();
        const int warmup = 2, timed = 3;
        for (var i = 0; i < warmup + timed; i++)
        {
            if (i == warmup) clock.Start();
            model.zero_grad();
            nn.functional.cross_entropy(model.call(x), y).backward();
        }
        var imagesPerSecond = timed * batch / clock.Elapsed.TotalSeconds;
        var examples = config.TrainLimit > 0 ? Math.Min(config.TrainLimit, trainCount) : trainCount;
        var stepsPerEpoch = (examples + config.BatchSize - 1) / config.BatchSize;
        var steps = stepsPerEpoch * config.Epochs;
        if (config.MaxSteps > 0) steps = Math.Min(steps, config.MaxSteps);
        return new Estimate(parameters, parameters * 4 * 3, activationsPerImage * 4 * 3 * config.BatchSize, imagesPerSecond, steps,
            steps * config.BatchSize / imagesPerSecond,
                $"{timed} timed forward+backward steps at batch {batch} on this machine (no optimizer, no probes)");
    }
}
