using IdentityInit.Training;
using IdentityInit.Web.Data;

namespace IdentityInit.Web.Runs;

public sealed record PointDto(string Series, long Step, double Value);

/// <summary>One series over a window of steps; Downsampled when buckets' min/max stand for the points (NaN: a gap).</summary>
public sealed record SeriesData(string Series, long[] Steps, double[] Values, bool Downsampled = false);

/// <summary>One series of a run in a window of steps: how many points it holds there, its first and last step.</summary>
public sealed record SeriesSpan(string Series, int Count, long First, long Last);

/// <summary>
/// A layer's symmetry as stored so far: the step it broke (null: channels still identical) and its latest spread, at which step.
/// </summary>
public sealed record LayerSymmetryNow(string Layer, long? BrokeAtStep, double? Spread, long? SpreadStep);

public sealed record HeatmapDto(string Layer, long Step, int Size, float[] Data);

public sealed record LogDto(long Step, DateTime Time, string Message);

public sealed record RunProgress(RunStatus Status, long Step, long TotalSteps, double? EtaSeconds, string? Error);

/// <summary>
/// What a viewer receives live, every 100-250 ms while a run trains. Points are keyed by (series, step): a viewer that
/// loaded history first drops live points at or below the last step it already holds for that series.
/// </summary>
public sealed record RunBatch(
    Guid RunId, long Sequence, IReadOnlyList<PointDto> Points, IReadOnlyList<HeatmapDto> Heatmaps, IReadOnlyList<LogDto> Logs,
    RunProgress? Progress);

/// <summary>
/// Everything stored for a run up to now, each series at most <see cref="RunQueries.DefaultMaxPoints"/> long: what a
/// viewer draws before live batches arrive. Series named in Downsampled are min/max per bucket; GET
/// /api/runs/{id}/metrics?series=..&amp;from=..&amp;to=.. gives any window at full resolution.
/// </summary>
public sealed record RunHistory(
    Guid RunId, RunProgress Progress, IReadOnlyList<PointDto> Points, IReadOnlyDictionary<string, long[]> HeatmapSteps,
    IReadOnlyList<LogDto> Logs, IReadOnlyList<string> Downsampled);

/// <summary>
/// Series names, one place: "train/loss" (every MetricsEvery steps), "epoch/test_acc" (at epoch ends), "wcorr.fwd/&lt;layer&gt;" (rho;
/// charts derive -log|rho|), "spread/&lt;layer&gt;" (with the step metrics), "break/&lt;layer&gt;" (the step a layer's spread left 0,
/// valued at that spread), "acorr/&lt;layer&gt;", "aspread/&lt;layer&gt;" and "dead/&lt;layer&gt;" (probe batch), "diversity", signal
/// propagation on the probe ("signal.fwd/", "signal.bwd/", "signal.gain/" per tapped layer, "signal.wgrad/" per weight, "signal.input" the
/// probe's own mean square), and "time" (Unix seconds when the host received a step's metrics: the wall-clock x axis).
/// </summary>
public static class Series
{
    public const string Time = "time", Throughput = "throughput", TrainLoss = "train/loss", TrainAccuracy = "train/acc",
        LearningRate = "lr",
        StepMilliseconds = "step_ms", Fingerprint = "fingerprint", Diversity = "diversity", SignalInput = "signal.input";
    public const string EpochIndex = "epoch/index", EpochTrainLoss = "epoch/train_loss", EpochTrainAccuracy = "epoch/train_acc",
        EpochTestLoss = "epoch/test_loss", EpochTestAccuracy = "epoch/test_acc", EpochBestTestAccuracy = "epoch/best_test_acc",
        EpochPreciseTestLoss = "epoch/test_loss_precise_bn", EpochPreciseTestAccuracy = "epoch/test_acc_precise_bn";

    /// <summary>Every signal-propagation series (per layer ones and the input's).</summary>
    public const string Signals = "signal.";

    // Per layer: the prefix, then the layer's name.
    public const string Spread = "spread/", Break = "break/", WeightCorrelationForward = "wcorr.fwd/",
        WeightCorrelationBackward = "wcorr.bwd/",
        WeightCorrelationKernel = "wcorr.kernel/", ActivationCorrelation = "acorr/", ActivationSpread = "aspread/", Dead = "dead/",
        SignalForward = "signal.fwd/", SignalBackward = "signal.bwd/", SignalGain = "signal.gain/", WeightGradient = "signal.wgrad/";

    public static IEnumerable<PointDto> Of(RunEvent e, IReadOnlyList<string> layers) => e switch
    {
        StepMetrics m =>
        [
            new(TrainLoss, m.Step, m.Loss), new(TrainAccuracy, m.Step, m.Accuracy), new(LearningRate, m.Step, m.LearningRate),
            new(Throughput, m.Step, m.ImagesPerSecond), new(StepMilliseconds, m.Step, m.StepMilliseconds),
                new(Fingerprint, m.Step, m.Fingerprint),
            .. m.Spreads.Select((s, i) => new PointDto(Spread + layers[i], m.Step, s)),
        ],
        EpochMetrics m =>
        [
            new(EpochIndex, m.Step, m.Epoch), new(EpochTrainLoss, m.Step, m.TrainLoss), new(EpochTrainAccuracy, m.Step, m.TrainAccuracy),
            new(EpochTestLoss, m.Step, m.TestLoss), new(EpochTestAccuracy, m.Step, m.TestAccuracy),
            new(EpochBestTestAccuracy, m.Step, m.BestTestAccuracy),
            .. (m.PreciseTestAccuracy is { } precise
                ? new PointDto[] { new(EpochPreciseTestLoss, m.Step, m.PreciseTestLoss!.Value),
                    new(EpochPreciseTestAccuracy, m.Step, precise) }
                : []),
        ],
        CorrelationSnapshot c =>
        [
            .. c.Weights.SelectMany(w => new PointDto[]
            {
                new(WeightCorrelationForward + w.Layer, c.Step, w.Forward), new(WeightCorrelationBackward + w.Layer, c.Step, w.Backward),
                new(WeightCorrelationKernel + w.Layer, c.Step, w.Kernel),
            }),
            .. c.Activations.SelectMany(a => new PointDto[]
            {
                new(ActivationCorrelation + a.Layer, c.Step, a.Correlation), new(ActivationSpread + a.Layer, c.Step, a.Spread),
                    new(Dead + a.Layer, c.Step, a.Dead),
            }),
            new(Diversity, c.Step, c.Diversity),
            .. (c.Signals ?? []).SelectMany(l => new PointDto[]
            {
                new(SignalForward + l.Layer, c.Step, l.Forward), new(SignalBackward + l.Layer, c.Step, l.Backward),
                new(SignalGain + l.Layer, c.Step, l.Gain),
            }),
            .. (c.Gradients ?? []).Select(g => new PointDto(WeightGradient + g.Layer, c.Step, g.Gradient)),
            .. (c.Signals is { Count: > 0 } ? new[] { new PointDto(SignalInput, c.Step, c.InputSignal) } : []),
        ],
        SymmetryBroken b => [new(Break + b.Layer, b.Step, b.Spread)],
        _ => [],
    };
}

/// <summary>What the runs list asks for: filters (config fields by JSON name), one sort, one page.</summary>
public sealed record RunFilter(
    string? Search = null, RunStatus? Status = null, string? Tag = null, Guid? Group = null, bool Archived = false,
    string Sort = "createdAt", bool Descending = true, int Offset = 0, int Limit = RunFilter.DefaultLimit,
    IReadOnlyDictionary<string, string>? ConfigFilters = null, string? Owner = null)
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1000;
    public IReadOnlyDictionary<string, string> Config => ConfigFilters ?? new Dictionary<string, string>();
}

public sealed record RunPage(List<Run> Runs, int Total);
