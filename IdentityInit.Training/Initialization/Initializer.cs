using IdentityInit.Training.Models;
using IdentityInit.Training.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace IdentityInit.Training.Initialization;

// ConstNet-family schemes (k = kernel size, C_in/C_out = channels; BN is always gamma 1, beta 0):
// | scheme           | stem conv 3x3          | block conv 3x3          | 1x1 shortcut     | classifier W, b |
// | const            | centre tap 1/C_in      | 0 (block = identity)    | 1/C_in           | 0, 0            |
// | he-fanout        | N(0, 1/(k^2 C_out))    | N(0, 2/(k^2 C_out))     | N(0, 1/C_out)    | 0, 0 ("varnet") |
// | he-fanin         | N(0, 2/(k^2 C_in))     | N(0, 2/(k^2 C_in))      | N(0, 2/C_in)     | 0, 0            |
// | xavier           | N(0, 2/(fan_in+fan_out)) everywhere                                 | 0, 0            |
// | orthogonal       | rows of W[O, I k^2] orthonormal (gain 1), QR of a Gaussian as PyTorch | 0, 0            |
// | delta-orthogonal | centre tap an orthogonal W[O, I], other taps 0 (Xiao et al. 2018)    | 0, 0            |
// he-fanout is model.py's varnet: the ReLU gain sqrt(2) only on block convs (the stem and shortcuts feed no ReLU there).
// file: every tensor read from a safetensors file (InitFile) by its reference name; nothing is drawn.
// Init noise s (ConstNet block convs only): + N(0, s * 2/(9 C_out)), s times the He fan-out variance.
// LeakyNet (remodel.py's ConstAny): the stem takes letter 0 with phase +1, block i letter i+1 with phase -1 when i is odd;
// the constant part is multiplied by the phase and, at phase -1, divided by alpha, so a (+1, -1/alpha) pair undoes the
// LeakyReLU. gain = sqrt(2)(1+alpha), fan_in = C_in k^2; centre taps:
// | h | N(0, gain/fan_in), never scaled by the phase        | i | W[d, d mod C_in] = phase  | 1 | phase/C_in |
// | k | N(0, 0.01 gain/fan_in) + 0.99 x the i constant     | a (there: any other letter) | same with the 1 constant |
// LeakyNet biases start at 0; the classifier at 0, or N(0, s/144) with ClassifierNoise s. Toy: K unique He fan-in rows copied to N hidden units; fc2 0.
public static class Initializer
{
    public static IReadOnlyList<string> Schemes { get; } =
        ["const", "he-fanout", "he-fanin", "xavier", "orthogonal", "delta-orthogonal", "file"];

    /// <summary>Overwrites every parameter of <paramref name="model"/> as the config says; all randomness from the seed.</summary>
    public static void Apply(ImageModel model, ExperimentConfig config)
    {
        using var noGrad = no_grad();
        var generator = new Generator((ulong)config.Seed);
        foreach (var (name, module) in model.named_modules())
            if (module is BatchNorm2d bn)
            {
                bn.weight!.fill_(1);
                bn.bias!.fill_(0);
            }
        switch (model)
        {
            case var _ when config.Init == "file": ModelWeights.Load(model, config.InitFile!); break;
            case ConstNet: ApplyConstNet(model, config, generator); break;
            case LeakyNet leaky: ApplyLeakyNet(leaky, config, generator); break;
            case ToyNet: ApplyToy(model, config.ToyUnique, generator); break;
        }
        if (config.InitScale != 1)
            foreach (var layer in model.WeightLayers().Where(l => l.Role != WeightRole.Classifier)) layer.Weight.mul_(config.InitScale);
        if (config.InitNoise > 0) AddInitNoise(model, config.InitNoise, new Generator((ulong)config.Seed ^ 0x5eed_0015eUL));
    }

    /// <summary>
    /// An init as the signal-at-init tools name one: a scheme ("he-fanin"), or a scheme at a scale ("he-fanin*0.5", every
    /// weight but the classifier's times 0.5); null with the reason when it is neither.
    /// </summary>
    public static (string Scheme, double Scale)? Variant(string spec, out string? problem)
    {
        var parts = spec.Split('*', 2, StringSplitOptions.TrimEntries);
        var scale = 1.0;
        problem = parts[0] == "file" || !Schemes.Contains(parts[0])
            ? $"'{ConfigValidation.Shown(parts[0])}' is not one of {string.Join(", ", Schemes.Where(s => s != "file"))}"
            : parts.Length == 2 && !(double.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out scale)
                                     && scale is > 0 and <= 100)
                ? $"'{ConfigValidation.Shown(parts[1])}' is not a scale above 0 and at most 100 (as in he-fanin*0.5)"
                : null;
        return problem is null ? (parts[0], scale) : null;
    }

    static void ApplyConstNet(ImageModel model, ExperimentConfig config, Generator generator)
    {
        foreach (var layer in model.WeightLayers())
        {
            var w = layer.Weight;
            if (layer.Role == WeightRole.Classifier)
            {
                w.zero_();
                continue;
            }
            var isStem = layer.Role == WeightRole.Stem;
            var isShortcut = w.shape[2] == 1;
            var (outC, inC, k) = (w.shape[0], w.shape[1], w.shape[2]);
            switch (config.Init)
            {
                case "const" when isStem: CentreTap(w, full(outC, inC, 1.0 / inC)); break;
                case "const" when isShortcut: w.fill_(1.0 / inC); break;
                case "const": w.zero_(); break;
                case "he-fanout": Normal(w, Math.Sqrt((isStem || isShortcut ? 1.0 : 2.0) / (k * k * outC)), generator); break;
                case "he-fanin": Normal(w, Math.Sqrt(2.0 / (k * k * inC)), generator); break;
                case "xavier": Normal(w, Math.Sqrt(2.0 / (k * k * (inC + outC))), generator); break;
                case "orthogonal": w.copy_(Orthogonal(outC, inC * k * k, generator).reshape(w.shape)); break;
                case "delta-orthogonal": CentreTap(w, Orthogonal(outC, inC, generator)); break;
                default: throw new ArgumentException($"unknown init scheme '{config.Init}'", nameof(config));
            }
        }
        foreach (var (name, p) in model.named_parameters())
            if (name == "fc.bias") p.zero_();
    }

    static void ApplyLeakyNet(LeakyNet model, ExperimentConfig config, Generator generator)
    {
        var letters = LeakyNet.Letters(config.LeakyInit);
        var convs = model.WeightLayers().Where(l => l.Role != WeightRole.Classifier).ToList();
        var gain = Math.Sqrt(2) * (1 + model.Alpha);
        for (var l = 0; l < convs.Count; l++)
        {
            var w = convs[l].Weight;
            var (outC, inC) = (w.shape[0], w.shape[1]);
            var fanIn = inC * w.shape[2] * w.shape[3];
            var phase = l >= 1 && (l - 1) % 2 == 1 ? -1.0 : 1.0; // block i = l - 1; the stem is +1
            var factor = phase < 0 ? phase / model.Alpha : phase;
            switch (letters[l])
            {
                case 'h': Normal(w, Math.Sqrt(gain / fanIn), generator); break;
                case 'i': CentreTap(w, Identity(outC, inC) * factor); break;
                case '1': CentreTap(w, full(outC, inC, factor / inC)); break;
                case 'k':
                    Normal(w, Math.Sqrt(gain * 0.01 / fanIn), generator);
                    w[TensorIndex.Colon, TensorIndex.Colon, w.shape[2] / 2, w.shape[3] / 2] += Identity(outC, inC) * (0.99 * factor);
                    break;
                default:
                    Normal(w, Math.Sqrt(gain * 0.01 / fanIn), generator);
                    w[TensorIndex.Colon, TensorIndex.Colon, w.shape[2] / 2, w.shape[3] / 2] += full(outC, inC, 0.99 * factor / inC);
                    break;
            }
        }
        foreach (var (name, p) in model.named_parameters())
            if (name.Contains(".biases.", StringComparison.Ordinal) || name == "fc.bias") p.zero_();
        var fc = model.named_parameters().Single(p => p.name == "fc.weight").parameter;
        if (config.ClassifierNoise > 0) Normal(fc, Math.Sqrt(config.ClassifierNoise / (9.0 * 16)), generator); // remodel.py: the stem's k
        else fc.zero_();
    }

    static void ApplyToy(ImageModel model, int unique, Generator generator)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var w1 = parameters["fc1.weight"];
        var (hidden, inputs) = (w1.shape[0], w1.shape[1]);
        var features = randn([unique, inputs], generator: generator) * Math.Sqrt(2.0 / inputs);
        w1.copy_(features.index_select(0, arange(hidden) % unique));
        parameters["fc1.bias"].zero_();
        parameters["fc2.weight"].zero_();
        parameters["fc2.bias"].zero_();
    }

    /// <summary>Adds N(0, s * 2/(9 C_out)) to every ConstNet block conv (3x3, not the stem, not the shortcuts).</summary>
    static void AddInitNoise(ImageModel model, double scale, Generator generator)
    {
        foreach (var layer in model.WeightLayers())
            if (layer.Role == WeightRole.Hidden && layer.Weight.shape[2] == 3)
                layer.Weight.add_(randn(layer.Weight.shape, generator: generator)
                                  * Math.Sqrt(scale * 2.0 / (9 * layer.Weight.shape[0])));
    }

    static void Normal(Tensor w, double std, Generator generator) =>
        w.copy_(randn(w.shape, generator: generator) * std);

    static void CentreTap(Tensor w, Tensor centre)
    {
        w.zero_();
        w[TensorIndex.Colon, TensorIndex.Colon, w.shape[2] / 2, w.shape[3] / 2] = centre;
    }

    /// <summary>W[d, d mod C_in] = 1: output channel d copies input channel d mod C_in.</summary>
    static Tensor Identity(long outC, long inC)
    {
        var m = zeros(outC, inC);
        m.index_put_(ones(outC), arange(outC), arange(outC) % inC);
        return m;
    }

    /// <summary>A rows x cols matrix with orthonormal rows (or columns, whichever is shorter), as torch.nn.init.orthogonal_.</summary>
    public static Tensor Orthogonal(long rows, long cols, Generator generator)
    {
        var flat = randn([rows, cols], generator: generator);
        if (rows < cols) flat = flat.t();
        var (q, r) = linalg.qr(flat);
        q = q * r.diagonal().sign();
        return rows < cols ? q.t() : q;
    }
}
