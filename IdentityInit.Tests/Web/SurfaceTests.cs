using System.Net;
using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>The headers every response carries, and writes from other sites' pages.</summary>
public sealed class SurfaceTests
{
    [Theory]
    [InlineData("/")]
    [InlineData("/api/presets")]
    public async Task EveryResponseCarriesTheSecurityHeaders(string path)
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();

        var response = await http.GetAsync(path);

        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single()); // share tokens are in URLs
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        var policy = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self'", policy);
        Assert.Contains("frame-ancestors 'none'", policy);
    }

    [Fact]
    public async Task AnotherSitesPageCannotCancelARunButTheLabsOwnPagesAndScriptsCan()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 200))).GetProperty("id").GetGuid();

        var evil = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel") { Headers = { { "Origin", "http://evil.example" } } };
        var refused = await http.SendAsync(evil);
        var stillGoing = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
        var own = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel") { Headers = { { "Origin", http.BaseAddress!.GetLeftPart(UriPartial.Authority) } } };
        var accepted = await http.SendAsync(own);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("a page from http://evil.example may not change this lab", await refused.Content.ReadAsStringAsync());
        Assert.NotEqual("Cancelled", stillGoing);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await Api.WaitForStatusAsync(http, id, "Cancelled", 60);
    }

    [Fact]
    public async Task ARequestForAnotherHostNameIsRefused()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();

        var rebound = await http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/api/presets") { Headers = { Host = "evil.example" } });
        var local = await http.GetAsync("/api/presets");

        Assert.Equal(HttpStatusCode.BadRequest, rebound.StatusCode); // a DNS-rebound page reaches the port under its own name
        Assert.Equal(HttpStatusCode.OK, local.StatusCode);
    }
}
