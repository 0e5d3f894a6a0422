using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training.Metrics;

/// <summary>
/// One tapped layer's signal on the probe batch: <paramref name="Forward"/> is the mean squared activation,
/// <paramref name="Backward"/> the mean squared gradient of the probe's cross-entropy with respect to that activation, and
/// <paramref name="Gain"/> the block's Jacobian gain from the previous tap (the input for the first):
/// mean over random u ~ N(0, I) of |J^T u|^2 / |u|^2, with <paramref name="GainSpread"/> its standard deviation over them.
/// </summary>
public sealed record LayerSignal(string Layer, double Forward, double Backward, double Gain, double GainSpread);

/// <summary>A weight's mean squared gradient of the probe's cross-entropy.</summary>
public sealed record WeightSignal(string Layer, double Gradient);

/// <summary>
/// Signal propagation on a fixed batch in eval mode: how strongly the input travels forward through each layer, the
/// loss's gradient back, and each block's Jacobian gain. Gradients come from autograd.grad (never accumulated into a
/// parameter's .grad), random vectors from the caller's generator, BatchNorm uses its running statistics: training that
/// follows is bitwise what it would have been without this.
/// </summary>
internal static class SignalPropagation
{
    /// <summary>Random vectors per block for the Jacobian gain: each costs one backward pass through that block only.</summary>
    public const int Vectors = 2;

    public sealed record Result(double Input, IReadOnlyList<LayerSignal> Layers, IReadOnlyList<WeightSignal> Weights);

    public static Result Of(ImageModel model, IReadOnlyList<WeightLayer> weights, Tensor images, Tensor labels, Generator generator)
    {
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var grad = enable_grad();
            var x = images.detach().clone().requires_grad_(true);
            var taps = new List<(string Layer, Tensor Output)>();
            var logits = model.Forward(x, taps);
            var loss = nn.functional.cross_entropy(logits, labels);
            var inputs = taps.Select(t => t.Output).Concat(weights.Select(w => w.Weight)).ToList();
            var grads = autograd.grad([loss], inputs, retain_graph: true, allow_unused: true);
            var layers = new List<LayerSignal>();
            for (var i = 0; i < taps.Count; i++)
            {
                var (name, output) = taps[i];
                var previous = i == 0 ? x : taps[i - 1].Output;
                var gains = new double[Vectors];
                for (var k = 0; k < Vectors; k++)
                {
                    var u = randn(output.shape, dtype: output.dtype, device: output.device, generator: generator);
                    var back = autograd.grad([output], [previous], [u], retain_graph: true, allow_unused: true)[0];
                    gains[k] = back is null || back.IsInvalid ? 0 : back.square().sum().item<float>() / u.square().sum().item<float>();
                }
                var mean = gains.Average();
                var spread = Math.Sqrt(gains.Sum(g => (g - mean) * (g - mean)) / Math.Max(1, Vectors - 1));
                layers.Add(new LayerSignal(name, MeanSquare(output), MeanSquare(grads[i]), mean, spread));
            }
            var weightSignals = weights.Select((w, j) => new WeightSignal(w.Name, MeanSquare(grads[taps.Count + j]))).ToList();
            return new Result(MeanSquare(x), layers, weightSignals);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    static double MeanSquare(Tensor? t) => t is null || t.IsInvalid ? 0 : t.detach().to(float64).square().mean().item<double>();
}
