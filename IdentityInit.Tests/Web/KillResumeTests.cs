using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>The app as a real process, killed with SIGKILL mid-run and started again on the same data folder.</summary>
[Collection(FaultCollection.Name)]
public sealed class KillResumeTests
{
    static AppProcess Start(string dataDir, int port) =>
        AppProcess.Start(["--urls", $"http://127.0.0.1:{port}"], new Dictionary<string, string> { ["IdentityInit__DataDir"] = dataDir });

    [Fact]
    public async Task ARunWhoseProcessIsKilledResumesFromItsCheckpointWithNoLostOrDuplicatedStep()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "identityinit-kill-" + Guid.NewGuid().ToString("N")[..8]);
        var port = PostgresServer.FreePort();
        var config = Api.TinyRun(epochs: 12, extra: new { checkpointEvery = 25, correlationEvery = 50 }); // 192 steps
        Guid id;
        long killedAt;
        using (var first = Start(dataDir, port))
        {
            var http = await first.ReadyAsync(port);
            id = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
            await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 110, 90,
                "training past step 110");
            killedAt = (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64();
            await first.KillAsync(entireTree: true); // SIGKILL: no shutdown, no final checkpoint
        }

        using var second = Start(dataDir, port);
        try
        {
            var http = await second.ReadyAsync(port);
            var run = await Api.WaitForStatusAsync(http, id, "Completed", 120);
            var resumed = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
            var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
            var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
            var again = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
            await Api.WaitForStatusAsync(http, again, "Completed", 120);
            var uninterrupted = await Api.PointsAsync(http, $"/api/runs/{again}/metrics");

            Assert.Equal(192, run.GetProperty("step").GetInt64());
            Assert.InRange(killedAt, 110, 191); // killed mid-run, not after it ended
            var resumedAt = long.Parse(System.Text.RegularExpressions.Regex.Match(logs, @"resumed from \S+ at step (\d+)").Groups[1].Value);
            Assert.Equal(0, resumedAt % 25); // from a checkpoint: the newest whose events were stored before the kill
            Assert.InRange(resumedAt, killedAt - 2 * 25, killedAt);
            Assert.InRange(resumedAt, 100, killedAt);
            Assert.Equal(Enumerable.Range(1, 19).Select(i => i * 10L), points.Where(p => p.Series == "train/loss").Select(p => p.Step));
            Assert.Equal(Enumerable.Range(0, 12).Select(i => (double)i), points.Where(p => p.Series == "epoch/index").Select(p => p.Value));
            // Bitwise on CPU: the killed-and-resumed run's whole stored history equals an uninterrupted run's.
            Assert.Equal(Api.Deterministic(uninterrupted), Api.Deterministic(points));
        }
        finally
        {
            second.Dispose();
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

}
