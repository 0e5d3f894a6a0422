using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IdentityInit.Bench;

/// <summary>
/// A study preset at CPU scale through the app's API (POST /api/studies): wall time from queueing to the last run's end,
/// and the table and claims it produced (GET /api/studies/{id}/table.md). With several workers, each run trains on one
/// thread (several one-thread processes outrun one two-thread process on small convs: measured in bench/studies.md).
/// </summary>
public static class StudyBenchmark
{
    /// <param name="sets">"field=value" overrides for every run (a value that parses as JSON is taken as such, else as text)</param>
    public static async Task RunAsync(string preset, int? seeds, int workers, IReadOnlyList<string> sets)
    {
        await using var app = await WebBenchmarks.StartAppAsync(cpuWorkers: workers);
        using var http = WebBenchmarks.Client(app.Urls.First());
        var clock = Stopwatch.StartNew();
        var config = new JsonObject();
        if (workers > 1) config["threads"] = 1;
        foreach (var set in sets)
        {
            var (field, value) = (set[..set.IndexOf('=')], set[(set.IndexOf('=') + 1)..]);
            try { config[field] = JsonNode.Parse(value); } catch (JsonException) { config[field] = value; }
        }
        var created = await http.PostAsJsonAsync("/api/studies", new { preset, scale = "cpu", seeds, config });
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException(body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("summary").GetProperty("id").GetGuid();
        JsonElement summary;
        do
        {
            await Task.Delay(5000);
            summary = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement.GetProperty("summary");
            Console.WriteLine($"  {clock.Elapsed:hh\\:mm\\:ss}: {summary.GetProperty("finished").GetInt32()} of " +
                $"{summary.GetProperty("runs").GetInt32()} runs ended");
        } while (summary.GetProperty("finished").GetInt32() < summary.GetProperty("runs").GetInt32());
        var runs = summary.GetProperty("runs").GetInt32();
        var changed = sets.Count > 0 ? $", {string.Join(", ", sets)}" : "";
        Console.WriteLine($"study {preset} (cpu scale{changed}, {runs} runs, {workers} training job(s) at a " +
            $"time{(workers > 1 ? " on one thread each" : "")}, {Environment.ProcessorCount} cores): " +
                          $"{clock.Elapsed.TotalMinutes:F1} min from queueing to the last run's end, " +
                              $"{clock.Elapsed.TotalSeconds / runs:F0} s per run\n");
        Console.WriteLine(await http.GetStringAsync($"/api/studies/{id}/table.md"));
    }
}
