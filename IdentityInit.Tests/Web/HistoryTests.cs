using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>
/// Paper-scale history: a series longer than the request's maxPoints comes back as min and max per bucket (computed in
/// the database), a window of steps at full resolution. Checked against buckets computed here by hand, on both stores.
/// </summary>
public sealed class HistoryTests
{
    const int Steps = 10_000;

    /// <summary>A wavy loss with one spike at step 7777 and NaN over steps 9000-9199 (exactly bucket 45 at width 200).</summary>
    static double? Loss(long step) =>
        step is >= 9000 and < 9200 ? null : step == 7777 ? 1000 : 2 + Math.Sin(step / 37.0) / (1 + step / 1000.0);

    /// <summary>withTimes: a "time" point every 10 steps, 6 s apart (step 1000 at 10 min).</summary>
    internal static async Task<Guid> SeedAsync(IServiceProvider services, bool withTimes = false, string name = "long")
    {
        var db = services.GetRequiredService<AppDb>();
        var id = Guid.NewGuid();
        await using (var context = db.Create())
        {
            context.Runs.Add(new Run
            {
                Id = id, Name = name, ConfigJson = "{}", Architecture = "constnet", Init = "const", Breakers = "none",
                Dataset = "synthetic",
                Queue = "cpu", Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow,
            });
            await context.SaveChangesAsync();
        }
        await db.WritePointsAsync([
            .. Enumerable.Range(0, Steps).Select(s => new MetricPoint { RunId = id, Series = "train/loss", Step = s, Value = Loss(s) }),
            .. Enumerable.Range(1, 10)
                .Select(e => new MetricPoint { RunId = id, Series = "epoch/test_acc", Step = e * 1000, Value = e / 10.0 }),
            .. Enumerable.Range(0, withTimes ? Steps / 10 : 0)
                .Select(k => new MetricPoint { RunId = id, Series = "time", Step = k * 10, Value = 1.7e9 + k * 6 }),
        ]);
        return id;
    }

    internal static async Task CheckAsync(HttpClient http, Guid id)
    {
        var all = await Api.PointsAsync(http, $"/api/runs/{id}/metrics?maxPoints=100");
        var loss = all.Where(p => p.Series == "train/loss").ToList();
        var expected = new List<(long, double)>();
        for (var b = 0; b < 50; b++) // width = (9999 - 0) / 50 + 1 = 200
        {
            var steps = Enumerable.Range(b * 200, 200).Select(s => (long)s).ToList();
            var values = steps.Select(Loss).OfType<double>().ToList();
            if (values.Count == 0) { expected.Add((steps[0], double.NaN)); continue; }
            expected.Add((steps[0], values.Min()));
            expected.Add((steps[^1], values.Max()));
        }
        Assert.Equal(expected, loss.Select(p => (p.Step, p.Value)));
        Assert.Contains(loss, p => p.Value == 1000); // the spike survives
        Assert.Equal(Enumerable.Range(1, 10).Select(e => (e * 1000L, e / 10.0)),
            all.Where(p => p.Series == "epoch/test_acc").Select(p => (p.Step, p.Value))); // a short series is whole

        var window = await Api.PointsAsync(http, $"/api/runs/{id}/metrics?maxPoints=1000&series=train/&from=7700&to=7800");
        Assert.Equal(Enumerable.Range(7700, 101).Select(s => ((long)s, Loss(s)!.Value)), window.Select(p => (p.Step, p.Value)));
        Assert.Equal(Steps + 10, (await Api.PointsAsync(http, $"/api/runs/{id}/metrics")).Count); // without maxPoints: everything
    }

    [Fact]
    public async Task AChartCardsHistoryIsItsOwnSeriesBucketedWithTheLastStepReadAndComesCompressed()
    {
        // What a prerendered run page fetches per card before its circuit is up (issue 21 item 2).
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedAsync(lab.Services);
        var request = new HttpRequestMessage(HttpMethod.Get, $"/api/runs/{id}/charts/loss") { Headers = { { "Accept-Encoding", "gzip" } } };

        var response = await http.SendAsync(request);

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("gzip", Assert.Single(response.Content.Headers.ContentEncoding));
        await using var body = new System.IO.Compression.GZipStream(await response.Content.ReadAsStreamAsync(),
            System.IO.Compression.CompressionMode.Decompress);
        var loss = (await System.Text.Json.JsonDocument.ParseAsync(body)).RootElement;
        Assert.Equal(Steps - 1, loss.GetProperty("upTo").GetInt64());
        Assert.True(loss.GetProperty("overview").GetBoolean());
        var column = Assert.Single(loss.GetProperty("columns").EnumerateArray()); // the loss chart's only series: not test accuracy
        Assert.Equal("train loss", column[0].GetString());
        // 500 buckets, min and max each; the 10 all-NaN ones a gap each
        Assert.Equal(RunQueries.DefaultMaxPoints - 10, column[1].GetArrayLength());
        // the spike
        Assert.Contains(column[2].EnumerateArray(), v => v.ValueKind == System.Text.Json.JsonValueKind.Number && v.GetDouble() == 1000);
        Assert.Contains(column[2].EnumerateArray(), v => v.ValueKind == System.Text.Json.JsonValueKind.Null); // the NaN stretch is a gap

        var accuracy = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}/charts/accuracy")).RootElement;
        Assert.Equal(10 * 1000, accuracy.GetProperty("upTo").GetInt64());
        Assert.False(accuracy.GetProperty("overview").GetBoolean());
        var test = Assert.Single(accuracy.GetProperty("columns").EnumerateArray());
        Assert.Equal("epoch test acc", test[0].GetString());
        Assert.Equal(Enumerable.Range(1, 10).Select(e => e * 1000.0), test[1].EnumerateArray().Select(x => x.GetDouble()));
        var empty = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}/charts/spread")).RootElement;
        Assert.Equal(System.Text.Json.JsonValueKind.Null, empty.GetProperty("upTo").ValueKind);
        Assert.Equal(0, empty.GetProperty("columns").GetArrayLength());

        var unknown = await http.GetAsync($"/api/runs/{id}/charts/nope");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("no chart 'nope'; charts: loss, accuracy", await unknown.Content.ReadAsStringAsync());
        Assert.Equal(System.Net.HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{Guid.NewGuid()}/charts/loss")).StatusCode);
        using var anonymous = lab.Server.CreateClient();
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"/api/runs/{id}/charts/loss")).StatusCode);
    }

    [Fact]
    public async Task AnEndedRunsCardsAreKeptAndARunThatTrainsOnOrIsResumedIsReadAfresh()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedAsync(lab.Services);
        var db = lab.Services.GetRequiredService<AppDb>();
        var cards = lab.Services.GetRequiredService<ChartCards>();
        async Task SetAsync(RunStatus status, DateTime? finishedAt, long step)
        {
            await using var context = db.Create();
            await context.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, status)
                .SetProperty(r => r.FinishedAt, finishedAt).SetProperty(r => r.Step, step));
        }
        async Task<long> TrainAsync(long from, int steps) // more points, as a run that trains on writes them
        {
            await db.WritePointsAsync([.. Enumerable.Range(0, steps)
                .Select(k => new MetricPoint { RunId = id, Series = "train/loss", Step = from + k, Value = 1 })]);
            return from + steps - 1;
        }
        async Task<long> UpToAsync() =>
            System.Text.Json.JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}/charts/loss")).RootElement.GetProperty("upTo")
            .GetInt64();

        await SetAsync(RunStatus.Running, null, Steps - 1);
        var live = await UpToAsync();
        var trained = await TrainAsync(Steps, 100);
        var liveAgain = await UpToAsync();
        await SetAsync(RunStatus.Completed, DateTime.UtcNow, trained);
        var reads = cards.Reads;
        var ended = await http.GetByteArrayAsync($"/api/runs/{id}/charts/loss");
        var endedAgain = await http.GetByteArrayAsync($"/api/runs/{id}/charts/loss");
        var readsAfter = cards.Reads;
        await SetAsync(RunStatus.Running, null, trained); // resumed
        var resumed = await TrainAsync(trained + 1, 50);
        await SetAsync(RunStatus.Completed, DateTime.UtcNow.AddMinutes(1), resumed);
        var endedLater = await UpToAsync();

        Assert.Equal((Steps - 1L, Steps + 99L), (live, liveAgain)); // a live run's card is read every time
        Assert.Equal(reads + 1, readsAfter); // an ended run's card: read once, then from memory, the same bytes
        Assert.Equal(ended, endedAgain);
        Assert.Equal(trained, System.Text.Json.JsonDocument.Parse(ended).RootElement.GetProperty("upTo").GetInt64());
        Assert.Equal(resumed, endedLater); // a run resumed and ended again is read afresh
    }

    [Fact]
    public async Task AFinishedRunsPagePrerenderReadsItsCardsAheadOnceEachAndTheBrowsersFetchesReadNothingMore()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await lab.EnsureUserAsync(LabFactory.Admin, IdentityInit.Web.Accounts.LabRoles.Admin);
        using var browser = SignInClient.Browser(baseUrl);
        await SignInClient.SignInAsync(browser, LabFactory.Admin, LabFactory.Password);
        var id = await SeedAsync(lab.Services);
        var cards = lab.Services.GetRequiredService<ChartCards>();
        var before = cards.Reads;

        var page = await browser.GetStringAsync($"/runs/{id}");
        // no card fetched yet: the prerender alone reads them
        await Wait.UntilAsync(() => Task.FromResult(cards.Reads - before == ChartSpec.All.Count), 30, "every card to be read ahead");
        var fetched = await Task.WhenAll(ChartSpec.All.Select(spec => browser.GetStringAsync($"/api/runs/{id}/charts/{spec.Key}")));

        Assert.Contains($"api/runs/{id}/charts/loss", page);
        Assert.Equal(ChartSpec.All.Count, cards.Reads - before); // the page's fetches were answered from what was read ahead
        Assert.Equal(Steps - 1, System.Text.Json.JsonDocument.Parse(fetched[0]).RootElement.GetProperty("upTo").GetInt64());
    }

    [Fact]
    public async Task OnSqliteALongSeriesIsServedAsMinMaxPerBucketAndAWindowAtFullResolution()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedAsync(lab.Services);
        await CheckAsync(http, id);
        var bad = await http.GetAsync($"/api/runs/{id}/metrics?maxPoints=1");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("maxPoints", await bad.Content.ReadAsStringAsync());
    }
}
