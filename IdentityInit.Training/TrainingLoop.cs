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

internal static partial class Trainer
{
    /// <summary>
    /// One run's training, top to bottom: <see cref="Train"/> is the whole run; a step, an epoch's end and the run's end
    /// are named methods below it. What is fixed for the run is readonly; what the loop carries from step to step is the
    /// group of fields a checkpoint's <see cref="TrainerState"/> keeps. The global generator is seeded before the model is
    /// built (PyTorch's default layer init) and before every step (dropout); nothing else here draws from it.
    /// </summary>
    sealed class TrainingLoop : IDisposable
    {
        // Fixed for the run.
        readonly ExperimentConfig config;
        readonly IProgress<RunEvent>? progress;
        readonly CancellationToken cancellationToken;
        readonly RunOptions options;
        readonly ImageDataset data;
        readonly Device device;
        readonly Stopwatch clock;
        readonly ImageModel model;
        readonly List<Tensor> parameters;
        readonly Sgd optimizer;
        readonly IReadOnlyList<WeightLayer> layers;
        readonly string configJson;
        readonly int stepsPerEpoch;
        readonly long totalSteps;
        readonly Tensor trainImages, trainLabels, probe, probeLabels;

        // Carried from step to step: what a checkpoint keeps (the epoch's running sums stay on the device).
        long step;
        Tensor lossSum = null!, correct = null!;
        double seen;
        double best;
        double? lastTest;
        Dictionary<string, long> brokeAt = [];

        // First-break detection stays on the device: each check updates per-layer tensors in place, with no host transfer
        // (on a GPU, no synchronisation per step). They are read at the metric cadence, before checkpoints and at the end,
        // where every layer that broke since is reported with the exact step it broke at and its spread then.
        readonly Tensor spreadNow, spreadAtBreak;
        Tensor brokeAtStep = null!;
        double[] spreads;
        bool unread;

        // How the run is going.
        RunRecord record = null!;
        RunStatus status = RunStatus.Completed;
        string? resumeFrom, lastCheckpoint, divergedLayer;
        long lastSnapshot = -1;
        readonly Stopwatch window = Stopwatch.StartNew();
        long windowImages;

        public TrainingLoop(ExperimentConfig config, IProgress<RunEvent>? progress, CancellationToken cancellationToken, RunOptions options,
            ImageDataset data, Device device, Stopwatch clock)
        {
            (this.config, this.progress, this.cancellationToken, this.options, this.data, this.device, this.clock) =
                (config, progress, cancellationToken, options, data, device, clock);
            lock (TorchRuntime.GlobalRandom)
            {
                manual_seed(config.Seed);
                model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
                Initializer.Apply(model, config);
            }
            model.to(device);
            parameters = model.parameters().Select(p => (Tensor)p).ToList();
            optimizer = new Sgd(parameters, config.Momentum, config.WeightDecay, config.Nesterov);
            layers = model.WeightLayers();
            // Where this machine keeps datasets is not part of the run.
            configJson = JsonSerializer.Serialize(config with { DataDir = null });

            stepsPerEpoch = (int)((data.TrainCount + config.BatchSize - 1) / config.BatchSize);
            totalSteps = (long)stepsPerEpoch * config.Epochs;
            if (config.MaxSteps > 0) totalSteps = Math.Min(totalSteps, config.MaxSteps);

            trainImages = data.TrainImages.to(device);
            trainLabels = data.TrainLabels.to(device);
            var probeSize = (int)Math.Min(config.ProbeSize, data.TestCount);
            probe = Normalized(data.TestImages[..probeSize], data, device);
            probeLabels = data.TestLabels[..probeSize].to(device);
            spreadNow = zeros(layers.Count, dtype: float64, device: device);
            spreadAtBreak = zeros(layers.Count, dtype: float64, device: device);
            spreads = new double[layers.Count];
        }

        public RunSummary Train(DeterminismFlags determinism)
        {
            var unreadable = Resume();
            Announce(determinism, unreadable);
            if (step == 0)
            {
                CheckSpread();
                ReadSpreads();
                ReportSnapshot();
                if (resumeFrom is null) SaveCheckpoint(); // the initialization, kept for export and replay
            }
            while (step < totalSteps && status == RunStatus.Completed) TrainEpoch();
            return Finish();
        }

        /// <summary>
        /// Where training starts: the newest intact checkpoint when resuming (one that cannot be read, a torn write or a
        /// full disk, gives way to the one before it and is named in the log), else step 0 as initialized.
        /// </summary>
        List<string> Resume()
        {
            var state = new TrainerState(0, 0, 0, 0, 0, null, [], configJson);
            var unreadable = new List<string>();
            var candidates = options.Resume && options.CheckpointDir is { } dir
                ? Checkpoint.Completed(dir).Where(c => options.ResumeAtMost is null || c.Step <= options.ResumeAtMost).Reverse().ToList()
                : [];
            foreach (var (_, path) in candidates)
            {
                try
                {
                    state = Checkpoint.Load(path, model, optimizer);
                }
                catch (Exception e) when (e is InvalidDataException or IOException or JsonException or EndOfStreamException
                                              or System.Runtime.InteropServices.ExternalException)
                {
                    unreadable.Add($"{Path.GetFileName(path)} is unreadable ({e.Message})");
                    continue;
                }
                if (state.ConfigJson != configJson)
                    throw new InvalidOperationException($"checkpoint {path} belongs to a different configuration");
                resumeFrom = lastCheckpoint = path;
                break;
            }
            if (resumeFrom is null && unreadable.Count > 0) // a half-loaded model must not train on as if fresh
                throw new InvalidDataException("no intact checkpoint to resume from: " + string.Join("; ", unreadable));

            step = state.Step;
            lossSum = tensor(state.EpochLossSum, float64, device);
            correct = tensor(state.EpochCorrect, float64, device);
            seen = state.EpochSeen;
            best = state.BestTestAccuracy;
            lastTest = state.LastTestAccuracy;
            brokeAt = state.BrokeAt;
            var brokeAtSteps = layers.Select(l => brokeAt.TryGetValue(l.Name, out var s) ? s : -1L).ToArray();
            brokeAtStep = tensor(brokeAtSteps, dtype: int64, device: device);
            return unreadable;
        }

        /// <summary>The run's reproducibility record and first log lines: what trains, where it starts, what was skipped.</summary>
        void Announce(DeterminismFlags determinism, List<string> unreadable)
        {
            record = new RunRecord(config.Seed, device.ToString(), get_num_threads(), TorchRuntime.TorchSharpVersion,
                TorchRuntime.LibTorchVersion, determinism, SymmetryBreakers.Describe(config), data.Name, data.TrainCount,
                data.TestCount, parameters.Sum(p => p.numel()), $"{Environment.MachineName} ({Environment.ProcessorCount} cores)",
                DateTimeOffset.UtcNow);
            progress?.Report(new RunStarted(record, step, totalSteps, stepsPerEpoch, layers.Select(l => l.Name).ToList()));
            foreach (var problem in unreadable) progress?.Report(new LogLine(step, "checkpoint " + problem));
            progress?.Report(new LogLine(step, resumeFrom is null
                ? $"training {config.Architecture} on {data.Name} ({data.TrainCount} images), {totalSteps} steps, " +
                  $"breakers: {string.Join(", ", record.Breakers)}"
                : $"resumed from {resumeFrom} at step {step}"));
        }

        /// <summary>The rest of the current epoch (all of it unless resumed inside it), then its evaluation if it ended.</summary>
        void TrainEpoch()
        {
            var epoch = (int)(step / stepsPerEpoch);
            var batchIndex = (int)(step % stepsPerEpoch);
            using var order = config.Shuffle
                ? EpochOrder(config.Seed, epoch, data.TrainCount, device)
                : arange(data.TrainCount, device: device);
            model.train();
            for (; batchIndex < stepsPerEpoch && step < totalSteps; batchIndex++)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    status = RunStatus.Cancelled;
                    return;
                }
                if (!TrainStep(order, epoch, batchIndex)) return;
                if (config.CorrelationEvery > 0 && step % config.CorrelationEvery == 0) ReportSnapshot();
                // An epoch's last step is checkpointed after the epoch ends (EndEpoch): a checkpoint taken before would carry
                // the finished epoch's running sums into the next and miss its evaluation when resumed from.
                if (config.CheckpointEvery > 0 && step % config.CheckpointEvery == 0 && batchIndex + 1 < stepsPerEpoch && step < totalSteps)
                    SaveCheckpoint(); // the last step's checkpoint is the final one, in Finish
            }
            if (batchIndex == stepsPerEpoch) EndEpoch(epoch);
        }

        /// <summary>One batch: forward, backward, the breakers, the update and the running sums; false when the loss diverged.</summary>
        bool TrainStep(Tensor order, int epoch, int batchIndex)
        {
            var stepClock = Stopwatch.StartNew();
            var learningRate = LearningRate.At(config, epoch, step, totalSteps);
            using var scope = NewDisposeScope();
            var start = batchIndex * config.BatchSize;
            var indices = order[start..(int)Math.Min(start + config.BatchSize, data.TrainCount)];
            var x = Augment.Normalize(trainImages.index_select(0, indices), data.Mean, data.Std);
            var y = trainLabels.index_select(0, indices);
            if (config.AugmentEffective) x = Augment.CropAndFlip(x, new Generator(Mix(config.Seed, step, 2)));
            Tensor logits;
            lock (TorchRuntime.GlobalRandom)
            {
                manual_seed((long)Mix(config.Seed, step, 1)); // dropout draws from the global generator
                logits = model.call(x);
            }
            var loss = nn.functional.cross_entropy(logits, y);
            if (!isfinite(loss).item<bool>())
            {
                divergedLayer = FirstNonFinite(model, x) ?? "loss";
                status = RunStatus.Diverged;
                return false;
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
            if (step % config.MetricsEvery == 0) ReportStepMetrics(epoch, loss, logits, y, learningRate, stepClock);
            return true;
        }

        void ReportStepMetrics(int epoch, Tensor loss, Tensor logits, Tensor y, double learningRate, Stopwatch stepClock)
        {
            ReadSpreads();
            var elapsed = window.Elapsed.TotalSeconds;
            var accuracy = logits.argmax(1).eq(y).to(float64).mean().item<double>();
            progress?.Report(new StepMetrics(step, epoch, loss.item<float>(), accuracy, learningRate,
                windowImages / Math.Max(elapsed, 1e-9),
                stepClock.Elapsed.TotalMilliseconds, spreads, ChannelSpread.Fingerprint(parameters)));
            window.Restart();
            windowImages = 0;
        }

        /// <summary>The epoch's test evaluation and running means; the sums start again for the next epoch.</summary>
        void EndEpoch(int epoch)
        {
            var test = EvaluateNow(epoch);
            lastTest = test.Accuracy;
            best = Math.Max(best, test.Accuracy);
            var (trainLoss, trainAccuracy) = (lossSum.item<double>() / seen, correct.item<double>() / seen);
            progress?.Report(new EpochMetrics(epoch, step, trainLoss, trainAccuracy, test.Loss, test.Accuracy, best, test.PreciseLoss,
                test.PreciseAccuracy));
            lossSum.zero_();
            correct.zero_();
            seen = 0;
            if (config.CheckpointEvery > 0 && step % config.CheckpointEvery == 0 && step < totalSteps) SaveCheckpoint();
        }

        /// <summary>
        /// The run's end: a last evaluation if it stopped inside an epoch, the final snapshot and checkpoint, the summary.
        /// </summary>
        RunSummary Finish()
        {
            if (status == RunStatus.Completed && lastTest is null && data.TestCount > 0)
            {
                var test = EvaluateNow((int)(step / stepsPerEpoch)); // stopped by MaxSteps inside an epoch
                lastTest = test.Accuracy;
                best = Math.Max(best, test.Accuracy);
            }
            string? error = null;
            if (status != RunStatus.Diverged)
            {
                if (step % config.SpreadEvery != 0) CheckSpread();
                ReportSnapshot();
                SaveCheckpoint();
            }
            else
            {
                error = $"loss became non-finite at step {step + 1}; first non-finite output: {divergedLayer}";
                progress?.Report(new LogLine(step, error));
            }
            ReadSpreads();
            var finalSpreads = ChannelSpread.OfWeights(layers);
            var symmetry = layers
                .Select((l, i) => new LayerSymmetry(l.Name, brokeAt.TryGetValue(l.Name, out var s) ? s : null, finalSpreads[i])).ToList();
            var summary = new RunSummary(status, step, (int)(step / stepsPerEpoch), lastTest, best, record, symmetry, error,
                divergedLayer, string.IsNullOrEmpty(lastCheckpoint) ? null : lastCheckpoint, clock.Elapsed.TotalSeconds);
            progress?.Report(new RunEnded(summary));
            return summary;
        }

        string SaveCheckpoint()
        {
            if (options.CheckpointDir is null) return "";
            ReadSpreads(); // the breaks so far go into the checkpoint's state
            var path = Checkpoint.Save(options.CheckpointDir, model, optimizer, new TrainerState(
                step, lossSum.item<double>(), correct.item<double>(), seen, best, lastTest, brokeAt, configJson));
            progress?.Report(new CheckpointSaved(step, path));
            return lastCheckpoint = path;
        }

        /// <summary>
        /// The test set with the running statistics, then (precise BN on) with statistics recomputed over training batches;
        /// the running statistics are put back after, so the reference figures and later epochs are what they are without it.
        /// </summary>
        (double Loss, double Accuracy, double? PreciseLoss, double? PreciseAccuracy) EvaluateNow(int epoch)
        {
            var (loss, accuracy) = Evaluate(model, data, device);
            if (config.PreciseBatchNorm == 0) return (loss, accuracy, null, null);
            using var running = PreciseBatchNorm.Keep(model);
            if (!RecomputeBatchNorm(model, config, data, trainImages, epoch)) return (loss, accuracy, null, null);
            var (preciseLoss, preciseAccuracy) = Evaluate(model, data, device);
            return (loss, accuracy, preciseLoss, preciseAccuracy);
        }

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
            var count = layers.Count;
            double[] host;
            using (NewDisposeScope()) host = cat([spreadNow, brokeAtStep.to(float64), spreadAtBreak]).cpu().data<double>().ToArray();
            spreads = host[..count];
            var newlyBroken = Enumerable.Range(0, count).Where(l => host[count + l] >= 0 && !brokeAt.ContainsKey(layers[l].Name));
            foreach (var l in newlyBroken.OrderBy(l => host[count + l]))
            {
                var at = (long)host[count + l];
                brokeAt[layers[l].Name] = at;
                progress?.Report(new SymmetryBroken(at, layers[l].Name, host[2 * count + l]));
            }
        }

        void ReportSnapshot()
        {
            if (lastSnapshot == step) return;
            lastSnapshot = step;
            progress?.Report(Snapshot(model, layers, probe, config.Signals ? probeLabels : null, step));
        }

        public void Dispose()
        {
            spreadNow.Dispose();
            spreadAtBreak.Dispose();
            brokeAtStep?.Dispose();
            optimizer.Dispose();
            model.Dispose();
        }
    }
}
