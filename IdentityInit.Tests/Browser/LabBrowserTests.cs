using IdentityInit.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace IdentityInit.Tests.Browser;

public sealed class LabBrowserTests
{
    static ILocator Input(IPage page, string id) => page.Locator($"input#{id}, #{id} input").First;

    static async Task Choose(IPage page, string selectId, string item)
    {
        await page.Locator($".mud-select:has(#{selectId})").First.ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { Name = item, Exact = true }).First.ClickAsync();
        await Assertions.Expect(page.Locator(".mud-popover-open")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator($"#{selectId}")).ToHaveValueAsync(item);
    }

    static async Task Fill(IPage page, string id, string value)
    {
        var input = Input(page, id);
        await input.FillAsync(value);
        await input.PressAsync("Tab");
        await Assertions.Expect(input).ToHaveValueAsync(value);
    }

    /// <summary>A new page at <paramref name="url"/>, once its Blazor circuit is live (tests act only after prerendering).</summary>
    static async Task<IPage> OpenAsync(IBrowserContext context, string url)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync(url);
        await ReadyAsync(page);
        return page;
    }

    static Task ReadyAsync(IPage page) =>
        page.WaitForSelectorAsync("#app-ready[data-ready=true]", new() { State = WaitForSelectorState.Attached });

    static readonly Dictionary<string, string?> TwoWorkers = new() { ["IdentityInit:Workers:cpu"] = "2" };

    [Fact]
    public async Task AResearcherConfiguresQueuesWatchesAndSharesARunInTheBrowser()
    {
        Assertions.SetDefaultExpectTimeout(15_000); // 2 busy cores: give the circuit time to answer
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();
        var console = new System.Collections.Concurrent.ConcurrentQueue<string>(); // events arrive on Playwright's thread
        page.Console += (_, m) => console.Enqueue($"{m.Type}: {m.Text}");
        page.PageError += (_, e) => console.Enqueue("pageerror: " + e);
        string Shot(string name) => Path.Combine(Chromium.Artifacts, name + ".png");

        await page.GotoAsync(new Uri(baseUrl, "/runs/new?preset=constnet-nondeterministic").ToString());
        await ReadyAsync(page);
        var nameBox = await page.Locator("#field-name").BoundingBoxAsync(); // a preset's long description once squeezed it to nothing
        Assert.True(nameBox is { Width: > 150 }, $"run name field is {nameBox?.Width} px wide");
        await Assertions.Expect(page.Locator(".mud-input-helper-text",
            new() { HasTextString = "no breaker but the GPU's own non-determinism" }))
            .ToBeVisibleAsync(); // the chosen preset's description, under its select
        await Choose(page, "field-dataset", "synthetic");
        await Fill(page, "field-depth", "8");
        await Assertions.Expect(page.Locator(".form-error[data-field='config.depth']")).ToContainTextAsync("depth must be 3n + 4");
        await page.ScreenshotAsync(new() { Path = Shot("new-run-invalid"), FullPage = true });
        Assert.True(await page.Locator("#submit-run").IsDisabledAsync());
        await Fill(page, "field-depth", "7");
        await Fill(page, "field-trainlimit", "2048");
        await Fill(page, "field-testlimit", "128");
        await Fill(page, "field-batchsize", "32");
        await Fill(page, "field-epochs", "25");
        await Fill(page, "field-correlationevery", "40");
        await page.WaitForSelectorAsync("#submit-run:not([disabled])");
        await page.ScreenshotAsync(new() { Path = Shot("new-run"), FullPage = true });
        await page.Locator("#submit-run").ClickAsync();

        // Blazor navigates inside the circuit (no page load): wait for the run page itself.
        await Assertions.Expect(page.Locator("#run-name")).ToBeVisibleAsync(new() { Timeout = 60_000 });
        var runUrl = page.Url;
        Assert.Matches("/runs/[0-9a-f]{8}-[0-9a-f]{4}-", runUrl);
        var lossInfo = page.Locator("[id$='-loss-info']");
        await Assertions.Expect(lossInfo).ToContainTextAsync("points", new() { Timeout = 60_000 });
        var before = PointCount(await lossInfo.InnerTextAsync());
        await Assertions.Expect(page.Locator("#run-progress")).ToContainTextAsync("ETA", new() { Timeout = 60_000 });
        await page.WaitForFunctionAsync($"() => {{ const t = document.querySelector(\"[id$='-loss-info']\").textContent; return " +
            $"parseInt(t) > {before}; }}",
            null, new() { Timeout = 60_000 });
        await page.ScreenshotAsync(new() { Path = Shot("run-live"), FullPage = true });

        // Chart controls: the rho toggle relabels the axis; hover values keep small numbers (spreads ~1e-12) readable.
        var wcorr = page.Locator("div.mud-paper", new() { Has = page.Locator("[data-chart='wcorr-fwd']") });
        const string wcorrId = "document.querySelector(\"[data-chart='wcorr-fwd']\").id";
        Assert.Equal("-log|rho|", await page.EvaluateAsync<string>($"() => iiCharts.yLabel({wcorrId})"));
        await wcorr.GetByText("rho", new() { Exact = true }).ClickAsync();
        await page.WaitForFunctionAsync($"() => iiCharts.yLabel({wcorrId}) === 'rho'", null, new() { Timeout = 15_000 });
        var spread = page.Locator("[data-chart='spread']");
        await spread.ScrollIntoViewIfNeededAsync();
        var box = (await spread.Locator("canvas").First.BoundingBoxAsync())!;
        await page.Mouse.MoveAsync(box.X + box.Width * 0.9f, box.Y + box.Height / 2);
        var hover = await page.Locator("[data-chart='spread'] .u-legend .u-value").AllInnerTextsAsync();
        Assert.Contains(hover, v => System.Text.RegularExpressions.Regex.IsMatch(v, @"^\d\.\d{3}e-\d+$"));

        // The activation heatmap: the matrix with channel axes and a colour bar from +1 (red) to -1 (blue).
        await page.GetByRole(AriaRole.Tab, new() { Name = "Activation heatmap" }).ClickAsync();
        await Assertions.Expect(page.Locator("#heatmap-caption")).ToContainTextAsync(" at step ");
        var heat = await page.EvaluateAsync<int[][]>("""
            () => {
              const canvas = document.querySelector("canvas.heatmap"), ctx = canvas.getContext("2d");
              const { matrix: [mx, my, mw, mh], bar: [bx, by, bw, bh] } = iiCharts.heatLayout(canvas.id);
              const at = (x, y) => [...ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)];
              return [at(bx + bw / 2, by + 1), at(bx + bw / 2, by + (bh - 1) / 2), at(bx + bw / 2, by + bh - 2),
                      at(mx + mw / 2, my + mh / 2), [Number(canvas.dataset.size)]];
            }
            """);
        Assert.True(heat[0] is [> 240, < 20, < 20], $"bar top {string.Join(",", heat[0])}");      // +1 red
        Assert.True(heat[1] is [> 240, > 240, > 240], $"bar middle {string.Join(",", heat[1])}"); // 0 white
        Assert.True(heat[2] is [< 20, < 20, > 240], $"bar bottom {string.Join(",", heat[2])}");   // -1 blue
        // a deterministic ConstNet: identical channels
        Assert.True(heat[3] is [> 240, < 20, < 20], $"matrix {string.Join(",", heat[3])}");
        Assert.InRange(heat[4][0], 2, 64);
        await page.Locator("canvas.heatmap").ScreenshotAsync(new() { Path = Shot("heatmap") });

        // The Signal tab: signal propagation against depth beside diversity. ConstNet at init propagates (every hidden
        // layer carries signal) with identical channels (activation correlation 1 in every layer).
        await page.GetByRole(AriaRole.Tab, new() { Name = "Signal" }).ClickAsync();
        const string forwardId = "document.querySelector(\"[data-signal-chart='forward']\").id";
        const string acorrId = "document.querySelector(\"[data-signal-chart='acorr']\").id";
        await page.WaitForFunctionAsync($"() => iiCharts.drawn({forwardId}, 'step 0') !== null");
        var forward = await page.EvaluateAsync<double?[]>($"() => iiCharts.values({forwardId}, 'step 0')[1]");
        var correlation = await page.EvaluateAsync<double?[]>($"() => iiCharts.values({acorrId}, 'step 0')[1]");
        var layerNames = await page.EvaluateAsync<string[]>($"() => iiCharts.xNames({forwardId})");
        Assert.Equal("conv1", layerNames[0]); // in depth order, not alphabetical
        Assert.Equal("fc", layerNames[^1]);
        Assert.All(forward[..^1], v => Assert.True(v is > 0 and < 1e6, $"forward signal {v}"));
        Assert.All(correlation, v => Assert.Equal(1.0, v!.Value, 6));
        await page.ScreenshotAsync(new() { Path = Shot("signal-constnet"), FullPage = true });
        await page.GetByRole(AriaRole.Tab, new() { Name = "Charts" }).ClickAsync();

        await page.Locator("#share-run").ClickAsync();
        var shareUrl = await page.Locator("#share-link").InnerTextAsync();
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"],
            new() { Origin = baseUrl.GetLeftPart(UriPartial.Authority) });
        await page.Locator("#copy-share").ClickAsync();
        await page.WaitForFunctionAsync("url => navigator.clipboard.readText().then(t => t === url)", shareUrl);
        var snack = (await page.Locator(".mud-snackbar", new() { HasTextString = "Copied." }).BoundingBoxAsync())!;
        foreach (var button in new[] { "#cancel-run", "#clone-run", "#pair-run", "#share-run" })
        {
            var b = (await page.Locator(button).BoundingBoxAsync())!;
            var overlaps = snack.X < b.X + b.Width && b.X < snack.X + snack.Width && snack.Y < b.Y + b.Height
                && b.Y < snack.Y + snack.Height;
            Assert.False(overlaps, $"the snackbar covers {button}");
        }
        Assert.Contains("/share/", shareUrl);
        Assert.True(shareUrl.Split("/share/")[1].Length >= 43); // 256 random bits, base64url

        var (playwright2, collaborator) = await Chromium.LaunchAsync();
        using var ___ = playwright2;
        await using var ____ = collaborator;
        var shared = await OpenAsync(collaborator, shareUrl);
        await Assertions.Expect(shared.Locator("#run-name")).ToHaveTextAsync("constnet-nondeterministic", new() { Timeout = 30_000 });
        await Assertions.Expect(shared.Locator("[id$='-loss-info']")).ToContainTextAsync("points", new() { Timeout = 30_000 });
        Assert.Equal(0, await shared.Locator("#cancel-run").CountAsync());
        Assert.Equal(0, await shared.Locator("#share-run").CountAsync());
        Assert.Equal(0, await shared.Locator("a[href='/runs/new']").CountAsync()); // no links to pages that write
        Assert.Contains("read-only shared result", await shared.Locator("header").InnerTextAsync());
        await shared.ScreenshotAsync(new() { Path = Shot("shared-run"), FullPage = true });

        // The official JS client (shipped in wwwroot/lib) joins the run with the share token and gets its history.
        await shared.AddScriptTagAsync(new() { Url = "/lib/signalr/signalr.min.js" });
        var token = shareUrl.Split("/share/")[1];
        var runId = runUrl.Split("/runs/")[1];
        var historyPoints = await shared.EvaluateAsync<int>("""
            async ([runId, token]) => {
              const connection = new signalR.HubConnectionBuilder().withUrl("/hubs/runs").build();
              await connection.start();
              const history = await connection.invoke("Join", runId, token);
              window.sharedConnection = connection;
              return history.points.length;
            }
            """, new[] { runId, token });
        Assert.True(historyPoints > 0);

        // The owner's list of links: revoke, confirmed, closes the collaborator's open page and live connection at once.
        await page.GotoAsync(new Uri(baseUrl, "/shares").ToString());
        await ReadyAsync(page); // a prerendered button does nothing until the circuit is live
        var row = page.Locator($"tr.share-row[data-token='{token}']");
        await Assertions.Expect(row).ToContainTextAsync("live");
        await row.Locator(".revoke-link").ClickAsync();
        await page.Locator(".mud-message-box__yes-button").ClickAsync();
        await Assertions.Expect(row).ToContainTextAsync("revoked");
        await Assertions.Expect(shared.Locator("#share-missing")).ToBeVisibleAsync(); // no reload: the page dropped the run
        await shared.WaitForFunctionAsync("() => window.sharedConnection.state === 'Disconnected'");

        await page.GotoAsync(runUrl);
        var messages = console.ToArray();
        File.WriteAllText(Path.Combine(Chromium.Artifacts, "console.txt"), string.Join("\n", messages));
        Assert.DoesNotContain(messages, c => c.StartsWith("error") || c.StartsWith("pageerror"));
    }

    [Fact]
    public async Task APaperScaleRunOpensDownsampledAndItsChartsZoomSmoothRescaleAndChangeAxis()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var id = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services, withTimes: true);
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();
        var circuitSocket = page.WaitForWebSocketAsync();
        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        await ReadyAsync(page);
        const string loss = "document.querySelector(\"[data-chart='loss']\").id";
        var info = page.Locator("[id$='-loss-info']");
        await Assertions.Expect(info).ToContainTextAsync("zoom in for full resolution");

        // The overview holds at most 1000 points of the 10,000-step loss; zooming fetches the window whole.
        var overview = await page.EvaluateAsync<int>($"() => iiCharts.values({loss}, 'train loss')[0].length");
        Assert.InRange(overview, 100, 1000);
        await page.EvaluateAsync($"() => iiCharts.zoom({loss}, 7700, 7800)");
        await Assertions.Expect(info).ToContainTextAsync("full resolution in the zoomed window");
        var window = await page.EvaluateAsync<double[][]>($"() => {{ const [xs, ys] = iiCharts.values({loss}, 'train loss'); const k = " +
            $"xs.map((x, i) => i).filter(i => xs[i] >= 7700 && xs[i] <= 7800); return [k.map(i => xs[i]), k.map(i => ys[i])]; }}");
        Assert.Equal(Enumerable.Range(7700, 101).Select(s => (double)s), window[0]);
        Assert.Equal(1000, window[1][77]); // the spike at step 7777, exact

        // Smoothing draws an EMA over a faint raw line, with one legend entry per line.
        // It runs in the browser: sliding sends the circuit no event.
        var legend = await page.EvaluateAsync<int>($"() => iiCharts.legendCount({loss})");
        var events = 0;
        void Count(object? _, IWebSocketFrame f)
        {
            if (f.Binary is { } b
                && System.Text.Encoding.UTF8.GetString(b)
                .Contains("DispatchBrowserEvent", StringComparison.Ordinal)) Interlocked.Increment(ref events);
        }
        var circuit = await circuitSocket;
        circuit.FrameSent += Count;
        await page.Locator("#smoothing input").FillAsync("0.9"); // a range input: Fill sets its value
        await page.WaitForFunctionAsync($"() => iiCharts.drawn({loss}, 'train loss (raw)') !== null");
        await Assertions.Expect(page.Locator("#smoothing output")).ToHaveTextAsync("0.90");
        await Task.Delay(300);
        circuit.FrameSent -= Count;
        Assert.Equal(0, events);
        Assert.Equal(legend, await page.EvaluateAsync<int>($"() => iiCharts.legendCount({loss})"));
        var smoothed = await page.EvaluateAsync<double[]>($"() => iiCharts.drawn({loss}, 'train loss')[1].slice(0, 3)");
        var raw = await page.EvaluateAsync<double[]>($"() => iiCharts.drawn({loss}, 'train loss (raw)')[1].slice(0, 3)");
        Assert.Equal(raw[0], smoothed[0], 6); // debiased: the first smoothed point is the first value
        Assert.Equal((0.9 * 0.1 * raw[0] + 0.1 * raw[1]) / (1 - 0.81), smoothed[1], 6);

        // Log scale per chart, and the x axis by epoch (391 steps of CIFAR-10 at batch 128) and by relative time.
        var card = page.Locator("div.mud-paper", new() { Has = page.Locator("[data-chart='loss']") });
        await card.Locator(".scale-toggle").GetByText("log", new() { Exact = true }).ClickAsync();
        await page.WaitForFunctionAsync($"() => iiCharts.logY({loss}) === true");
        await page.Locator("#x-axis").GetByText("epoch", new() { Exact = true }).ClickAsync();
        const string accuracy = "document.querySelector(\"[data-chart='accuracy']\").id";
        await page.WaitForFunctionAsync($"() => {{ const v = iiCharts.values({accuracy}, 'epoch test acc'); return v && Math.abs(v[0][0] " +
            $"- 1000 / 391) < 1e-6; }}");
        await page.Locator("#x-axis").GetByText("relative time (min)", new() { Exact = true }).ClickAsync();
        // step 1000 at 600 s
        await page.WaitForFunctionAsync($"() => {{ const v = iiCharts.values({accuracy}, 'epoch test acc'); return v && Math.abs(v[0][0] " +
            $"- 10) < 1e-6; }}");
        // smoothing kept by the new charts
        Assert.NotNull(await page.EvaluateAsync<double[][]?>($"() => iiCharts.drawn({loss}, 'train loss (raw)')"));
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "paper-scale-run.png"), FullPage = true });

        // A series with no finite value (the diversity of identical channels is -inf) says so instead of drawing nothing.
        Assert.Contains("none finite", await page.EvaluateAsync<string>("""
            async () => {
              const chart = document.createElement("div"), info = document.createElement("span");
              chart.id = "nonfinite-chart"; info.id = "nonfinite-chart-info";
              document.body.append(chart, info);
              iiCharts.create("nonfinite-chart", { title: "diversity", infoId: "nonfinite-chart-info" });
              iiCharts.add("nonfinite-chart", [["diversity", [0, 200], [null, null]]]);
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              return info.textContent;
            }
            """));

        // Dark mode: the theme and the charts switch, and the choice survives a reload.
        var light = await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor");
        await page.Locator("#dark-mode").ClickAsync();
        await page.WaitForFunctionAsync("() => iiCharts.isDark() === true");
        await page.ReloadAsync();
        await ReadyAsync(page);
        await page.WaitForFunctionAsync("() => iiCharts.isDark() === true");
        Assert.NotEqual(light, await page.EvaluateAsync<string>("() => getComputedStyle(document.body).backgroundColor"));
    }

    [Fact]
    public async Task ComparingRunsKeepsOneColourPerRunSeparatesIdenticalRunsAndPicksLayers()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var a = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services, name: "det seed 1");
        var b = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services, name: "nondet seed 1");
        var db = lab.Services.GetRequiredService<IdentityInit.Web.Data.AppDb>();
        foreach (var id in new[] { a, b })
            await db.WritePointsAsync([
                .. new[] { "conv", "fc", "stem" }.SelectMany(layer => new[] { 10L, 20, 30 }.Select(s =>
                    new IdentityInit.Web.Data.MetricPoint { RunId = id, Series = "spread/" + layer, Step = s, Value = s * 1e-9 })),
                new IdentityInit.Web.Data.MetricPoint { RunId = id, Series = "break/conv", Step = 5, Value = 1e-9 },
                new IdentityInit.Web.Data.MetricPoint { RunId = id, Series = "acorr/block1", Step = 10, Value = 1 },
            ]);
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await OpenAsync(context, new Uri(baseUrl, $"/compare?ids={a},{b}").ToString());
        const string loss = "document.querySelector(\"[data-chart='loss']\").id";
        const string spread = "document.querySelector(\"[data-chart='spread']\").id";
        await page.WaitForFunctionAsync($"() => iiCharts.legendCount({spread}) === 6");

        // Identical loss curves: each run its colour, the second dashed, so both stay visible.
        var styles = await page.EvaluateAsync<string[]>($$"""
            () => [iiCharts.seriesColor({{loss}}, 'det seed 1 · train loss'),
                   iiCharts.seriesColor({{loss}}, 'nondet seed 1 · train loss'),
                   iiCharts.seriesColor({{spread}}, 'det seed 1 · conv'), iiCharts.seriesColor({{spread}}, 'det seed 1 · fc'),
                   JSON.stringify(iiCharts.seriesDash({{loss}}, 'det seed 1 · train loss')),
                   JSON.stringify(iiCharts.seriesDash({{loss}}, 'nondet seed 1 · train loss')),
                   iiCharts.markers({{spread}}).map(m => m.line).join('|')]
            """);
        Assert.NotEqual(styles[0], styles[1]);
        Assert.Equal(styles[0], styles[2]); // a run's colour is the same on every chart and every layer
        Assert.Equal(styles[2], styles[3]);
        Assert.Equal("[]", styles[4]);
        Assert.NotEqual("[]", styles[5]);
        Assert.Equal("det seed 1 · conv|nondet seed 1 · conv", styles[6]);
        // the axis reaches back to the break at step 5
        Assert.Equal(5, await page.EvaluateAsync<double>($"() => iiCharts.xRange({spread})[0]"));

        // Picking one layer leaves one entry per run in the per-layer charts' legends.
        await page.Locator(".mud-select:has(#layer-picker)").Last.ClickAsync();
        // Weight layers and activations listed apart, each under its heading (which cannot be picked).
        var headings = page.Locator(".mud-popover-open .layer-group");
        await Assertions.Expect(headings).ToHaveTextAsync(["Weight layers (conv, linear)", "Activations (probe batch)"]);
        await page.GetByRole(AriaRole.Option, new() { Name = "conv", Exact = true }).ClickAsync();
        await page.Keyboard.PressAsync("Escape");
        await page.WaitForFunctionAsync($"() => iiCharts.legendCount({spread}) === 2");
        await page.Locator("h5", new() { HasTextString = "Comparing 2 runs" }).ClickAsync(); // closes the picker
        Assert.Contains("nothing recorded for this chart", await page.Locator("[id$='-diversity-info']").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "compare.png"), FullPage = true });
    }

    [Fact]
    public async Task ASeedGroupIsDrawnAsItsMeanWithAStudentTBandOfTheExactQuantile()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var db = lab.Services.GetRequiredService<IdentityInit.Web.Data.AppDb>();
        var ids = new List<Guid>();
        async Task SeedGroupAsync(string arm, double[] finals) // one completed run per seed, its test accuracy at step 391
        {
            var group = Guid.NewGuid();
            await using var context = db.Create();
            for (var i = 0; i < finals.Length; i++)
            {
                var id = Guid.NewGuid();
                ids.Add(id);
                context.Runs.Add(new IdentityInit.Web.Data.Run
                {
                    Id = id, Name = $"grid · {arm} · seed {i}", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                    Breakers = "none", Dataset = "cifar10",
                    Queue = "cpu", Status = IdentityInit.Training.RunStatus.Completed, CreatedAt = DateTime.UtcNow, GroupId = group,
                });
                await context.SaveChangesAsync();
                // Four epochs: the first is the checked one; the later ones rise toward 0.9 so the bands read as curves.
                await db.WritePointsAsync([.. Enumerable.Range(0, 4).Select(e => new IdentityInit.Web.Data.MetricPoint
                {
                    RunId = id, Series = "epoch/test_acc", Step = 391 * (e + 1),
                        Value = e == 0 ? finals[i] : finals[i] + (0.9 - finals[i]) * e / 4.0,
                })]);
            }
        }
        var values = Enumerable.Range(0, 12).Select(i => 0.5 + 0.01 * i * i % 0.13).ToArray(); // 12 seeds: 11 degrees of freedom
        // Named as a study names its runs: the study's name, shared by every run, is left out of the band labels below.
        await SeedGroupAsync("arm", values);
        await SeedGroupAsync("pair", [0.1, 0.9]); // two seeds far apart: the t-interval (12.7 s / sqrt 2) reaches -4.6 .. 5.6
        var (playwright, context2) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context2;
        var page = await OpenAsync(context2, new Uri(baseUrl, "/compare?ids=" + string.Join(',', ids)).ToString());
        const string accuracy = "document.querySelector(\"[data-chart='accuracy']\").id";
        await page.WaitForFunctionAsync($"() => iiCharts.values({accuracy}, 'arm (n=12) · epoch test acc hi') !== null");

        var hi = await page.EvaluateAsync<double>($"() => iiCharts.values({accuracy}, 'arm (n=12) · epoch test acc hi')[1][0]");
        var mean = values.Average();
        var sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
        const double t11 = 2.200985160082949; // Student t, 0.975 quantile, 11 degrees of freedom
        var expected = mean + t11 * sd / Math.Sqrt(12);
        // float32 on the wire: ~3e-8; a rounded t (2.2) is off by 1e-5
        Assert.True(Math.Abs(hi - expected) < 1e-6, $"hi {hi} vs {expected}");
        await page.WaitForFunctionAsync($"() => iiCharts.values({accuracy}, 'pair (n=2) · epoch test acc hi') !== null");
        var clipped = await page.EvaluateAsync<double[]>($"() => [iiCharts.values({accuracy}, 'pair (n=2) · epoch test acc lo')[1][0], " +
            $"iiCharts.values({accuracy}, 'pair (n=2) · epoch test acc hi')[1][0]]");
        Assert.Equal([0.0, 1.0], clipped); // accuracy cannot leave [0, 1]
        await page.WaitForFunctionAsync($"() => iiCharts.bandFills({accuracy}).length === 2");
        var fills = await page.EvaluateAsync<string[]>($"() => iiCharts.bandFills({accuracy})");
        Assert.NotEqual(fills[0], fills[1]); // one shaded band per arm, in the arm's colour
        Assert.Equal(2, await page.EvaluateAsync<int>($"() => iiCharts.legendCount({accuracy})")); // the means, not lo/hi lines
        Assert.Equal(0, await page.EvaluateAsync<double>($"() => iiCharts.seriesWidth({accuracy}, 'arm (n=12) · epoch test acc lo')"));
        await page.Locator("div.mud-paper", new() { Has = page.Locator("[data-chart='accuracy']") })
            .ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "compare-seed-bands.png") });
    }

    [Fact]
    public async Task ABreakerSizeSweepRunsFromTheStudiesPageToItsFiguresAgainstTheField()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory(settings: TwoWorkers); // a study's runs two at a time, as the studies are benchmarked
        var baseUrl = lab.StartKestrel();
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await OpenAsync(context, new Uri(baseUrl, "/studies").ToString());

        await page.Locator("#study-seeds").FillAsync("1");
        await page.Locator("#study-seeds").PressAsync("Tab");
        await Fill(page, "study-name-field", "how small a dropout");
        await Fill(page, "study-config", System.Text.Json.JsonSerializer.Serialize(IdentityInit.Tests.Web.Api.TinyConfig(epochs: 2)));
        await Fill(page, "vary-field", "dropout");
        await Fill(page, "vary-values", "0, 0.001, 0.1");
        await page.ClickAsync("#create-vary");
        await Assertions.Expect(page.Locator("#study-name")).ToHaveTextAsync("how small a dropout");
        await Assertions.Expect(page.Locator("tr.study-row")).ToHaveCountAsync(4); // He, then one arm per value
        await Assertions.Expect(page.Locator("#study-final")).ToBeVisibleAsync(new() { Timeout = 240_000 });
        foreach (var figure in new[] { "sweep", "sweep-break", "sweep-correlation" })
        {
            var image = page.Locator($"img.study-figure[data-figure='{figure}']");
            await Assertions.Expect(image).ToBeVisibleAsync();
            Assert.Equal(200, await page.EvaluateAsync<int>("async src => (await fetch(src)).status",
                await image.GetAttributeAsync("src")));
        }
        var svg = await page.EvaluateAsync<string>("async src => (await fetch(src)).text()",
            await page.Locator("img.study-figure[data-figure='sweep']").GetAttributeAsync("src"));
        Assert.Contains("dropout (log scale)", svg); // 0.001 .. 0.1 spans two decades; 0 and He are drawn as bands
        Assert.Matches(@">\s*1e-2\s*<", svg);
        Assert.Contains("He (random init) (n=1)", svg);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "study-breaker-size.png"), FullPage = true });
    }

    [Fact]
    public async Task TheSignalAtInitPageComparesInitsAgainstDepthWithoutTraining()
    {
        Assertions.SetDefaultExpectTimeout(60_000); // four networks built and measured in a process of their own
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await OpenAsync(context, new Uri(baseUrl, "/signal").ToString());

        await Choose(page, "signal-dataset", "synthetic");
        await Fill(page, "signal-depth", "10");
        await page.ClickAsync("#measure-signal");
        await Assertions.Expect(page.Locator("#signal-measured")).ToContainTextAsync("const, he-fanin, xavier, orthogonal: measured in");
        const string forward = "document.querySelector(\"[data-signal-chart='forward']\").id";
        const string acorr = "document.querySelector(\"[data-signal-chart='acorr']\").id";
        await page.WaitForFunctionAsync($"() => iiCharts.legendCount({forward}) === 4");
        var constNet = await page.EvaluateAsync<double?[]>($"() => iiCharts.values({acorr}, 'const')[1]");
        var he = await page.EvaluateAsync<double?[]>($"() => iiCharts.values({acorr}, 'he-fanin')[1]");
        Assert.All(constNet, v => Assert.Equal(1.0, v!.Value, 6)); // identical channels at every depth
        Assert.All(he, v => Assert.True(v < 0.99, $"He correlation {v}"));
        Assert.Equal("conv1", (await page.EvaluateAsync<string[]>($"() => iiCharts.xNames({forward})"))[0]);
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "signal-at-init.png"), FullPage = true });

        await Fill(page, "signal-depth", "8"); // not 6n + 4: refused, naming the field
        await page.ClickAsync("#measure-signal");
        await Assertions.Expect(page.Locator(".form-error[data-field='config.depth']")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task TheRunsTableSortsPagesRemembersItsColumnsAndDeletesAfterConfirmation()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await IdentityInit.Tests.Web.RunsListTests.SeedAsync(lab.Services);
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await OpenAsync(context, baseUrl.ToString());
        var rows = page.Locator("tr.run-row");
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        await Assertions.Expect(page.Locator(".mud-table-pagination-caption").Last).ToContainTextAsync("of 250");
        await Assertions.Expect(rows.First.Locator("td").Nth(1)).ToContainTextAsync("run 249");
        var fits = await page.EvaluateAsync<int[]>("() => { const c = document.querySelector('#runs-table .mud-table-container'); return " +
            "[c.scrollWidth, c.clientWidth]; }");
        Assert.True(fits[0] <= fits[1], $"the default columns need {fits[0]} px of {fits[1]}"); // 13 columns overflowed 1,440 px

        // Sorted in the database: the lowest accuracy of all 250 comes first, not the lowest of the page.
        await page.Locator("th").GetByText("Best test acc.").ClickAsync();
        await Assertions.Expect(rows.First.Locator("td[data-column='bestTestAccuracy']"))
            .ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^0\.00 ?%$"));

        // The view is in the URL: sort and page survive a bookmark, opened in a fresh tab.
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex(@"sort=bestTestAccuracy&desc=false"));
        await page.GetByRole(AriaRole.Button, new() { Name = "Next page" }).ClickAsync();
        await Assertions.Expect(page.Locator(".mud-table-pagination-caption").Last).ToContainTextAsync("51-100 of 250");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex(@"[?&]page=2"));
        var secondPage = await rows.First.Locator("td").Nth(1).InnerTextAsync();
        var bookmark = await OpenAsync(context, page.Url);
        await Assertions.Expect(bookmark.Locator(".mud-table-pagination-caption").Last).ToContainTextAsync("51-100 of 250");
        await Assertions.Expect(bookmark.Locator("tr.run-row").First.Locator("td").Nth(1)).ToHaveTextAsync(secondPage);
        var searched = await OpenAsync(context, new Uri(baseUrl, "/runs?q=run%20249").ToString());
        await Assertions.Expect(searched.Locator("#run-search")).ToHaveValueAsync("run 249");
        await Assertions.Expect(searched.Locator("tr.run-row")).ToHaveCountAsync(1);
        await searched.CloseAsync();
        await bookmark.CloseAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Previous page" }).ClickAsync();

        // A config column, chosen once, is there after a reload.
        await page.Locator(".mud-select:has(#column-picker)").Last.ClickAsync();
        await page.GetByRole(AriaRole.Option, new() { Name = "depth", Exact = true }).ClickAsync();
        await page.Keyboard.PressAsync("Escape");
        await Assertions.Expect(page.Locator("th", new() { HasTextString = "depth" })).ToHaveCountAsync(1);
        await page.GotoAsync(baseUrl.ToString()); // the table's default view (the sort is in the URL), columns from this browser
        await ReadyAsync(page);
        await Assertions.Expect(page.Locator("th", new() { HasTextString = "depth" })).ToHaveCountAsync(1);
        // run 249: depths cycle 7, 16, 28, 100
        await Assertions.Expect(rows.First.Locator("td[data-column='config.depth']")).ToHaveTextAsync("16");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "runs-table.png"), FullPage = true });

        // Delete two runs: nothing happens until the dialog is confirmed.
        await rows.Nth(0).Locator("input[type=checkbox]").CheckAsync();
        await rows.Nth(1).Locator("input[type=checkbox]").CheckAsync();
        await page.Locator("#delete-selected").ClickAsync();
        await page.Locator(".mud-message-box__cancel-button").ClickAsync();
        await Assertions.Expect(page.Locator(".mud-table-pagination-caption").Last).ToContainTextAsync("of 250");
        await page.Locator("#delete-selected").ClickAsync();
        await Assertions.Expect(page.Locator(".mud-dialog")).ToContainTextAsync("Delete 2 runs");
        await page.Locator(".mud-message-box__yes-button").ClickAsync();
        await Assertions.Expect(page.Locator(".mud-table-pagination-caption").Last).ToContainTextAsync("of 248");
        var remaining = await lab.CreateClient().GetAsync("/api/runs?limit=1");
        Assert.Equal("248", remaining.Headers.GetValues("X-Total-Count").Single());
    }

    static int PointCount(string info) => int.Parse(new string(info.Where(char.IsDigit).TakeWhile(_ => true).ToArray()).Length > 0
        ? info.Split(' ').First(w => w.All(char.IsDigit)) : "0");

    [Fact]
    public async Task AViewerSignsInLandsWhereTheyWereGoingAndSeesRunsReadOnly()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var admin = lab.Client(baseUrl);
        var id = (await IdentityInit.Tests.Web.Api.CreateAsync(admin, IdentityInit.Tests.Web.Api.TinyRun(epochs: 200))).GetProperty("id")
            .GetGuid();
        await lab.EnsureUserAsync("victor", global::IdentityInit.Web.Accounts.LabRoles.Viewer);
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();

        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login\\?returnUrl="));
        await page.FillAsync("#userName", "victor");
        await page.FillAsync("#password", "wrong password!");
        await page.ClickAsync("#sign-in");
        await Assertions.Expect(page.Locator("#login-error")).ToContainTextAsync("Wrong user name or password");
        await page.FillAsync("#userName", "victor");
        await page.FillAsync("#password", LabFactory.Password);
        await page.ClickAsync("#sign-in");
        await Assertions.Expect(page).ToHaveURLAsync(new Uri(baseUrl, $"/runs/{id}").ToString()); // back where the link pointed
        await ReadyAsync(page);

        await Assertions.Expect(page.Locator("#run-name")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#signed-in-as")).ToHaveTextAsync("victor (viewer)");
        await Assertions.Expect(page.Locator("#run-status")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("Running|Queued"));
        foreach (var action in new[] { "#cancel-run", "#clone-run", "#share-run", "#pair-run", "#run-notes", "#nav-new-run" })
            await Assertions.Expect(page.Locator(action)).ToHaveCountAsync(0); // nothing a viewer could press
        await page.GotoAsync(new Uri(baseUrl, "/runs/new").ToString());
        await ReadyAsync(page);
        await Assertions.Expect(page.Locator("#not-allowed")).ToContainTextAsync("victor is a viewer");
        await page.GotoAsync(baseUrl.ToString());
        await ReadyAsync(page);
        await Assertions.Expect(page.Locator("tr.run-row")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#delete-selected")).ToHaveCountAsync(0);
        await page.ClickAsync("#sign-out");
        await Assertions.Expect(page).ToHaveURLAsync(new Uri(baseUrl, "/login").ToString());
        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        // signed out for real
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login\\?returnUrl="));
        await admin.PostAsync($"/api/runs/{id}/cancel", null);
    }

    [Fact]
    public async Task AResearcherQueuesAStudyWatchesItsTableFillInAndSharesTheResultPage()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        await using var lab = new LabFactory(settings: TwoWorkers);
        var baseUrl = lab.StartKestrel();
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl, "rosalind",
            global::IdentityInit.Web.Accounts.LabRoles.Researcher);
        using var _ = playwright;
        await using var __ = context;
        var page = await OpenAsync(context, new Uri(baseUrl, "/studies").ToString());
        // A constant learning rate: BatchNorm's running averages lag the final weights, so the runs also measure precise BN,
        // here over one epoch's 16 batches rather than the study's default 100 (six passes of a tiny set, twice per run).
        var tiny = System.Text.Json.JsonSerializer.Serialize(IdentityInit.Tests.Web.Api.TinyConfig(epochs: 2,
            new { schedule = "constant", preciseBatchNorm = 16 }));

        await Assertions.Expect(page.Locator("#study-preset")).ToHaveValueAsync("constnet-breakers"); // the first study is the default
        await Fill(page, "study-config", tiny);
        await page.Locator("#study-seeds").FillAsync("0"); // once silently raised to 1 and queued
        await page.Locator("#study-seeds").PressAsync("Tab");
        await page.ClickAsync("#create-study");
        await Assertions.Expect(page.Locator("#study-seeds").Locator("xpath=ancestor::div[contains(@class,'mud-input-control')]").First)
            .ToContainTextAsync("from 1 to 20 seeds, got 0");
        Assert.Equal("0", (await lab.CreateClient().GetAsync("/api/runs")).Headers.GetValues("X-Total-Count").Single());
        await page.Locator("#study-seeds").FillAsync("1");
        await page.Locator("#study-seeds").PressAsync("Tab");
        // The complaint leaves with the change: the page has the new value (a click sent before it once queued nothing under load).
        await Assertions.Expect(page.Locator("#study-errors")).ToHaveCountAsync(0);
        await page.ClickAsync("#create-study");
        await Assertions.Expect(page.Locator("#study-name")).ToHaveTextAsync("constnet-breakers (cpu)");
        await Assertions.Expect(page.Locator("#study-scale-caveat")).ToHaveCountAsync(0); // its config is not the preset's
        var he = page.Locator("tr.study-row[data-arm='He (random init)'] td[data-column='2']");
        await Assertions.Expect(he).ToHaveTextAsync("", new() { Timeout = 5_000 }); // queued: nothing measured yet
        // filled in live
        await Assertions.Expect(he).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+\.\d$"), new() { Timeout = 180_000 });
        await Assertions.Expect(page.Locator("#study-final")).ToBeVisibleAsync(new() { Timeout = 180_000 });
        var cell = await he.TextContentAsync();
        await Assertions.Expect(page.Locator("#study-table th").Nth(3)).ToHaveTextAsync("final test acc, precise BN (%)");
        await Assertions.Expect(page.Locator("tr.study-row[data-arm='He (random init)'] td[data-column='3']"))
            .ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+\.\d$"));
        // what the runs used, not the default
        await Assertions.Expect(page.Locator("#study-precise-note")).ToContainTextAsync("recomputed over 16 training batches");
        await Assertions.Expect(page.Locator("#study-claims")).ToContainTextAsync("A deterministic ConstNet keeps every channel identical");
        var single = page.Locator("#study-claims tr.claim-row",
            new() { HasTextString = "With GPU non-determinism it trains to within 2 points of He" });
        await Assertions.Expect(single).ToHaveAttributeAsync("data-verdict", "inconclusive"); // one seed per arm: no interval, no verdict
        await Assertions.Expect(single.Locator(".mud-chip")).ToHaveTextAsync("inconclusive");
        await Assertions.Expect(single.Locator(".claim-reason"))
            .ToHaveTextAsync("one seed in an arm (n = 1 and 1): no interval to judge by");
        await Assertions.Expect(page.Locator("img.study-figure[data-figure='accuracy']")).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "study.png"), FullPage = true });
        await page.ClickAsync("#share-study");
        var shareUrl = (await page.Locator("#share-link").TextContentAsync())!;
        Assert.StartsWith(baseUrl.ToString(), shareUrl); // "Copy" puts a link a collaborator can open, not a relative path
        var shares = await OpenAsync(context, new Uri(baseUrl, "/shares").ToString());
        // which study, not just "study"
        await Assertions.Expect(shares.Locator(".share-study")).ToHaveTextAsync("study constnet-breakers (cpu)");

        var (playwright2, collaborator) = await Chromium.LaunchAsync(); // no account
        using var ___ = playwright2;
        await using var ____ = collaborator;
        var shared = await OpenAsync(collaborator, shareUrl);
        await Assertions.Expect(shared.Locator("tr.study-row[data-arm='He (random init)'] td[data-column='2']")).ToHaveTextAsync(cell!);
        await Assertions.Expect(shared.Locator("#study-final")).ToContainTextAsync("frozen");
        await Assertions.Expect(shared.Locator("#extend-study, #cancel-study, #share-study")).ToHaveCountAsync(0);
        var figure = await shared.EvaluateAsync<int>("async () => (await fetch(document.querySelector(\"img.study-figure\").src)).status");
        Assert.Equal(200, figure); // the figures come through the share link too
    }
}
