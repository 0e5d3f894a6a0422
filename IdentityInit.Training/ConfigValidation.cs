using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Models;

namespace IdentityInit.Training;

/// <summary>One problem with a configuration: the field it concerns and what is wrong, in words a user can act on.</summary>
/// <summary>Field is the camelCase name users write (depth, leakyInit), as in config JSON and --set.</summary>
public sealed record ConfigError(string Field, string Message)
{
    public string Field { get; } = ConfigOverlay.FieldName(Field) ?? Field;

    public override string ToString() => $"{Field}: {Message}";
}

internal sealed class InvalidConfigException(IReadOnlyList<ConfigError> errors)
    : Exception("Invalid configuration: " + string.Join("; ", errors))
{
    public IReadOnlyList<ConfigError> Errors { get; } = errors;
}

public static class ConfigValidation
{
    public const int MaxName = 200, MaxPath = 4096;

    /// <summary>A user's value quoted in a message: at most 80 characters, the rest counted (a 1 MB value makes no 1 MB error).</summary>
    public static string Shown(string? value) =>
        value is null ? "null" : value.Length <= 80 ? value : $"{value[..77]}... ({value.Length:N0} characters)";

    /// <summary>
    /// Names, labels and tags are one line of text: a control character (a newline splitting a CSV row, a tab) is refused.
    /// </summary>
    public static bool HasControl(string? value) => value?.Any(char.IsControl) == true;

    public static IReadOnlyList<ConfigError> Validate(ExperimentConfig c)
    {
        var errors = new List<ConfigError>();
        void Check(bool ok, string field, string message)
        {
            if (!ok) errors.Add(new ConfigError(field, message));
        }
        var defaults = new ExperimentConfig();

        Check(!string.IsNullOrWhiteSpace(c.Name), nameof(c.Name), "must not be empty");
        Check(c.Name is not { Length: > MaxName }, nameof(c.Name), $"at most {MaxName} characters, got {c.Name?.Length:N0}");
        Check(!HasControl(c.Name), nameof(c.Name), "must not contain control characters (newlines, tabs)");
        Check(c.Preset is null || Presets.Find(c.Preset) is not null, nameof(c.Preset),
            $"'{Shown(c.Preset)}' is not a preset (list-presets, or GET /api/presets, shows them)");
        // Fields of another architecture are refused, not silently carried (a 3 MB leakyInit on a ConstNet run).
        Check(c.Architecture == Architectures.LeakyNet || c.LeakyInit == defaults.LeakyInit, nameof(c.LeakyInit),
            "the init string is a LeakyNet option");
        Check(c.Architecture == Architectures.LeakyNet || c.LeakyAlpha == defaults.LeakyAlpha, nameof(c.LeakyAlpha),
            "the LeakyReLU slope is a LeakyNet option");
        Check(c.Architecture == Architectures.Toy || c.ToyHidden == defaults.ToyHidden, nameof(c.ToyHidden),
            "hidden units are a toy-model option");
        Check(c.Architecture == Architectures.Toy || c.ToyUnique == defaults.ToyUnique, nameof(c.ToyUnique),
            "unique features are a toy-model option");
        Check(c.InitFile is not { Length: > MaxPath } && c.DataDir is not { Length: > MaxPath },
            c.InitFile is { Length: > MaxPath } ? nameof(c.InitFile) : nameof(c.DataDir),
            $"a path is at most {MaxPath} characters");
        Check(Architectures.All.Contains(c.Architecture), nameof(c.Architecture),
            $"'{Shown(c.Architecture)}' is not one of {string.Join(", ", Architectures.All)}");
        if (c.Architecture is Architectures.ConstNet or Architectures.LeakyNet && ConstNet.DepthError(c.Depth) is { } depthError)
            errors.Add(new ConfigError(nameof(c.Depth), depthError));
        Check(c.Widen is >= 1 and <= 64, nameof(c.Widen), $"widen factor must be an integer from 1 to 64, got {c.Widen}");
        if (c.Architecture == Architectures.LeakyNet)
        {
            if (c.LeakyInit.Length > 64) errors.Add(new ConfigError(nameof(c.LeakyInit),
                $"at most 64 characters, got {c.LeakyInit.Length:N0}"));
            else if (ConstNet.DepthError(c.Depth) is null && LeakyNet.InitStringError(c.LeakyInit, c.Depth) is { } initError)
                errors.Add(new ConfigError(nameof(c.LeakyInit), initError));
            Check(c.LeakyAlpha is > 0 and < 1, nameof(c.LeakyAlpha), $"must be in (0, 1), got {c.LeakyAlpha}");
        }
        if (c.Architecture == Architectures.Toy)
        {
            Check(c.ToyHidden >= 1, nameof(c.ToyHidden), $"must be at least 1, got {c.ToyHidden}");
            Check(c.ToyHidden < 1 || c.ToyUnique >= 1 && c.ToyUnique <= c.ToyHidden, nameof(c.ToyUnique),
                $"must be from 1 to ToyHidden ({c.ToyHidden}), got {c.ToyUnique}");
        }
        Check(Initializer.Schemes.Contains(c.Init), nameof(c.Init),
            $"'{Shown(c.Init)}' is not one of {string.Join(", ", Initializer.Schemes)}");
        Check(c.Architecture == Architectures.ConstNet || c.Init is Initializer.Const or Initializer.FromFile, nameof(c.Init),
            $"{Shown(c.Architecture)} is initialised by its own options (LeakyInit, ToyUnique); leave Init as 'const' (or 'file')");
        if (c.Init == Initializer.FromFile)
            Check(!string.IsNullOrWhiteSpace(c.InitFile) && File.Exists(c.InitFile), nameof(c.InitFile),
                string.IsNullOrWhiteSpace(c.InitFile) ? "Init 'file' needs the path of a .safetensors file"
                    : $"'{Shown(c.InitFile)}' does not exist");
        Check(c.InitNoise is >= 0 and <= 100, nameof(c.InitNoise), $"must be from 0 to 100, got {c.InitNoise}");
        Check(c.InitScale is > 0 and <= 100, nameof(c.InitScale), $"must be above 0 and at most 100, got {c.InitScale}");
        Check(c.Dropout is >= 0 and < 1, nameof(c.Dropout), $"must be in [0, 1), got {c.Dropout}");
        Check(c.StemDropout is >= 0 and < 1, nameof(c.StemDropout), $"must be in [0, 1), got {c.StemDropout}");
        Check(c.RoundingJitter is >= 0 and <= 1e6, nameof(c.RoundingJitter), $"must be from 0 to 1e6, got {c.RoundingJitter}");
        Check(c.Architecture != Architectures.Toy || c.Dropout == 0, nameof(c.Dropout),
            "the toy model has no branches or blocks to drop out; use RoundingJitter");
        Check(c.Architecture == Architectures.ConstNet || c.StemDropout == 0, nameof(c.StemDropout), "stem dropout is a ConstNet option");
        Check(c.ClassifierNoise is >= 0 and <= 100, nameof(c.ClassifierNoise), $"must be from 0 to 100, got {c.ClassifierNoise}");
        Check(c.Architecture == Architectures.LeakyNet || c.ClassifierNoise == 0, nameof(c.ClassifierNoise),
            "classifier noise is a LeakyNet option");
        Check(c.Architecture == Architectures.ConstNet || c.InitNoise == 0, nameof(c.InitNoise),
            $"init noise is added to ConstNet's block convs; {Shown(c.Architecture)} has none (LeakyNet: the letters k and a; or " +
                "RoundingJitter)");
        Check(DatasetCatalog.Names.Contains(c.Dataset), nameof(c.Dataset),
            $"'{Shown(c.Dataset)}' is not one of {string.Join(", ", DatasetCatalog.Names)}");
        Check(c.TrainLimit >= 0, nameof(c.TrainLimit), "must be 0 (all) or positive");
        Check(c.TestLimit >= 0, nameof(c.TestLimit), "must be 0 (all) or positive");
        Check(c.LearningRate is > 0 and <= 10, nameof(c.LearningRate), $"must be in (0, 10], got {c.LearningRate}");
        Check(c.Momentum is >= 0 and < 1, nameof(c.Momentum), $"must be in [0, 1), got {c.Momentum}");
        Check(!c.Nesterov || c.Momentum > 0, nameof(c.Nesterov), "Nesterov momentum needs Momentum > 0");
        Check(c.WeightDecay is >= 0 and < 1, nameof(c.WeightDecay), $"must be in [0, 1), got {c.WeightDecay}");
        Check(c.BatchSize is >= 1 and <= 65536, nameof(c.BatchSize), $"must be from 1 to 65536, got {c.BatchSize}");
        Check(c.Epochs is >= 1 and <= 100000, nameof(c.Epochs), $"must be from 1 to 100000, got {c.Epochs}");
        Check(ExperimentConfig.Schedules.Contains(c.Schedule), nameof(c.Schedule),
            $"'{Shown(c.Schedule)}' is not one of {string.Join(", ", ExperimentConfig.Schedules)}");
        Check(c.MaxSteps >= 0, nameof(c.MaxSteps), "must be 0 (no limit) or positive");
        Check(c.Seed >= 0, nameof(c.Seed), "must not be negative");
        if (TorchRuntime.DeviceError(c.Device) is { } deviceError)
            errors.Add(new ConfigError(nameof(c.Device), deviceError));
        Check(c.Threads is >= 0 and <= 1024, nameof(c.Threads), "must be 0 (library default) or a thread count");
        Check(c.MetricsEvery >= 1, nameof(c.MetricsEvery), "must be at least 1 step");
        Check(c.SpreadEvery >= 1, nameof(c.SpreadEvery), "must be at least 1 step");
        Check(c.CorrelationEvery >= 0, nameof(c.CorrelationEvery), "must be 0 (start and end only) or positive");
        Check(c.ProbeSize is >= 2 and <= 4096, nameof(c.ProbeSize), "must be from 2 to 4096 images");
        Check(c.PreciseBatchNorm is >= 0 and <= 10000, nameof(c.PreciseBatchNorm),
            $"must be 0 (off) or a number of batches up to 10000, got {c.PreciseBatchNorm}");
        Check(c.CheckpointEvery >= 0, nameof(c.CheckpointEvery), "must be 0 (end only) or positive");
        return errors;
    }

    public static void ThrowIfInvalid(ExperimentConfig config)
    {
        var errors = Validate(config);
        if (errors.Count > 0) throw new InvalidConfigException(errors);
    }
}
