using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class BatchNormTests
{
    [Fact]
    public void PreciseBatchNormSetsTheRunningStatisticsToThePlainAverageOfTheBatchStatistics()
    {
        var bn = nn.BatchNorm2d(3);
        var model = nn.Sequential(bn);
        var batches = Enumerable.Range(0, 4).Select(i => randn([8, 3, 5, 5], generator: new Generator((ulong)i + 1)) * (i + 1) + i)
            .ToList();
        model.call(randn(8, 3, 5, 5) * 50); // a stale exponential average to be replaced
        var tracked = bn.num_batches_tracked!.item<long>();

        var changed = PreciseBatchNorm.Recompute(model, batches);

        Assert.True(changed);
        var means = stack(batches.Select(b => b.mean([0, 2, 3])).ToArray()).to(float64);
        var variances = stack(batches.Select(b => b.var([0, 2, 3], unbiased: true)).ToArray()).to(float64);
        Assert.True(bn.running_mean!.to(float64).allclose(means.mean([0]), rtol: 1e-5, atol: 1e-6));
        Assert.True(bn.running_var!.to(float64).allclose(variances.mean([0]), rtol: 1e-5, atol: 1e-6));
        Assert.Equal(0.1, bn.momentum);
        Assert.Equal(tracked, bn.num_batches_tracked!.item<long>());
    }

    [Fact]
    public void PreciseBatchNormIsReportedBesideTheRunningStatisticsFiguresWhichStayWhatTheyAreWithoutIt()
    {
        var config = Tiny.Config with { Init = "he-fanout", Epochs = 2, MetricsEvery = 1 };

        var plain = Tiny.Events(config);
        var precise = Tiny.Events(config with { PreciseBatchNorm = 8 });

        Assert.Equal(plain.OfType<StepMetrics>().Select(s => s.Loss), precise.OfType<StepMetrics>().Select(s => s.Loss));
        Assert.Equal(plain.OfType<StepMetrics>().Select(s => s.Fingerprint), precise.OfType<StepMetrics>().Select(s => s.Fingerprint));
        // The reference's figures are bitwise those of a run without precise BN, in the second epoch too: the running
        // statistics were put back after each recomputation.
        var (plainEpochs, preciseEpochs) = (plain.OfType<EpochMetrics>().ToList(), precise.OfType<EpochMetrics>().ToList());
        Assert.Equal(2, preciseEpochs.Count);
        Assert.Equal(plainEpochs.Select(e => (e.TestLoss, e.TestAccuracy)), preciseEpochs.Select(e => (e.TestLoss, e.TestAccuracy)));
        Assert.All(plainEpochs, e => Assert.Null(e.PreciseTestLoss));
        Assert.All(preciseEpochs, e => Assert.NotEqual(e.TestLoss, e.PreciseTestLoss!.Value));
        Assert.All(preciseEpochs, e => Assert.InRange(e.PreciseTestAccuracy!.Value, 0, 1));
    }

    [Fact]
    public void KeepPutsBackEveryBatchNormsRunningStatisticsAndCount()
    {
        var bn = nn.BatchNorm2d(3);
        var model = nn.Sequential(bn);
        model.call(randn(8, 3, 5, 5) * 5 + 2);
        var (mean, variance, tracked) = (bn.running_mean!.clone(), bn.running_var!.clone(), bn.num_batches_tracked!.item<long>());

        using (PreciseBatchNorm.Keep(model))
        {
            PreciseBatchNorm.Recompute(model, [randn(8, 3, 5, 5) * 50]);
            model.call(randn(8, 3, 5, 5) - 7); // a training step's update: the count moves too
            Assert.False(bn.running_mean!.eq(mean).all().item<bool>());
        }

        Assert.True(bn.running_mean!.eq(mean).all().item<bool>());
        Assert.True(bn.running_var!.eq(variance).all().item<bool>());
        Assert.Equal(tracked, bn.num_batches_tracked!.item<long>());
    }

    [Fact]
    public void TheEngineKeepsBatchNormRunningStatisticsAsPyTorchDoesOverATrainingRun()
    {
        // Replays the engine's first steps by hand with libtorch's own BatchNorm semantics (momentum 0.1, unbiased
        // variance): the stem output of each unshuffled batch feeds block1.layer.0.bn, whose running mean must equal
        // the exponential average of those batch means.
        var config = Tiny.Config with { Init = "he-fanout", Shuffle = false, MaxSteps = 3, MetricsEvery = 1, LearningRate = 1e-9 };
        var dir = Tiny.TempDir();
        using var model = ModelFactory.Create(config, 3, 32, 32, 10);

        Tiny.Run(config, checkpoints: dir);

        IdentityInit.Training.Initialization.Initializer.Apply(model, config);
        var stem = (Conv2d)model.named_modules().Single(m => m.name == "conv1").module;
        var expected = zeros(16, dtype: float64);
        using (no_grad())
            for (var b = 0; b < 3; b++)
            {
                var x = IdentityInit.Training.Data.Augment.Normalize(Tiny.Data.TrainImages[(b * 16)..((b + 1) * 16)], Tiny.Data.Mean,
                    Tiny.Data.Std);
                expected = expected * 0.9 + stem.call(x).mean([0, 2, 3]).to(float64) * 0.1;
            }
        Checkpoint.LoadModel(Checkpoint.Latest(dir)!, model);
        var runningMean = model.state_dict()["block1.layer.0.bn.running_mean"].to(float64);
        Assert.True(runningMean.allclose(expected, rtol: 1e-4, atol: 1e-6),
            $"{runningMean.max().item<double>()} vs {expected.max().item<double>()}");
    }
}
