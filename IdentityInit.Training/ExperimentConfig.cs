using System.Text.Json.Serialization;

namespace IdentityInit.Training;

/// <summary>Everything a run depends on. Defaults are the reference setup of the paper's code (science.md).</summary>
public sealed record ExperimentConfig
{
    public string Name { get; init; } = "run";
    public string? Preset { get; init; }

    // Architecture: constnet (WRN layout, also the He "varnet" baseline), leakynet, toy.
    public string Architecture { get; init; } = Architectures.ConstNet;
    public int Depth { get; init; } = 16;
    public int Widen { get; init; } = 10;
    public bool BatchNorm { get; init; } = true;
    public double LeakyAlpha { get; init; } = 0.01;
    public string LeakyInit { get; init; } = "h_hhhh_hhhh_hhhh";
    /// <summary>LeakyNet's classifier: 0 starts it at zero; s > 0 draws it from N(0, s/144) as remodel.py's noise option.</summary>
    public double ClassifierNoise { get; init; }
    public int ToyHidden { get; init; } = 256;
    public int ToyUnique { get; init; } = 256;

    // Initialization and symmetry breakers: each one explicit and recorded.
    public string Init { get; init; } = Initialization.Initializer.Const;
    /// <summary>A safetensors file in the reference's names, read when Init is "file".</summary>
    public string? InitFile { get; init; }
    /// <summary>Every conv/linear weight but the classifier multiplied by this after the init: a bad scale on purpose (0.5x He).</summary>
    public double InitScale { get; init; } = 1;
    public double InitNoise { get; init; }
    public double Dropout { get; init; }
    public double StemDropout { get; init; }
    public double RoundingJitter { get; init; }
    public bool Deterministic { get; init; } = true;

    // Data.
    public string Dataset { get; init; } = "cifar10";
    public string? DataDir { get; init; }
    public bool? Augment { get; init; }
    /// <summary>Off: every epoch in the dataset's stored order (a DataLoader with shuffle=False), to replay a run elsewhere.</summary>
    public bool Shuffle { get; init; } = true;
    public int TrainLimit { get; init; }
    public int TestLimit { get; init; }

    // Optimisation.
    public double LearningRate { get; init; } = 0.03;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; }
    public double WeightDecay { get; init; } = 5e-4;
    public int BatchSize { get; init; } = 128;
    public int Epochs { get; init; } = 300;
    public string Schedule { get; init; } = "reference";
    public long MaxSteps { get; init; }

    // Reproducibility and execution.
    public long Seed { get; init; } = 1;
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }

    // Metric cadence, in optimizer steps (0 = never, except where noted).
    public int MetricsEvery { get; init; } = 10;
    public int SpreadEvery { get; init; } = 1;
    public int CorrelationEvery { get; init; } = 200;
    public int ProbeSize { get; init; } = 64;
    /// <summary>With each correlation snapshot, signal propagation on the probe (forward, backward, Jacobian gain per layer).</summary>
    public bool Signals { get; init; } = true;
    public int CheckpointEvery { get; init; } = 500;

    // Evaluation.
    /// <summary>
    /// Test figures always use BatchNorm's running statistics (exponential average, momentum 0.1), as the reference code does.
    /// N > 0: each evaluation also reports the test set with them recomputed as the plain average over N fixed training batches
    /// with the current weights ("precise BN"); the running statistics are put back after.
    /// </summary>
    public int PreciseBatchNorm { get; init; }

    public static IReadOnlyList<string> Schedules { get; } = ["reference", "constant", "cosine", "cosine-step"];

    /// <summary>
    /// Whether the learning rate reaches 0 at the last step (cosine-step, see Sgd.At): only then do BatchNorm's running
    /// averages describe the final weights; otherwise they lag them.
    /// </summary>
    [JsonIgnore]
    public bool LearningRateEndsAtZero => Schedule == "cosine-step";

    [JsonIgnore]
    public bool AugmentEffective => Augment ?? Dataset is "cifar10" or "cifar100" or "imagenet32";
}

/// <summary>The architectures' names, as configs, presets, the API and the CLI spell them.</summary>
public static class Architectures
{
    /// <summary>The WRN layout of the reference code: ConstNet under init "const", the He ("varnet") baseline under the others.</summary>
    public const string ConstNet = "constnet";
    /// <summary>remodel.py's LeakyNet: each layer initialized by a letter of the init string.</summary>
    public const string LeakyNet = "leakynet";
    /// <summary>The two-layer toy model with K unique hidden features.</summary>
    public const string Toy = "toy";

    public static IReadOnlyList<string> All { get; } = [ConstNet, LeakyNet, Toy];
}
