using IdentityInit.Training.Initialization;
using static TorchSharp.torch;

namespace IdentityInit.Training.Symmetry;

public static class SymmetryBreakers
{
    /// <summary>The breakers a config turns on, in words; "none" when channels can only split by accident.</summary>
    public static IReadOnlyList<string> Describe(ExperimentConfig c)
    {
        var breakers = new List<string>();
        if (c.Device != "cpu" && !c.Deterministic) breakers.Add("gpu-nondeterminism");
        if (c.Dropout > 0) breakers.Add($"dropout {c.Dropout}");
        if (c.StemDropout > 0) breakers.Add($"stem-dropout {c.StemDropout}");
        if (c.InitNoise > 0) breakers.Add($"init-noise {c.InitNoise}");
        if (c.RoundingJitter > 0) breakers.Add($"rounding-jitter {c.RoundingJitter}");
        if (c.Architecture == Architectures.ConstNet && c.Init != Initializer.Const) breakers.Add($"random-init {c.Init}");
        if (c.Architecture == Architectures.Toy && c.ToyUnique == c.ToyHidden) breakers.Add("random-init all features unique");
        if (c.Architecture == Architectures.LeakyNet && LeakyNetHasRandomLayers(c.LeakyInit)) breakers.Add($"random-init {c.LeakyInit}");
        return breakers.Count == 0 ? ["none"] : breakers;
    }

    static bool LeakyNetHasRandomLayers(string init) => init.Contains('h', StringComparison.Ordinal);

    /// <summary>
    /// Rounding jitter: g += g * u * scale * 2^-24, u ~ U(-1, 1) per element, i.e. a perturbation of the order of one
    /// float32 rounding, as atomic-add reordering produces on a GPU; channels receive different perturbations.
    /// </summary>
    public static void JitterGradients(IEnumerable<Tensor> parameters, double scale, Generator generator)
    {
        using var noGrad = no_grad();
        var amplitude = scale * Math.Pow(2, -24);
        foreach (var p in parameters)
        {
            if (p.grad is not { } g) continue;
            var u = rand(g.shape, generator: generator, device: g.device) * (2 * amplitude) - amplitude;
            g.addcmul_(g, u, 1);
        }
    }
}
