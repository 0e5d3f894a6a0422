using System.Net.Http.Headers;
using IdentityInit.Web.Accounts;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Infrastructure;

/// <summary>
/// The real app (Program) on a fresh data folder: SQLite and in-memory Hangfire by default, PostgreSQL for both when a
/// connection string is given. <see cref="StartKestrel"/> serves it on 127.0.0.1 for browsers and SignalR clients.
/// Its clients act as an admin through a personal API token (the accounts themselves are tested through their pages).
/// </summary>
public sealed class LabFactory(string? postgres = null, IReadOnlyDictionary<string, string?>? settings = null)
    : WebApplicationFactory<Program>
{
    public string DataDir { get; } = Path.Combine(Path.GetTempPath(), "identityinit-lab-" + Guid.NewGuid().ToString("N")[..8]);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.UseSetting("IdentityInit:DataDir", DataDir);
        builder.UseSetting("IdentityInit:DatasetDir", Path.Combine(DataDir, "datasets"));
        builder.UseSetting("ConnectionStrings:Postgres", postgres ?? "");
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        // The suite prints a line per test; the lab's start-up chatter (host lifetime, unencrypted key ring) would bury them.
        builder.UseSetting("Logging:LogLevel:Microsoft.Hosting.Lifetime", "Warning");
        builder.UseSetting("Logging:LogLevel:Microsoft.AspNetCore.DataProtection", "Error");
        // The in-memory test server has no request body size feature: every upload route would warn that its limit
        // (enforced by Kestrel in the app) cannot be applied here.
        builder.UseSetting("Logging:LogLevel:Microsoft.AspNetCore.Routing.EndpointRoutingMiddleware", "Error");
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) builder.UseSetting(key, value);
    }

    public const string Admin = "admin";
    public const string Password = "correct horse battery";

    string? adminToken;
    public string AdminToken => adminToken ??= Task.Run(() => TokenForAsync(Admin, LabRoles.Admin)).GetAwaiter().GetResult();

    /// <summary>
    /// Ensures <paramref name="user"/> exists with <see cref="Password"/> and <paramref name="role"/>; a new token for them.
    /// </summary>
    public async Task<string> TokenForAsync(string user, string role, string scope = Accounts.WriteScope)
    {
        await EnsureUserAsync(user, role);
        var (token, errors) = await Services.GetRequiredService<Accounts>().CreateTokenAsync(user, "tests", scope);
        return token?.Token ?? throw new InvalidOperationException(string.Join("; ", errors.SelectMany(e => e.Value)));
    }

    public async Task EnsureUserAsync(string user, string role)
    {
        var accounts = Services.GetRequiredService<Accounts>();
        if ((await accounts.UsersAsync()).All(u => u.Name != user)) await accounts.CreateUserAsync(user, Password, role);
    }

    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
    }

    /// <summary>
    /// A client of the Kestrel server at <paramref name="baseUrl"/> holding <paramref name="token"/> (default: the admin's).
    /// </summary>
    public HttpClient Client(Uri baseUrl, string? token = null) =>
        new()
        {
            BaseAddress = baseUrl,
            DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token ?? AdminToken) }
        };

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

/// <summary>
/// One app for a class whose tests leave it as they found it (requests refused, nothing queued): a theory of 40 refusals
/// starts one app instead of 40, each start being most of such a test's time.
/// </summary>
public sealed class SharedLab : IAsyncLifetime
{
    public LabFactory App { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => App.DisposeAsync().AsTask();
}
