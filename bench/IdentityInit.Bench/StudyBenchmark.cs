using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;

namespace IdentityInit.Bench;

/// <summary>
/// A study preset at CPU scale through the app's API (POST /api/studies, one worker as configured by default): wall
/// time from queueing to the last run's end, and the table and claims it produced (GET /api/studies/{id}/table.md).
/// </summary>
public static class StudyBenchmark
{
    public static async Task RunAsync(string preset, int? seeds)
    {
        await using var app = await WebBenchmarks.StartAppAsync();
        using var http = WebBenchmarks.Client(app.Urls.First());
        var clock = Stopwatch.StartNew();
        var created = await http.PostAsJsonAsync("/api/studies", new { preset, scale = "cpu", seeds });
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException(body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("summary").GetProperty("id").GetGuid();
        JsonElement summary;
        do
        {
            await Task.Delay(5000);
            summary = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement.GetProperty("summary");
            Console.WriteLine($"  {clock.Elapsed:hh\\:mm\\:ss}: {summary.GetProperty("finished").GetInt32()} of {summary.GetProperty("runs").GetInt32()} runs ended");
        } while (summary.GetProperty("finished").GetInt32() < summary.GetProperty("runs").GetInt32());
        var runs = summary.GetProperty("runs").GetInt32();
        Console.WriteLine($"study {preset} (cpu scale, {runs} runs, one training job at a time, {Environment.ProcessorCount} cores): " +
                          $"{clock.Elapsed.TotalMinutes:F1} min from queueing to the last run's end, {clock.Elapsed.TotalSeconds / runs:F0} s per run");
        Console.WriteLine(await http.GetStringAsync($"/api/studies/{id}/table.md"));
    }
}
