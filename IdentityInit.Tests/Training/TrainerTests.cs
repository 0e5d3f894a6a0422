using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class TrainerTests
{
    // Dropout, augmentation and jitter all draw random numbers: the hardest case for reproducibility.
    static ExperimentConfig Random => Tiny.Config with
    {
        Dropout = 0.05,
        Augment = true,
        RoundingJitter = 1,
        Epochs = 3,
        CheckpointEvery = 8,
        MetricsEvery = 1,
    };

    static byte[] FinalWeights(string checkpoints) => File.ReadAllBytes(Path.Combine(Checkpoint.Latest(checkpoints)!, "model.bin"));

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public void SameSeedGivesABitwiseIdenticalRun()
    {
        var (dirA, dirB) = (Tiny.TempDir(), Tiny.TempDir());

        var a = Tiny.Events(Random with { MaxSteps = 40 }, dirA);
        var b = Tiny.Events(Random with { MaxSteps = 40 }, dirB);
        var c = Tiny.Events(Random with { MaxSteps = 40, Seed = 2 }, Tiny.TempDir());

        Assert.Equal(a.OfType<StepMetrics>().Select(s => s.Loss), b.OfType<StepMetrics>().Select(s => s.Loss));
        Assert.Equal(FinalWeights(dirA), FinalWeights(dirB));
        Assert.NotEqual(a.OfType<StepMetrics>().Select(s => s.Loss), c.OfType<StepMetrics>().Select(s => s.Loss));
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task ARunIsBitwiseTheSameWhileTheSameProcessEstimatesAnotherConfigBesideIt()
    {
        // The web process estimates configs in-process (the new-run form); the tests and the CLI train in-process. Both draw
        // from libtorch's one global generator: an estimate's draws between a step's seed and its dropout shifted the masks.
        var alone = Tiny.Events(Random with { MaxSteps = 40 });
        using var stop = new CancellationTokenSource();
        var estimates = 0;
        var first = new TaskCompletionSource();
        var beside = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                Estimator.Of(Tiny.Config with { Dropout = 0.5, BatchSize = 8 });
                Interlocked.Increment(ref estimates);
                first.TrySetResult();
            }
        });
        await first.Task;
        var before = estimates;

        var together = Tiny.Events(Random with { MaxSteps = 40 });
        stop.Cancel();
        await beside;

        Assert.True(estimates - before >= 3, $"only {estimates - before} estimates ran beside the run");
        Assert.Equal(alone.OfType<StepMetrics>().Select(s => s.Loss), together.OfType<StepMetrics>().Select(s => s.Loss));
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public void ResumeFromACheckpointContinuesBitwiseIdenticallyToAnUninterruptedRun()
    {
        var (whole, split) = (Tiny.TempDir(), Tiny.TempDir());
        var config = Random with { MaxSteps = 70 }; // 32 steps per epoch: the cut falls inside epoch 1

        var uninterrupted = Tiny.Events(config, whole);
        var first = Tiny.Events(config, split, cancelWhen: e => e is StepMetrics { Step: 45 });
        var second = Tiny.Events(config, split, resume: true);

        Assert.Equal(RunStatus.Cancelled, first.OfType<RunEnded>().Single().Summary.Status);
        Assert.Equal(45, second.OfType<RunStarted>().Single().StartStep);
        var resumedLosses = second.OfType<StepMetrics>().Select(s => (s.Step, s.Loss)).ToList();
        Assert.Equal(uninterrupted.OfType<StepMetrics>().Where(s => s.Step > 45).Select(s => (s.Step, s.Loss)), resumedLosses);
        Assert.Equal(uninterrupted.OfType<EpochMetrics>().Last(), second.OfType<EpochMetrics>().Single());
        Assert.Equal(FinalWeights(whole), FinalWeights(split));
    }

    [Fact]
    public void CancellationStopsWithinOneStepAndLeavesAResumableCheckpoint()
    {
        var dir = Tiny.TempDir();

        var events = Tiny.Events(Tiny.Config with { MaxSteps = 100, CheckpointEvery = 0 }, dir,
            cancelWhen: e => e is StepMetrics { Step: 10 });

        var summary = events.OfType<RunEnded>().Single().Summary;
        Assert.Equal(RunStatus.Cancelled, summary.Status);
        Assert.Equal(10, summary.Steps); // cancelled while step 10 reported: no further step starts
        Assert.EndsWith("step-000000010", summary.Checkpoint);
        Assert.Equal(summary.Checkpoint, Checkpoint.Latest(dir));
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public void AnUnreadableNewestCheckpointGivesWayToThePreviousIntactOne()
    {
        var (whole, split) = (Tiny.TempDir(), Tiny.TempDir());
        var config = Random with { MaxSteps = 70, CheckpointEvery = 20 };
        var uninterrupted = Tiny.Events(config, whole);
        Tiny.Events(config, split, cancelWhen: e => e is StepMetrics { Step: 45 }); // checkpoints at 20, 40 and 45 (on cancel)
        var model = Path.Combine(Checkpoint.Latest(split)!, "model.bin");
        File.WriteAllBytes(model, File.ReadAllBytes(model)[..^100]); // a torn write of the newest

        var second = Tiny.Events(config, split, resume: true);

        Assert.Equal(40, second.OfType<RunStarted>().Single().StartStep);
        Assert.Contains(second.OfType<LogLine>(),
            l => l.Message.StartsWith("checkpoint step-000000045 is unreadable") && l.Message.Contains("cut short"));
        Assert.Equal(RunStatus.Completed, second.OfType<RunEnded>().Single().Summary.Status);
        Assert.Equal(uninterrupted.OfType<StepMetrics>().Where(s => s.Step > 40).Select(s => (s.Step, s.Loss)),
            second.OfType<StepMetrics>().Select(s => (s.Step, s.Loss)));
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public void ResumeFromACheckpointAtAnEpochBoundaryKeepsTheNextEpochsMetricsExact()
    {
        var (whole, split) = (Tiny.TempDir(), Tiny.TempDir());
        var config = Random with { MaxSteps = 70, CheckpointEvery = 32 }; // 32 steps per epoch: checkpoints at 32 and 64 end epochs
        var uninterrupted = Tiny.Events(config, whole);
        Tiny.Events(config, split, cancelWhen: e => e is StepMetrics { Step: 40 });
        Directory.Delete(Checkpoint.Latest(split)!, recursive: true); // leave the epoch-boundary checkpoint at 32 newest

        var second = Tiny.Events(config, split, resume: true);

        Assert.Equal(32, second.OfType<RunStarted>().Single().StartStep);
        Assert.Equal(uninterrupted.OfType<EpochMetrics>().Where(m => m.Step > 32), second.OfType<EpochMetrics>());
        Assert.Equal(uninterrupted.OfType<StepMetrics>().Where(s => s.Step > 32).Select(s => (s.Step, s.Loss)),
            second.OfType<StepMetrics>().Select(s => (s.Step, s.Loss)));
        Assert.Equal(FinalWeights(whole), FinalWeights(split));
    }

    [Fact]
    public void ResumingWithAnotherConfigIsRefused()
    {
        var dir = Tiny.TempDir();
        Tiny.Run(Tiny.Config with { MaxSteps = 5 }, checkpoints: dir);

        var summary = Tiny.Run(Tiny.Config with { MaxSteps = 5, Seed = 9 }, checkpoints: dir, resume: true);

        Assert.Equal(RunStatus.Failed, summary.Status);
        Assert.Contains("different configuration", summary.Error);
    }

    [Fact]
    public void ANonFiniteLossStopsTheRunAsDivergedAndNamesTheFirstNonFiniteLayer()
    {
        var config = Tiny.Config with
        {
            Init = "he-fanout",
            LearningRate = 10,
            Momentum = 0.99,
            BatchNorm = false,
            Epochs = 10,
            MaxSteps = 300
        };

        var summary = Tiny.Run(config);

        Assert.Equal(RunStatus.Diverged, summary.Status);
        Assert.NotNull(summary.DivergedLayer);
        Assert.Contains("non-finite", summary.Error);
        Assert.Contains(summary.DivergedLayer, summary.Error);
    }

    [Fact]
    public void AskingForCudaOnTheCpuBuildFailsWithAClearMessage()
    {
        var summary = Tiny.Run(Tiny.Config with { Device = "cuda:0" });

        Assert.Equal(RunStatus.Failed, summary.Status);
        Assert.Contains("CUDA is not available", summary.Error);
        Assert.Contains("TorchBackend=cuda", summary.Error);
    }

    [Fact]
    public void ARunReportsMetricsSnapshotsAndTheReproducibilityRecord()
    {
        var events = Tiny.Events(Tiny.Config with { Epochs = 2, CorrelationEvery = 16, RoundingJitter = 1 });

        var started = events.OfType<RunStarted>().Single();
        var epochs = events.OfType<EpochMetrics>().ToList();
        var snapshots = events.OfType<CorrelationSnapshot>().ToList();

        Assert.Equal(64, started.TotalSteps);
        Assert.Equal(1, started.Record.Seed);
        Assert.Equal("0.107.0", started.Record.TorchSharpVersion);
        Assert.Equal([0, 1], epochs.Select(e => e.Epoch));
        Assert.All(epochs, e => Assert.InRange(e.TestAccuracy, 0, 1));
        Assert.Equal([0L, 16, 32, 48, 64], snapshots.Select(s => s.Step)); // the final snapshot is not repeated
        Assert.Equal(7, snapshots[0].Weights.Count); // conv1, 3 block convs, 2 shortcuts, fc
        Assert.All(snapshots[0].Weights.Where(w => w.Layer != "conv1"), w => Assert.Equal(1, w.Backward));
        Assert.Equal(double.NegativeInfinity, snapshots[0].Diversity);
        Assert.Equal(16, snapshots[0].Activations[0].Size);
        Assert.Contains(snapshots[^1].Activations, a => a.Correlation < 1);
    }

    [Fact]
    public void DeadChannelsAreThoseZeroForEveryProbeInputAndPosition()
    {
        using var a = TorchSharp.torch.tensor(new float[] { 1, 0, 0, 0, 0, 2, /* example 2 */ 0, 0, 0, 0, 0, 0 }).reshape(2, 3, 2);

        Assert.Equal(1, IdentityInit.Training.Symmetry.ChannelSpread.DeadChannels(a)); // channel 1; channel 0 lives in one example
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public void AToyNetWithOneFeatureCopiedToEveryUnitReportsTheUnitsDyingTogether()
    {
        // K = 1: the 256 copies move as one unit with 256 times the step; the first overshoot leaves its ReLU below 0 on
        // every input, and a dead unit passes no gradient, so no breaker can revive it (issue 20's "K = 1 stays at chance").
        var config = Tiny.Config with
        {
            Architecture = "toy",
            Dataset = "fashion-mnist",
            ToyHidden = 256,
            ToyUnique = 1,
            BatchSize = 128,
            TrainLimit = 4096,
            MaxSteps = 30,
            CorrelationEvery = 10,
            ProbeSize = 64,
        };
        List<int> DeadPerSnapshot(ExperimentConfig c)
        {
            var dead = new List<int>();
            Trainer.Run(c, new Progress(e =>
                { if (e is CorrelationSnapshot s) dead.Add(s.Activations.Single(a => a.Layer == "fc1").Dead); }),
                CancellationToken.None, new RunOptions());
            return dead;
        }

        var one = DeadPerSnapshot(config);
        var two = DeadPerSnapshot(config with { ToyUnique = 2 });

        Assert.Equal([0, 0, 256, 256], one); // alive at init and at step 10 (the loss overshoots to 6), all dead by step 20
        Assert.All(two, d => Assert.Equal(0, d));
    }

    [Theory]
    [InlineData("reference", 0, 0.03 * 0.2 * 0.2 * 0.2)]
    [InlineData("reference", 299, 0.03 * 0.008)]
    [InlineData("constant", 5, 0.03)]
    [InlineData("cosine", 150, 0.015)]
    public void LearningRateFollowsTheSchedule(string schedule, int epoch, double expected)
    {
        var config = new ExperimentConfig { Schedule = schedule, Epochs = epoch == 0 ? 10 : 300 };

        Assert.Equal(expected, LearningRate.At(config, epoch), 12);
    }

    [Theory]
    [InlineData(0, 1.0)]
    [InlineData(250, 0.85355339059327373)]
    [InlineData(500, 0.5)]
    [InlineData(999, 2.467399070893439e-6)]
    public void CosineStepDecaysEveryStepToNearZeroAtTheLastOne(long step, double fraction)
    {
        var config = new ExperimentConfig { Schedule = "cosine-step", Epochs = 2 };

        Assert.Equal(0.03 * fraction, LearningRate.At(config, epoch: 1, step, totalSteps: 1000), 12);
    }

    [Fact]
    public void TheTrainerStepsTheLearningRateWithinAnEpoch()
    {
        var config = Tiny.Config with { Schedule = "cosine-step", MaxSteps = 8, MetricsEvery = 1 }; // one epoch is 32 steps

        var rates = Tiny.Events(config).OfType<StepMetrics>().Select(s => s.LearningRate).ToList();

        Assert.Equal(8, rates.Count);
        Assert.All(rates.Select((r, t) => (r, t)), p => Assert.Equal(0.03 * 0.5 * (1 + Math.Cos(Math.PI * p.t / 8)), p.r, 12));
    }

    [Theory]
    [InlineData(158, 0.03)]
    [InlineData(159, 0.006)]
    [InlineData(219, 0.0012)]
    [InlineData(259, 0.00024)]
    public void ReferenceScheduleDropsByFifthWhenEpochPlusOneReachesEMinus140And80And40(int epoch, double expected)
    {
        Assert.Equal(expected, LearningRate.At(new ExperimentConfig { Epochs = 300 }, epoch), 12);
    }

    sealed class Progress(Action<RunEvent> onEvent) : IProgress<RunEvent>
    {
        public void Report(RunEvent value) => onEvent(value);
    }
}
