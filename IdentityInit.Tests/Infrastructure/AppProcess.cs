using System.Collections.Concurrent;
using System.Diagnostics;

namespace IdentityInit.Tests.Infrastructure;

/// <summary>The built web app as a real process: a web node (<c>--urls</c>) or a worker host (<c>worker</c>).</summary>
public sealed class AppProcess : IDisposable
{
    readonly Process process;
    readonly ConcurrentQueue<string> output = new();

    AppProcess(Process process) => this.process = process;

    public int Id => process.Id;
    public string Output => string.Join('\n', output);

    static string WebBinary()
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        return Path.Combine(Repository.Root, "IdentityInit.Web", "bin", configuration, "net10.0", "linux-x64", "IdentityInit.Web.dll");
    }

    /// <param name="settings">configuration as environment variables (IdentityInit__DataDir, ConnectionStrings__Postgres, ...)</param>
    public static AppProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string> settings)
    {
        var binary = WebBinary();
        var start = new ProcessStartInfo("dotnet", [binary, .. arguments])
        {
            WorkingDirectory = Path.Combine(Repository.Root, "IdentityInit.Web"), // the project's folder, as dotnet run starts it
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings) start.Environment[key] = value;
        var app = new AppProcess(Process.Start(start)!);
        app.process.OutputDataReceived += (_, e) => app.Keep(e.Data);
        app.process.ErrorDataReceived += (_, e) => app.Keep(e.Data);
        app.process.BeginOutputReadLine();
        app.process.BeginErrorReadLine();
        return app;
    }

    void Keep(string? line)
    {
        if (line is null) return;
        var link = System.Text.RegularExpressions.Regex.Match(line, "first admin.*?(/invite/[A-Za-z0-9_-]+)");
        if (link.Success) firstAdminLink = link.Groups[1].Value; // kept however much is printed after it
        output.Enqueue(line);
        while (output.Count > 200) output.TryDequeue(out _);
    }

    /// <summary>
    /// Waits for the web node on <paramref name="port"/>, then a client acting as its admin: on a fresh install through
    /// the one-time link it printed, else by signing in (<see cref="LabFactory.Admin"/>), with a token from that session.
    /// </summary>
    public async Task<HttpClient> ReadyAsync(int port)
    {
        var baseUrl = new Uri($"http://127.0.0.1:{port}");
        using var probe = new HttpClient { BaseAddress = baseUrl };
        await Wait.UntilAsync(async () =>
        {
            try { return (await probe.GetAsync("/healthz")).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, 60, "the app to start");
        using var browser = SignInClient.Browser(baseUrl);
        await Wait.UntilAsync(async () =>
        {
            if ((await SignInClient.SignInAsync(browser, LabFactory.Admin,
                LabFactory.Password)).Headers.Location?.OriginalString == "/") return true;
            if (FirstAdminLink() is { } link) await SignInClient.AcceptAsync(browser, link, LabFactory.Admin, LabFactory.Password);
            return false;
        }, 30, "the first admin's link or a working sign-in");
        return SignInClient.WithToken(baseUrl, await SignInClient.TokenAsync(browser));
    }

    /// <summary>The path of the one-time first-admin link this process printed, if it printed one.</summary>
    public string? FirstAdminLink() => firstAdminLink;

    volatile string? firstAdminLink;

    /// <summary>SIGKILL, this process only (its training children notice their closed stdin) or with them.</summary>
    public async Task KillAsync(bool entireTree = false)
    {
        if (entireTree) process.Kill(entireProcessTree: true);
        else Process.GetProcessById(process.Id).Kill();
        await process.WaitForExitAsync();
    }

    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        await process.WaitForExitAsync().WaitAsync(timeout);
        process.WaitForExit(); // drains the redirected output
        return process.ExitCode;
    }

    public void Dispose()
    {
        try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        process.Dispose();
    }
}
