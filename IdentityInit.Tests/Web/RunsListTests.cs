using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>The runs list as the API serves it: paged, sorted and filtered in the database, on both stores; edits and deletes.</summary>
public sealed class RunsListTests
{
    static readonly int[] Depths = [7, 16, 28, 100]; // as text 100 < 16 < 28 < 7: a sort on the JSON text would be caught

    /// <summary>250 ended runs: depth cycles through Depths, dropout 0.01 on every fifth, deterministic off on odd ones.</summary>
    internal static async Task SeedAsync(IServiceProvider services, int count = 250)
    {
        var db = services.GetRequiredService<AppDb>();
        await using var context = db.Create();
        var start = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        for (var i = 0; i < count; i++)
        {
            var config = new ExperimentConfig
            {
                Name = $"run {i:D3}", Depth = Depths[i % 4], Dropout = i % 5 == 0 ? 0.01 : 0,
                Deterministic = i % 2 == 0, Seed = i
            };
            context.Runs.Add(new Run
            {
                Id = Guid.NewGuid(), Name = config.Name, ConfigJson = ConfigOverlay.ToJson(config), Architecture = "constnet",
                Init = "const",
                Breakers = "none", Dataset = "cifar10", Queue = "cpu", Seed = i, Status = RunStatus.Completed,
                CreatedAt = start.AddMinutes(i),
                BestTestAccuracy = (i * 37 % 250) / 250.0,
            });
        }
        await context.SaveChangesAsync();
    }

    static async Task<(List<JsonElement> Runs, int Total, string? Next)> GetAsync(HttpClient http, string url)
    {
        var response = await http.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        var next = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
        return ([.. JsonDocument.Parse(body).RootElement.EnumerateArray()], int.Parse(response.Headers.GetValues("X-Total-Count").Single()),
            next);
    }

    static int Depth(JsonElement run) => run.GetProperty("config").GetProperty("depth").GetInt32();

    internal static async Task CheckAsync(HttpClient http)
    {
        // Pages of 100 by default, newest first, with the link to the next page.
        var (first, total, next) = await GetAsync(http, "/api/runs");
        Assert.Equal((100, 250), (first.Count, total));
        Assert.Equal("run 249", first[0].GetProperty("name").GetString());
        var names = first.Select(r => r.GetProperty("name").GetString()).ToList();
        while (next is not null)
        {
            (var page, _, next) = await GetAsync(http, next);
            names.AddRange(page.Select(r => r.GetProperty("name").GetString()));
        }
        Assert.Equal(Enumerable.Range(0, 250).Reverse().Select(i => $"run {i:D3}"), names);

        // Sorting by a summary metric and by a config field (numerically), and filtering on config fields.
        var (byAccuracy, _, _) = await GetAsync(http, "/api/runs?sort=bestTestAccuracy&order=asc&limit=250");
        var accuracies = byAccuracy.Select(r => r.GetProperty("bestTestAccuracy").GetDouble()).ToList();
        Assert.Equal(accuracies.Order(), accuracies);
        var (byDepth, _, _) = await GetAsync(http, "/api/runs?sort=config.depth&order=desc&limit=250");
        Assert.Equal(Enumerable.Repeat(100, 62).Concat(Enumerable.Repeat(28, 62)).Concat(Enumerable.Repeat(16, 63))
            .Concat(Enumerable.Repeat(7, 63)),
            byDepth.Select(Depth));
        var (filtered, filteredTotal, _) = await GetAsync(http,
            "/api/runs?config.deterministic=false&config.dropout=0.01&config.depth=16&limit=250");
        var expected = Enumerable.Range(0, 250).Where(i => i % 2 == 1 && i % 5 == 0 && Depths[i % 4] == 16).ToList();
        Assert.Equal(expected.Count, filteredTotal);
        Assert.Equal(expected.AsEnumerable().Reverse().Select(i => $"run {i:D3}"), filtered.Select(r => r.GetProperty("name").GetString()));

        // Bad queries name their parameter.
        foreach (var (query, field) in new[] { ("sort=colour", "sort"), ("limit=0", "limit"), ("limit=1001", "limit"),
            ("offset=-1", "offset"),
                     ("config.colour=red", "config.colour"), ("config.depth=deep", "config.depth"), ("status=Sleeping", "status"),
                         ("order=up", "order") })
        {
            var response = await http.GetAsync("/api/runs?" + query);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.True(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")
                .TryGetProperty(field, out _), query);
        }
    }

    [Fact]
    public async Task OnSqliteTheRunsListIsPagedSortedAndFilteredInTheDatabase()
    {
        await using var lab = new LabFactory();
        await SeedAsync(lab.Services);
        await CheckAsync(lab.CreateClient());
    }

    [Fact]
    public async Task QueuedRunsPastTheLimitAreRefusedWholeNamingTheQueue()
    {
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["IdentityInit:MaxQueuedRuns"] = "3" });
        var http = lab.CreateClient();
        await using (var context = lab.Services.GetRequiredService<AppDb>().Create())
        {
            foreach (var owner in new[] { LabFactory.Admin, LabFactory.Admin, "someone-else" }) // waiting in the store, as a backlog would
                context.Runs.Add(new Run
                {
                    Id = Guid.NewGuid(), Name = $"waiting for {owner}", Owner = owner, ConfigJson = "{}",
                    Architecture = "constnet", Init = "const", Breakers = "none", Dataset = "synthetic", Queue = "cpu",
                    Status = RunStatus.Queued, CreatedAt = DateTime.UtcNow
                });
            await context.SaveChangesAsync();
        }
        var sweep = new
        {
            preset = "constnet-nondeterministic", config = new { dataset = "synthetic", epochs = 1 },
            sweep = new { seeds = new[] { 1, 2 } }
        };

        var response = await http.PostAsJsonAsync("/api/runs", sweep);

        Assert.Equal((HttpStatusCode)429, response.StatusCode);
        Assert.Contains("admin has 2 runs queued already and at most 3 may wait at once; these 2 would make 4", // per user: not 3
            JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")
                .GetProperty("queue")[0].GetString());
        Assert.Equal("3", (await http.GetAsync("/api/runs")).Headers.GetValues("X-Total-Count").Single()); // nothing stored, nothing queued
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task ARunIsRenamedAnnotatedArchivedAndDeletedWithEverythingItStored()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await HistoryTests.SeedAsync(lab.Services);

        var edited = await http.PatchAsJsonAsync($"/api/runs/{id}",
            new { name = "renamed", tags = new[] { "paper", "fig2" }, notes = "BN stats look off" });
        Assert.Equal(HttpStatusCode.OK, edited.StatusCode);
        var run = await Api.GetRunAsync(http, id);
        Assert.Equal(("renamed", "BN stats look off"), (run.GetProperty("name").GetString(), run.GetProperty("notes").GetString()));
        Assert.Equal(["paper", "fig2"], run.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));

        var invalid = await http.PatchAsJsonAsync($"/api/runs/{id}", new { name = new string('x', 201), tags = new[] { "a,b" } });
        var problem = JsonDocument.Parse(await invalid.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.True(problem.TryGetProperty("name", out _) && problem.TryGetProperty("tags", out _));
        Assert.Equal("renamed", (await Api.GetRunAsync(http, id)).GetProperty("name").GetString()); // nothing half-written

        await http.PatchAsJsonAsync($"/api/runs/{id}", new { archived = true });
        Assert.Empty((await GetAsync(http, "/api/runs")).Runs);
        Assert.Single((await GetAsync(http, "/api/runs?archived=true")).Runs);

        await using (var context = lab.Services.GetRequiredService<AppDb>().Create())
        {
            var running = new Run
            {
                Id = Guid.NewGuid(), Name = "live", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                Breakers = "none", Dataset = "synthetic", Queue = "cpu", Status = RunStatus.Running, CreatedAt = DateTime.UtcNow
            };
            context.Runs.Add(running);
            await context.SaveChangesAsync();
            Assert.Equal(HttpStatusCode.Conflict, (await http.DeleteAsync($"/api/runs/{running.Id}")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync($"/api/runs/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}/metrics")).StatusCode);
        await using (var context = lab.Services.GetRequiredService<AppDb>().Create())
            Assert.False(context.Points.Any(p => p.RunId == id));
    }
}
