namespace IdentityInit.Training;

public sealed record Preset(string Name, string Description, string Scale, ExperimentConfig Config);

/// <summary>
/// The paper's runs. Each has a paper-scale version ("-paper": CIFAR-10, WRN-16-10, 300 epochs; LeakyNet 200) and a
/// CPU-scale version under the plain name (Fashion-MNIST, WRN-10-1 or LeakyNet width 1, 1 epoch) that finishes in
/// minutes on 2 cores. On CPU, GPU non-determinism is emulated by rounding jitter of one float32 rounding.
/// </summary>
public static class Presets
{
    static readonly ExperimentConfig Paper = new() { Dataset = "cifar10", Depth = 16, Widen = 10, Epochs = 300 };
    static readonly ExperimentConfig Cpu = new()
    {
        Dataset = "fashion-mnist", Depth = 10, Widen = 1, Epochs = 1, Schedule = "cosine", CorrelationEvery = 100,
    };

    public static IReadOnlyList<string> LeakyInits { get; } =
        ["h_hhhh_hhhh_hhhh", "i_iiii_iiii_iiii", "1_iiii_iiii_iiii", "1_iiii_11ii_iiii", "1_iiii_1111_iiii", "1_ii11_ii11_ii11",
            "1_1111_1111_1111"];

    public static IReadOnlyList<int> ToyUniques { get; } = [1, 2, 4, 16, 64, 256];

    public static IReadOnlyList<Preset> All { get; } = Build();

    public static Preset? Find(string name) => All.FirstOrDefault(p => p.Name == name);

    static List<Preset> Build()
    {
        var list = new List<Preset>();
        void Pair(string name, string description, Func<ExperimentConfig, ExperimentConfig> paper,
            Func<ExperimentConfig, ExperimentConfig> cpu)
        {
            list.Add(new Preset(name, description, "cpu", cpu(Cpu) with { Name = name, Preset = name }));
            list.Add(new Preset(name + "-paper", description, "paper",
                paper(Paper) with { Name = name + "-paper", Preset = name + "-paper" }));
        }

        Pair("constnet-nondeterministic", "ConstNet, no breaker but the GPU's own non-determinism (CPU: rounding jitter 1)",
            c => c with { Device = "cuda", Deterministic = false }, c => c with { RoundingJitter = 1 });
        Pair("constnet-deterministic", "ConstNet, deterministic kernels: channels must stay identical",
            c => c with { Device = "cuda" }, c => c);
        Pair("constnet-deterministic-dropout", "ConstNet, deterministic, dropout 0.01 on every residual branch",
            c => c with { Device = "cuda", Dropout = 0.01 }, c => c with { Dropout = 0.01 });
        Pair("constnet-nondeterministic-dropout", "ConstNet, GPU non-determinism plus dropout 0.01",
            c => c with { Device = "cuda", Deterministic = false, Dropout = 0.01 }, c => c with { RoundingJitter = 1, Dropout = 0.01 });
        Pair("constnet-he", "The randomly initialised WRN baseline (He fan-out, 'varnet'; classifier 0)",
            c => c with { Device = "cuda", Init = "he-fanout" }, c => c with { Init = "he-fanout" });
        Pair("constnet-init-noise", "ConstNet, deterministic, init noise s = 1e-6 on the block convs",
            c => c with { Device = "cuda", InitNoise = 1e-6 }, c => c with { InitNoise = 1e-6 });
        // lrnet_experiment.sh: depth 16, widen 10, lr 0.03, batchnorm, lrelu 0.01, default (non-deterministic) GPU kernels.
        foreach (var init in LeakyInits)
            Pair("leakynet-" + init, $"LeakyNet (remodel.py) with init string {init}; more '1' layers pull the channels back together " +
                                      "(GPU non-determinism; CPU: rounding jitter 1)",
                c => c with
                {
                    Architecture = Architectures.LeakyNet,
                    LeakyInit = init,
                    Depth = 16,
                    Epochs = 200,
                    Device = "cuda",
                    Deterministic = false
                },
                c => c with { Architecture = Architectures.LeakyNet, LeakyInit = init, Depth = 16, RoundingJitter = 1 });
        foreach (var k in ToyUniques)
            Pair($"toy-k{k}", $"Toy one-hidden-layer net, 256 hidden units holding {k} unique features",
                c => c with
                {
                    Architecture = Architectures.Toy,
                    Dataset = "mnist",
                    ToyHidden = 256,
                    ToyUnique = k,
                    Epochs = 100,
                    Device = "cuda",
                    Deterministic = false
                },
                c => c with { Architecture = Architectures.Toy, ToyHidden = 256, ToyUnique = k, Epochs = 2, RoundingJitter = 1 });
        return list;
    }
}
