using IdentityInit.Training;
using IdentityInit.Web.Runs;

namespace IdentityInit.Web.Components.Runs;

/// <summary>
/// A run's x axis: step, epoch (step / steps per epoch), wall time (Unix seconds) or relative time (minutes since the
/// run's first recorded step). Times come from the run's "time" series, interpolated linearly between the recorded
/// steps; a run with none yet has no time axis (X is null).
/// </summary>
public sealed class XAxis(string mode, long stepsPerEpoch)
{
    public static readonly IReadOnlyList<(string Mode, string Label)> Modes =
        [("step", "step"), ("epoch", "epoch"), ("relative", "relative time (min)"), ("wall", "wall time")];

    readonly List<long> steps = [];
    readonly List<double> times = [];

    public string Mode => mode;
    public bool IsTime => mode is "relative" or "wall";

    public static XAxis For(RunDto run, string mode) => new(mode, mode == "epoch" ? StepsPerEpoch(run) : 1);

    public static long StepsPerEpoch(RunDto run)
    {
        var config = run.ReadConfig();
        var (_, _, _, _, count) = IdentityInit.Training.Data.DatasetCatalog.Shape(config.Dataset);
        var examples = config.TrainLimit > 0 ? Math.Min(config.TrainLimit, count) : count;
        return Math.Max(1, (examples + config.BatchSize - 1) / config.BatchSize);
    }

    /// <summary>Takes the wall times among these points (in step order, as stored and as streamed).</summary>
    public void Observe(IEnumerable<PointDto> points)
    {
        foreach (var p in points)
            if (p.Series == Series.Time && (steps.Count == 0 || p.Step > steps[^1]))
            {
                steps.Add(p.Step);
                times.Add(p.Value);
            }
    }

    public double? X(long step) => mode switch
    {
        "epoch" => (double)step / stepsPerEpoch,
        "wall" => Time(step),
        "relative" => Time(step) is { } t ? (t - times[0]) / 60 : null,
        _ => step,
    };

    /// <summary>The step at an x value (for a zoom window): the inverse of X, clamped to the recorded steps.</summary>
    public long Step(double x)
    {
        switch (mode)
        {
            case "epoch": return (long)Math.Round(x * stepsPerEpoch);
            case "wall" or "relative" when times.Count > 0:
                var t = mode == "relative" ? times[0] + x * 60 : x;
                var i = times.BinarySearch(t);
                if (i >= 0) return steps[i];
                i = ~i;
                if (i == 0) return steps[0];
                if (i == times.Count) return steps[^1];
                var f = (t - times[i - 1]) / (times[i] - times[i - 1]);
                return (long)Math.Round(steps[i - 1] + f * (steps[i] - steps[i - 1]));
            default: return (long)Math.Round(x);
        }
    }

    double? Time(long step)
    {
        if (times.Count == 0) return null;
        var i = steps.BinarySearch(step);
        if (i >= 0) return times[i];
        i = ~i;
        if (i == 0) return times[0];
        if (i == steps.Count) return times[^1];
        var f = (double)(step - steps[i - 1]) / (steps[i] - steps[i - 1]);
        return times[i - 1] + f * (times[i] - times[i - 1]);
    }
}
