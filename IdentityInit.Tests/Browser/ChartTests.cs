using System.Collections.Concurrent;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Tests.Web;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Runs;
using Microsoft.Playwright;

namespace IdentityInit.Tests.Browser;

/// <summary>The live charts at the moment symmetry breaks: a correlation leaving 1 by 1e-10 must draw, not hang the page.</summary>
public sealed class ChartTests
{
    static string WebRoot() => Path.Combine(Repository.Root, "IdentityInit.Web", "wwwroot");

    [Fact]
    public async Task ACorrelationLeavingOneByTinyAmountsDrawsAtOnceOnLinearAndLogAxes()
    {
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await BarePageAsync(context);
        var errors = new ConcurrentQueue<string>();
        page.PageError += (_, e) => errors.Enqueue(e);

        // The values that hung the app's uPlot for ~50 s first; then spans from 1e-17 to 1e-2 of the value, at magnitudes
        // from 1e-30 to 1e30 of both signs, on linear and log axes: each must be drawn within a frame or two.
        var draw = page.EvaluateAsync<string[]>("""
            async () => {
              const cases = [[1, 1e-10]];
              for (const m of [1e-30, 1e-12, 1e-3, 1, 7, 1e6, 1e30]) for (const sign of [1, -1])
                for (const d of [0, 1e-17, 1e-15, 1e-12, 1e-10, 1e-8, 5e-7, 1e-6, 3e-6, 1e-5, 1e-4, 1e-2]) cases.push([sign * m, d]);
              const failed = [];
              for (const logY of [false, true]) for (const [m, d] of cases) {
                iiCharts.create("chart", { title: "rho", logY });
                iiCharts.add("chart", [["rho", [0, 10, 20], [m, m * (1 - d), m]]]);
                const start = performance.now();
                await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                const drawn = iiCharts.drawn("chart", "rho");
                const ticks = [...document.querySelectorAll("#chart .u-axis")].map(a => a.textContent).join("|");
                if (!drawn || performance.now() - start > 1000 || !ticks) failed.push(`${m} x (1 - ${d}) ${logY ? "log" : "lin"}`);
              }
              return failed;
            }
            """);
        var finished = await Task.WhenAny(draw, Task.Delay(TimeSpan.FromSeconds(60)));

        Assert.True(finished == draw, "the charts hung: " + string.Join("; ", errors));
        Assert.Empty(await draw);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task EveryTickLabelFitsBesideItsAxisTitleAndInsideTheChartAndPowersOfTenReadShort()
    {
        // The Signal tab's backward signal (1e-11 .. 1e-4 on a log axis) printed "1.000e-4" into a 64 px axis, over its
        // title; a spread near -1.2e-12 needs even more; rotated layer names ran into "layer" and off the right edge. Each
        // label's measured extent, plus the tick and the gap, must fit; and no two ticks may read the same (He's diversity,
        // about -6e-4, read "-6e-4" on every tick).
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await BarePageAsync(context);

        var axes = await page.EvaluateAsync<string[][]>("""
            async () => {
              const names = ["conv1",
                             ...[1, 2, 3].flatMap(b => [0, 1].flatMap(l => [`block${b}.layer.${l}.conv`, `block${b}.layer.${l}.conv_res`]))
                                         .slice(1),
                             "fc"];
              const cases = [[[3e-11, 1e-11, 2e-10, 5e-4], true], [[-1.23456e-12, -1.23457e-12, -1.23458e-12], false],
                             [[0.9999998, 0.9999999, 1], false], [[1, 2, 3], false], [[2e6, 3e7, 9e7], false],
                             [[-6.1e-4, -6.3e-4, -6.5e-4], false], [names.map((_, k) => k % 3 + 0.5), false, names]];
              const ctx = document.createElement("canvas").getContext("2d");
              const width = (axis, v) => { ctx.font = axis.font[0]; return ctx.measureText(v).width / devicePixelRatio; };
              const out = [];
              for (const [ys, logY, xNames] of cases) {
                iiCharts.create("chart", { title: "signal", logY, xNames, xLabel: xNames ? "layer" : "step" });
                iiCharts.add("chart", [["s", ys.map((_, i) => i), ys]]);
                await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                const u = iiCharts.plot("chart"), [x, y] = u.axes, room = a => a.ticks.size + a.gap;
                const widest = Math.max(...y._values.map(v => width(y, v)));
                const labels = y._values.filter(v => v);
                out.push([String(y._size >= widest + room(y) && new Set(labels).size === labels.length), labels.join(" "),
                          String(y._size), String(widest)]);
                if (!xNames) continue;
                // Layer names at -25 degrees: as deep as the longest one drops, and none runs past the canvas's right edge.
                const rad = 25 * Math.PI / 180, left = u.bbox.left / devicePixelRatio;
                const drop = Math.max(...xNames.map(n => width(x, n) * Math.sin(rad))) + x.font[1] * Math.cos(rad);
                const reach = Math.max(...xNames.map((n, k) => left + u.valToPos(k, "x") + width(x, n) * Math.cos(rad)));
                out.push([String(x._size >= drop + room(x) && reach <= u.width), xNames.join(" "), `${x._size} deep, ${u.width} wide`,
                          `${drop} drop, ${reach} reach`]);
              }
              return out;
            }
            """);

        Assert.All(axes, a => Assert.True(a[0] == "true", $"labels {a[1]} (distinct, fitting): {a[3]} px in a {a[2]} px axis"));
        Assert.Contains("1e-5", axes[0][1].Split(' ')); // a power of ten reads as one, not 1.000e-5
        Assert.DoesNotContain(axes[0][1].Split(' '), v => v.Contains(".0e") || v.Contains(".000e"));
    }

    static async Task<IPage> BarePageAsync(IBrowserContext context)
    {
        var page = await context.NewPageAsync();
        await page.SetContentAsync("<div id='chart' class='chart' style='width: 600px'></div>");
        await page.AddStyleTagAsync(new() { Path = Path.Combine(WebRoot(), "lib", "uplot", "uPlot.min.css") });
        await page.AddStyleTagAsync(new() { Path = Path.Combine(WebRoot(), "css", "app.css") });
        await page.AddScriptTagAsync(new() { Path = Path.Combine(WebRoot(), "lib", "uplot", "uPlot.iife.min.js") });
        await page.AddScriptTagAsync(new() { Path = Path.Combine(WebRoot(), "js", "charts.js") });
        return page;
    }

    [Fact]
    public async Task EveryLineOfAManyLayerChartHasItsOwnColourAndStudyRunsAreToldApartByRun()
    {
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await BarePageAsync(context);

        // Twelve layers (names whose hashes once shared a colour among them), then two runs of one study whose names share
        // everything before their last " · ".
        var colours = await page.EvaluateAsync<string[]>("""
            async () => {
              const layers = ["conv1", "fc", "block1.layer.0.conv", "block1.layer.1.conv", "block1.layer.2.conv", "block2.layer.0.conv",
                              "block2.layer.0.conv_res", "block2.layer.1.conv", "block2.layer.2.conv", "block3.layer.0.conv",
                              "block3.layer.0.conv_res", "block3.layer.1.conv"];
              iiCharts.create("chart", { title: "spread" });
              iiCharts.add("chart", layers.map((l, i) => [l, [0, 1], [i, i + 1]]));
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              return layers.map(l => iiCharts.seriesColor("chart", l));
            }
            """);
        // Every line identifiable: twelve legend entries, the legend scrolls rather than cutting the last ones off.
        var legend = await page.EvaluateAsync<int[]>("""
            () => {
              const l = document.querySelector("#chart .u-legend");
              return [l.querySelectorAll("tr.u-series").length, l.scrollHeight, l.clientHeight,
                      getComputedStyle(l).overflowY === "auto" ? 1 : 0];
            }
            """);
        await page.Locator("#chart").ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "chart-12-layers.png") });
        var runs = await page.EvaluateAsync<string[]>("""
            async () => {
              const a = "breakers · dropout 0.01 · seed 1", b = "breakers · dropout 0.01 · seed 2";
              iiCharts.create("chart", { title: "loss", runs: [a, b] });
              iiCharts.add("chart", [[a + " · train loss", [0, 1], [2, 1]], [a + " · epoch test loss", [1], [1.5]],
                                     [b + " · train loss", [0, 1], [2, 1]], [b + " · epoch test loss", [1], [1.5]]]);
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              const style = n => iiCharts.seriesColor("chart", n) + " " + JSON.stringify(iiCharts.seriesDash("chart", n));
              return [style(a + " · train loss"), style(a + " · epoch test loss"),
                      style(b + " · train loss"), style(b + " · epoch test loss")];
            }
            """);

        Assert.Equal(12, colours.Distinct().Count());
        Assert.Equal(13, legend[0]); // the x axis and 12 layers
        Assert.True(legend[1] <= legend[2] || legend[3] == 1, "legend entries cut off"); // all fit, or the legend scrolls to them
        var colour = runs.Select(r => r.Split(' ')[0]).ToArray();
        Assert.Equal(colour[0], colour[1]); // one run, one colour
        Assert.Equal(colour[2], colour[3]);
        Assert.NotEqual(colour[0], colour[2]); // two runs of one study: two colours
        Assert.NotEqual(runs[0], runs[1]); // train and test of one run differ by dash
        Assert.NotEqual(runs[0].Split(' ')[1], runs[2].Split(' ')[1]); // identical runs on top of each other: both show
    }

    [Fact]
    public async Task HoveringOneChartShowsTheSameStepOnTheOthers()
    {
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await BarePageAsync(context);
        await page.EvaluateAsync("""
            async () => {
              const other = document.createElement("div");
              other.id = "other";
              other.style.width = "600px";
              document.body.appendChild(other);
              const xs = [...Array(101).keys()].map(i => i * 10);
              iiCharts.create("chart", { title: "loss" }); iiCharts.add("chart", [["train loss", xs, xs.map(x => 2 - x / 1000)]]);
              iiCharts.create("other", { title: "spread" }); iiCharts.add("other", [["conv1", xs, xs.map(x => x * 1e-9)]]);
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            }
            """);
        var box = (await page.Locator("#chart .u-over").BoundingBoxAsync())!;

        await page.Mouse.MoveAsync(box.X + box.Width * 0.7f, box.Y + box.Height / 2);
        await page.WaitForFunctionAsync("() => iiCharts.cursorX('chart') !== null");

        var hovered = await page.EvaluateAsync<double?>("() => iiCharts.cursorX('chart')");
        Assert.NotNull(hovered);
        Assert.Equal(hovered, await page.EvaluateAsync<double?>("() => iiCharts.cursorX('other')"));
    }

    [Fact]
    public async Task ColoursFollowNamesMarkersTakeTheirLinesColourAndAChartIsTitledBeforeItsData()
    {
        var (playwright, context) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = context;
        var page = await BarePageAsync(context);

        // Hover values keep small numbers (spreads ~1e-12) readable.
        Assert.Equal("2.500e-9", await page.EvaluateAsync<string>("() => iiCharts.formatValue(2.5e-9)"));
        // Colours follow series names, not arrival order: two charts fed in opposite orders agree, and a break marker matches its line.
        var colours = await page.EvaluateAsync<string[]>("""
            async () => {
              const div = n => { const d = document.createElement("div"); d.id = n; document.body.appendChild(d); return n; };
              const a = div("colour-a"), b = div("colour-b");
              iiCharts.create(a, { title: "a" }); iiCharts.create(b, { title: "b" });
              iiCharts.add(a, [["spread/conv1", [1], [1]], ["spread/fc", [1], [2]], ["\u25B2 spread/conv1", [1], [1]]]);
              iiCharts.add(b, [["spread/fc", [1], [2]], ["spread/conv1", [1], [1]]]);
              await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
              return [iiCharts.seriesColor(a, "spread/conv1"), iiCharts.seriesColor(b, "spread/conv1"),
                      iiCharts.seriesColor(a, "spread/fc"), iiCharts.seriesColor(b, "spread/fc"), iiCharts.markers(a)[0].color,
                      String(iiCharts.legendCount(a))];
            }
            """);
        Assert.Equal("waiting for the first points", await page.EvaluateAsync<string>("""
            () => {
              const chart = document.createElement("div"), info = document.createElement("span");
              chart.id = "empty-chart"; info.id = "empty-chart-info";
              document.body.append(chart, info);
              iiCharts.create("empty-chart", { title: "empty", infoId: "empty-chart-info" });
              return chart.querySelector(".u-title").textContent === "empty" ? info.textContent : "no title before data";
            }
            """));
        Assert.Equal(colours[0], colours[1]);
        Assert.Equal(colours[2], colours[3]);
        Assert.Equal(colours[0], colours[4]); // a break marker is drawn in its line's colour
        Assert.Equal("2", colours[5]); // and is not a legend entry of its own
        Assert.NotEqual(colours[0], colours[2]);
    }

    /// <summary>The seeded loss in 500 buckets, min and max each, but one point for each of the 10 all-NaN buckets (a gap).</summary>
    static readonly int Bucketed = RunQueries.DefaultMaxPoints - 10;

    [Fact]
    public async Task ARunPagesChartsDrawFromItsHtmlCardsInViewFirstWithoutWaitingForTheCircuit()
    {
        // Issue 21 item 2: ~85 % of the time to a paper-scale run's first chart was the Blazor circuit starting. With the
        // circuit refused outright, the prerendered page alone must still draw every chart, each card fetched once.
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var id = await HistoryTests.SeedAsync(lab.Services);
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();
        await page.RouteAsync("**/_blazor/**", route => route.AbortAsync());
        // Scrolled to the foot of the page as the parser reaches charts.js (before it runs): the last cards are then in view.
        await page.AddInitScriptAsync("""
            new MutationObserver((_, o) => {
              if (document.querySelector('script[src*="charts"]')) { window.scrollTo(0, document.body.scrollHeight); o.disconnect(); }
            }).observe(document, { childList: true, subtree: true })
            """);
        var fetched = new ConcurrentQueue<string>();
        page.Request += (_, r) => { if (r.Url.Contains($"/api/runs/{id}/charts/")) fetched.Enqueue(r.Url.Split('/').Last()); };

        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        const string loss = "document.querySelector(\"[data-chart='loss']\")";
        const string accuracy = "document.querySelector(\"[data-chart='accuracy']\")";
        await page.WaitForFunctionAsync($"() => iiCharts.pointCount({accuracy}.id) === 10 && iiCharts.pointCount({loss}.id) === {Bucketed}",
            null, new() { Timeout = 30_000 });
        var inView = await page.EvaluateAsync<string[]>(
            "() => [...document.querySelectorAll('[data-chart-src]')].filter(e => { const r = e.getBoundingClientRect(); return r.bottom " +
                "> 0 && r.top < innerHeight; }).map(e => e.dataset.chart)");
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "run-page-before-circuit.png") });

        // Each card once: the two preloaded from the head (before any stylesheet or script has loaded) are not fetched
        // again by charts.js; of the others, those on screen were asked for first.
        Assert.Equal(ChartSpec.All.Select(s => s.Key).Order(), fetched.Order());
        Assert.Equal(["loss", "accuracy"], fetched.Take(2));
        Assert.NotEmpty(inView);
        Assert.DoesNotContain("loss", inView);
        Assert.Equal(inView.Order(), fetched.Skip(2).Take(inView.Length).Order());
        Assert.Equal($"{Bucketed} points · zoom in for full resolution",
            await page.EvaluateAsync<string>($"() => document.getElementById({loss}.id + '-info').textContent"));
        Assert.NotNull(await page.EvaluateAsync<double[]?>($"() => iiCharts.xRange({loss}.id)")); // drawn, not only held
        Assert.Equal("Loss", await page.EvaluateAsync<string>($"() => {loss}.querySelector('.u-title').textContent"));
    }

    [Fact]
    public async Task TheCircuitStartsOnceTheCardsInViewHaveDrawnTheirHistory()
    {
        // Issue 21 item 2: the circuit's start-up ran as long tasks on the main thread between a card's bytes and its
        // drawing. Blazor now starts after the cards in view have drawn, and still starts: the page becomes interactive.
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        var id = await HistoryTests.SeedAsync(lab.Services);
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();
        // When Blazor asks to negotiate its circuit, note for each card in view the points it held and whether it drew them.
        await page.AddInitScriptAsync("""
            const fetch0 = window.fetch;
            window.fetch = (input, init) => {
              const url = typeof input === "string" ? input : input.url;
              if (url.includes("_blazor/negotiate") && !window.__atNegotiate)
                window.__atNegotiate = Object.fromEntries([...document.querySelectorAll("[data-chart-src]")]
                  .filter(e => { const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; })
                  .map(e => [e.dataset.chart, iiCharts.pointCount(e.id) + (iiCharts.xRange(e.id) ? " drawn" : " not drawn")]));
              return fetch0(input, init);
            };
            """);

        // The seeded history is small and answers in milliseconds; a paper-scale one takes longer. Held back 800 ms, the
        // cards' answers come after Blazor's start-up would have begun on its own.
        await page.RouteAsync("**/api/runs/*/charts/*", async route => { await Task.Delay(800); await route.ContinueAsync(); });

        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        await page.WaitForSelectorAsync("#app-ready[data-ready=true]", new() { State = WaitForSelectorState.Attached, Timeout = 30_000 });
        var atNegotiate = await page.EvaluateAsync<Dictionary<string, string>>("() => window.__atNegotiate");
        var now = await page.EvaluateAsync<Dictionary<string, int>>(
            "keys => Object.fromEntries(keys.map(k => [k, iiCharts.pointCount(document.querySelector(`[data-chart='${k}']`).id)]))",
            atNegotiate.Keys.ToArray());

        Assert.Contains("loss", atNegotiate.Keys); // the seeded run's loss and accuracy cards are on screen
        Assert.Contains("accuracy", atNegotiate.Keys);
        foreach (var (card, held) in atNegotiate) // every card in view held all its history (the seed stores no more), drawn
            Assert.Equal(now[card] == 0 ? "0 not drawn" : $"{now[card]} drawn", held);
    }

    [Fact]
    public async Task ARunPageOpenedMidRunDrawsEverySeriesToTheLastStepWhileSymmetryBreaks()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var http = lab.Client(baseUrl);
        // CPU rounding jitter: correlations leave 1 by ~1e-9 in the first steps, the values that once froze this page.
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 12, extra: new { correlationEvery = 4 }))).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 24, 120,
            "the run to pass step 24");
        var (playwright, context) = await Chromium.SignedInAsync(lab, baseUrl);
        using var _ = playwright;
        await using var __ = context;
        var page = await context.NewPageAsync();
        var errors = new ConcurrentQueue<string>();
        page.PageError += (_, e) => errors.Enqueue(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Enqueue(m.Text); };

        await page.GotoAsync(new Uri(baseUrl, $"/runs/{id}").ToString());
        var opened = (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64();
        await Api.WaitForStatusAsync(http, id, "Completed", 180);
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var last = points.Max(p => p.Step);
        const string loss = "document.querySelector(\"[data-chart='loss']\").id";
        await page.WaitForFunctionAsync($"() => iiCharts.lastX({loss}) === {last}", null, new() { Timeout = 30_000 });
        await page.WaitForTimeoutAsync(500); // the last batch reaches every chart in the same frame
        await page.ScreenshotAsync(new() { Path = Path.Combine(Chromium.Artifacts, "run-broken-symmetry.png"), FullPage = true });

        Assert.True(opened < last, $"the page opened at step {opened}, after the run ended at {last}");
        Assert.Contains(points, p => p.Series.StartsWith("acorr/", StringComparison.Ordinal) && p.Value is < 1 and > 1 - 1e-6);
        var missing = new List<string>();
        foreach (var spec in ChartSpec.All)
        {
            var chart = $"document.querySelector(\"[data-chart='{spec.Key}']\").id";
            foreach (var series in points.GroupBy(p => p.Series).Where(g => spec.Label(g.Key) is not null))
            {
                var label = spec.Label(series.Key)!;
                var drawn = await page.EvaluateAsync<double[][]?>($"() => iiCharts.values({chart}, " +
                    $"{System.Text.Json.JsonSerializer.Serialize(label)})");
                var expected = series.Select(p => (double)p.Step).Order().ToArray();
                if (drawn is null || !drawn[0].SequenceEqual(expected))
                    missing.Add($"{spec.Key}/{label}: {drawn?[0].Length ?? 0} of {expected.Length} steps, last " +
                        $"{drawn?[0].LastOrDefault()} of {expected[^1]}");
            }
            var plotted = await page.EvaluateAsync<bool>($"() => {{ const id = {chart}; return iiCharts.seriesNames(id).length === 0 || " +
                $"iiCharts.xRange(id) !== null; }}");
            if (!plotted) missing.Add($"{spec.Key}: has series but no plot");
        }
        Assert.Empty(missing);
        Assert.Empty(errors);
    }
}
