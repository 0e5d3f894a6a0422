using IdentityInit.Training;
using IdentityInit.Web.Data;

namespace IdentityInit.Web.Runs;

/// <summary>
/// Estimates for the new-run form, one at a time. The speed is the lab's own measurement when it has one: the median
/// throughput of the newest completed runs of the same model, data, batch and device (what the queued run will really
/// get, probes and all); otherwise a few training steps timed here.
/// </summary>
public sealed class Estimates(RunQueries queries)
{
    readonly SemaphoreSlim gate = new(1, 1);

    public async Task<Estimate> OfAsync(ExperimentConfig config, CancellationToken cancellationToken = default)
    {
        Estimate estimate;
        await gate.WaitAsync(cancellationToken);
        try
        {
            // Torch work on a dedicated thread: dispose scopes and grad mode are per thread.
            estimate = await Task.Factory.StartNew(() => Estimator.Of(config), cancellationToken, TaskCreationOptions.LongRunning,
                TaskScheduler.Default);
        }
        finally
        {
            gate.Release();
        }
        var same = new Dictionary<string, string>
        {
            ["architecture"] = config.Architecture, ["dataset"] = config.Dataset, ["device"] = config.Device,
            ["depth"] = Number(config.Depth), ["widen"] = Number(config.Widen), ["batchSize"] = Number(config.BatchSize),
            ["toyHidden"] = Number(config.ToyHidden), ["threads"] = Number(config.Threads),
        };
        var runs = (await queries.PageAsync(new RunFilter(Status: RunStatus.Completed, Limit: 3, ConfigFilters: same))).Runs;
        var rates = new List<double>();
        foreach (var run in runs)
            rates.AddRange((await queries.PointsAsync(run.Id, seriesPrefix: Series.Throughput)).Select(p => p.Value).Where(double.IsFinite)
                .Skip(2));
        if (rates.Count == 0) return estimate;
        var median = rates.Order().ElementAt(rates.Count / 2);
        return estimate with
        {
            ImagesPerSecond = median,
            Seconds = estimate.Steps * config.BatchSize / median,
            Basis = $"measured: median of {rates.Count} steps of {runs.Count} completed run{(runs.Count == 1 ? "" : "s")} of this model, " +
                $"data, batch and device ({runs[0].Name}{(runs.Count > 1 ? ", ..." : "")})",
        };
    }

    static string Number(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
