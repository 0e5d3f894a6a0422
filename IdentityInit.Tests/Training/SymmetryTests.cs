using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class SymmetryTests
{
    [Theory]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    [InlineData(1)]
    [InlineData(2)]
    public void DeterministicConstNetKeepsChannelsBitwiseIdenticalForTwoHundredSteps(int threads)
    {
        var config = Tiny.Config with { Threads = threads, Epochs = 7, MaxSteps = 200, CorrelationEvery = 100 };
        var events = Tiny.Events(config);

        var summary = events.OfType<RunEnded>().Single().Summary;
        var snapshots = events.OfType<CorrelationSnapshot>().ToList();

        Assert.Equal(RunStatus.Completed, summary.Status);
        Assert.Equal(200, summary.Steps);
        Assert.Empty(events.OfType<SymmetryBroken>());
        Assert.All(summary.Symmetry, l => Assert.Null(l.BrokeAtStep));
        Assert.All(summary.Symmetry, l => Assert.Equal(0, l.Spread));
        Assert.All(snapshots.SelectMany(s => s.Activations), a => Assert.Equal(0, a.Spread));
        Assert.Equal(["none"], summary.Record!.Breakers);
        Assert.True(summary.Record.Determinism.DeterministicAlgorithms);
        Assert.True(events.OfType<StepMetrics>().Last().Loss < Math.Log(10)); // it did train
    }

    [Theory]
    [InlineData("dropout")]
    [InlineData("stem-dropout")]
    [InlineData("init-noise")]
    [InlineData("rounding-jitter")]
    [InlineData("random-init")]
    public void EachBreakerMakesTheChannelSpreadNonZero(string breaker)
    {
        var config = Tiny.Config with { MaxSteps = 30 };
        config = breaker switch
        {
            "dropout" => config with { Dropout = 0.01 },
            "stem-dropout" => config with { StemDropout = 0.01 },
            "init-noise" => config with { InitNoise = 1e-7 },
            "rounding-jitter" => config with { RoundingJitter = 1 },
            _ => config with { Init = "he-fanout" },
        };

        var summary = Tiny.Run(config);

        Assert.Equal(RunStatus.Completed, summary.Status);
        Assert.True(summary.SymmetryBroke);
        var block = summary.Symmetry.Single(l => l.Layer == "block2.layer.0.conv");
        Assert.NotNull(block.BrokeAtStep);
        Assert.True(block.Spread > 0);
        Assert.DoesNotContain("none", summary.Record!.Breakers);
    }

    [Fact]
    public void NoiseAndRandomInitBreakSymmetryAtStepZero()
    {
        var noisy = Tiny.Run(Tiny.Config with { MaxSteps = 1, InitNoise = 1e-7 });

        Assert.Equal(0, noisy.Symmetry.Single(l => l.Layer == "block1.layer.0.conv").BrokeAtStep);
        Assert.Null(noisy.Symmetry.Single(l => l.Layer == "conv1").BrokeAtStep); // noise is on block convs only
    }

    [Fact]
    public void SymmetryBrokenEventsMatchTheSummary()
    {
        var events = Tiny.Events(Tiny.Config with { MaxSteps = 20, RoundingJitter = 1 });

        var summary = events.OfType<RunEnded>().Single().Summary;
        var broken = events.OfType<SymmetryBroken>().ToDictionary(b => b.Layer, b => b.Step);

        Assert.NotEmpty(broken);
        Assert.All(summary.Symmetry.Where(l => l.BrokeAtStep is not null), l => Assert.Equal(broken[l.Layer], l.BrokeAtStep));
        Assert.All(broken.Values, step => Assert.InRange(step, 1, 20));
    }

    [Fact]
    public void BreaksReadAtTheMetricCadenceCarryTheExactStepAndSpreadOfTheFirstNonZeroSpread()
    {
        // The same training twice: spreads reported every step, and every 7 steps (first-break detection stays on the
        // device in between). Each layer's break must be the first step whose spread is non-zero, with that spread.
        var config = Tiny.Config with { MaxSteps = 40, RoundingJitter = 1, SpreadEvery = 1 };
        var everyStep = Tiny.Events(config with { MetricsEvery = 1 });
        var sparse = Tiny.Events(config with { MetricsEvery = 7 });
        var layers = everyStep.OfType<RunStarted>().Single().Layers;
        var metrics = everyStep.OfType<StepMetrics>().ToList();

        var expected = layers.Select((layer, l) => (layer, first: metrics.FirstOrDefault(m => m.Spreads[l] != 0)))
            .Where(x => x.first is not null)
                .ToDictionary(x => x.layer, x => (x.first!.Step, x.first.Spreads[layers.ToList().IndexOf(x.layer)]));
        var reported = sparse.OfType<SymmetryBroken>().ToDictionary(b => b.Layer, b => (b.Step, b.Spread));

        Assert.NotEmpty(expected);
        Assert.Contains(expected.Values, v => v.Step % 7 != 0); // some break between two reads: the deferral is exercised
        Assert.Equal(expected.OrderBy(x => x.Key), reported.OrderBy(x => x.Key));
    }

    [Fact]
    public void ToyCopiesStayIdenticalWithoutABreakerAndSplitWithJitter()
    {
        var config = Tiny.Config with { Architecture = "toy", ToyHidden = 32, ToyUnique = 4, MaxSteps = 40 };

        var intact = Tiny.Run(config);
        var jittered = Tiny.Run(config with { RoundingJitter = 1 });

        Assert.Equal(RunStatus.Completed, intact.Status);
        Assert.All(intact.Symmetry, l => Assert.Null(l.BrokeAtStep)); // unit j still equals unit j mod 4
        Assert.All(intact.Symmetry, l => Assert.Equal(0, l.Spread));
        Assert.Equal(RunStatus.Completed, jittered.Status);
        Assert.NotNull(jittered.Symmetry.Single(l => l.Layer == "fc1").BrokeAtStep);
        Assert.Contains("rounding-jitter 1", jittered.Record!.Breakers);
    }

    [Theory]
    [InlineData(0.0, 0.0, false)]
    [InlineData(1.0, 0.0, true)]
    [InlineData(0.0, 0.01, true)]
    public void AnAveragingLeakyNetStaysSymmetricUntilABreakerActs(double jitter, double dropout, bool breaks)
    {
        var config = Tiny.Config with
        {
            Architecture = "leakynet",
            LeakyInit = "1_1_1_1",
            MaxSteps = 30,
            RoundingJitter = jitter,
            Dropout = dropout
        };

        var summary = Tiny.Run(config);

        Assert.Equal(RunStatus.Completed, summary.Status);
        Assert.Equal(breaks, summary.SymmetryBroke);
        if (!breaks) Assert.All(summary.Symmetry, l => Assert.Equal(0, l.Spread));
    }
}
