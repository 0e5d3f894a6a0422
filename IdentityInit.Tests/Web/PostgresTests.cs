using System.Net.Http.Json;
using IdentityInit.Tests.Infrastructure;
using Npgsql;

namespace IdentityInit.Tests.Web;

/// <summary>The production store: EF Core + Npgsql (migrations on start, COPY for points) and Hangfire.PostgreSql.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresTests(PostgresServer postgres)
{
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
        var stored = (long)(await new NpgsqlCommand($"SELECT count(*) FROM metric_points WHERE \"RunId\" = '{id}'", db).ExecuteScalarAsync())!;
        var jobs = (long)(await new NpgsqlCommand("SELECT count(*) FROM hangfire.job", db).ExecuteScalarAsync())!;
        var migrations = (long)(await new NpgsqlCommand("SELECT count(*) FROM \"__EFMigrationsHistory\"", db).ExecuteScalarAsync())!;
        Assert.Equal(points.Count, stored);
        Assert.True(points.Count > 100);
        Assert.Equal(1, jobs);
        Assert.Equal(1, migrations);
        Assert.Contains(points, p => p.Series == "epoch/test_acc" && p.Step == 32);
    }

    [Fact]
    public async Task RunsSurviveARestartOfTheAppOnTheSameDatabase()
    {
        var connection = await postgres.CreateDatabaseAsync();
        Guid id;
        await using (var first = new LabFactory(connection, new Dictionary<string, string?> { ["IdentityInit:Queues"] = "cuda" }))
        {
            // No worker for the cpu queue in this process: the run stays queued in Hangfire's PostgreSQL storage.
            var http = first.CreateClient();
            var response = await http.PostAsJsonAsync("/api/runs", Api.TinyRun());
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, response.StatusCode); // nothing serves cpu: refused, not lost
        }
        await using var lab = new LabFactory(connection);
        var client = lab.CreateClient();
        id = (await Api.CreateAsync(client, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();

        var run = await Api.WaitForStatusAsync(client, id, "Completed");

        Assert.Equal(16, run.GetProperty("step").GetInt64());
    }
}
