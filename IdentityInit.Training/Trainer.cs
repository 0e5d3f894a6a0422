using System.Diagnostics;
using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Metrics;
using IdentityInit.Training.Models;
using IdentityInit.Training.Symmetry;
using TorchSharp;
using static TorchSharp.torch;

namespace IdentityInit.Training;

/// <summary>Where checkpoints go and whether to continue from the newest one; the dataset may be passed in preloaded.</summary>
/// <param name="ResumeAtMost">resume from the newest checkpoint at or before this step (one whose events a store has persisted).</param>
internal sealed record RunOptions(string? CheckpointDir = null, bool Resume = false, DatasetCatalog? Catalog = null,
    ImageDataset? Dataset = null,
    long? ResumeAtMost = null);

internal static partial class Trainer
{
    const int EvalBatch = 500;

    /// <summary>Trains synchronously on the calling thread; progress is reported as plain records. Never throws for a failed run.</summary>
    public static RunSummary Run(ExperimentConfig config, IProgress<RunEvent>? progress, CancellationToken cancellationToken,
        RunOptions? options = null)
    {
        options ??= new RunOptions();
        var clock = Stopwatch.StartNew();
        try
        {
            ConfigValidation.ThrowIfInvalid(config);
            TorchRuntime.Initialize();
            var device = TorchRuntime.ResolveDevice(config.Device);
            if (config.Threads > 0) set_num_threads(config.Threads);
            var determinism = TorchRuntime.SetDeterministic(config.Deterministic, cuda: device.type == TorchSharp.DeviceType.CUDA);
            var dataset = (options.Dataset ?? LoadDataset(config, options.Catalog, progress)).Limit(config.TrainLimit, config.TestLimit);
            return Loop(config, progress, cancellationToken, options, dataset, device, determinism, clock);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var summary = new RunSummary(RunStatus.Failed, 0, 0, null, 0, null, [], e.Message, null, null, clock.Elapsed.TotalSeconds);
            progress?.Report(new LogLine(0, "failed: " + e.Message));
            progress?.Report(new RunEnded(summary));
            return summary;
        }
    }

    /// <summary>
    /// The network the config describes, as initialized and before any step: its step-0 snapshot on the probe batch
    /// (weight and activation correlation, spread, and signal propagation), the same as a run's first snapshot.
    /// </summary>
    public static CorrelationSnapshot AtInit(ExperimentConfig config, RunOptions? options = null)
    {
        options ??= new RunOptions();
        ConfigValidation.ThrowIfInvalid(config);
        TorchRuntime.Initialize();
        var device = TorchRuntime.ResolveDevice(config.Device);
        if (config.Threads > 0) set_num_threads(config.Threads);
        var data = (options.Dataset ?? LoadDataset(config, options.Catalog, null)).Limit(config.TrainLimit, config.TestLimit);
        ImageModel model;
        lock (TorchRuntime.GlobalRandom)
        {
            manual_seed(config.Seed);
            model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
            Initializer.Apply(model, config);
        }
        using var _ = model;
        model.to(device);
        using var scope = NewDisposeScope();
        var probeSize = (int)Math.Min(config.ProbeSize, data.TestCount);
        var probe = Normalized(data.TestImages[..probeSize], data, device);
        return Snapshot(model, model.WeightLayers(), probe, data.TestLabels[..probeSize].to(device), 0);
    }

    static ImageDataset LoadDataset(ExperimentConfig config, DatasetCatalog? catalog, IProgress<RunEvent>? progress)
    {
        catalog ??= new DatasetCatalog(config.DataDir);
        var lastReported = -1L;
        var downloads = new Progress<DownloadProgress>(p =>
        {
            var mb = p.Bytes >> 23; // every 8 MiB
            if (mb == Interlocked.Exchange(ref lastReported, mb)) return;
            progress?.Report(new LogLine(0,
                $"downloading {p.File}: {p.Bytes / 1e6:F0} MB" + (p.Total is { } t ? $" of {t / 1e6:F0} MB" : "")));
        });
        return catalog.LoadAsync(config.Dataset, downloads).GetAwaiter().GetResult();
    }

    static RunSummary Loop(ExperimentConfig config, IProgress<RunEvent>? progress, CancellationToken cancellationToken,
        RunOptions options, ImageDataset data, Device device, DeterminismFlags determinism, Stopwatch clock)
    {
        using var loop = new TrainingLoop(config, progress, cancellationToken, options, data, device, clock);
        return loop.Train(determinism);
    }

    /// <summary>Images of one batch, normalised, on the device.</summary>
    static Tensor Normalized(Tensor images, ImageDataset data, Device device) => Augment.Normalize(images.to(device), data.Mean, data.Std);

    /// <summary>The epoch's shuffled order: a pure function of (seed, epoch), so a resumed run sees the same batches.</summary>
    static Tensor EpochOrder(long seed, int epoch, long count, Device device) =>
        randperm(count, generator: new Generator(Mix(seed, epoch, 0))).to(device);

    /// <summary>Derives an independent 64-bit seed for one purpose and one index (splitmix64 finaliser).</summary>
    public static ulong Mix(long seed, long index, int purpose)
    {
        var z = (ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index * 0xBF58476D1CE4E5B9UL + (ulong)purpose * 0x94D049BB133111EBUL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (z ^ (z >> 31)) >> 1; // torch generators take seeds below 2^63
    }

    /// <summary>Precise BN over config.PreciseBatchNorm batches of a fixed per-epoch draw of unaugmented training images.</summary>
    static bool RecomputeBatchNorm(ImageModel model, ExperimentConfig config, ImageDataset data, Tensor trainImages, int epoch)
    {
        using var scope = NewDisposeScope();
        var count = (int)Math.Min((long)config.PreciseBatchNorm * config.BatchSize, data.TrainCount);
        var order = randperm(data.TrainCount, generator: new Generator(Mix(config.Seed, epoch, 5)))[..count].to(trainImages.device);
        return PreciseBatchNorm.Recompute(model, Enumerable.Range(0, (count + config.BatchSize - 1) / config.BatchSize).Select(b =>
            Augment.Normalize(trainImages.index_select(0, order[(b * config.BatchSize)..Math.Min((b + 1) * config.BatchSize, count)]),
                data.Mean, data.Std)));
    }

    static (double Loss, double Accuracy) Evaluate(ImageModel model, ImageDataset data, Device device)
    {
        model.eval();
        using var noGrad = no_grad();
        double loss = 0, correct = 0;
        for (var start = 0L; start < data.TestCount; start += EvalBatch)
        {
            using var scope = NewDisposeScope();
            var end = (int)Math.Min(start + EvalBatch, data.TestCount);
            var x = Normalized(data.TestImages[(int)start..end], data, device);
            var y = data.TestLabels[(int)start..end].to(device);
            var logits = model.call(x);
            loss += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(y).sum().item<long>();
        }
        model.train();
        return (loss / data.TestCount, correct / data.TestCount);
    }

    /// <summary>Weight correlations of every layer plus activation correlation and spread on the probe batch (eval mode).</summary>
    static CorrelationSnapshot Snapshot(ImageModel model, IReadOnlyList<WeightLayer> layers, Tensor probe, Tensor? probeLabels, long step)
    {
        var sampler = new Generator(Mix(0, step, 4)); // row sampling above 5000 rows; never touches training randomness
        var weights = layers.Select(l =>
        {
            var c = WeightCorrelation.Of(l.Weight, sampler);
            using var spread = ChannelSpread.OfWeight(l.Weight.detach(), l.Role, l.Copies);
            return new LayerCorrelation(l.Name, c.Forward, c.Backward, c.Kernel, spread.to(float64).item<double>());
        }).ToList();
        var diversity = WeightCorrelation.Diversity(weights.Select(w => new WeightCorrelation(w.Forward, w.Backward, w.Kernel)));
        var wasTraining = model.training;
        model.eval();
        var activations = new List<LayerActivation>();
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var taps = new List<(string Layer, Tensor Output)>();
            model.Forward(probe, taps);
            foreach (var (layer, output) in taps)
            {
                if (output.dim() < 2 || layer is "fc" or "fc2") continue; // logits are classes, not channels
                var a = output.dim() == 2 ? output.unsqueeze(-1) : output;
                var correlation = ActivationCorrelation.Of(a);
                activations.Add(new LayerActivation(layer, correlation.Mean, ChannelSpread.OfActivation(a).to(float64).item<double>(),
                    correlation.Size, correlation.Matrix, ChannelSpread.DeadChannels(a)));
            }
        }
        if (wasTraining) model.train();
        if (probeLabels is null) return new CorrelationSnapshot(step, weights, activations, diversity);
        var signal = SignalPropagation.Of(model, layers, probe, probeLabels, new Generator(Mix(0, step, 5)));
        return new CorrelationSnapshot(step, weights, activations, diversity, signal.Layers, signal.Weights, signal.Input);
    }

    /// <summary>The first tapped layer whose output on <paramref name="x"/> holds a NaN or infinity.</summary>
    static string? FirstNonFinite(ImageModel model, Tensor x)
    {
        using var noGrad = no_grad();
        var taps = new List<(string Layer, Tensor Output)>();
        model.Forward(x, taps);
        if (!isfinite(x).all().item<bool>()) return "input";
        return taps.FirstOrDefault(t => !isfinite(t.Output).all().item<bool>()).Layer;
    }
}
