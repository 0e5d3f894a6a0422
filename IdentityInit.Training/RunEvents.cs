using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Training.Metrics;

namespace IdentityInit.Training;

/// <summary>
/// How the engine's results travel and are kept, one format everywhere: events on the child's stdout, run summaries and
/// reproducibility records in the database, live batches relayed between nodes, points spilled to disk, signal-at-init
/// results. camelCase as the API, enums by name, and NaN and infinities as values (a correlation of identical channels).
/// </summary>
public static class EngineJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
    };
}

/// <summary>What a run reports while it trains: plain records, no tensors; one JSON line each between processes.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "event")]
[JsonDerivedType(typeof(RunStarted), "started")]
[JsonDerivedType(typeof(StepMetrics), "step")]
[JsonDerivedType(typeof(EpochMetrics), "epoch")]
[JsonDerivedType(typeof(CorrelationSnapshot), "correlation")]
[JsonDerivedType(typeof(SymmetryBroken), "symmetry-broken")]
[JsonDerivedType(typeof(CheckpointSaved), "checkpoint")]
[JsonDerivedType(typeof(LogLine), "log")]
[JsonDerivedType(typeof(RunEnded), "ended")]
public abstract record RunEvent
{
    /// <summary>The event as one line of JSON (the training process's stdout protocol).</summary>
    public string ToJsonLine() => JsonSerializer.Serialize(this, EngineJson.Options);

    /// <summary>Reads a line written by <see cref="ToJsonLine"/>; null when the line is not an event (e.g. a stray print).</summary>
    public static RunEvent? FromJsonLine(string line)
    {
        if (!line.StartsWith("{\"event\":", StringComparison.Ordinal)) return null;
        return JsonSerializer.Deserialize<RunEvent>(line, EngineJson.Options);
    }
}

/// <summary><paramref name="Layers"/>: the conv/linear layers, in the order of <see cref="StepMetrics.Spreads"/>.</summary>
public sealed record RunStarted(RunRecord Record, long StartStep, long TotalSteps, int StepsPerEpoch, IReadOnlyList<string> Layers)
    : RunEvent;

/// <summary>
/// Per-step figures; <paramref name="Spreads"/> is each layer's weight channel spread at its latest probe and
/// <paramref name="Fingerprint"/> a float64 digest of all weights then (two runs' weights differ where it does).
/// </summary>
public sealed record StepMetrics(
    long Step, int Epoch, double Loss, double Accuracy, double LearningRate, double ImagesPerSecond, double StepMilliseconds,
    IReadOnlyList<double> Spreads, double Fingerprint)
    : RunEvent;

/// <summary>
/// An epoch's end. Test figures use BatchNorm's running statistics, as the reference evaluates; with precise BN on
/// (config.PreciseBatchNorm), <paramref name="PreciseTestLoss"/> and <paramref name="PreciseTestAccuracy"/> are the same
/// test set with the statistics recomputed over training batches (null without it or without BatchNorm layers).
/// </summary>
public sealed record EpochMetrics(
    int Epoch, long Step, double TrainLoss, double TrainAccuracy, double TestLoss, double TestAccuracy, double BestTestAccuracy,
    double? PreciseTestLoss = null, double? PreciseTestAccuracy = null)
    : RunEvent;

/// <summary>One conv/linear layer's weight correlations (rho; -log|rho| is derived) and channel spread.</summary>
public sealed record LayerCorrelation(string Layer, double Forward, double Backward, double Kernel, double Spread)
{
    public double ForwardNegLog => Correlation.NegLogAbs(Forward);
    public double BackwardNegLog => Correlation.NegLogAbs(Backward);
    public double KernelNegLog => Correlation.NegLogAbs(Kernel);
}

/// <summary>One layer's activations on the probe batch: mean inter-channel correlation, spread, and the (downsampled) matrix.</summary>
/// <summary>A layer's activations on the probe batch: channel correlation and spread, dead channels (0 everywhere), heatmap.</summary>
public sealed record LayerActivation(string Layer, double Correlation, double Spread, int Size, float[] Matrix, int Dead = 0);

/// <param name="Signals">signal propagation per tapped layer on the probe (empty when the config's signals are off)</param>
/// <param name="Gradients">each weight's mean squared gradient of the probe's loss</param>
/// <param name="InputSignal">the probe's own mean squared value, the reference for the forward signal</param>
public sealed record CorrelationSnapshot(
    long Step, IReadOnlyList<LayerCorrelation> Weights, IReadOnlyList<LayerActivation> Activations, double Diversity,
    IReadOnlyList<LayerSignal>? Signals = null, IReadOnlyList<WeightSignal>? Gradients = null, double InputSignal = double.NaN) : RunEvent;

/// <summary>A layer's weight spread left exactly 0 at <paramref name="Step"/> (0 = already at init).</summary>
public sealed record SymmetryBroken(long Step, string Layer, double Spread) : RunEvent;

public sealed record CheckpointSaved(long Step, string Path) : RunEvent;

public sealed record LogLine(long Step, string Message) : RunEvent;

public sealed record RunEnded(RunSummary Summary) : RunEvent;

/// <summary>
/// Where a run stands: the one status of the engine, the store, the API and the pages. The engine reports how a run ended
/// (the last four); the lab adds Queued and Running before that. Stored and sent by name.
/// </summary>
public enum RunStatus { Queued, Running, Completed, Cancelled, Diverged, Failed }

public static class RunStatusExtensions
{
    /// <summary>Completed, cancelled, diverged or failed: nothing more will be trained or written.</summary>
    public static bool HasEnded(this RunStatus status) =>
        status is RunStatus.Completed or RunStatus.Cancelled or RunStatus.Diverged or RunStatus.Failed;
}

/// <summary>What it takes to reproduce a run, as measured rather than as requested.</summary>
public sealed record RunRecord(
    long Seed, string Device, int Threads, string TorchSharpVersion, string LibTorchVersion, DeterminismFlags Determinism,
    IReadOnlyList<string> Breakers, string Dataset, long TrainExamples, long TestExamples, long Parameters,
    string Machine, DateTimeOffset StartedAt);

/// <summary>A layer's symmetry as achieved: the step its weight spread first left 0 (null: still identical channels).</summary>
public sealed record LayerSymmetry(string Layer, long? BrokeAtStep, double Spread);

public sealed record RunSummary(
    RunStatus Status, long Steps, int EpochsCompleted, double? FinalTestAccuracy, double BestTestAccuracy,
    RunRecord? Record, IReadOnlyList<LayerSymmetry> Symmetry, string? Error, string? DivergedLayer, string? Checkpoint,
    double Seconds)
{
    public bool SymmetryBroke => Symmetry.Any(l => l.BrokeAtStep is not null);
}
