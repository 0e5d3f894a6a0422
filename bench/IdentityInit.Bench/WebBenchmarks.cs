using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Training;
using IdentityInit.Web;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

/// <summary>Benchmarks of the web lab: the real app on Kestrel (loopback), real SignalR clients, a real PostgreSQL.</summary>
static class WebBenchmarks
{
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, Converters = { new JsonStringEnumConverter() },
    };

    public static async Task<WebApplication> StartAppAsync(string? postgres = null, string queues = "cpu", int cpuWorkers = 1)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "identityinit-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--urls", "http://127.0.0.1:0", "--IdentityInit:DataDir", dataDir, "--Logging:LogLevel:Default", "Warning",
                    "--ConnectionStrings:Postgres", postgres ?? "", "--IdentityInit:Queues", queues,
                    "--IdentityInit:Workers:cpu", cpuWorkers.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.AddIdentityInit();
        var app = builder.Build();
        app.MapIdentityInit();
        await app.StartAsync();
        Token = await AdminTokenAsync(app.Services);
        return app;
    }

    public const string Admin = "bench", Password = "bench-password";

    /// <summary>The benchmarks act as an admin through a personal API token (the last app started made it).</summary>
    public static string Token { get; private set; } = "";

    public static async Task<string> AdminTokenAsync(IServiceProvider services)
    {
        var accounts = services.GetRequiredService<Accounts>();
        if ((await accounts.UsersAsync()).All(u => u.Name != Admin)) await accounts.CreateUserAsync(Admin, Password, LabRoles.Admin);
        return (await accounts.CreateTokenAsync(Admin, "bench", Accounts.WriteScope)).Token!.Token;
    }

    /// <summary>
    /// Debian's Chromium with one 1400x1000 context, signed in to the lab at <paramref name="url"/> as the bench's admin.
    /// </summary>
    public static async Task<SignedInBrowser> SignedInBrowserAsync(string url)
    {
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = "/usr/bin/chromium", Headless = true,
            Args = ["--no-sandbox", "--disable-gpu"]
        });
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 1000 } });
        var login = await context.NewPageAsync();
        await login.GotoAsync($"{url}/login");
        await login.FillAsync("#userName", Admin);
        await login.FillAsync("#password", Password);
        await login.ClickAsync("#sign-in");
        await login.WaitForSelectorAsync("#signed-in-as");
        await login.CloseAsync();
        return new SignedInBrowser(playwright, browser, context);
    }

    public sealed record SignedInBrowser(IPlaywright Playwright, IBrowser Browser, IBrowserContext Context) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Context.DisposeAsync();
            await Browser.DisposeAsync();
            Playwright.Dispose();
        }
    }

    public static HttpClient Client(string url) =>
        new() { BaseAddress = new Uri(url), DefaultRequestHeaders = { Authorization = new("Bearer", Token) } };

    static async Task<HubConnection> ViewerAsync(string url, Guid runId, Action<RunBatch>? onBatch = null)
    {
        var hub = new HubConnectionBuilder().WithUrl(url + "/hubs/runs", o => o.AccessTokenProvider = () => Task.FromResult<string?>(Token))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Json).Build();
        hub.On<RunBatch>("Batch", b => onBatch?.Invoke(b));
        await hub.StartAsync();
        await hub.InvokeAsync<RunHistory>("Join", runId, null);
        return hub;
    }

    /// <summary>Engine event published -> point received by a SignalR client on loopback (persisted first), p50/p95.</summary>
    public static async Task LatencyAsync(int steps)
    {
        await using var app = await StartAppAsync();
        var url = app.Urls.First();
        var stream = app.Services.GetRequiredService<RunStream>();
        var runId = Guid.NewGuid();
        await using (var context = app.Services.GetRequiredService<AppDb>().Create())
        {
            context.Runs.Add(new Run
            {
                Id = runId, Name = "latency", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                Breakers = "none", Dataset = "synthetic", Queue = "cpu", CreatedAt = DateTime.UtcNow
            });
            await context.SaveChangesAsync();
        }
        var published = new ConcurrentDictionary<long, long>();
        var latencies = new ConcurrentBag<double>();
        await using var viewer = await ViewerAsync(url, runId, batch =>
        {
            var now = Stopwatch.GetTimestamp();
            foreach (var p in batch.Points.Where(p => p.Series == "train/loss"))
                if (published.TryGetValue(p.Step, out var sent)) latencies.Add(Stopwatch.GetElapsedTime(sent, now).TotalMilliseconds);
        });
        // A real training run drives the events; each StepMetrics is stamped as the trainer hands it over.
        var config = new ExperimentConfig
        {
            Dataset = "synthetic", Depth = 7, Widen = 1, BatchSize = 32, TrainLimit = 2048, Epochs = 100,
            MaxSteps = steps, MetricsEvery = 1, CorrelationEvery = 100, Schedule = "constant"
        };
        var summary = await Task.Factory.StartNew(() => Trainer.Run(config, new Relay(e =>
        {
            if (e is StepMetrics m) published[m.Step] = Stopwatch.GetTimestamp();
            stream.Publish(runId, e);
        }), default), TaskCreationOptions.LongRunning);
        await Task.Delay(1000);
        if (latencies.IsEmpty) throw new InvalidOperationException($"no point reached the client (run {summary.Status}: {summary.Error})");
        var sorted = latencies.Order().ToList();
        Console.WriteLine($"latency trainer -> SignalR client: n={sorted.Count}, p50 {sorted[sorted.Count / 2]:F0} ms, p95 " +
            $"{sorted[(int)(sorted.Count * 0.95)]:F0} ms, max {sorted[^1]:F0} ms (goal p95 <= 100 ms; rounds at most every " +
            $"{RunStream.FlushGap.TotalMilliseconds} ms)");
    }

    /// <summary>Training throughput of the same queued run with 0 and with N SignalR viewers joined, interleaved.</summary>
    public static async Task ViewersAsync(int viewers, int pairs)
    {
        await using var app = await StartAppAsync();
        var url = app.Urls.First();
        using var http = Client(url);
        var request = new
        {
            preset = "constnet-deterministic",
            config = new
            {
                dataset = "fashion-mnist", depth = 10, widen = 1, trainLimit = 12800, testLimit = 500, epochs = 1,
                metricsEvery = 1, correlationEvery = 50
            }
        };
        double with = 0, without = 0;
        for (var pair = 0; pair < pairs; pair++)
            foreach (var n in new[] { 0, viewers })
            {
                var response = await http.PostAsJsonAsync("/api/runs", request);
                var id = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement[0].GetProperty("id").GetGuid();
                var hubs = new List<HubConnection>();
                for (var i = 0; i < n; i++) hubs.Add(await ViewerAsync(url, id));
                while (JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}")).RootElement.GetProperty("status")
                    .GetString() is "Queued" or "Running")
                    await Task.Delay(200);
                var points = JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}/metrics?series=throughput")).RootElement;
                var rates = points.EnumerateArray().Skip(5).Select(p => p.GetProperty("value").GetDouble()).Order().ToList();
                var median = rates[rates.Count / 2];
                Console.WriteLine($"  pair {pair + 1}, {n,3} viewers: median {median:F1} img/s over {rates.Count} steps");
                if (n == 0) without += median; else with += median;
                foreach (var hub in hubs) await hub.DisposeAsync();
            }
        Console.WriteLine($"throughput with {viewers} viewers / without: {with / without:F3} (goal >= 0.99)");
    }

    /// <summary>Metric-point ingest into PostgreSQL: binary COPY (what the app uses) against EF Core SaveChanges.</summary>
    public static async Task IngestAsync(string postgres, int rows)
    {
        await using var app = await StartAppAsync(postgres);
        var db = app.Services.GetRequiredService<AppDb>();
        var runId = Guid.NewGuid();
        await using (var context = db.Create())
        {
            context.Runs.Add(new Run
            {
                Id = runId, Name = "ingest", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                Breakers = "none", Dataset = "synthetic", Queue = "cpu", CreatedAt = DateTime.UtcNow
            });
            await context.SaveChangesAsync();
        }
        List<MetricPoint> Points(string prefix) =>
            [.. Enumerable.Range(0, rows)
                .Select(i => new MetricPoint { RunId = runId, Series = $"{prefix}/{i % 20}", Step = i / 20, Value = i * 0.5 })];
        double copy = 0, ef = 0;
        for (var round = 0; round < 2; round++)
        {
            var batch = Points($"copy{round}");
            var clock = Stopwatch.StartNew();
            foreach (var chunk in batch.Chunk(2000)) await db.WritePointsAsync(chunk);
            copy += rows / clock.Elapsed.TotalSeconds;
            batch = Points($"ef{round}");
            clock.Restart();
            foreach (var chunk in batch.Chunk(2000))
            {
                await using var context = db.Create();
                context.Points.AddRange(chunk);
                await context.SaveChangesAsync();
            }
            ef += rows / clock.Elapsed.TotalSeconds;
        }
        Console.WriteLine($"ingest into PostgreSQL, {rows} rows in batches of 2000: COPY {copy / 2:F0} rows/s, EF SaveChanges " +
            $"{ef / 2:F0} rows/s, ratio {copy / ef:F1}x");
    }

    /// <summary>
    /// Across processes and nodes on PostgreSQL: a real training child process -> its host (a worker app instance) persists
    /// and NOTIFYs -> a second app instance (the web node, no queues) LISTENs and pushes -> a SignalR client. Stamped when
    /// the host reads the child's line (the pipe itself adds microseconds), p50/p95. With <paramref name="runs"/> &gt; 1 the
    /// worker also streams runs - 1 synthetic runs (a step every 20 ms each, one viewer each) while the real one trains:
    /// the latency of every run's points counts.
    /// </summary>
    public static async Task RelayAsync(string postgres, int steps, int runs = 1)
    {
        await using var web = await StartAppAsync(postgres, queues: "");
        await using var worker = await StartAppAsync(postgres, queues: "");
        var ids = Enumerable.Range(0, runs).Select(_ => Guid.NewGuid()).ToList();
        await using (var context = worker.Services.GetRequiredService<AppDb>().Create())
        {
            foreach (var id in ids)
                context.Runs.Add(new Run
                {
                    Id = id, Name = "relay", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                    Breakers = "none", Dataset = "synthetic", Queue = "cpu", CreatedAt = DateTime.UtcNow
                });
            await context.SaveChangesAsync();
        }
        var stream = worker.Services.GetRequiredService<RunStream>();
        var published = ids.ToDictionary(id => id, _ => new ConcurrentDictionary<long, long>());
        var latencies = new ConcurrentBag<double>();
        var received = ids.ToDictionary(id => id, _ => new ConcurrentDictionary<long, int>()); // step -> times delivered
        var viewers = new List<HubConnection>();
        foreach (var id in ids)
            viewers.Add(await ViewerAsync(web.Urls.First(), id, batch =>
            {
                var now = Stopwatch.GetTimestamp();
                foreach (var p in batch.Points.Where(p => p.Series == "train/loss"))
                {
                    received[batch.RunId].AddOrUpdate(p.Step, 1, (_, n) => n + 1);
                    if (published[batch.RunId].TryGetValue(p.Step, out var sent)) latencies.Add(Stopwatch.GetElapsedTime(sent,
                        now).TotalMilliseconds);
                }
            }));
        using var stop = new CancellationTokenSource();
        var synthetic = ids.Skip(1).Select(id => Task.Run(async () =>
        {
            for (long step = 1; !stop.IsCancellationRequested; step++)
            {
                published[id][step] = Stopwatch.GetTimestamp();
                stream.Publish(id, new StepMetrics(step, 0, 1.0 / step, 0.5, 0.1, 1000, 20, [], 0));
                await Task.Delay(20);
            }
        })).ToList();
        var config = new ExperimentConfig
        {
            Dataset = "synthetic", Depth = 7, Widen = 1, BatchSize = 32, TrainLimit = 2048, Epochs = 100,
            MaxSteps = steps, MetricsEvery = 1, CorrelationEvery = 100, Schedule = "constant"
        };
        var checkpoints = Path.Combine(Path.GetTempPath(), "identityinit-relay-" + Guid.NewGuid().ToString("N")[..8]);
        var summary = await RunProcess.RunAsync(config, new Relay(e =>
        {
            if (e is StepMetrics m) published[ids[0]][m.Step] = Stopwatch.GetTimestamp();
            stream.Publish(ids[0], e);
        }), new RunProcess.ChildOptions(checkpoints, Path.GetTempPath(), -1, null, TimeSpan.FromSeconds(30)), default);
        stop.Cancel();
        await Task.WhenAll(synthetic);
        await Task.Delay(1500);
        foreach (var v in viewers) await v.DisposeAsync();
        if (latencies.IsEmpty) throw new InvalidOperationException($"no point reached the client (run {summary.Status}: {summary.Error})");
        var sorted = latencies.Order().ToList();
        Console.WriteLine($"latency child process -> host -> PostgreSQL NOTIFY -> other web node -> SignalR client, {runs} run(s) " +
            $"streaming: n={sorted.Count}, " +
                          $"p50 {sorted[sorted.Count / 2]:F0} ms, p95 {sorted[(int)(sorted.Count * 0.95)]:F0} ms, max {sorted[^1]:F0} ms " +
                              "(goal p95 <= 100 ms)");
        // Every point published reached its viewer once: a faster relay must not be faster by dropping batches.
        var missing = ids.Sum(id => published[id].Keys.Count(step => !received[id].ContainsKey(step)));
        var twice = ids.Sum(id => received[id].Values.Count(n => n > 1));
        Console.WriteLine($"  points published {ids.Sum(id => published[id].Count)}, not delivered {missing}, delivered twice {twice}");
    }

    /// <summary>The same run trained in this process (what the app did before) and in a child process, interleaved A B A B.</summary>
    public static async Task ChildAsync(int steps, int pairs)
    {
        TorchRuntime.Initialize();
        var config = new ExperimentConfig
        {
            Dataset = "fashion-mnist", Depth = 10, Widen = 1, Epochs = 100, MaxSteps = steps,
            Schedule = "constant", TestLimit = 500, CheckpointEvery = 0, Threads = 2
        };
        var dataDir = new IdentityInit.Training.Data.DatasetCatalog().DataDir;
        double inProcess = 0, child = 0, inWall = 0, childWall = 0;
        for (var pair = 0; pair < pairs; pair++)
        {
            var rates = new List<double>();
            var clock = Stopwatch.StartNew();
            await Task.Factory.StartNew(() =>
                Trainer.Run(config, new Relay(e => { if (e is StepMetrics m && m.Step > 20) rates.Add(m.ImagesPerSecond); }), default,
                new RunOptions(Catalog: new IdentityInit.Training.Data.DatasetCatalog(dataDir))), TaskCreationOptions.LongRunning);
            inWall += clock.Elapsed.TotalSeconds;
            inProcess += rates.Order().ElementAt(rates.Count / 2);
            rates.Clear();
            clock.Restart();
            var checkpoints = Path.Combine(Path.GetTempPath(), "identityinit-child-" + Guid.NewGuid().ToString("N")[..8]);
            var summary = await RunProcess.RunAsync(config,
                new Relay(e => { if (e is StepMetrics m && m.Step > 20) rates.Add(m.ImagesPerSecond); }),
                new RunProcess.ChildOptions(checkpoints, dataDir, -1, null, TimeSpan.FromSeconds(30)), default);
            childWall += clock.Elapsed.TotalSeconds;
            if (summary.Status != RunStatus.Completed) throw new InvalidOperationException(summary.Error);
            child += rates.Order().ElementAt(rates.Count / 2);
            Console.WriteLine($"  pair {pair + 1}: in-process median {inProcess / (pair + 1):F1} img/s, child {child / (pair + 1):F1} " +
                "img/s (running means)");
        }
        Console.WriteLine($"throughput child process / in-process: {child / inProcess:F3} (goal >= 0.99); wall time incl. start-up for " +
            $"{steps} steps: " +
                          $"in-process {inWall / pairs:F1} s, child {childWall / pairs:F1} s");
    }

    /// <summary>
    /// CPU of a web node (its own process, no queues) relaying 10 runs that a worker host (this process, 10 slots) trains
    /// at once, each with a SignalR viewer; measured from /proc over a window while all 10 stream.
    /// </summary>
    public static async Task WebCpuAsync(string postgres, int runs, int seconds)
    {
        var port = 20000 + Random.Shared.Next(10000);
        var start = new ProcessStartInfo("dotnet",
            [Path.Combine(AppContext.BaseDirectory, "IdentityInit.Web.dll"), "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = AppContext.BaseDirectory, RedirectStandardOutput = true, RedirectStandardError = true,
            Environment = { ["ConnectionStrings__Postgres"] = postgres, ["IdentityInit__Queues"] = "",
                ["Logging__LogLevel__Default"] = "Warning" },
        };
        using var webNode = Process.Start(start)!;
        webNode.BeginOutputReadLine();
        webNode.BeginErrorReadLine();
        try
        {
            using var probe = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            for (var ready = false; !ready;)
            {
                try { ready = (await probe.GetAsync("/healthz")).IsSuccessStatusCode; }
                catch (HttpRequestException) { await Task.Delay(200); }
            }
            var builder = WebApplication.CreateBuilder(new WebApplicationOptions
            {
                Args = ["--urls", "http://127.0.0.1:0", "--Logging:LogLevel:Default", "Warning", "--ConnectionStrings:Postgres", postgres,
                        "--IdentityInit:Queues", "cpu", "--IdentityInit:Workers:cpu", runs.ToString(),
                        "--IdentityInit:DataDir",
                            Path.Combine(Path.GetTempPath(), "identityinit-webcpu-" + Guid.NewGuid().ToString("N")[..8])],
                ContentRootPath = AppContext.BaseDirectory,
            });
            builder.AddTrainingHost();
            builder.Services.AddLabAccounts(); // only to make the bench's token in the shared store
            await using var worker = builder.Build();
            await worker.StartAsync();
            Token = await AdminTokenAsync(worker.Services);
            using var http = Client($"http://127.0.0.1:{port}");
            var request = new
            {
                preset = "constnet-nondeterministic",
                config = new
                {
                    dataset = "synthetic", depth = 7, widen = 1, trainLimit = 1024, testLimit = 64, batchSize = 32, epochs = 200,
                    threads = 1, metricsEvery = 1, correlationEvery = 20
                }
            };
            var ids = new List<Guid>();
            for (var i = 0; i < runs; i++)
            {
                var response = await http.PostAsJsonAsync("/api/runs", request);
                ids.Add(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement[0].GetProperty("id").GetGuid());
            }
            var points = 0L;
            var hubs = new List<HubConnection>();
            foreach (var id in ids) hubs.Add(await ViewerAsync(http.BaseAddress!.ToString().TrimEnd('/'), id,
                b => Interlocked.Add(ref points, b.Points.Count)));
            async Task<int> RunningAsync() =>
                JsonDocument.Parse(await http.GetStringAsync("/api/workers")).RootElement.GetProperty("running").GetArrayLength();
            while (await RunningAsync() < runs) await Task.Delay(500);
            await Task.Delay(3000); // past start-up
            var (cpu0, points0, clock) = (CpuSeconds(webNode.Id), Interlocked.Read(ref points), Stopwatch.StartNew());
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            var (cpu, relayed) = (CpuSeconds(webNode.Id) - cpu0, Interlocked.Read(ref points) - points0);
            var stillRunning = await RunningAsync();
            Console.WriteLine($"web node CPU relaying {runs} live runs (each with a viewer; {stillRunning} still training at the end): " +
                              $"{100 * cpu / clock.Elapsed.TotalSeconds:F1} % of one core over {clock.Elapsed.TotalSeconds:F0} s, " +
                                  $"{relayed / clock.Elapsed.TotalSeconds:F0} points/s relayed");
            foreach (var hub in hubs) await hub.DisposeAsync();
            foreach (var id in ids) await http.PostAsync($"/api/runs/{id}/cancel", null);
            await Task.Delay(3000);
            await worker.StopAsync();
        }
        finally
        {
            webNode.Kill(entireProcessTree: true);
        }
    }

    /// <summary>utime + stime of a process, from /proc/pid/stat (clock ticks of 1/100 s on Linux).</summary>
    static double CpuSeconds(int pid)
    {
        var fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;
    }

    sealed class Relay(Action<RunEvent> handle) : IProgress<RunEvent>
    {
        public void Report(RunEvent value) => handle(value);
    }
}
