using System.Collections.Concurrent;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>Live points over a real SignalR connection (the .NET client an external tool would use).</summary>
public sealed class StreamingTests
{
    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task PointsStreamedToAHubClientEqualTheStoredSeriesWithNoGapAndNoDuplicate()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var http = lab.Client(baseUrl);
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 12))).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 20, 60,
            "training to be under way");

        var batches = new ConcurrentQueue<RunBatch>();
        var done = new TaskCompletionSource();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(lab.AdminToken))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        hub.On<RunBatch>("Batch", batch =>
        {
            batches.Enqueue(batch);
            if (batch.Progress?.Status is RunStatus.Completed) done.TrySetResult();
        });
        await hub.StartAsync();
        var history = await hub.InvokeAsync<RunHistory>("Join", id, null);
        await done.Task.WaitAsync(TimeSpan.FromSeconds(120));

        var seen = history.Points.ToDictionary(p => (p.Series, p.Step), p => p.Value);
        var lastOfSeries = history.Points.GroupBy(p => p.Series).ToDictionary(g => g.Key, g => g.Max(p => p.Step));
        foreach (var point in batches.SelectMany(b => b.Points))
        {
            if (lastOfSeries.TryGetValue(point.Series, out var last) && point.Step <= last) continue; // already in history
            Assert.True(seen.TryAdd((point.Series, point.Step), point.Value), $"duplicate live point {point}");
        }
        var stored = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        Assert.Equal(stored.Count, seen.Count);
        Assert.All(stored, p => Assert.Equal(p.Value, seen[(p.Series, p.Step)]));
        Assert.True(history.Points.Count > 0 && !batches.IsEmpty);
        var sequences = batches.Select(b => b.Sequence).ToList(); // in arrival order: consecutive, none lost or reordered
        Assert.Equal(Enumerable.Range(0, sequences.Count).Select(i => sequences[0] + i), sequences);
        foreach (var series in batches.SelectMany(b => b.Points).GroupBy(p => p.Series))
        {
            var steps = series.Select(p => p.Step).ToList(); // each series arrives in step order
            Assert.True(steps.Zip(steps.Skip(1)).All(pair => pair.First < pair.Second),
                $"{series.Key} arrived out of order: {string.Join(", ", steps)}");
        }
    }

    [Fact]
    public async Task TheHubRefusesARunThatDoesNotExist()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(lab.AdminToken)).Build();
        await hub.StartAsync();

        var error = await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<RunHistory>("Join", Guid.NewGuid(), null));

        Assert.Contains("not found", error.Message);
    }
}

/// <summary>Values SQL stores awkwardly still round-trip: NaN (SQLite has none) and infinities (Diversity is -inf).</summary>
public sealed class NonFiniteValueTests
{
    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task NaNAndInfinitiesAreStoredAndServedAsTheyWere()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, extra: new { maxSteps = 1 }))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");
        var stream = lab.Services.GetRequiredService<RunStream>();

        stream.Publish(id, new IdentityInit.Training.CorrelationSnapshot(99, [new("probe", double.NaN, 1, 1, 0)], [],
            double.NegativeInfinity));
        await stream.FlushAsync(id);
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics?from=99&to=99");
        var csv = await http.GetStringAsync($"/api/runs/{id}/metrics?format=csv&from=99&to=99");

        Assert.True(double.IsNaN(points.Single(p => p.Series == "wcorr.fwd/probe").Value));
        Assert.Equal(double.NegativeInfinity, points.Single(p => p.Series == "diversity").Value);
        Assert.Contains("wcorr.fwd/probe,99,NaN", csv);
        Assert.Contains("diversity,99,-Infinity", csv);
    }
}
