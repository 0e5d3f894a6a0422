using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Hangfire;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>Each run trains in a process of its own, spawned by the app (the embedded default) or by a worker host.</summary>
public sealed class ChildProcessTests
{

    // 96 steps: long enough for the two runs and the estimate to overlap (asserted), short enough for the suite.
    static object Dropout(long seed) => Api.TinyRun(epochs: 6, preset: "constnet-deterministic-dropout", extra: new { seed, threads = 1 });

    [Fact]
    public async Task TwoRunsAtOnceTrainBitwiseAsEachAloneAndAnEstimateDuringThemChangesNothing()
    {
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:Workers:cpu"] = "2" });
        var http = lab.CreateClient();
        var alone = new List<List<(string, long, double)>>();
        foreach (var seed in new[] { 1L, 2L })
        {
            var id = (await Api.CreateAsync(http, Dropout(seed))).GetProperty("id").GetGuid();
            await Api.WaitForStatusAsync(http, id, "Completed");
            alone.Add(Api.Deterministic(await Api.PointsAsync(http, $"/api/runs/{id}/metrics")));
        }

        var a = (await Api.CreateAsync(http, Dropout(1))).GetProperty("id").GetGuid();
        var b = (await Api.CreateAsync(http, Dropout(2))).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, a)).GetProperty("step").GetInt64() > 0
                                          && (await Api.GetRunAsync(http, b)).GetProperty("step").GetInt64() > 0, 60, "both runs to train");
        // What the New run form's estimate button does: real training steps, in the web process, with its own seed and threads.
        var estimate = await lab.Services.GetRequiredService<Estimates>()
            .OfAsync(new ExperimentConfig { Dataset = "synthetic", Depth = 7, Threads = 2, Seed = 99 });
        var runA = await Api.WaitForStatusAsync(http, a, "Completed");
        var runB = await Api.WaitForStatusAsync(http, b, "Completed");

        Assert.True(estimate.ImagesPerSecond > 0);
        // Recorded as the child read its flags back: no TF32 (libtorch's default allows it in cuDNN), no cuDNN benchmark on CPU.
        var flags = runA.GetProperty("record").GetProperty("determinism");
        Assert.False(flags.GetProperty("tf32CuDnn").GetBoolean());
        Assert.False(flags.GetProperty("tf32CuBlas").GetBoolean());
        Assert.False(flags.GetProperty("cudnnBenchmark").GetBoolean());
        Assert.True(runA.GetProperty("startedAt").GetDateTime() < runB.GetProperty("finishedAt").GetDateTime()
                    && runB.GetProperty("startedAt").GetDateTime() < runA.GetProperty("finishedAt").GetDateTime(),
                        "the two runs overlapped");
        Assert.Equal(alone[0], Api.Deterministic(await Api.PointsAsync(http, $"/api/runs/{a}/metrics")));
        Assert.Equal(alone[1], Api.Deterministic(await Api.PointsAsync(http, $"/api/runs/{b}/metrics")));
        Assert.NotEqual(alone[0], alone[1]); // the seeds do differ, so equality above is not vacuous
    }

    [Fact]
    public async Task ATrainingProcessKilledBySignalFailsItsRunWithTheReasonAndTheAppStaysUp()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 200))).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 10, 60,
            "training to be under way");
        var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
        var pid = int.Parse(Regex.Match(logs, @"training in process (\d+) on ").Groups[1].Value);
        var options = lab.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<IdentityInit.Web.LabOptions>>().Value;
        var checkpoints = Path.Combine(options.CheckpointRoot, id.ToString("N"));
        Directory.CreateDirectory(Path.Combine(checkpoints, "step-000000999.tmp")); // as a kill in the middle of a save leaves it

        Process.GetProcessById(pid).Kill(); // SIGKILL, as the kernel's OOM killer would
        var run = await Api.WaitForStatusAsync(http, id, "Failed", 30);
        var stored = (await Api.PointsAsync(http, $"/api/runs/{id}/metrics?series=train/loss")).Max(p => p.Step);

        var error = run.GetProperty("error").GetString()!;
        Assert.Contains("the training process ended without finishing the run", error);
        Assert.Contains("SIGKILL", error);
        Assert.Contains("its last output", error);
        Assert.True(run.GetProperty("step").GetInt64() >= Math.Max(10, stored),
            $"a failed run says step {run.GetProperty("step")} with step {stored} stored");
        Assert.Empty(Directory.GetDirectories(checkpoints, "*.tmp"));
        Assert.NotEqual(Environment.ProcessId, pid);
        var next = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, next, "Completed"); // the app, its queue and its stream carry on
    }

    [Fact]
    public async Task ARunOverTheMemoryLimitIsKilledAndFailsWithTheLimitNamed()
    {
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:RunMemoryLimitMb"] = "40" });
        var http = lab.CreateClient();

        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 50))).GetProperty("id").GetGuid();
        var run = await Api.WaitForStatusAsync(http, id, "Failed", 60);

        Assert.Matches(@"it used \d+ MiB, over the memory limit of 40 MiB \(IdentityInit:RunMemoryLimitMb\), and was killed",
            run.GetProperty("error").GetString()!);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/api/runs")).StatusCode);
    }

    [Fact]
    public async Task AWorkerHostWithoutPostgresRefusesToStartAndSaysWhy()
    {
        using var worker = AppProcess.Start(["worker"], new Dictionary<string, string> { ["ConnectionStrings__Postgres"] = "" });

        var code = await worker.ExitCodeAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(2, code);
        Assert.Contains("error: ConnectionStrings:Postgres: a worker host shares its queues and runs with web nodes through PostgreSQL",
            worker.Output);
    }

    [Fact]
    public async Task ARunForOneGpuWaitsInThatGpusQueueAndItsWorkerSaysWhatIsMissing()
    {
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:Queues"] = "cpu,cuda_1" });
        var http = lab.CreateClient();

        var id = (await Api.CreateAsync(http, Api.TinyRun(extra: new { device = "cuda:1" }))).GetProperty("id").GetGuid();
        var run = await Api.WaitForStatusAsync(http, id, "Failed", 60);

        Assert.Equal("cuda_1", run.GetProperty("queue").GetString());
        Assert.Contains("Device 'cuda:1' was requested but CUDA is not available", run.GetProperty("error").GetString());
    }

    [Fact]
    public async Task ACancelledRunsProcessCheckpointsAndStopsWithinAStep()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 200, extra: new { checkpointEvery = 100000 }))).GetProperty("id")
            .GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 10, 60,
            "training to be under way");

        var clock = Stopwatch.StartNew();
        (await http.PostAsync($"/api/runs/{id}/cancel", null)).EnsureSuccessStatusCode();
        var run = await Api.WaitForStatusAsync(http, id, "Cancelled", 30);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"cancel took {clock.Elapsed}");
        var step = run.GetProperty("step").GetInt64();
        Assert.InRange(step, 10, 200 * 16 - 1);
        Assert.Equal(200 * 16, run.GetProperty("totalSteps").GetInt64()); // "step 63 of 3200", not "of 63"
        Assert.Contains($"checkpoint at step {step}", await http.GetStringAsync($"/api/runs/{id}/logs")); // stopped cleanly, not killed
    }
}

/// <summary>
/// A run's job executed again, here or on another host, while the run trains: the repeated execution never starts a
/// second trainer. Apart from <see cref="ChildProcessTests"/> so that the two classes (each over a minute) run side by side.
/// </summary>
public sealed class RepeatedJobTests
{
    [Fact]
    public async Task AJobExecutedAgainWhileItsRunTrainsStartsNoSecondTrainer()
    {
        // Hangfire may execute a job again while it still runs (fetched once more after the job storage blinked). With a
        // slot free, that second execution must end at once, not start a second process training the same run.
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:Workers:cpu"] = "2" });
        var http = lab.CreateClient();
        // 192 steps: the second execution ends within a second or two of step 30, well before the run does (asserted).
        var config = Api.TinyRun(epochs: 12, extra: new { checkpointEvery = 25, correlationEvery = 50 });
        var id = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 30, 60,
            "training to be under way");
        var jobs = lab.Services.GetRequiredService<IBackgroundJobClient>();
        var again = jobs.Create<TrainingJob>(j => j.Run(id, JobCancellationToken.Null), new Hangfire.States.EnqueuedState("cpu"));
        var monitor = lab.Services.GetRequiredService<JobStorage>().GetMonitoringApi();
        await Wait.UntilAsync(() => Task.FromResult(monitor.JobDetails(again)?.History.Any(h => h.StateName == "Succeeded") == true), 60,
            "the second execution to end");
        var statusWhenItEnded = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
        await Api.WaitForStatusAsync(http, id, "Completed", 120);
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
        var alone = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, alone, "Completed", 120);

        Assert.Equal("Running", statusWhenItEnded); // it did execute while the run trained
        Assert.Single(Regex.Matches(logs, "training in process"));
        Assert.Equal(Api.Deterministic(await Api.PointsAsync(http, $"/api/runs/{alone}/metrics")), Api.Deterministic(points));
    }

    [Fact]
    public async Task AJobExecutedOnAnotherHostWhileALiveHostTrainsItsRunEndsAndADeadHostsRunIsTakenOver()
    {
        // Issue 22: the job of a run that a live worker on another machine trains is fetched again here (the holder could
        // not extend its claim while the job storage blinked). It must not train the run beside it; once the holder's
        // heartbeat stops, an execution takes the run over instead of leaving it "running" for good.
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:Queues"] = "" });
        var http = lab.CreateClient();
        var storage = lab.Services.GetRequiredService<JobStorage>();
        const string holder = "elsewhere:4242";
        var serverId = $"{holder}:cpu:{Guid.NewGuid():N}";
        using (var connection = storage.GetConnection())
            connection.AnnounceServer(serverId, new Hangfire.Server.ServerContext { Queues = ["cpu"], WorkerCount = 1 });
        using var beating = new CancellationTokenSource();
        var heart = Task.Run(async () =>
        {
            while (!beating.IsCancellationRequested)
            {
                using (var connection = storage.GetConnection()) connection.Heartbeat(serverId);
                await Task.Delay(1000);
            }
        });
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 3))).GetProperty("id").GetGuid(); // queued for the host elsewhere
        var db = lab.Services.GetRequiredService<AppDb>();
        await using (var context = db.Create())
            await context.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, RunStatus.Running)
                .SetProperty(r => r.Worker, holder).SetProperty(r => r.WorkerSince, DateTime.UtcNow));
        var job = ActivatorUtilities.CreateInstance<TrainingJob>(lab.Services);

        var started = Stopwatch.StartNew();
        await Task.Run(() => job.Run(id, new JobCancellationToken(false)));
        var whileAlive = await Api.GetRunAsync(http, id);
        var pointsWhileAlive = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        await beating.CancelAsync();
        await heart;
        await Task.Run(() => job.Run(id, new JobCancellationToken(false)));
        var after = await Api.GetRunAsync(http, id);

        Assert.Equal("Running", whileAlive.GetProperty("status").GetString());
        Assert.Equal(holder, whileAlive.GetProperty("worker").GetString());
        Assert.Empty(pointsWhileAlive);
        Assert.True(started.Elapsed >= Workers.AliveWithin,
            $"ended after {started.Elapsed.TotalSeconds:F1} s: the holder was watched for less than its heartbeat window");
        Assert.Equal("Completed", after.GetProperty("status").GetString());
        Assert.Equal(TrainingJob.WorkerName, after.GetProperty("worker").GetString());
        Assert.Equal(after.GetProperty("totalSteps").GetInt64(), after.GetProperty("step").GetInt64());
        Assert.NotEmpty(await Api.PointsAsync(http, $"/api/runs/{id}/metrics?series=train/"));
    }
}

/// <summary>Worker hosts as separate processes on one PostgreSQL; web nodes relay what any worker trains.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WorkerTests(PostgresServer postgres)
{
    static AppProcess StartWorker(string connection, string checkpoints) => AppProcess.Start(["worker"], new Dictionary<string, string>
    {
        ["ConnectionStrings__Postgres"] = connection, ["IdentityInit__Queues"] = "cpu", ["IdentityInit__CheckpointDir"] = checkpoints,
        ["IdentityInit__DataDir"] = Path.Combine(Path.GetTempPath(), "identityinit-worker-" + Guid.NewGuid().ToString("N")[..8]),
        ["IdentityInit__RequeueAfterSeconds"] = "10",
    });

    static LabFactory WebNode(string connection) =>
        new(connection, new Dictionary<string, string?> { ["IdentityInit:Queues"] = "" }); // serves no queue: trains nothing itself

    /// <summary>Waits until /api/workers lists the host of <paramref name="worker"/> as alive; returns its name.</summary>
    static async Task<string> AliveAsync(HttpClient http, AppProcess worker)
    {
        var host = $"{Environment.MachineName.ToLowerInvariant()}:{worker.Id}";
        await Wait.UntilAsync(async () => (await WorkersAsync(http)).GetProperty("workers").EnumerateArray()
            .Any(w => w.GetProperty("host").GetString() == host && w.GetProperty("alive").GetBoolean()), 60, $"worker {host} to register");
        return host;
    }

    static async Task<System.Text.Json.JsonElement> WorkersAsync(HttpClient http) =>
        System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/api/workers")).RootElement;

    static string Checkpoints() => Path.Combine(Path.GetTempPath(), "identityinit-shared-" + Guid.NewGuid().ToString("N")[..8]);

    sealed class Viewer : IAsyncDisposable
    {
        public readonly ConcurrentQueue<RunBatch> Batches = new();
        public readonly TaskCompletionSource Ended = new();
        public RunHistory History = null!;
        HubConnection hub = null!;

        public static async Task<Viewer> JoinAsync(Uri baseUrl, string token, Guid id)
        {
            var viewer = new Viewer();
            viewer.hub = new HubConnectionBuilder()
                .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(token))
                .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
            viewer.hub.On<RunBatch>("Batch", batch =>
            {
                viewer.Batches.Enqueue(batch);
                if (batch.Progress?.Status is RunStatus.Completed) viewer.Ended.TrySetResult();
            });
            await viewer.hub.StartAsync();
            viewer.History = await viewer.hub.InvokeAsync<RunHistory>("Join", id, null);
            return viewer;
        }

        /// <summary>History, then live points past it; fails on a live point that repeats one already held.</summary>
        public Dictionary<(string, long), double> Points()
        {
            var seen = History.Points.ToDictionary(p => (p.Series, p.Step), p => p.Value);
            var last = History.Points.GroupBy(p => p.Series).ToDictionary(g => g.Key, g => g.Max(p => p.Step));
            foreach (var point in Batches.SelectMany(b => b.Points))
            {
                if (last.TryGetValue(point.Series, out var step) && point.Step <= step) continue;
                Assert.True(seen.TryAdd((point.Series, point.Step), point.Value), $"duplicate live point {point}");
            }
            foreach (var series in Batches.SelectMany(b => b.Points).GroupBy(p => p.Series))
            {
                var steps = series.Select(p => p.Step).ToList();
                Assert.True(steps.Zip(steps.Skip(1)).All(pair => pair.First < pair.Second), $"{series.Key} arrived out of order");
            }
            return seen;
        }

        public ValueTask DisposeAsync() => hub.DisposeAsync();
    }

    [Fact]
    public async Task AViewerOnAWebNodeGetsEveryPointAWorkerTrainsOnceInOrderAcrossARestartOfTheWebNode()
    {
        var connection = await postgres.CreateDatabaseAsync();
        var checkpoints = Checkpoints();
        var first = WebNode(connection);
        var firstUrl = first.StartKestrel(); // migrates the database before the worker starts
        var http = first.Client(firstUrl);
        using var worker = StartWorker(connection, checkpoints);
        var host = await AliveAsync(http, worker);
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 40))).GetProperty("id").GetGuid();
        var viewer = await Viewer.JoinAsync(firstUrl, first.AdminToken, id);
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 40, 90,
            "the worker to train past step 40");
        await using (var admin = new Npgsql.NpgsqlConnection(connection)) // the web node loses its LISTEN connection mid-run
        {
            await admin.OpenAsync();
            var cut = new Npgsql.NpgsqlCommand("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = " +
                "@name AND datname = current_database()", admin);
            cut.Parameters.AddWithValue("name", LiveRelay.ListenerName);
            Assert.Equal(1L, (long)(await cut.ExecuteScalarAsync())!);
        }
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 120, 90,
            "the worker to train past step 120");
        await Wait.UntilAsync(() =>
            Task.FromResult(viewer.Batches.SelectMany(b => b.Points).Any(p => p.Series == "train/loss" && p.Step >= 120)),
            30, "the first viewer to be live past step 120");
        var running = (await WorkersAsync(http)).GetProperty("running").EnumerateArray().Single();
        Assert.Equal(id, running.GetProperty("runId").GetGuid());
        Assert.Equal(host, running.GetProperty("worker").GetString());
        Assert.Equal("cpu", running.GetProperty("device").GetString());
        var beforeRestart = viewer.Points();
        await viewer.DisposeAsync();
        await first.DisposeAsync();

        await using var second = WebNode(connection);
        var baseUrl = second.StartKestrel();
        http = second.Client(baseUrl);
        await using var again = await Viewer.JoinAsync(baseUrl, second.AdminToken, id);
        await again.Ended.Task.WaitAsync(TimeSpan.FromSeconds(120));
        var stored = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var run = await Api.GetRunAsync(http, id);

        Assert.Equal(host, run.GetProperty("worker").GetString());
        Assert.True(viewer.Batches.Count > 3 && again.Batches.Count > 3, "both viewers were live");
        Assert.All(beforeRestart, p => Assert.Equal(p.Value, stored.Single(s => (s.Series, s.Step) == p.Key).Value));
        // a step's later events may be in the next batch
        var seenUpTo = beforeRestart.Keys.Where(k => k.Item1 == "train/loss").Max(k => k.Item2);
        Assert.True(seenUpTo >= 120, $"the first viewer saw up to step {seenUpTo}");
        Assert.All(stored.Where(p => p.Step < seenUpTo), p => Assert.True(beforeRestart.ContainsKey((p.Series, p.Step)),
            $"the first viewer missed {p.Series} at step {p.Step} (no gap across the lost connection)"));
        var after = again.Points();
        Assert.Equal(stored.Count, after.Count);
        Assert.All(stored, p => Assert.Equal(p.Value, after[(p.Series, p.Step)]));
    }

    [Fact]
    public async Task ARunOfAWorkerHostKilledMidRunResumesOnAnotherWorkerWithTheSameHistory()
    {
        var connection = await postgres.CreateDatabaseAsync();
        var checkpoints = Checkpoints();
        await using var web = WebNode(connection);
        var http = web.CreateClient();
        var config = Api.TinyRun(epochs: 12, extra: new { checkpointEvery = 25, correlationEvery = 50 });
        using var one = StartWorker(connection, checkpoints);
        using var another = StartWorker(connection, checkpoints);
        var hosts = new Dictionary<string, AppProcess> { [await AliveAsync(http, one)] = one, [await AliveAsync(http, another)] = another };
        var id = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 60, 90,
            "a worker to train past step 60");
        var firstHost = (await Api.GetRunAsync(http, id)).GetProperty("worker").GetString()!;
        var (first, secondHost) = (hosts[firstHost], hosts.Keys.Single(h => h != firstHost)); // the other idles until the first dies

        var killedAt = (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64();
        var clock = Stopwatch.StartNew();
        await first.KillAsync(); // SIGKILL of the host alone; its training process sees stdin close and exits
        // The newest checkpoint the dead host stored: where the run must resume. (The API's step lags training by up to a
        // metrics interval, so that checkpoint can be past killedAt.) Nothing writes for this run until the second worker.
        var storedCheckpoint = (await Api.GetRunAsync(http, id)).GetProperty("checkpointStep").GetInt64();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("worker").GetString() == secondHost,
            60, "the second worker to take the run over");
        var takenOver = clock.Elapsed;
        await Wait.UntilAsync(async () => (await WorkersAsync(http)).GetProperty("workers").EnumerateArray()
            .Any(w => w.GetProperty("host").GetString() == firstHost && !w.GetProperty("alive").GetBoolean())
            || !(await WorkersAsync(http)).GetProperty("workers").EnumerateArray().Any(w => w.GetProperty("host").GetString() == firstHost),
            60, "the killed worker to read as silent or gone");
        var run = await Api.WaitForStatusAsync(http, id, "Completed", 120);
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
        var uninterrupted = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, uninterrupted, "Completed", 120);

        Assert.Equal(192, run.GetProperty("step").GetInt64());
        Assert.InRange(killedAt, 60, 191);
        Assert.True(takenOver < TimeSpan.FromSeconds(10 + 20), $"taken over after {takenOver} (requeue after 10 s)");
        var resumedAt = long.Parse(Regex.Match(logs, @"resumed from \S+ at step (\d+)").Groups[1].Value);
        Assert.InRange(resumedAt, killedAt - 2 * 25, killedAt + 25);
        Assert.Equal(storedCheckpoint, resumedAt);
        Assert.Equal(Api.Deterministic(await Api.PointsAsync(http, $"/api/runs/{uninterrupted}/metrics")), Api.Deterministic(points));
    }

}
