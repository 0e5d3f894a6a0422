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
            steps * config.BatchSize / imagesPerSecond, $"{timed} timed forward+backward steps at batch {batch} on this machine (no optimizer, no probes)");
    }
}
