using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>Without an account, a share link reads exactly what it names and nothing else.</summary>
public sealed class SharingTests(SharingTests.Lab fixture) : IClassFixture<SharingTests.Lab>, IAsyncLifetime
{
    /// <summary>One app and its two runs for the class (one trained, one not shared); each test shares it anew.</summary>
    public sealed class Lab : IAsyncLifetime
    {
        public readonly LabFactory App = new();
        public Uri BaseUrl = null!;
        public Guid Shared, Other;

        public async Task InitializeAsync()
        {
            BaseUrl = App.StartKestrel();
            using var owner = App.Client(BaseUrl);
            Shared = (await Api.CreateAsync(owner, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
            Other = (await Api.CreateAsync(owner, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
            await Api.WaitForStatusAsync(owner, Shared, "Completed");
        }

        public async Task DisposeAsync() => await App.DisposeAsync();
    }

    readonly Uri baseUrl = fixture.BaseUrl;
    readonly HttpClient owner = fixture.App.Client(fixture.BaseUrl), stranger = new() { BaseAddress = fixture.BaseUrl };
    readonly Guid shared = fixture.Shared, other = fixture.Other;
    string token = "";

    public async Task InitializeAsync() // a link of this test's own: one test revokes its link
    {
        var response = await owner.PostAsJsonAsync("/api/shares", new { runIds = new[] { shared } });
        token = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!;
    }

    public Task DisposeAsync()
    {
        owner.Dispose();
        stranger.Dispose();
        return Task.CompletedTask;
    }

    [Theory]
    [InlineData("//evil.example/")]
    [InlineData("/\\evil.example/")]
    [InlineData("/\t/evil.example/")] // a browser drops tabs and newlines from a URL: "//evil.example/" (500 before, sign-in failed)
    [InlineData("/\n/evil.example/")]
    [InlineData("/runs\r\nSet-Cookie: x=1")]
    public async Task SignInRedirectsOnlyWithinTheSite(string path)
    {
        using var browser = SignInClient.Browser(baseUrl);

        var response = await SignInClient.SubmitAsync(browser, "/login", "/account/login",
            new Dictionary<string, string> { ["userName"] = LabFactory.Admin, ["password"] = LabFactory.Password, ["returnUrl"] = path });

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", response.Headers.Location?.OriginalString); // "//evil.example/" would send the browser to that host
    }

    [Fact]
    public async Task AShareLinkReadsItsRunWithoutAnAccount()
    {
        await owner.PatchAsJsonAsync($"/api/runs/{shared}", new { notes = "private: ask Grace before publishing" });
        var runs = JsonDocument.Parse(await stranger.GetStringAsync($"/api/share/{token}")).RootElement;
        var points = await Api.PointsAsync(stranger, $"/api/share/{token}/runs/{shared}/metrics");
        var page = await stranger.GetStringAsync($"/share/{token}");
        var figure = await stranger.GetAsync($"/api/share/{token}/runs/{shared}/figures/loss.svg");

        var run = Assert.Single(runs.EnumerateArray());
        Assert.Equal(shared, run.GetProperty("id").GetGuid());
        // Who and where stay in the lab: no owner's name, notes, worker host:pid or machine name (all there before).
        Assert.False(run.TryGetProperty("owner", out _));
        Assert.False(run.TryGetProperty("notes", out _));
        Assert.Equal(JsonValueKind.Null, run.GetProperty("worker").ValueKind);
        Assert.False(run.GetProperty("record").TryGetProperty("machine", out _));
        Assert.True(run.GetProperty("record").TryGetProperty("torchSharpVersion", out _)); // the reproducibility record itself stays
        Assert.DoesNotContain(LabFactory.Admin, runs.GetRawText());
        Assert.DoesNotContain("ask Grace", page);
        Assert.NotEmpty(points);
        Assert.Contains("run-name", page);
        Assert.Equal(HttpStatusCode.OK, figure.StatusCode);
        Assert.True(token.Length >= 43); // 256 bits, base64url
    }

    [Fact]
    public async Task AShareLinkGrantsNothingElse()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/share/{token}/runs/{other}/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync($"/api/runs/{shared}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/api/runs")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.PostAsJsonAsync("/api/runs", Api.TinyRun())).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.PostAsync($"/api/runs/{shared}/cancel", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.DeleteAsync($"/api/shares/{token}")).StatusCode);
        using var browser = SignInClient.Browser(baseUrl);
        var page = await browser.GetAsync($"/runs/{shared}");
        Assert.Equal(HttpStatusCode.Redirect, page.StatusCode);
        Assert.Equal($"/login?returnUrl=%2Fruns%2F{shared}", page.Headers.Location?.OriginalString);
        var jobs = await browser.GetAsync("/jobs"); // the job dashboard is not an endpoint: default-deny covers it too
        Assert.Equal(HttpStatusCode.Redirect, jobs.StatusCode);
        Assert.Equal("/login?returnUrl=%2Fjobs", jobs.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/api/runs.css")).StatusCode); // no suffix opens the gate
        await using var hub = new HubConnectionBuilder().WithUrl(new Uri(baseUrl, "/hubs/runs"))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        await hub.StartAsync();
        await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<RunHistory>("Join", other, token));
        await Assert.ThrowsAsync<HubException>(() => hub.InvokeAsync<RunHistory>("Join", shared, null));
        Assert.NotEmpty((await hub.InvokeAsync<RunHistory>("Join", shared, token)).Points);
    }

    [Fact]
    public async Task ARevokedLinkIsNotFoundAtOnceAndItsOpenConnectionsAreClosed()
    {
        await using var hub = new HubConnectionBuilder().WithUrl(new Uri(baseUrl, "/hubs/runs"))
            .AddJsonProtocol(o => o.PayloadSerializerOptions = Api.Json).Build();
        var closed = new TaskCompletionSource();
        hub.Closed += _ => { closed.TrySetResult(); return Task.CompletedTask; };
        await hub.StartAsync();
        Assert.NotEmpty((await hub.InvokeAsync<RunHistory>("Join", shared, token)).Points);

        var revoke = await owner.DeleteAsync($"/api/shares/{token}");

        await closed.Task.WaitAsync(TimeSpan.FromSeconds(5)); // the joined connection is cut, not left receiving batches

        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/share/{token}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await stranger.GetAsync($"/api/share/{token}/runs/{shared}/metrics")).StatusCode);
        Assert.Contains("does not exist or was revoked", await stranger.GetStringAsync($"/share/{token}"));
        Assert.Equal(HttpStatusCode.NotFound, (await owner.DeleteAsync($"/api/shares/{token}")).StatusCode);
    }

    [Fact]
    public async Task AnAdminReachesTheDashboardLocallyAndSharingValidatesItsInput()
    {
        var dashboard = await owner.GetAsync("/jobs");
        var empty = await owner.PostAsJsonAsync("/api/shares", new { runIds = Array.Empty<Guid>() });
        var missing = await owner.PostAsJsonAsync("/api/shares", new { runIds = new[] { Guid.NewGuid() } });

        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
        Assert.Contains("name at least one run", await empty.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("does not exist", await missing.Content.ReadAsStringAsync());
    }
}
