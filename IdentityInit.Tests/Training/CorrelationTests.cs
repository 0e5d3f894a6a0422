using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Metrics;
using IdentityInit.Training.Models;
using IdentityInit.Training.Symmetry;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class CorrelationTests
{
    /// <summary>Textbook Pearson correlation on plain arrays: the independent reference for the torch version.</summary>
    static double Pearson(double[] x, double[] y)
    {
        var (mx, my) = (x.Average(), y.Average());
        var cov = x.Zip(y, (a, b) => (a - mx) * (b - my)).Sum();
        return cov / Math.Sqrt(x.Sum(a => (a - mx) * (a - mx)) * y.Sum(b => (b - my) * (b - my)));
    }

    [Fact]
    public void MeanOffDiagonalAveragesDistinctPairs()
    {
        var rows = tensor(new double[,] { { 1, 2, 3 }, { 2, 4, 6 }, { 3, 2, 1 } });

        var mean = Correlation.MeanOffDiagonal(rows);

        Assert.Equal((1.0 - 1.0 - 1.0) / 3, mean, 12);
    }

    [Fact]
    public void ConstantRowsCountAsPerfectlyCorrelated()
    {
        var rows = tensor(new double[,] { { 1, 1, 1 }, { 1, 2, 3 }, { 3, 2, 1 } });

        var mean = Correlation.MeanOffDiagonal(rows);
        var matrix = Correlation.Matrix(rows);

        Assert.True(double.IsNaN(matrix[0, 1].item<double>()));
        Assert.Equal((1.0 + 1.0 - 1.0) / 3, mean, 12);
    }

    [Fact]
    public void MatrixMatchesTextbookPearson()
    {
        double[][] rows = [[0.3, -1.2, 2.5, 0.7], [1.1, 0.4, -0.3, 2.2], [-0.5, 0.9, 1.7, -1.4]];

        var matrix = Correlation.Matrix(tensor(rows.SelectMany(r => r).ToArray()).reshape(3, 4));

        for (var i = 0; i < 3; i++)
            for (var j = 0; j < 3; j++)
                Assert.Equal(i == j ? 1 : Pearson(rows[i], rows[j]), matrix[i, j].item<double>(), 12);
    }

    [Fact]
    public void MoreThanFiveThousandRowsAreSampledToFiveThousand()
    {
        var rows = randn(6000, 5, generator: new Generator(7));

        var sampled = Correlation.MeanOffDiagonal(rows, new Generator(11));
        var chosen = rows.index_select(0, randperm(6000, generator: new Generator(11))[..5000]);
        var expected = Correlation.MeanOffDiagonal(chosen);
        var other = Correlation.MeanOffDiagonal(rows, new Generator(12));

        Assert.Equal(expected, sampled, 12);
        Assert.NotEqual(expected, other);
    }

    [Fact]
    public void WeightCorrelationsAreForwardOverOutputsBackwardOverInputsKernelOverKernels()
    {
        // W[O=2, I=2, 1, 2]: W[0,0]=[1,2] W[0,1]=[3,4] W[1,0]=[2,4] W[1,1]=[6,9]
        var w = tensor(new float[] { 1, 2, 3, 4, 2, 4, 6, 9 }).reshape(2, 2, 1, 2);

        var c = WeightCorrelation.Of(w);

        Assert.Equal(Pearson([1, 2, 3, 4], [2, 4, 6, 9]), c.Forward, 6);
        Assert.Equal(Pearson([1, 2, 2, 4], [3, 4, 6, 9]), c.Backward, 6);
        Assert.Equal(1.0, c.Kernel, 6); // every 2-tap kernel is increasing: all pairs correlate exactly
    }

    [Fact]
    public void LinearWeightsHaveOneTapKernelsThatCountAsOne()
    {
        var w = tensor(new float[,] { { 1, 0, 2 }, { 0, 3, 1 } });

        var c = WeightCorrelation.Of(w);

        Assert.Equal(Pearson([1, 0, 2], [0, 3, 1]), c.Forward, 6);
        Assert.Equal(1.0, c.Kernel, 12);
    }

    [Fact]
    public void DiversitySumsLogSqrtOneMinusBackwardSquared()
    {
        WeightCorrelation[] layers = [new(0.1, 0.6, 0.2), new(0.3, 0.8, 0.4)];

        var diversity = WeightCorrelation.Diversity(layers);

        Assert.Equal(Math.Log(0.8) + Math.Log(0.6), diversity, 12);
        Assert.Equal(double.NegativeInfinity, WeightCorrelation.Diversity([new(1, 1, 1)]));
    }

    [Fact]
    public void AGrayscaleStemHasNoBackwardPairAndIsLeftOutOfDiversity()
    {
        using var stem = TorchSharp.torch.randn(16, 1, 3, 3); // one input channel: a single backward row
        using var block = TorchSharp.torch.randn(16, 16, 3, 3);

        var s = WeightCorrelation.Of(stem);
        var b = WeightCorrelation.Of(block);

        Assert.True(double.IsNaN(s.Backward));
        Assert.False(double.IsNaN(s.Forward));
        Assert.Equal(Math.Log(Math.Sqrt(1 - b.Backward * b.Backward)), WeightCorrelation.Diversity([s, b]), 12);
        Assert.True(double.IsFinite(WeightCorrelation.Diversity([s, b])));
    }

    [Fact]
    public void AGrayscaleConstNetRunHasAFiniteDiversity()
    {
        var rgb = Tiny.Data;
        var gray = rgb with
        {
            TrainImages = rgb.TrainImages[.., 0..1].contiguous(),
            TestImages = rgb.TestImages[.., 0..1].contiguous(),
            Mean = [rgb.Mean[0]],
            Std = [rgb.Std[0]],
        };
        var snapshots = new List<CorrelationSnapshot>();

        Trainer.Run(Tiny.Config with { Init = "he-fanout", MaxSteps = 2 },
            new Progress(e => { if (e is CorrelationSnapshot c) snapshots.Add(c); }),
            CancellationToken.None, new RunOptions(Dataset: gray));

        Assert.Equal([0L, 2], snapshots.Select(c => c.Step));
        // step 0: -inf by the zero classifier, as the reference
        Assert.True(double.IsFinite(snapshots[1].Diversity), $"diversity {snapshots[1].Diversity}");
        Assert.All(snapshots, c => Assert.True(double.IsNaN(c.Weights.Single(w => w.Layer == "conv1").Backward)));
    }

    sealed class Progress(Action<RunEvent> handler) : IProgress<RunEvent>
    {
        public void Report(RunEvent value) => handler(value);
    }

    [Fact]
    public void ActivationCorrelationTreatsChannelsAsRowsAndDownsamplesTheMatrix()
    {
        var a = randn(4, 1, 6, 6).expand(4, 128, 6, 6).contiguous(); // 128 identical channels
        a[.., 1] = -a[.., 0];

        var c = ActivationCorrelation.Of(a);

        Assert.Equal(64, c.Size);
        Assert.Equal(64 * 64, c.Matrix.Length);
        var pairs = 128.0 * 127 / 2;
        Assert.Equal((pairs - 127 - 127) / pairs, c.Mean, 6); // channel 1 anti-correlates with the 127 others
    }

    [Fact]
    public void ChannelSpreadIsTheLargestDifferenceAcrossTheRoleChannelAxes()
    {
        var w = zeros(3, 2, 3, 3);
        w[2, 1, 0, 0] = tensor(0.5f);
        var classifier = tensor(new float[,] { { 1, 1, 1 }, { 2, 2, 2.25f } });

        Assert.Equal(0.5f, ChannelSpread.OfWeight(w, WeightRole.Hidden).item<float>());
        Assert.Equal(0.5f, ChannelSpread.OfWeight(w, WeightRole.Stem).item<float>());
        Assert.Equal(0f, ChannelSpread.OfWeight(ones(4, 3, 3, 3), WeightRole.Hidden).item<float>());
        Assert.Equal(0.25f, ChannelSpread.OfWeight(classifier, WeightRole.Classifier).item<float>());
        Assert.Equal(0f, ChannelSpread.OfWeight(tensor(new float[,] { { 1, 2 }, { 1, 2 } }), WeightRole.Stem).item<float>());
    }
}
