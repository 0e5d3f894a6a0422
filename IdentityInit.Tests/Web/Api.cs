using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>Small helpers over the real HTTP API, shared by the web tests.</summary>
public static class Api
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>A run that trains in a few seconds on 2 cores: ConstNet-7-1 on 512 synthetic images.</summary>
    public static object TinyRun(int epochs = 2, object? extra = null, string preset = "constnet-nondeterministic") =>
        new { preset, config = TinyConfig(epochs, extra) };

    public static Dictionary<string, object?> TinyConfig(int epochs = 2, object? extra = null) => Merge(new Dictionary<string, object?>
    {
        ["dataset"] = "synthetic", ["trainLimit"] = 512, ["testLimit"] = 64, ["batchSize"] = 32, ["depth"] = 7,
        ["epochs"] = epochs, ["correlationEvery"] = 8, ["probeSize"] = 16, ["checkpointEvery"] = 16,
    }, extra);

    static Dictionary<string, object?> Merge(Dictionary<string, object?> a, object? b)
    {
        if (b is null) return a;
        foreach (var p in b.GetType().GetProperties()) a[p.Name] = p.GetValue(b);
        return a;
    }

    public static async Task<JsonElement> CreateAsync(HttpClient http, object request)
    {
        var response = await http.PostAsJsonAsync("/api/runs", request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement[0];
    }

    public static async Task<JsonElement> GetRunAsync(HttpClient http, Guid id) =>
        JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}")).RootElement;

    public static async Task<JsonElement> WaitForStatusAsync(HttpClient http, Guid id, string status, double seconds = 120)
    {
        JsonElement run = default;
        await Wait.UntilAsync(async () =>
        {
            run = await GetRunAsync(http, id);
            var s = run.GetProperty("status").GetString();
            if (s is "Failed" && status != "Failed") throw new InvalidOperationException("run failed: " + run.GetProperty("error"));
            return s == status;
        }, seconds, $"run {id} to be {status}");
        return run;
    }

    public static async Task<List<(string Series, long Step, double Value)>> PointsAsync(HttpClient http, string url)
    {
        var points = JsonDocument.Parse(await http.GetStringAsync(url)).RootElement;
        return [.. points.EnumerateArray()
            .Select(p => (p.GetProperty("series").GetString()!, p.GetProperty("step").GetInt64(), Value(p.GetProperty("value"))))];
    }

    static double Value(JsonElement e) =>
        e.ValueKind == JsonValueKind.String ? double.Parse(e.GetString()!, System.Globalization.CultureInfo.InvariantCulture)
        : e.GetDouble();

    /// <summary>
    /// A run's stored series without the wall-clock ones (throughput, step time, time), in a fixed order: equal for equal training.
    /// </summary>
    public static List<(string, long, double)> Deterministic(List<(string Series, long Step, double Value)> points) =>
        [.. points.Where(p => p.Series is not ("throughput" or "step_ms" or "time")).OrderBy(p => p.Series, StringComparer.Ordinal)
            .ThenBy(p => p.Step)];
}
