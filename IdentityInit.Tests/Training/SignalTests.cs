using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Metrics;
using IdentityInit.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

/// <summary>Signal propagation on the probe: hand-computed cases, the textbook He behaviour, and training left untouched.</summary>
[Collection(EngineCollection.Name)]
public sealed class SignalTests
{
    /// <summary>Linear layers (no bias) in a chain, optionally with ReLU after each but the last; every layer tapped.</summary>
    sealed class Chain : ImageModel
    {
        readonly nn.Module<Tensor, Tensor>[] layers;
        readonly bool relu;

        public Chain(IEnumerable<Tensor> weights, bool relu) : base(nameof(Chain))
        {
            this.relu = relu;
            layers = [.. weights.Select(w =>
            {
                var layer = nn.Linear(w.shape[1], w.shape[0], hasBias: false);
                using (no_grad()) layer.weight!.copy_(w);
                return (nn.Module<Tensor, Tensor>)layer;
            })];
            for (var i = 0; i < layers.Length; i++) register_module($"l{i}", layers[i]);
        }

        public override Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps)
        {
            for (var i = 0; i < layers.Length; i++)
            {
                x = layers[i].call(x);
                if (relu && i < layers.Length - 1) x = nn.functional.relu(x);
                taps?.Add(($"l{i}", x));
            }
            return x;
        }

        protected override WeightRole RoleOf(string layer) => WeightRole.Hidden;
    }

    [Fact]
    public void ALinearChainOfScaledIdentitiesGivesTheHandComputedSignals()
    {
        const int Width = 8, Depth = 4;
        const double S = 1.5;
        using var scope = NewDisposeScope();
        var model = new Chain(Enumerable.Range(0, Depth).Select(_ => S * eye(Width)), relu: false);
        var x = randn([32, Width], generator: new Generator(7));
        var labels = randint(Width, [32], generator: new Generator(8));

        var signal = SignalPropagation.Of(model, model.WeightLayers(), x, labels, new Generator(9));

        var input = x.square().mean().item<float>();
        Assert.Equal(input, signal.Input, 5);
        for (var l = 0; l < Depth; l++)
        {
            var layer = signal.Layers[l];
            Assert.Equal(Math.Pow(S, 2 * (l + 1)) * input, layer.Forward, 4);                                  // a_l = S^(l+1) x
            // J = S I: |J^T u|^2 = S^2 |u|^2 for every u
            Assert.Equal(S * S, layer.Gain, 4);
            Assert.Equal(0, layer.GainSpread, 4);
            // dL/da_l = S^(L-1-l) dL/da_L
            Assert.Equal(Math.Pow(S, 2 * (Depth - 1 - l)) * signal.Layers[^1].Backward, layer.Backward, 8);
        }
        // dL/da_L of the mean cross-entropy, by hand: (softmax - onehot) / N; and dL/dW_l = (dL/da_l)^T a_(l-1).
        var logits = x * Math.Pow(S, Depth);
        var gradLogits = (nn.functional.softmax(logits, 1) - nn.functional.one_hot(labels, Width).to(float32)) / 32;
        Assert.Equal(gradLogits.square().mean().item<float>(), signal.Layers[^1].Backward, 7);
        for (var l = 0; l < Depth; l++)
        {
            var gradA = gradLogits * Math.Pow(S, Depth - 1 - l);
            var previous = x * Math.Pow(S, l);
            Assert.Equal(gradA.t().matmul(previous).square().mean().item<float>(), signal.Weights[l].Gradient, 6);
        }
    }

    [Fact]
    public void HeInitKeepsTheForwardSignalAcrossDepthAndHalfOfItDecaysByAQuarterPerLayer()
    {
        const int Width = 512, Depth = 12;
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        Tensor He(double scale) => randn([Width, Width], generator: generator) * (scale * Math.Sqrt(2.0 / Width));
        var x = randn([256, Width], generator: new Generator(4));
        var labels = randint(Width, [256], generator: new Generator(5));

        var he = new Chain(Enumerable.Range(0, Depth).Select(_ => He(1)), relu: true);
        var half = new Chain(Enumerable.Range(0, Depth).Select(_ => He(0.5)), relu: true);
        var a = SignalPropagation.Of(he, he.WeightLayers(), x, labels, new Generator(6));
        var b = SignalPropagation.Of(half, half.WeightLayers(), x, labels, new Generator(6));

        // He: the weights double the mean square (variance 2 / fan-in) and ReLU halves it, so every layer's output keeps the
        // input's, within a factor 1.5 at 512 units.
        foreach (var layer in a.Layers.Take(Depth - 1)) Assert.InRange(layer.Forward / a.Input, 1 / 1.5, 1.5);
        // Half the He scale: every layer multiplies the mean square by 1/4; the slope of log10 against depth is log10(1/4).
        var logs = b.Layers.Take(Depth - 1).Select(l => Math.Log10(l.Forward)).ToArray();
        var slope = (logs[^1] - logs[0]) / (logs.Length - 1);
        Assert.Equal(Math.Log10(0.25), slope, 1);
        Assert.InRange(slope, Math.Log10(0.25) - 0.02, Math.Log10(0.25) + 0.02);
    }

    [Fact]
    public void SignalsAreReportedWithEachSnapshotAndLeaveTrainingBitwiseUnchanged()
    {
        var config = Tiny.Config with { MaxSteps = 24, CorrelationEvery = 8, CheckpointEvery = 24, Dropout = 0.05, MetricsEvery = 1 };
        var (dirA, dirB) = (Tiny.TempDir(), Tiny.TempDir());

        var with = Tiny.Events(config, dirA);
        var without = Tiny.Events(config with { Signals = false }, dirB);

        Assert.Equal(without.OfType<StepMetrics>().Select(s => s.Loss), with.OfType<StepMetrics>().Select(s => s.Loss));
        Assert.Equal(File.ReadAllBytes(Path.Combine(Checkpoint.Latest(dirB)!, "model.bin")),
            File.ReadAllBytes(Path.Combine(Checkpoint.Latest(dirA)!, "model.bin")));
        var snapshots = with.OfType<CorrelationSnapshot>().ToList();
        Assert.Equal([0L, 8, 16, 24], snapshots.Select(s => s.Step));
        Assert.All(snapshots, s =>
        {
            Assert.Equal(s.Activations.Select(a => a.Layer).Append("fc"), s.Signals!.Select(l => l.Layer));
            Assert.Equal(s.Weights.Select(w => w.Layer), s.Gradients!.Select(g => g.Layer));
            // ConstNet's classifier starts at 0: at init its logits are 0 and no gradient gets past it to any hidden
            // activation (only the logits' own gradient is non-zero); once fc has moved, every signal flows.
            foreach (var l in s.Signals!)
            {
                var atInit = s.Step == 0;
                var hidden = l.Layer != "fc";
                Assert.True(atInit && !hidden ? l.Forward == 0 && l.Gain == 0 : l.Forward > 0 && l.Gain > 0, $"{l} at step {s.Step}");
                Assert.True(atInit && hidden ? l.Backward == 0 : l.Backward > 0, $"{l} at step {s.Step}");
            }
        });
        Assert.All(without.OfType<CorrelationSnapshot>(), s => Assert.Null(s.Signals));
    }
}

/// <summary>The web's depth charts rebuild forward order from layer names (points come back from the database by name).</summary>
[Collection(EngineCollection.Name)]
public sealed class DepthOrderTests
{
    [Theory]
    [InlineData("constnet", 10)]
    [InlineData("constnet", 28)]
    [InlineData("leakynet", 16)]
    [InlineData("toy", 0)]
    public void SortingLayerNamesByDepthKeyGivesEveryArchitecturesForwardOrder(string architecture, int depth)
    {
        using var scope = NewDisposeScope();
        var config = new ExperimentConfig { Architecture = architecture, Depth = depth > 0 ? depth : 16, Widen = 1 };
        var model = ModelFactory.Create(config, 1, 28, 28, 10);
        model.eval();
        var taps = new List<(string Layer, Tensor Output)>();
        using (no_grad()) model.Forward(zeros(2, 1, 28, 28), taps);
        var weights = model.WeightLayers().Select(w => w.Name).ToList();

        foreach (var forward in new[] { taps.Select(t => t.Layer).ToList(), weights })
        {
            Assert.True(forward.Count >= 2);
            var shuffled = forward.OrderByDescending(n => n, StringComparer.Ordinal).ToList();
            Assert.Equal(forward, shuffled.OrderBy(IdentityInit.Web.Components.Runs.DepthCharts.DepthKey, StringComparer.Ordinal));
        }
    }
}
