using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace IdentityInit.Tests.Infrastructure;

/// <summary>
/// The real app (Program) on a fresh data folder: SQLite and in-memory Hangfire by default, PostgreSQL for both when a
/// connection string is given. <see cref="StartKestrel"/> serves it on 127.0.0.1 for browsers and SignalR clients.
/// </summary>
public sealed class LabFactory(string? postgres = null, IReadOnlyDictionary<string, string?>? settings = null) : WebApplicationFactory<Program>
{
    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "identityinit-lab-" + Guid.NewGuid().ToString("N")[..8]);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.UseSetting("IdentityInit:DataDir", DataDir);
        builder.UseSetting("IdentityInit:DatasetDir", Path.Combine(DataDir, "datasets"));
        builder.UseSetting("ConnectionStrings:Postgres", postgres ?? "");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) builder.UseSetting(key, value);
    }

    /// <summary>Starts Kestrel on a free loopback port and returns the base address.</summary>
    public Uri StartKestrel()
    {
        UseKestrel(0);
        StartServer();
        return ClientOptions.BaseAddress;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try { Directory.Delete(DataDir, recursive: true); } catch (IOException) { }
    }
}

public static class Wait
{
    /// <summary>Polls until <paramref name="condition"/> holds, or fails the test after <paramref name="seconds"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, double seconds = 60, string? what = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out after {seconds} s waiting for {what ?? "a condition"}");
            await Task.Delay(100);
        }
    }
}
