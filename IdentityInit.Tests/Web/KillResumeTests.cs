using System.Diagnostics;
using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>The app as a real process, killed with SIGKILL mid-run and started again on the same data folder.</summary>
public sealed class KillResumeTests
{
    static string WebBinary()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IdentityInit.sln"))) dir = dir.Parent;
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        return Path.Combine(dir!.FullName, "IdentityInit.Web", "bin", configuration, "net10.0", "linux-x64", "IdentityInit.Web.dll");
    }

    static Process Start(string dataDir, int port)
    {
        var binary = WebBinary();
        var start = new ProcessStartInfo("dotnet", [binary, "--urls", $"http://127.0.0.1:{port}"])
        {
            WorkingDirectory = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(binary)))))!,
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.Environment["IdentityInit__DataDir"] = dataDir;
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    static async Task<HttpClient> ReadyAsync(int port)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        await Wait.UntilAsync(async () =>
        {
            try { return (await http.GetAsync("/api/presets")).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, 60, "the app to start");
        return http;
    }

    [Fact]
    public async Task ARunWhoseProcessIsKilledResumesFromItsCheckpointWithNoLostOrDuplicatedStep()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "identityinit-kill-" + Guid.NewGuid().ToString("N")[..8]);
        var port = PostgresServer.FreePort();
        var config = Api.TinyRun(epochs: 30, extra: new { checkpointEvery = 25, correlationEvery = 50 });
        Guid id;
        long killedAt;
        using (var first = Start(dataDir, port))
        {
            var http = await ReadyAsync(port);
            id = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
            await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() >= 110, 90, "training past step 110");
            killedAt = (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64();
            first.Kill(entireProcessTree: true); // SIGKILL: no shutdown, no final checkpoint
            await first.WaitForExitAsync();
        }

        using var second = Start(dataDir, port);
        try
        {
            var http = await ReadyAsync(port);
            var run = await Api.WaitForStatusAsync(http, id, "Completed", 120);
            var resumed = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
            var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
            var logs = await http.GetStringAsync($"/api/runs/{id}/logs");
            var again = (await Api.CreateAsync(http, config)).GetProperty("id").GetGuid();
            await Api.WaitForStatusAsync(http, again, "Completed", 120);
            var uninterrupted = await Api.PointsAsync(http, $"/api/runs/{again}/metrics");

            Assert.Equal(480, run.GetProperty("step").GetInt64());
            Assert.InRange(killedAt, 110, 479); // killed mid-run, not after it ended
            var resumedAt = long.Parse(System.Text.RegularExpressions.Regex.Match(logs, @"resumed from \S+ at step (\d+)").Groups[1].Value);
            Assert.Equal(killedAt / 25 * 25, resumedAt - resumedAt % 25); // from the last checkpoint at or before the kill
            Assert.InRange(resumedAt, 100, killedAt);
            Assert.Equal(Enumerable.Range(1, 48).Select(i => i * 10L), points.Where(p => p.Series == "train/loss").Select(p => p.Step));
            Assert.Equal(Enumerable.Range(0, 30).Select(i => (double)i), points.Where(p => p.Series == "epoch/index").Select(p => p.Value));
            // Bitwise on CPU: the killed-and-resumed run's whole stored history equals an uninterrupted run's.
            Assert.Equal(Series(uninterrupted), Series(points));
        }
        finally
        {
            second.Kill(entireProcessTree: true);
            try { Directory.Delete(dataDir, recursive: true); } catch (IOException) { }
        }
    }

    static List<(string, long, double)> Series(List<(string Series, long Step, double Value)> points) =>
        [.. points.Where(p => p.Series is not ("throughput" or "step_ms")).OrderBy(p => p.Series, StringComparer.Ordinal).ThenBy(p => p.Step)];
}
