using System.Diagnostics;
using System.Text;
using IdentityInit.Training;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

/// <summary>
/// Paper-scale loading: one WRN-16-10 ConstNet run of 117,300 steps at the default cadence (metrics every 10 steps,
/// correlations every 200, 17 layers) and 10,000 other runs, on SQLite or PostgreSQL. Measures the run page in Chromium
/// (open to first chart drawn; bytes received over HTTP and the circuit's WebSocket until every chart is drawn) against
/// the whole history (what the page sent before downsampling), and the runs list's first page through the API.
/// </summary>
static class LoadingBenchmark
{
    const int Steps = 117_300, Layers = 17, Runs = 10_000;

    public static async Task RunAsync(string? postgres)
    {
        await using var app = await WebBenchmarks.StartAppAsync(postgres);
        var url = app.Urls.First();
        var store = postgres is null ? "SQLite" : "PostgreSQL";
        var (runId, points) = await SeedAsync(app.Services);
        using var http = WebBenchmarks.Client(url);

        // The runs list: first page of 100 through the API, warm, median of 7.
        await http.GetStringAsync("/api/runs");
        var list = new List<double>();
        for (var i = 0; i < 7; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await http.GetStringAsync("/api/runs");
            list.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        var wholeHistory = (await http.GetByteArrayAsync($"/api/runs/{runId}/metrics")).Length;

        // Where a run page's time goes on the server: the series' spans, then each chart's buckets (warm, median of 3).
        var queries = app.Services.GetRequiredService<RunQueries>();
        double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        async Task<double> TimeAsync(Func<Task> action)
        {
            var times = new List<double>();
            for (var i = 0; i < 4; i++)
            {
                var started = Stopwatch.GetTimestamp();
                await action();
                if (i > 0) times.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            return Median(times);
        }
        var server = new List<string> { $"spans {await TimeAsync(() => queries.SpansAsync(runId)):F0} ms" };
        // What prerendering the page reads besides the charts: the Symmetry tab's table and the heatmap's steps.
        server.Add($"symmetry {await TimeAsync(() => queries.SymmetryAsync(runId)):F0} ms");
        server.Add($"heatmap-steps {await TimeAsync(() => queries.HeatmapStepsAsync(runId)):F0} ms");
        // Per card as the page's HTTP fetch reads it (the card's own spans, then its buckets).
        foreach (var spec in ChartSpec.All)
            server.Add($"{spec.Key} " +
                $"{await TimeAsync(() => queries.ChartAsync(runId, spec.SeriesPrefixes, s => spec.Label(s) is not null)):F0} ms");

        await using var browser = await WebBenchmarks.SignedInBrowserAsync(url);
        var signedIn = browser.Context;
        // Milestones inside the page, from navigation start: HTML parsed, the circuit live (the layout's #app-ready marker).
        await signedIn.AddInitScriptAsync("""
            new MutationObserver(() => {
              if (!window.__ready && document.querySelector("#app-ready[data-ready=true]")) window.__ready = performance.now();
              const drawn = [...document.querySelectorAll('.chart-info')]
                .filter(e => /^(showing )?\d+ (of \d+ )?points/.test(e.textContent)).length;
              if (!window.__drawn && drawn > 0) window.__drawn = performance.now();
              if (!window.__all && drawn >= 9) window.__all = performance.now();
            }).observe(document, { subtree: true, childList: true, attributes: true });
            window.__long = [];
            new PerformanceObserver(l => {
              for (const e of l.getEntries()) window.__long.push(`${e.startTime.toFixed(0)}+${e.duration.toFixed(0)}`);
            })
              .observe({ type: "longtask", buffered: true });
            """);
        var opens = new List<(double FirstChart, double AllCharts, long Bytes)>();
        var milestones = new List<string>();
        for (var i = 0; i < 3; i++) // the first is cold (JIT, SQLite cache); report each
        {
            var page = await signedIn.NewPageAsync();
            long bytes = 0;
            page.WebSocket += (_, ws) => ws.FrameReceived += (_, f) =>
                Interlocked.Add(ref bytes, f.Binary?.Length ?? Encoding.UTF8.GetByteCount(f.Text ?? ""));
            // Bodies as sent (compressed where they were): a compressed API answer is chunked, without a content-length.
            page.RequestFinished += async (_, r) => Interlocked.Add(ref bytes, (await r.SizesAsync()).ResponseBodySize);
            var started = Stopwatch.GetTimestamp();
            // Not waiting for the load event: a chart drawn before it would otherwise be timed at it (it was, until
            // 2026-12-07: every earlier "first chart" here is at least the page's load event).
            await page.GotoAsync($"{url}/runs/{runId}", new() { WaitUntil = WaitUntilState.Commit });
            // A chart is drawn when its caption counts points ("1000 points", "showing 1000 of 11730 points"): the
            // placeholder "waiting for the first points" once matched /points/ and made the page look ready before any data.
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.chart-info')].some(e => /^(showing )?\\d+ (of \\d+ " +
                ")?points/.test(e.textContent))", null, new() { Timeout = 120_000, PollingInterval = 10 });
            var firstPolled = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('.chart-info')].filter(e => /^(showing )?\\d+ (of \\d+ " +
                ")?points/.test(e.textContent)).length >= 9", null, new() { Timeout = 120_000, PollingInterval = 10 });
            var allPolled = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            await Task.Delay(1000); // anything still arriving counts
            // The HTML's first and last byte (the server prerendering the page), parsed, and the circuit live.
            var marks = await page.EvaluateAsync<double[]>("""
                () => { const n = performance.getEntriesByType('navigation')[0];
                        return [n.domContentLoadedEventEnd, window.__ready || -1, n.requestStart, n.responseStart, n.responseEnd]; }
                """);
            // Each card's history fetch: started, first byte, done (ms from navigation start), as the browser timed them.
            var fetches = await page.EvaluateAsync<string>("""
                () => performance.getEntriesByType('resource').filter(e => e.name.includes('/charts/'))
                  .map(e => `${e.name.split('/').pop()} ` +
                            `${e.startTime.toFixed(0)}/${e.responseStart.toFixed(0)}/${e.responseEnd.toFixed(0)}`)
                  .join(', ')
                """);
            var longTasks = await page.EvaluateAsync<string>("() => window.__long.join(' ')");
            // When the captions changed, from navigation start (the page's own clock; polling from here adds its latency).
            var drawn = await page.EvaluateAsync<double[]>("() => [window.__drawn || -1, window.__all || -1, " +
                "performance.getEntriesByType('navigation')[0].loadEventEnd]");
            var (first, all) = (drawn[0], drawn[1]);
            milestones.Add($"polled first/all {firstPolled:F0}/{allPolled:F0} ms, load event {drawn[2]:F0} ms; main thread's long tasks " +
                $"(start+ms): {longTasks}; HTML requested {marks[2]:F0} ms, first byte {marks[3]:F0} ms, last byte {marks[4]:F0} ms, " +
                $"parsed {marks[0]:F0} ms, " +
                           $"circuit live {marks[1]:F0} ms" +
                               (fetches.Length > 0 ? $"; card fetches (start/first byte/end): {fetches}" : ""));
            opens.Add((first, all, Interlocked.Read(ref bytes)));
            await page.CloseAsync();
        }
        var warm = opens.Skip(1).ToList();
        Console.WriteLine($"{store}: one run of {points:N0} points ({Steps:N0} steps, {Layers} layers) + {Runs:N0} runs");
        foreach (var (o, k) in opens.Select((o, k) => (o, k)))
            Console.WriteLine($"  open {k + 1}{(k == 0 ? " (cold)" : "")}: {milestones[k]}, first chart {o.FirstChart:F0} ms, all 9 " +
                $"charts {o.AllCharts:F0} ms, {o.Bytes / 1e6:F2} MB received");
        Console.WriteLine($"  run page, warm: first chart {warm.Average(o => o.FirstChart):F0} ms (goal < 1000), all " +
            $"{warm.Average(o => o.AllCharts):F0} ms (goal < 1500), " +
                          $"{warm.Average(o => o.Bytes) / 1e6:F2} MB (goal < 1); " +
                          $"whole history as JSON {wholeHistory / 1e6:F2} MB: ratio {warm.Average(o => o.Bytes) / wholeHistory:F3}");
        Console.WriteLine($"  server side, warm medians: {string.Join(", ", server)}");
        Console.WriteLine($"  runs list first page (100 of {Runs + 1:N0}), warm median {list.Order().ElementAt(3):F0} ms (goal < 300)");
    }

    static async Task<(Guid Run, long Points)> SeedAsync(IServiceProvider services)
    {
        var db = services.GetRequiredService<AppDb>();
        var now = DateTime.UtcNow;
        await using (var context = db.Create())
        {
            context.ChangeTracker.AutoDetectChangesEnabled = false;
            for (var i = 0; i < Runs; i++)
            {
                var config = new ExperimentConfig { Name = $"run {i}", Seed = i, Depth = 16, Dropout = i % 3 == 0 ? 0.01 : 0 };
                context.Runs.Add(new Run
                {
                    Id = Guid.NewGuid(), Name = config.Name, ConfigJson = ConfigOverlay.ToJson(config), Architecture = "constnet",
                    Init = "const",
                    Breakers = "none", Dataset = "cifar10", Queue = "cpu", Seed = i, Status = RunStatus.Completed,
                    CreatedAt = now.AddSeconds(-Runs + i),
                    BestTestAccuracy = i % 100 / 100.0, Tags = "bench",
                });
            }
            await context.SaveChangesAsync();
        }
        var paper = new ExperimentConfig { Name = "constnet paper scale", Epochs = 300 };
        var id = Guid.NewGuid();
        await using (var context = db.Create())
        {
            context.Runs.Add(new Run
            {
                Id = id, Name = paper.Name, ConfigJson = ConfigOverlay.ToJson(paper), Architecture = "constnet", Init = "const",
                Breakers = "none",
                Dataset = "cifar10", Queue = "cpu", Status = RunStatus.Completed, Step = Steps, TotalSteps = Steps, CreatedAt = now,
            });
            await context.SaveChangesAsync();
        }
        var layers = Enumerable.Range(0, Layers).Select(l => $"block{l / 6}.layer.{l % 6}.conv").ToArray();
        var random = new Random(1);
        var batch = new List<MetricPoint>();
        long total = 0;
        async Task Add(string series, long step, double value)
        {
            batch.Add(new MetricPoint { RunId = id, Series = series, Step = step, Value = value });
            if (batch.Count < 50_000) return;
            await db.WritePointsAsync(batch);
            total += batch.Count;
            batch = [];
        }
        for (long step = 10; step <= Steps; step += 10)
        {
            var progress = (double)step / Steps;
            await Add("train/loss", step, 2.3 * Math.Exp(-3 * progress) + 0.1 * random.NextDouble());
            await Add("train/acc", step, 1 - Math.Exp(-3 * progress) * 0.9);
            await Add("lr", step, 0.03);
            await Add("throughput", step, 800 + random.NextDouble() * 50);
            await Add("step_ms", step, 160 + random.NextDouble() * 10);
            await Add("fingerprint", step, random.NextDouble());
            await Add("time", step, 1.7e9 + step * 0.16);
            foreach (var layer in layers) await Add("spread/" + layer, step, 1e-6 * progress * (1 + random.NextDouble()));
        }
        for (long step = 0; step <= Steps; step += 200)
        {
            foreach (var layer in layers)
            {
                await Add("wcorr.fwd/" + layer, step, 1 - 0.5 * random.NextDouble() * step / Steps);
                await Add("wcorr.bwd/" + layer, step, 1 - 0.5 * random.NextDouble() * step / Steps);
                await Add("wcorr.kernel/" + layer, step, 1 - 0.5 * random.NextDouble() * step / Steps);
                await Add("acorr/" + layer, step, 1 - 0.3 * random.NextDouble() * step / Steps);
                await Add("aspread/" + layer, step, 1e-3 * random.NextDouble() * step / Steps);
            }
            await Add("diversity", step, -random.NextDouble() * step / Steps);
        }
        for (var epoch = 1; epoch <= 300; epoch++)
        {
            long step = epoch * 391;
            await Add("epoch/index", step, epoch);
            await Add("epoch/train_loss", step, 2.3 * Math.Exp(-3.0 * epoch / 300));
            await Add("epoch/train_acc", step, 1 - 0.9 * Math.Exp(-3.0 * epoch / 300));
            await Add("epoch/test_loss", step, 2.3 * Math.Exp(-2.5 * epoch / 300));
            await Add("epoch/test_acc", step, 0.9 - 0.8 * Math.Exp(-3.0 * epoch / 300));
            await Add("epoch/best_test_acc", step, 0.9 - 0.8 * Math.Exp(-3.0 * epoch / 300));
        }
        await db.WritePointsAsync(batch);
        total += batch.Count;
        return (id, total);
    }
}
