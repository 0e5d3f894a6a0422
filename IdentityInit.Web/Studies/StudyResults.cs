using IdentityInit.Training;
using IdentityInit.Web.Data;

namespace IdentityInit.Web.Studies;

/// <summary>
/// One arm's row of a study's results. Statistics are over the arm's completed seeds (n in each estimate); Finals are
/// those seeds' final test accuracies. While seeds train, Latest is their mean test accuracy at the newest epoch every
/// running seed has reached (LatestEpoch): the cell that moves as epochs finish.
/// </summary>
public sealed record ArmResult(
    string Arm, double? X, string? Line, int Seeds, int Completed, int Running, int Queued, int Failed,
    Estimate? FinalAccuracy, Estimate? BestAccuracy, double? BrokenFraction, double? MedianBreakStep, double? FinalWeightCorrelation,
    Estimate? EpochsToHalf, int ReachedHalf, double? Latest, int? LatestEpoch, IReadOnlyList<double> Finals,
    Estimate? BreakStep = null, Estimate? Correlation = null, Estimate? PreciseFinalAccuracy = null);

/// <summary>A mean curve with its 95 % band over seeds (the band collapses where one seed has the point).</summary>
public sealed record Curve(string Label, double[] X, double[] Mean, double[] Low, double[] High);

/// <summary>PreciseBatches: the training batches its runs recomputed BatchNorm's statistics over, where they did (ascending).</summary>
public sealed record StudyResults(
    IReadOnlyList<ArmResult> Arms, IReadOnlyList<Claim> Claims, IReadOnlyList<Curve> Accuracy, IReadOnlyList<Curve> Correlation,
    string? SweepAxis, bool Final, DateTime ComputedAt, IReadOnlyList<int>? PreciseBatches = null);

/// <summary>
/// What the table needs of one run: its row, test accuracy per epoch, its layers' break steps, mean weight correlation per
/// step, and its last test accuracy with precise BatchNorm statistics (when it measured one).
/// </summary>
public sealed record RunCell(Run Run, IReadOnlyList<(int Epoch, double Accuracy)> Epochs, IReadOnlyList<long> Breaks,
    IReadOnlyList<(long Step, double Correlation)> Correlation, double? PreciseFinal = null);

public static class StudyTable
{
    public const double Half = 0.5;

    /// <summary>The results of a study's runs, arm by arm in the definition's order: pure, so that tests check it by hand.</summary>
    public static StudyResults Compute(IReadOnlyList<StudyArm> arms, IReadOnlyList<RunCell> cells, StudyPreset? preset, string? sweepAxis)
    {
        var rows = arms.Select(arm => Row(arm, cells.Where(c => c.Run.Arm == arm.Label).ToList())).ToList();
        // Bands are clipped at the quantity's bounds (a 2-seed t-interval on accuracy reaches -0.4 .. 1.15); n is in the label.
        var accuracy = arms.Select(arm => Band(arm.Label, cells.Where(c => c.Run.Arm == arm.Label)
            .Select(c => c.Epochs.Select(e => ((double)e.Epoch, e.Accuracy)).ToList()).ToList(), 0, 1)).Where(c => c.X.Length > 0).ToList();
        var correlation = arms.Select(arm => Band(arm.Label, cells.Where(c => c.Run.Arm == arm.Label)
            .Select(c => c.Correlation.Select(p => ((double)p.Step, p.Correlation)).ToList()).ToList(), -1, 1)).Where(c => c.X.Length > 0)
                .ToList();
        var final = cells.Count > 0 && cells.All(c => c.Run.IsFinished);
        var precise = cells.Select(c => ConfigOverlay.FromJson(c.Run.ConfigJson, "run").PreciseBatchNorm).Where(n => n > 0).Distinct()
            .Order().ToList();
        return new StudyResults(rows, preset?.Judge(rows) ?? [], accuracy, correlation, sweepAxis, final, DateTime.UtcNow, precise);
    }

    static ArmResult Row(StudyArm arm, List<RunCell> cells)
    {
        var done = cells.Where(c => c.Run.Status == RunStatus.Completed).ToList();
        var finals = done.Where(c => c.Run.FinalTestAccuracy is not null).Select(c => c.Run.FinalTestAccuracy!.Value).ToList();
        var best = done.Where(c => c.Run.BestTestAccuracy is not null).Select(c => c.Run.BestTestAccuracy!.Value).ToList();
        var broken = done.Where(c => c.Run.LayerCount is > 0).Select(c => (double)(c.Run.LayersBroken ?? 0) / c.Run.LayerCount!.Value)
            .ToList();
        var breaks = done.SelectMany(c => c.Breaks).Select(s => (double)s).ToList();
        var correlations = done.Where(c => c.Correlation.Count > 0).Select(c => c.Correlation[^1].Correlation).ToList();
        var toHalf = done.Select(c => c.Epochs.FirstOrDefault(e => e.Accuracy >= Half)).Where(e => e.Epoch > 0).Select(e => (double)e.Epoch)
            .ToList();
        var running = cells.Where(c => c.Run.Status == RunStatus.Running && c.Epochs.Count > 0).ToList();
        int? latestEpoch = running.Count > 0 ? running.Min(c => c.Epochs[^1].Epoch) : null;
        double? latest = latestEpoch is { } epoch ? running.Average(c => c.Epochs.Last(e => e.Epoch <= epoch).Accuracy) : null;
        return new ArmResult(arm.Label, arm.X, arm.Line, cells.Count, done.Count,
            cells.Count(c => c.Run.Status == RunStatus.Running), cells.Count(c => c.Run.Status == RunStatus.Queued),
            cells.Count(c => c.Run.Status is RunStatus.Failed or RunStatus.Diverged),
            Estimate.Of(finals), Estimate.Of(best), broken.Count > 0 ? broken.Average() : null, Median(breaks),
            correlations.Count > 0 ? correlations.Average() : null, Estimate.Of(toHalf), toHalf.Count, latest, latestEpoch, finals,
            // Over seeds: each seed's median break step over its broken layers, and its final mean weight correlation.
            Estimate.Of([.. done.Where(c => c.Breaks.Count > 0).Select(c => Median(c.Breaks.Select(b => (double)b).ToList())!.Value)]),
            Estimate.Of(correlations), Estimate.Of([.. done.Where(c => c.PreciseFinal is not null).Select(c => c.PreciseFinal!.Value)]));
    }

    public static double? Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return null;
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>Mean and 95 % band (clipped to [min, max]) at each x any seed has, over the seeds that have it; n in the label.</summary>
    static Curve Band(string label, List<List<(double X, double Y)>> perSeed, double min, double max)
    {
        var xs = perSeed.SelectMany(s => s.Select(p => p.X)).Distinct().Order().ToArray();
        var estimates = xs.Select(x => Estimate.Of(perSeed.SelectMany(s => s.Where(p => p.X == x).Select(p => p.Y)).ToList())).ToArray();
        var keep = estimates.Select((e, i) => (e, i)).Where(t => t.e is not null).ToList();
        var n = perSeed.Count(s => s.Count > 0);
        return new Curve($"{label} (n={n})", [.. keep.Select(t => xs[t.i])], [.. keep.Select(t => t.e!.Mean)],
            [.. keep.Select(t => Math.Clamp(t.e!.Low, min, max))], [.. keep.Select(t => Math.Clamp(t.e!.High, min, max))]);
    }
}
