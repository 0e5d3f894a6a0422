using System.Diagnostics;
using System.Text.Json;
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
internal sealed record RunOptions(string? CheckpointDir = null, bool Resume = false, DatasetCatalog? Catalog = null, ImageDataset? Dataset = null,
    long? ResumeAtMost = null);

internal static class Trainer
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
        manual_seed(config.Seed);
        using var model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
        Initializer.Apply(model, config);
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
            progress?.Report(new LogLine(0, $"downloading {p.File}: {p.Bytes / 1e6:F0} MB" + (p.Total is { } t ? $" of {t / 1e6:F0} MB" : "")));
        });
        return catalog.LoadAsync(config.Dataset, downloads).GetAwaiter().GetResult();
    }

    static RunSummary Loop(ExperimentConfig config, IProgress<RunEvent>? progress, CancellationToken cancellationToken,
        RunOptions options, ImageDataset data, Device device, DeterminismFlags determinism, Stopwatch clock)
    {
        manual_seed(config.Seed);
        using var model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
        Initializer.Apply(model, config);
        model.to(device);
        var parameters = model.parameters().Select(p => (Tensor)p).ToList();
        using var optimizer = new Sgd(parameters, config.Momentum, config.WeightDecay, config.Nesterov);
        var layers = model.WeightLayers();
        var configJson = JsonSerializer.Serialize(config with { DataDir = null }); // where this machine keeps datasets is not part of the run

        var stepsPerEpoch = (int)((data.TrainCount + config.BatchSize - 1) / config.BatchSize);
        var totalSteps = (long)stepsPerEpoch * config.Epochs;
        if (config.MaxSteps > 0) totalSteps = Math.Min(totalSteps, config.MaxSteps);

        var state = new TrainerState(0, 0, 0, 0, 0, null, [], configJson);
        string? resumeFrom = null;
        var unreadable = new List<string>();
        // Newest first; one that cannot be read (a torn write, a full disk) gives way to the one before it, and says so.
        var candidates = options.Resume && options.CheckpointDir is { } dir
            ? Checkpoint.Completed(dir).Where(c => options.ResumeAtMost is null || c.Step <= options.ResumeAtMost).Reverse().ToList() : [];
        foreach (var (_, path) in candidates)
        {
            try
            {
                state = Checkpoint.Load(path, model, optimizer);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or System.Text.Json.JsonException or EndOfStreamException
                                          or System.Runtime.InteropServices.ExternalException)
            {
                unreadable.Add($"{System.IO.Path.GetFileName(path)} is unreadable ({e.Message})");
                continue;
            }
            if (state.ConfigJson != configJson)
                throw new InvalidOperationException($"checkpoint {path} belongs to a different configuration");
            resumeFrom = path;
            break;
        }
        if (resumeFrom is null && unreadable.Count > 0) // a half-loaded model must not train on as if fresh
            throw new InvalidDataException("no intact checkpoint to resume from: " + string.Join("; ", unreadable));

        var record = new RunRecord(config.Seed, device.ToString(), get_num_threads(), TorchRuntime.TorchSharpVersion,
            TorchRuntime.LibTorchVersion, determinism, SymmetryBreakers.Describe(config), data.Name, data.TrainCount,
            data.TestCount, parameters.Sum(p => p.numel()), $"{Environment.MachineName} ({Environment.ProcessorCount} cores)",
            DateTimeOffset.UtcNow);
        progress?.Report(new RunStarted(record, state.Step, totalSteps, stepsPerEpoch, layers.Select(l => l.Name).ToList()));
        foreach (var problem in unreadable) progress?.Report(new LogLine(state.Step, "checkpoint " + problem));
        progress?.Report(new LogLine(state.Step, resumeFrom is null
            ? $"training {config.Architecture} on {data.Name} ({data.TrainCount} images), {totalSteps} steps, breakers: {string.Join(", ", record.Breakers)}"
            : $"resumed from {resumeFrom} at step {state.Step}"));

        var trainImages = data.TrainImages.to(device);
        var trainLabels = data.TrainLabels.to(device);
        var probe = Normalized(data.TestImages[..(int)Math.Min(config.ProbeSize, data.TestCount)], data, device);
        var probeLabels = data.TestLabels[..(int)Math.Min(config.ProbeSize, data.TestCount)].to(device);
        var brokeAt = state.BrokeAt;
        var step = state.Step;
        var best = state.BestTestAccuracy;
        var lastTest = state.LastTestAccuracy;
        var lossSum = tensor(state.EpochLossSum, float64, device);
        var correct = tensor(state.EpochCorrect, float64, device);
        var seen = state.EpochSeen;
        var augment = config.AugmentEffective;
        var status = RunStatus.Completed;
        string? divergedLayer = null, lastCheckpoint = resumeFrom, error = null;
        var window = Stopwatch.StartNew();
        long windowImages = 0;

        string SaveCheckpoint()
        {
            if (options.CheckpointDir is null) return "";
            ReadSpreads(); // the breaks so far go into the checkpoint's state
            var path = Checkpoint.Save(options.CheckpointDir, model, optimizer, new TrainerState(
                step, lossSum.item<double>(), correct.item<double>(), seen, best, lastTest, brokeAt, configJson));
            progress?.Report(new CheckpointSaved(step, path));
            return lastCheckpoint = path;
        }

        (double Loss, double Accuracy) EvaluateNow(int epoch)
        {
            if (config.PreciseBatchNorm > 0) RecomputeBatchNorm(model, config, data, trainImages, epoch);
            return Evaluate(model, data, device);
        }

        // First-break detection stays on the device: each check updates per-layer tensors in place, with no host transfer
        // (on a GPU, no synchronisation per step). They are read at the metric cadence, before checkpoints and at the
        // end, where every layer that broke since is reported with the exact step it broke at and its spread then.
        var count = layers.Count;
        using var spreadNow = zeros(count, dtype: float64, device: device);
        using var brokeAtStep = tensor(layers.Select(l => brokeAt.TryGetValue(l.Name, out var s) ? s : -1L).ToArray(), dtype: int64, device: device);
        using var spreadAtBreak = zeros(count, dtype: float64, device: device);
        var spreads = new double[count];
        var unread = false;
        void CheckSpread()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var current = ChannelSpread.Stacked(layers);
            var broke = brokeAtStep.lt(0).logical_and_(current.ne(0));
            brokeAtStep.masked_fill_(broke, step);
            spreadAtBreak.copy_(where(broke, current, spreadAtBreak));
            spreadNow.copy_(current);
            unread = true;
        }
        void ReadSpreads() // one host transfer for all three
        {
            if (!unread) return;
            unread = false;
            double[] host;
            using (NewDisposeScope()) host = cat([spreadNow, brokeAtStep.to(float64), spreadAtBreak]).cpu().data<double>().ToArray();
            spreads = host[..count];
            foreach (var l in Enumerable.Range(0, count).Where(l => host[count + l] >= 0 && !brokeAt.ContainsKey(layers[l].Name)).OrderBy(l => host[count + l]))
            {
                var at = (long)host[count + l];
                brokeAt[layers[l].Name] = at;
                progress?.Report(new SymmetryBroken(at, layers[l].Name, host[2 * count + l]));
            }
        }

        var lastSnapshot = -1L;
        void ReportSnapshot()
        {
            if (lastSnapshot == step) return;
            lastSnapshot = step;
            progress?.Report(Snapshot(model, layers, probe, config.Signals ? probeLabels : null, step));
        }

        if (step == 0)
        {
            CheckSpread();
            ReadSpreads();
            ReportSnapshot();
            if (resumeFrom is null) SaveCheckpoint(); // the initialization, kept for export and replay
        }

        while (step < totalSteps)
        {
            var epoch = (int)(step / stepsPerEpoch);
            var batchIndex = (int)(step % stepsPerEpoch);
            using var order = config.Shuffle ? EpochOrder(config.Seed, epoch, data.TrainCount, device) : arange(data.TrainCount, device: device);
            var learningRate = LearningRate.At(config, epoch, step, totalSteps);
            model.train();
            for (; batchIndex < stepsPerEpoch && step < totalSteps; batchIndex++)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    status = RunStatus.Cancelled;
                    break;
                }
                var stepClock = Stopwatch.StartNew();
                learningRate = LearningRate.At(config, epoch, step, totalSteps);
                using (var scope = NewDisposeScope())
                {
                    manual_seed((long)Mix(config.Seed, step, 1)); // dropout draws from the global generator
                    var start = batchIndex * config.BatchSize;
                    var indices = order[start..(int)Math.Min(start + config.BatchSize, data.TrainCount)];
                    var (x, y) = (Augment.Normalize(trainImages.index_select(0, indices), data.Mean, data.Std), trainLabels.index_select(0, indices));
                    if (augment) x = Augment.CropAndFlip(x, new Generator(Mix(config.Seed, step, 2)));
                    var logits = model.call(x);
                    var loss = nn.functional.cross_entropy(logits, y);
                    if (!isfinite(loss).item<bool>())
                    {
                        divergedLayer = FirstNonFinite(model, x) ?? "loss";
                        status = RunStatus.Diverged;
                        break;
                    }
                    model.zero_grad();
                    loss.backward();
                    if (config.RoundingJitter > 0)
                        SymmetryBreakers.JitterGradients(parameters, config.RoundingJitter, new Generator(Mix(config.Seed, step, 3)));
                    optimizer.Step(learningRate);
                    using (no_grad())
                    {
                        lossSum.add_(loss.detach().to(float64) * y.shape[0]);
                        correct.add_(logits.argmax(1).eq(y).sum().to(float64));
                    }
                    seen += y.shape[0];
                    windowImages += y.shape[0];
                    step++;
                    if (step % config.SpreadEvery == 0) CheckSpread();
                    if (step % config.MetricsEvery == 0)
                    {
                        ReadSpreads();
                        var elapsed = window.Elapsed.TotalSeconds;
                        progress?.Report(new StepMetrics(step, epoch, loss.item<float>(),
                            logits.argmax(1).eq(y).to(float64).mean().item<double>(), learningRate,
                            windowImages / Math.Max(elapsed, 1e-9), stepClock.Elapsed.TotalMilliseconds, spreads, ChannelSpread.Fingerprint(parameters)));
                        window.Restart();
                        windowImages = 0;
                    }
                }
                if (config.CorrelationEvery > 0 && step % config.CorrelationEvery == 0) ReportSnapshot();
                // An epoch's last step is checkpointed after the epoch ends (below): a checkpoint taken before would carry
                // the finished epoch's running sums into the next and miss its evaluation when resumed from.
                if (config.CheckpointEvery > 0 && step % config.CheckpointEvery == 0 && batchIndex + 1 < stepsPerEpoch && step < totalSteps)
                    SaveCheckpoint(); // the last step's checkpoint is the final one, below
            }
            if (status != RunStatus.Completed) break;
            if (batchIndex == stepsPerEpoch)
            {
                var (testLoss, testAccuracy) = EvaluateNow(epoch);
                lastTest = testAccuracy;
                best = Math.Max(best, testAccuracy);
                progress?.Report(new EpochMetrics(epoch, step, lossSum.item<double>() / seen, correct.item<double>() / seen,
                    testLoss, testAccuracy, best));
                lossSum.zero_();
                correct.zero_();
                seen = 0;
                if (config.CheckpointEvery > 0 && step % config.CheckpointEvery == 0 && step < totalSteps) SaveCheckpoint();
            }
        }

        if (status == RunStatus.Completed && lastTest is null && data.TestCount > 0)
        {
            var (_, testAccuracy) = EvaluateNow((int)(step / stepsPerEpoch)); // stopped by MaxSteps inside an epoch
            lastTest = testAccuracy;
            best = Math.Max(best, testAccuracy);
        }
        if (status != RunStatus.Diverged)
        {
            if (step % config.SpreadEvery != 0) CheckSpread();
            ReportSnapshot();
            SaveCheckpoint();
        }
        if (status == RunStatus.Diverged)
        {
            error = $"loss became non-finite at step {step + 1}; first non-finite output: {divergedLayer}";
            progress?.Report(new LogLine(step, error));
        }
        ReadSpreads();
        var finalSpreads = ChannelSpread.OfWeights(layers);
        var symmetry = layers.Select((l, i) => new LayerSymmetry(l.Name, brokeAt.TryGetValue(l.Name, out var s) ? s : null, finalSpreads[i])).ToList();
        var summary = new RunSummary(status, step, (int)(step / stepsPerEpoch), lastTest, best, record, symmetry, error,
            divergedLayer, string.IsNullOrEmpty(lastCheckpoint) ? null : lastCheckpoint, clock.Elapsed.TotalSeconds);
        progress?.Report(new RunEnded(summary));
        return summary;
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
    static void RecomputeBatchNorm(ImageModel model, ExperimentConfig config, ImageDataset data, Tensor trainImages, int epoch)
    {
        using var scope = NewDisposeScope();
        var count = (int)Math.Min((long)config.PreciseBatchNorm * config.BatchSize, data.TrainCount);
        var order = randperm(data.TrainCount, generator: new Generator(Mix(config.Seed, epoch, 5)))[..count].to(trainImages.device);
        PreciseBatchNorm.Recompute(model, Enumerable.Range(0, (count + config.BatchSize - 1) / config.BatchSize).Select(b =>
            Augment.Normalize(trainImages.index_select(0, order[(b * config.BatchSize)..Math.Min((b + 1) * config.BatchSize, count)]), data.Mean, data.Std)));
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
