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
// LeakyNet biases start at 0; the classifier at 0, or N(0, s/144) with ClassifierNoise s.
// Toy: K unique He fan-in rows copied to N hidden units; fc2 0.
/// <summary>A ConstNet-family init scheme: its name, what it puts in which layers, and how it fills one conv's weights.</summary>
/// <param name="Fill">Fills one non-classifier weight layer; null for "file", whose weights are read, not drawn.</param>
public sealed record InitScheme(string Name, string Description, Action<Tensor, ConvLayer, Generator>? Fill);

/// <summary>One non-classifier weight layer of a ConstNet as a scheme sees it: where it sits, its channels and kernel size.</summary>
public readonly record struct ConvLayer(bool IsStem, bool IsShortcut, long Out, long In, long Kernel);

public static class Initializer
{
    /// <summary>
    /// The ConstNet-family schemes, the table above as code. Under every one the classifier starts at 0 (weights and bias).
    /// </summary>
    public static IReadOnlyList<InitScheme> Registry { get; } =
    [
        new(Const, "ConstNet: the stem's centre tap 1/C_in, block convs 0 (each block the identity), 1x1 shortcuts 1/C_in: " +
            "every channel identical",
            (w, l, _) =>
            {
                if (l.IsStem) CentreTap(w, full(l.Out, l.In, 1.0 / l.In));
                else if (l.IsShortcut) w.fill_(1.0 / l.In);
                else w.zero_();
            }),
        new("he-fanout", "He fan-out (model.py's varnet): block convs N(0, 2/(k² C_out)), the stem and 1x1 shortcuts N(0, 1/(k² C_out))",
            (w, l, g) => Normal(w, Math.Sqrt((l.IsStem || l.IsShortcut ? 1.0 : 2.0) / (l.Kernel * l.Kernel * l.Out)), g)),
        new("he-fanin", "He fan-in: every conv N(0, 2/(k² C_in))",
            (w, l, g) => Normal(w, Math.Sqrt(2.0 / (l.Kernel * l.Kernel * l.In)), g)),
        new("xavier", "Xavier (Glorot) normal: every conv N(0, 2/(k² (C_in + C_out)))",
            (w, l, g) => Normal(w, Math.Sqrt(2.0 / (l.Kernel * l.Kernel * (l.In + l.Out))), g)),
        new("orthogonal", "orthogonal: the rows of every conv's W[C_out, C_in k²] orthonormal (QR of a Gaussian, gain 1, as PyTorch)",
            (w, l, g) => w.copy_(Orthogonal(l.Out, l.In * l.Kernel * l.Kernel, g).reshape(w.shape))),
        new("delta-orthogonal",
            "delta-orthogonal (Xiao et al. 2018): every conv's centre tap an orthogonal W[C_out, C_in], the other taps 0",
            (w, l, g) => CentreTap(w, Orthogonal(l.Out, l.In, g))),
        new(FromFile, "every weight read from staged weights (initFile) by its reference name; nothing is drawn", null),
    ];

    public static IReadOnlyList<string> Schemes { get; } = [.. Registry.Select(s => s.Name)];

    /// <summary>ConstNet's own scheme: every channel of a layer identical.</summary>
    public const string Const = "const";
    /// <summary>The scheme that reads its weights from a file (<see cref="ExperimentConfig.InitFile"/>).</summary>
    public const string FromFile = "file";

    /// <summary>The schemes that draw (or set) weights, every one but <see cref="FromFile"/>: what signal-at-init compares.</summary>
    public static IReadOnlyList<string> Drawn { get; } = [.. Registry.Where(s => s.Fill is not null).Select(s => s.Name)];

    public static InitScheme? Find(string name) => Registry.FirstOrDefault(s => s.Name == name);

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
            case var _ when config.Init == FromFile: ModelWeights.Load(model, config.InitFile!); break;
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
        problem = !Drawn.Contains(parts[0])
            ? $"'{ConfigValidation.Shown(parts[0])}' is not one of {string.Join(", ", Drawn)}"
            : parts.Length == 2 && !(double.TryParse(parts[1], System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out scale)
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
            var fill = Find(config.Init)?.Fill ?? throw new ArgumentException($"unknown init scheme '{config.Init}'", nameof(config));
            fill(w, new ConvLayer(layer.Role == WeightRole.Stem, w.shape[2] == 1, w.shape[0], w.shape[1], w.shape[2]), generator);
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
