using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>Accounts through their real interfaces: the first admin's link, sign-in, roles, tokens, invitations.</summary>
public sealed class AccountsTests
{
    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AFreshInstallCreatesItsFirstAdminThroughTheOneTimeLinkItPrints()
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "identityinit-first-" + Guid.NewGuid().ToString("N")[..8]);
        var port = PostgresServer.FreePort();
        using var app = AppProcess.Start(["--urls", $"http://127.0.0.1:{port}"],
            new Dictionary<string, string> { ["IdentityInit__DataDir"] = dataDir });
        var baseUrl = new Uri($"http://127.0.0.1:{port}");
        try
        {
            await Wait.UntilAsync(() => Task.FromResult(app.FirstAdminLink() is not null), 120,
            "the first admin's link on the console");
        }
        catch (TimeoutException e) { throw new TimeoutException($"{e.Message}; the app printed:\n{app.Output}"); }
        var link = app.FirstAdminLink()!;
        using var anonymous = new HttpClient { BaseAddress = baseUrl };
        using var browser = SignInClient.Browser(baseUrl);
        using var latecomer = SignInClient.Browser(baseUrl);

        var before = await anonymous.GetAsync("/api/runs");
        var created = await SignInClient.AcceptAsync(browser, link, "ada", LabFactory.Password);
        var runs = await browser.GetAsync("/api/runs");
        var users = await browser.GetStringAsync("/api/users");
        var reused = await latecomer.GetStringAsync(link);

        Assert.Equal(HttpStatusCode.Unauthorized, before.StatusCode);
        Assert.Contains("sign in", await before.Content.ReadAsStringAsync());
        Assert.Equal("/", created.Headers.Location?.OriginalString); // signed in and sent to the runs list
        Assert.Equal(HttpStatusCode.OK, runs.StatusCode);
        var user = Assert.Single(JsonDocument.Parse(users).RootElement.EnumerateArray());
        Assert.Equal(("ada", "admin"), (user.GetProperty("name").GetString(), user.GetProperty("role").GetString()));
        Assert.Contains("unknown, already used or expired", reused); // one time only
        Assert.DoesNotContain("__RequestVerificationToken", reused);
    }

    [Fact]
    public async Task SignInTakesTheRightPasswordOnly()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await lab.EnsureUserAsync("ada", LabRoles.Researcher);
        using var wrong = SignInClient.Browser(baseUrl);
        using var right = SignInClient.Browser(baseUrl);

        var refused = await SignInClient.SignInAsync(wrong, "ada", "not the password");
        var accepted = await SignInClient.SignInAsync(right, "ada", LabFactory.Password);

        Assert.StartsWith("/login?error=failed", refused.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("/api/runs")).StatusCode);
        Assert.Equal("/", accepted.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await right.GetAsync("/api/runs")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await right.GetAsync("/api/users")).StatusCode); // a researcher is not an admin
        await right.PostAsync("/account/logout", new FormUrlEncodedContent([])); // without its form's antiforgery field: refused
        Assert.Equal(HttpStatusCode.OK, (await right.GetAsync("/api/runs")).StatusCode);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task ResearchersChangeTheirOwnRunsViewersReadAndAdminsChangeAny()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var alice = lab.Client(baseUrl, await lab.TokenForAsync("alice", LabRoles.Researcher));
        using var bob = lab.Client(baseUrl, await lab.TokenForAsync("bob", LabRoles.Researcher));
        using var victor = lab.Client(baseUrl, await lab.TokenForAsync("victor", LabRoles.Viewer));
        using var admin = lab.Client(baseUrl);
        var id = (await Api.CreateAsync(alice, Api.TinyRun(epochs: 200))).GetProperty("id").GetGuid();

        var bobCancels = await bob.PostAsync($"/api/runs/{id}/cancel", null);
        var bobRenames = await bob.PatchAsJsonAsync($"/api/runs/{id}", new { name = "mine now" });
        var victorQueues = await victor.PostAsJsonAsync("/api/runs", Api.TinyRun());
        var victorReads = await victor.GetAsync($"/api/runs/{id}");
        var victorWorkers = await victor.GetAsync("/api/workers");
        var aliceWorkers = await alice.GetAsync("/api/workers");
        var aliceRenames = await alice.PatchAsJsonAsync($"/api/runs/{id}", new { name = "alice's" });
        var mine = await bob.GetStringAsync("/api/runs?owner=me");
        var hers = await admin.GetStringAsync("/api/runs?owner=alice");
        var adminCancels = await admin.PostAsync($"/api/runs/{id}/cancel", null);

        Assert.Equal(HttpStatusCode.Forbidden, bobCancels.StatusCode);
        Assert.Contains("belongs to alice", await bobCancels.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, bobRenames.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, victorQueues.StatusCode);
        Assert.Equal(HttpStatusCode.OK, victorReads.StatusCode);
        Assert.Equal("alice", (await victorReads.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("owner").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, victorWorkers.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, aliceWorkers.StatusCode);
        Assert.Equal(HttpStatusCode.OK, aliceRenames.StatusCode);
        Assert.Empty(JsonDocument.Parse(mine).RootElement.EnumerateArray());
        Assert.Equal(id, Assert.Single(JsonDocument.Parse(hers).RootElement.EnumerateArray()).GetProperty("id").GetGuid());
        Assert.Equal(HttpStatusCode.Accepted, adminCancels.StatusCode);
        await Api.WaitForStatusAsync(admin, id, "Cancelled");
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task ATokenIsScopedStoredHashedAndStopsAtOnceWhenRevoked()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await lab.EnsureUserAsync("alice", LabRoles.Researcher);
        using var session = SignInClient.Browser(baseUrl);
        await SignInClient.SignInAsync(session, "alice", LabFactory.Password);
        var readToken = await SignInClient.TokenAsync(session, "read");
        var writeToken = await SignInClient.TokenAsync(session, "write");
        using var reader = SignInClient.WithToken(baseUrl, readToken);
        using var writer = SignInClient.WithToken(baseUrl, writeToken);

        var readerQueues = await reader.PostAsJsonAsync("/api/runs", Api.TinyRun());
        var readerReads = await reader.GetAsync("/api/runs");
        var readerMints = await reader.PostAsJsonAsync("/api/tokens", new { name = "escalate", scope = "write" });
        var id = (await Api.CreateAsync(writer, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(readToken))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        await hub.StartAsync();
        var joined = await hub.InvokeAsync<RunHistory>("Join", id, null);
        var closed = new TaskCompletionSource();
        hub.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
        var tokens = JsonDocument.Parse(await session.GetStringAsync("/api/tokens")).RootElement;
        var readId = tokens.EnumerateArray().First(t => t.GetProperty("scope").GetString() == "read").GetProperty("id").GetGuid();
        var revoked = await session.DeleteAsync($"/api/tokens/{readId}");
        var afterRevoke = await reader.GetAsync("/api/runs");
        // The connection the token opened closes at once (it streamed on, and joined other runs, before).
        var closedInTime = await Task.WhenAny(closed.Task, Task.Delay(TimeSpan.FromSeconds(5))) == closed.Task;
        await using var again = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(readToken))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        await again.StartAsync();
        await using var store = lab.Services.GetRequiredService<AppDb>().Create();
        var stored = await store.ApiTokens.AsNoTracking().ToListAsync();

        Assert.Equal(HttpStatusCode.Forbidden, readerQueues.StatusCode); // a read token acts as a viewer
        Assert.Contains("your role does not allow this", await readerQueues.Content.ReadAsStringAsync()); // a problem body, not a bare 403
        Assert.Equal(HttpStatusCode.OK, readerReads.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, readerMints.StatusCode);
        Assert.Equal("alice", (await Api.GetRunAsync(writer, id)).GetProperty("owner").GetString());
        Assert.Equal(id, joined.RunId);
        Assert.Equal(HttpStatusCode.NoContent, revoked.StatusCode);
        Assert.True(closedInTime, "the revoked token's open hub connection stayed open");
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
        Assert.Contains("unknown, revoked or expired", await afterRevoke.Content.ReadAsStringAsync());
        await Assert.ThrowsAsync<HubException>(() => again.InvokeAsync<RunHistory>("Join", id, null));
        Assert.Equal(2, stored.Count(t => t.UserId != null && t.Name == "tests"));
        Assert.All(stored, t => Assert.NotEqual(readToken, t.Hash));
        Assert.Contains(stored, t => t.Hash == Accounts.Hash(readToken) && t.RevokedAt is not null);
        Assert.DoesNotContain(stored, t => t.Prefix.Length > 9); // only the recognisable start is kept in clear
    }

    [Fact]
    public async Task ATokenWithAnExpiryIsRefusedOnceItHasPassed()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        await lab.EnsureUserAsync("alice", LabRoles.Researcher);
        using var session = SignInClient.Browser(baseUrl);
        await SignInClient.SignInAsync(session, "alice", LabFactory.Password);

        var zero = await session.PostAsJsonAsync("/api/tokens", new { name = "never-valid", scope = "read", expiresInDays = 0 });
        var made = await (await session.PostAsJsonAsync("/api/tokens",
            new { name = "short", scope = "read", expiresInDays = 1 })).Content.ReadFromJsonAsync<JsonElement>();
        using var client = SignInClient.WithToken(baseUrl, made.GetProperty("token").GetString()!);
        var fresh = await client.GetAsync("/api/runs");
        await using (var store = lab.Services.GetRequiredService<AppDb>().Create()) // a day later
            await store.ApiTokens.Where(t => t.Name == "short")
                .ExecuteUpdateAsync(u => u.SetProperty(t => t.ExpiresAt, DateTime.UtcNow.AddSeconds(-1)));
        var expired = await client.GetAsync("/api/runs");
        var listed = JsonDocument.Parse(await session.GetStringAsync("/api/tokens")).RootElement.EnumerateArray().Single();

        Assert.Equal(HttpStatusCode.BadRequest, zero.StatusCode);
        Assert.Contains("expiresInDays", await zero.Content.ReadAsStringAsync());
        var expiry = made.GetProperty("row").GetProperty("expiresAt").GetDateTime();
        Assert.InRange(expiry, DateTime.UtcNow.AddHours(23), DateTime.UtcNow.AddHours(25));
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, expired.StatusCode);
        Assert.Contains("expired", await expired.Content.ReadAsStringAsync());
        Assert.Equal("short", listed.GetProperty("name").GetString());
        Assert.NotEqual(JsonValueKind.Null, listed.GetProperty("expiresAt").ValueKind);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AnAdminInvitesSomeoneAndChangesTheirRoleButNeverRemovesTheLastAdmin()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var admin = lab.Client(baseUrl);
        using var researcher = lab.Client(baseUrl, await lab.TokenForAsync("alice", LabRoles.Researcher));

        var refused = await researcher.PostAsJsonAsync("/api/invitations", new { role = "admin" });
        var badRole = await admin.PostAsJsonAsync("/api/invitations", new { role = "owner" });
        var invitation = await (await admin.PostAsJsonAsync("/api/invitations",
            new { role = "viewer" })).Content.ReadFromJsonAsync<JsonElement>();
        using var newcomer = SignInClient.Browser(baseUrl);
        var shortPassword = await SignInClient.AcceptAsync(newcomer, invitation.GetProperty("url").GetString()!, "grace", "short");
        await SignInClient.AcceptAsync(newcomer, invitation.GetProperty("url").GetString()!, "grace", LabFactory.Password);
        var viewerQueues = await newcomer.PostAsJsonAsync("/api/runs", Api.TinyRun());
        // A live connection grace opened as a viewer closes when her role changes (the client reconnects under the new one).
        var readToken = await lab.TokenForAsync("grace", LabRoles.Viewer, Accounts.ReadScope);
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "/hubs/runs"), o => o.AccessTokenProvider = () => Task.FromResult<string?>(readToken))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        await hub.StartAsync();
        var closed = new TaskCompletionSource();
        hub.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
        var promoted = await admin.PatchAsJsonAsync("/api/users/grace", new { role = "researcher" });
        var closedInTime = await Task.WhenAny(closed.Task, Task.Delay(TimeSpan.FromSeconds(5))) == closed.Task;
        var lastAdmin = await admin.PatchAsJsonAsync($"/api/users/{LabFactory.Admin}", new { role = "viewer" });
        using var graceWrites = lab.Client(baseUrl,
            (await lab.Services.GetRequiredService<Accounts>().CreateTokenAsync("grace", "t", "write")).Token!.Token);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badRole.StatusCode);
        Assert.Contains("role must be one of", await badRole.Content.ReadAsStringAsync());
        Assert.Contains("password", Uri.UnescapeDataString(shortPassword.Headers.Location!.OriginalString)); // the invitation stays usable
        Assert.Equal(HttpStatusCode.Forbidden, viewerQueues.StatusCode);
        Assert.Equal("researcher", (await promoted.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("role").GetString());
        Assert.True(closedInTime, "grace's live connection outlived her role change");
        Assert.Equal(HttpStatusCode.BadRequest, lastAdmin.StatusCode);
        Assert.Contains("only admin", await lastAdmin.Content.ReadAsStringAsync());
        Assert.Equal("grace", (await Api.CreateAsync(graceWrites, Api.TinyRun(epochs: 1))).GetProperty("owner").GetString());
    }
}
