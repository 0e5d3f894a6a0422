using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Data;
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
    static double? Loss(long step) => step is >= 9000 and < 9200 ? null : step == 7777 ? 1000 : 2 + Math.Sin(step / 37.0) / (1 + step / 1000.0);

    /// <summary>withTimes: a "time" point every 10 steps, 6 s apart (step 1000 at 10 min).</summary>
    internal static async Task<Guid> SeedAsync(IServiceProvider services, bool withTimes = false, string name = "long")
    {
        var db = services.GetRequiredService<AppDb>();
        var id = Guid.NewGuid();
        await using (var context = db.Create())
        {
            context.Runs.Add(new Run
            {
                Id = id, Name = name, ConfigJson = "{}", Architecture = "constnet", Init = "const", Breakers = "none", Dataset = "synthetic",
                Queue = "cpu", Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow,
            });
            await context.SaveChangesAsync();
        }
        await db.WritePointsAsync([
            .. Enumerable.Range(0, Steps).Select(s => new MetricPoint { RunId = id, Series = "train/loss", Step = s, Value = Loss(s) }),
            .. Enumerable.Range(1, 10).Select(e => new MetricPoint { RunId = id, Series = "epoch/test_acc", Step = e * 1000, Value = e / 10.0 }),
            .. Enumerable.Range(0, withTimes ? Steps / 10 : 0).Select(k => new MetricPoint { RunId = id, Series = "time", Step = k * 10, Value = 1.7e9 + k * 6 }),
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
