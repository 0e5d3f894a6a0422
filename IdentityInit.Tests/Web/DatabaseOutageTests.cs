using IdentityInit.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>
/// PostgreSQL stopped mid-run and started again, on a server of this class's own: stopping the collection's shared server
/// would leave the other classes' pooled connections dead.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class DatabaseOutageTests : IAsyncLifetime
{
    readonly PostgresServer postgres = new();

    public Task InitializeAsync() => postgres.InitializeAsync();

    public Task DisposeAsync() => postgres.DisposeAsync();

    [Fact]
    public async Task ADatabaseOutageMidRunLosesNoPointAndTheRunEndsCompletedWithItsWholeHistory()
    {
        var connection = await postgres.CreateDatabaseAsync();
        await using var lab = new LabFactory(connection);
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 30, extra: new { checkpointEvery = 50, correlationEvery = 40 })))
            .GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 60, 120,
            "training past step 60");
        // A live viewer on this node (fed by the PostgreSQL relay): every batch once, in sequence, across the outage.
        var seen = new System.Collections.Concurrent.ConcurrentQueue<long>();
        using var viewer = lab.Services.GetRequiredService<IdentityInit.Web.Runs.RunStream>()
            .Subscribe(id, b => { seen.Enqueue(b.Sequence); return Task.CompletedTask; });
        await Wait.UntilAsync(() => Task.FromResult(seen.Count >= 2), 30, "the viewer's first batches"); // a gap at the stop shows

        var probe = lab.Server.CreateClient(); // as a load balancer asks: no token to look up (CreateDefaultClient adds one)
        var readyBefore = await probe.GetAsync("/healthz/ready");
        await postgres.StopAsync(); // the run trains on; its points wait in the stream
        var during = await http.GetAsync($"/api/runs/{id}");
        var alive = await probe.GetAsync("/healthz");
        var ready = await probe.GetAsync("/healthz/ready");
        var shared = await lab.CreateDefaultClient().GetAsync("/share/" + new string('a', 43));
        await Task.Delay(TimeSpan.FromSeconds(8));
        await postgres.StartAsync();
        await AssertWholeHistoryAsync(http, id);
        await Task.Delay(1000); // the last batch's notification

        var sequences = seen.ToArray();
        Assert.True(sequences.Length >= 3, $"{sequences.Length} live batches"); // before, during (held back) and after the outage
        Assert.Equal(Enumerable.Range((int)sequences[0], sequences.Length).Select(s => (long)s), sequences);
        Assert.Equal(System.Net.HttpStatusCode.OK, readyBefore.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, alive.StatusCode); // the process lives ...
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, ready.StatusCode); // ... but is not ready (200 before)
        Assert.Equal(System.Net.HttpStatusCode.OK, (await probe.GetAsync("/healthz/ready")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, during.StatusCode); // not 500
        Assert.Equal(TimeSpan.FromSeconds(5), during.Headers.RetryAfter?.Delta);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, shared.StatusCode); // not a redirect to the sign-in page
    }

    [Fact]
    public async Task AnOutageLongerThanMemoryHoldsSpillsToTheRunsFolderAndStillLosesNothing()
    {
        // 50 points in memory (a few steps of this run): the rest of the outage's points wait in files.
        await using var lab = new LabFactory(await postgres.CreateDatabaseAsync(),
            new Dictionary<string, string?> { ["IdentityInit:StreamMemoryPoints"] = "50" });
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 30, extra: new { checkpointEvery = 50, correlationEvery = 40 })))
            .GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 60, 120,
            "training past step 60");
        var folder = lab.Services.GetRequiredService<IdentityInit.Web.Runs.RunStream>().SpillFolder(id);

        await postgres.StopAsync();
        // The run ends while the database is away (nothing pending grows for 2 s): at its end it must store every spill
        // file before it reads Completed, not only the first (the CI once saw Completed with steps 170-480 unstored).
        var stream = lab.Services.GetRequiredService<IdentityInit.Web.Runs.RunStream>();
        var (spilled, unstored, still) = (0, -1, 0);
        for (var waited = 0; waited < 60_000 && still < 8; waited += 250, await Task.Delay(250))
        {
            spilled = Math.Max(spilled, Directory.Exists(folder) ? Directory.GetFiles(folder).Length : 0);
            (unstored, still) = stream.Unstored(id) is var now && now == unstored ? (now, still + 1) : (now, 0);
        }
        await postgres.StartAsync();
        await AssertWholeHistoryAsync(http, id);

        Assert.True(spilled >= 2, $"{spilled} spill files during the outage");
        Assert.Equal(8, still); // the run had ended before the database came back
        Assert.True(!Directory.Exists(folder) || Directory.GetFiles(folder).Length == 0, "spill files left after they were stored");
    }

    /// <summary>The run ended Completed with every step, snapshot, epoch and checkpoint log an uninterrupted run has.</summary>
    static async Task AssertWholeHistoryAsync(HttpClient http, Guid id)
    {
        var run = await Api.WaitForStatusAsync(http, id, "Completed", 240);
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
        Assert.Equal(480, run.GetProperty("step").GetInt64());
        Assert.Equal(Enumerable.Range(1, 48).Select(i => i * 10L), points.Where(p => p.Series == "train/loss").Select(p => p.Step));
        Assert.Equal(Enumerable.Range(0, 13).Select(i => i * 40L),
            points.Where(p => p.Series == "wcorr.fwd/block2.layer.0.conv").Select(p => p.Step));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => (double)i), points.Where(p => p.Series == "epoch/index").Select(p => p.Value));
        foreach (var step in new[] { 100, 150, 200, 250 }) Assert.Contains($"checkpoint at step {step}", logs);
    }
}
