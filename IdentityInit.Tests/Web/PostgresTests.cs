using System.Net.Http.Json;
using IdentityInit.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace IdentityInit.Tests.Web;

/// <summary>The production store: EF Core + Npgsql (migrations on start, COPY for points) and Hangfire.PostgreSql.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresTests(PostgresServer postgres)
{
    static readonly int MigrationCount = typeof(IdentityInit.Web.Data.PostgresDbContext).Assembly.GetTypes().Count(t =>
        t.IsSubclassOf(typeof(Microsoft.EntityFrameworkCore.Migrations.Migration))
        && System.Reflection.CustomAttributeExtensions
               .GetCustomAttribute<Microsoft.EntityFrameworkCore.Infrastructure.DbContextAttribute>(t)?.ContextType
           == typeof(IdentityInit.Web.Data.PostgresDbContext));

    [Fact]
    public async Task WithPostgresConfiguredARunIsQueuedTrainedAndStoredThere()
    {
        var connection = await postgres.CreateDatabaseAsync();
        await using var lab = new LabFactory(connection);
        var http = lab.CreateClient();

        var id = (await Api.CreateAsync(http, Api.TinyRun())).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");

        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        var stored = (long)(await new NpgsqlCommand($"SELECT count(*) FROM metric_points WHERE \"RunId\" = '{id}'", db)
            .ExecuteScalarAsync())!;
        var jobs = (long)(await new NpgsqlCommand("SELECT count(*) FROM hangfire.job", db).ExecuteScalarAsync())!;
        var migrations = (long)(await new NpgsqlCommand("SELECT count(*) FROM \"__EFMigrationsHistory\"", db).ExecuteScalarAsync())!;
        Assert.Equal(points.Count, stored);
        Assert.True(points.Count > 100);
        Assert.Equal(1, jobs);
        Assert.Equal(MigrationCount, migrations);
        Assert.Contains(points, p => p.Series == "epoch/test_acc" && p.Step == 32);
    }

    [Fact]
    public async Task OnPostgresALongSeriesIsServedAsMinMaxPerBucketAndAWindowAtFullResolution()
    {
        await using var lab = new LabFactory(await postgres.CreateDatabaseAsync());
        var http = lab.CreateClient();
        await HistoryTests.CheckAsync(http, await HistoryTests.SeedAsync(lab.Services));
    }

    [Fact]
    public async Task APointStoredAgainTakesTheNewValueInsteadOfFailingItsBatchForever()
    {
        // The CI once met a point repeated in a later batch: the COPY failed on the primary key, the stream kept that batch
        // and retried it at every flush, and the run never ended. A repeat now takes the new value, as one inside a batch does.
        await using var lab = new LabFactory(await postgres.CreateDatabaseAsync());
        var http = lab.CreateClient();
        var id = await HistoryTests.SeedAsync(lab.Services);
        var db = lab.Services.GetRequiredService<IdentityInit.Web.Data.AppDb>();
        IdentityInit.Web.Data.MetricPoint Point(double value) => new() { RunId = id, Series = "repeated", Step = 7, Value = value };

        await db.WritePointsAsync([Point(1.5)]);
        await db.WritePointsAsync([Point(2.5), Point(3.5)]);

        var stored = await Api.PointsAsync(http, $"/api/runs/{id}/metrics?series=repeated");
        Assert.Equal([("repeated", 7L, 3.5)], stored);
    }

    [Fact]
    public async Task OnPostgresTheRunsListIsPagedSortedAndFilteredInTheDatabase()
    {
        await using var lab = new LabFactory(await postgres.CreateDatabaseAsync());
        await RunsListTests.SeedAsync(lab.Services);
        await RunsListTests.CheckAsync(lab.CreateClient());
    }

    [Fact]
    public async Task AShareRevokedOnOneWebNodeClosesTheConnectionsItOpenedOnAnother()
    {
        // Two web nodes on one database: the link is revoked on the first; the second hears it (LISTEN) and cuts the
        // SignalR connection it let in with that link within seconds, not when the viewer next asks.
        var connection = await postgres.CreateDatabaseAsync();
        await using var first = new LabFactory(connection);
        var firstUrl = first.StartKestrel();
        var owner = first.Client(firstUrl);
        var id = (await Api.CreateAsync(owner, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(owner, id, "Completed");
        var share = await owner.PostAsJsonAsync("/api/shares", new { runIds = new[] { id } });
        var token = System.Text.Json.JsonDocument.Parse(await share.Content.ReadAsStringAsync()).RootElement.GetProperty("token")
            .GetString()!;
        await using var second = new LabFactory(connection, new Dictionary<string, string?> { ["IdentityInit:Queues"] = "" });
        var secondUrl = second.StartKestrel();
        await using var hub = new HubConnectionBuilder().WithUrl(new Uri(secondUrl, "/hubs/runs"))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        var closed = new TaskCompletionSource();
        hub.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
        await hub.StartAsync();
        var history = await hub.InvokeAsync<IdentityInit.Web.Runs.RunHistory>("Join", id, token);

        var revoke = await owner.DeleteAsync($"/api/shares/{token}");
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.NotEmpty(history.Points);
        Assert.Equal(System.Net.HttpStatusCode.NoContent, revoke.StatusCode);
        using var stranger = new HttpClient { BaseAddress = secondUrl };
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/share/{token}")).StatusCode);
    }

    [Fact]
    public async Task ALiveBatchInItsNotificationIsDeliveredAtOnceAndOneWhosePredecessorWasMissedWaitsForItFromTheTable()
    {
        // Issue 21 item 6: a small batch travels in its NOTIFY payload and is delivered without reading it back; a large one
        // is read from live_batches. A batch this node never heard of (stored while it was not listening) must still come
        // first: the inline batch after it does not follow the last delivered sequence, so the node reads the table.
        var connection = await postgres.CreateDatabaseAsync();
        await using var lab = new LabFactory(connection, new Dictionary<string, string?> { ["IdentityInit:Queues"] = "" });
        lab.CreateClient(); // starts the node and its relay
        var db = lab.Services.GetRequiredService<IdentityInit.Web.Data.AppDb>();
        var run = Guid.NewGuid();
        var got = new System.Collections.Concurrent.ConcurrentQueue<long>();
        using var subscription = lab.Services.GetRequiredService<IdentityInit.Web.Runs.RunStream>()
            .Subscribe(run, b => { got.Enqueue(b.Sequence); return Task.CompletedTask; });
        IdentityInit.Web.Runs.RunBatch Batch(long sequence, int points = 2) =>
            new(run, sequence, [.. Enumerable.Range(0, points)
                .Select(k => new IdentityInit.Web.Runs.PointDto("loss", sequence * 1000 + k, k))], [], [], null);
        await using var sql = new NpgsqlConnection(connection);
        await sql.OpenAsync();
        await Wait.UntilAsync(async () => (long)(await new NpgsqlCommand(
            $"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{IdentityInit.Web.Runs.LiveRelay.ListenerName}' AND state " +
                "= 'idle' AND query LIKE 'SELECT DISTINCT%'",
            sql).ExecuteScalarAsync())! == 1, 30, "the relay to listen");

        await IdentityInit.Web.Runs.LiveRelay.PublishAsync(db, Batch(1), default);
        await IdentityInit.Web.Runs.LiveRelay.PublishAsync(db, Batch(2), default);
        await Wait.UntilAsync(() => Task.FromResult(got.Count == 2), 30, "batches 1 and 2");
        const string insert = """INSERT INTO live_batches ("RunId", "Payload", "CreatedAt") VALUES (@run, @payload, now())""";
        await using (var missed = new NpgsqlCommand(insert, sql))
        {
            missed.Parameters.AddWithValue("run", run);
            missed.Parameters.AddWithValue("payload",
                System.Text.Json.JsonSerializer.Serialize(Batch(3), IdentityInit.Training.EngineJson.Options));
            await missed.ExecuteNonQueryAsync(); // stored, never notified
        }
        await IdentityInit.Web.Runs.LiveRelay.PublishAsync(db, Batch(4), default);
        await IdentityInit.Web.Runs.LiveRelay.PublishAsync(db, Batch(5, points: 400), default); // over the payload's limit
        await IdentityInit.Web.Runs.LiveRelay.PublishAsync(db, Batch(6), default);
        await Wait.UntilAsync(() => Task.FromResult(got.Count >= 6), 30, "batches 3 to 6");
        await Task.Delay(500); // nothing delivered twice after that

        Assert.True(System.Text.Json.JsonSerializer.Serialize(Batch(5, points: 400), IdentityInit.Training.EngineJson.Options).Length
            > IdentityInit.Web.Runs.LiveRelay.InlineLimit);
        Assert.Equal([1L, 2, 3, 4, 5, 6], got.ToArray());
    }

    [Fact]
    public async Task ARunInterruptedByAShutdownResumesInTheNextAppOnTheSameDatabase()
    {
        var connection = await postgres.CreateDatabaseAsync();
        var shared = new Dictionary<string, string?>
        {
            ["IdentityInit:CheckpointDir"] = Path.Combine(Path.GetTempPath(),
            "identityinit-ckpt-" + Guid.NewGuid().ToString("N"))
        };
        Guid id;
        long interruptedAt;
        await using (var first = new LabFactory(connection, shared))
        {
            var http = first.CreateClient();
            id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 8))).GetProperty("id").GetGuid(); // 128 steps, a checkpoint every 16
            await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 20, 120,
                "the run to pass step 20");
        }
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var read = new NpgsqlCommand($"SELECT \"Status\", \"Step\" FROM runs WHERE \"Id\" = '{id}'", db);
            await using var row = await read.ExecuteReaderAsync();
            Assert.True(await row.ReadAsync());
            Assert.NotEqual("Completed", row.GetValue(0).ToString());
            interruptedAt = row.GetInt64(1);
        }
        Assert.InRange(interruptedAt, 20, 127);

        await using var second = new LabFactory(connection, shared);
        var client = second.CreateClient();
        var run = await Api.WaitForStatusAsync(client, id, "Completed");

        Assert.Equal(128, run.GetProperty("step").GetInt64());
        var logs = await client.GetStringAsync($"/api/runs/{id}/logs");
        Assert.Contains("resumed from", logs);
        var steps = (await Api.PointsAsync(client, $"/api/runs/{id}/metrics?series=train/loss")).Select(p => p.Step).ToList();
        Assert.Equal(Enumerable.Range(1, 12).Select(i => i * 10L), steps); // every 10th step once: no gap, no duplicate across the restart
    }

    [Fact]
    public async Task AResumeThatFallsBackFromATornCheckpointKeepsTheStoredHistoryExact()
    {
        var connection = await postgres.CreateDatabaseAsync();
        var checkpoints = Path.Combine(Path.GetTempPath(), "identityinit-ckpt-" + Guid.NewGuid().ToString("N"));
        var shared = new Dictionary<string, string?> { ["IdentityInit:CheckpointDir"] = checkpoints };
        var config = Api.TinyRun(epochs: 8);
        Guid id;
        await using (var first = new LabFactory(connection, shared))
        {
            var http = first.CreateClient();
            id = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
            await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 40, 120,
                "the run to pass step 40");
        } // the shutdown checkpoints the run where it stopped
        var newest = IdentityInit.Training.Checkpoint.Completed(Path.Combine(checkpoints, id.ToString("N"))).Last();
        var model = Path.Combine(newest.Path, "model.bin");
        File.WriteAllBytes(model, File.ReadAllBytes(model)[..^100]); // torn: the engine falls back to the one before

        await using var second = new LabFactory(connection, shared);
        var client = second.CreateClient();
        await Api.WaitForStatusAsync(client, id, "Completed");
        var uninterrupted = (await Api.CreateAsync(client, config)).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(client, uninterrupted, "Completed");

        var logs = await client.GetStringAsync($"/api/runs/{id}/logs");
        Assert.Contains($"checkpoint step-{newest.Step:D9} is unreadable", logs);
        // The host trims the store to where the engine really resumed, so the replayed steps are stored once, bitwise as
        // an uninterrupted run's (trimming to the torn checkpoint's step instead leaves duplicates that fail the COPY).
        Assert.Equal(Api.Deterministic(await Api.PointsAsync(client, $"/api/runs/{uninterrupted}/metrics")),
            Api.Deterministic(await Api.PointsAsync(client, $"/api/runs/{id}/metrics")));
    }

}
