using System.Net;
using IdentityInit.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

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
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AnotherSitesPageCannotCancelARunButTheLabsOwnPagesAndScriptsCan()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 200))).GetProperty("id").GetGuid();

        var evil = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel") { Headers = { { "Origin", "http://evil.example" } } };
        var refused = await http.SendAsync(evil);
        var stillGoing = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
        var site = http.BaseAddress!.GetLeftPart(UriPartial.Authority);
        // Two Origin headers, the lab's first, once skipped the check; so may a hub connection from another site's page.
        var twice = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel");
        twice.Headers.TryAddWithoutValidation("Origin", [site, "http://evil.example"]);
        var twiceRefused = await http.SendAsync(twice);
        var foreignHub = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post,
            "/hubs/runs/negotiate?negotiateVersion=1")
        { Headers = { { "Origin", "http://evil.example" } } });
        var ownHub = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post,
            "/hubs/runs/negotiate?negotiateVersion=1")
        { Headers = { { "Origin", site } } });
        var stillGoingAfterAll = (await Api.GetRunAsync(http, id)).GetProperty("status").GetString();
        var own = new HttpRequestMessage(HttpMethod.Post, $"/api/runs/{id}/cancel") { Headers = { { "Origin", site } } };
        var accepted = await http.SendAsync(own);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("a page from http://evil.example may not change or stream this lab", await refused.Content.ReadAsStringAsync());
        Assert.NotEqual("Cancelled", stillGoing);
        Assert.Equal(HttpStatusCode.Forbidden, twiceRefused.StatusCode);
        Assert.NotEqual("Cancelled", stillGoingAfterAll);
        Assert.Equal(HttpStatusCode.Forbidden, foreignHub.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ownHub.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await Api.WaitForStatusAsync(http, id, "Cancelled", 60);
    }

    [Fact]
    public async Task AStoreMadeBeforeTheMigrationsWereSquashedIsRefusedWithTheReasonNotHalfMigrated()
    {
        await using var lab = new LabFactory();
        Directory.CreateDirectory(lab.DataDir);
        await using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(lab.DataDir, "identityinit.db")}"))
        {
            await old.OpenAsync();
            var create = old.CreateCommand();
            create.CommandText = """
                CREATE TABLE "__EFMigrationsHistory" ("MigrationId" TEXT PRIMARY KEY, "ProductVersion" TEXT NOT NULL);
                INSERT INTO "__EFMigrationsHistory" VALUES ('20261128012559_Initial', '10.0.0'), ('20261129185712_Studies', '10.0.0');
                CREATE TABLE runs ("Id" TEXT PRIMARY KEY);
                """;
            await create.ExecuteNonQueryAsync();
        }

        var start = Record.Exception(() => lab.CreateClient());

        Assert.NotNull(start);
        Assert.Contains("migrations were squashed; start from a fresh data folder", start.ToString());
    }

    /// <summary>What a visitor without an account may reach, on purpose: everything else answers 401 or sends them to sign in.</summary>
    static readonly string[] Anonymous =
    [
        "/healthz", "/login", "/account/", "/invite/", "/share/", "/api/share/", "/hubs/", "/_blazor", "/error", "/favicon.ico",
        "/_content/", "/_framework/", "/lib/", "/js/", "/css/",
    ];

    [Fact]
    public async Task EveryMappedEndpointAndPageIsProtectedUnlessDeliberatelyAnonymous()
    {
        await using var lab = new LabFactory();
        _ = lab.CreateClient(); // starts the app
        using var anonymous = lab.Server.CreateClient(); // no token, no cookie, redirects not followed
        var endpoints = lab.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints
            .OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>().ToList();
        static string Fill(string pattern) =>
            "/" + System.Text.RegularExpressions.Regex.Replace(pattern.TrimStart('/'), @"\{\*{0,2}([A-Za-z]+)[^}]*\}", m =>
            m.Groups[1].Value.ToLowerInvariant() switch
            {
                "id" or "runid" or "studyid" => Guid.NewGuid().ToString(),
                "extension" => "csv",
                "step" => "1",
                _ => "x",
            });

        var checkedCount = 0;
        var open = new List<string>();
        foreach (var endpoint in endpoints)
        {
            var path = Fill(endpoint.RoutePattern.RawText ?? "");
            if (Anonymous.Any(a => path == a.TrimEnd('/') || path.StartsWith(a, StringComparison.Ordinal)) || path.Contains('.')
                && !path.StartsWith("/api", StringComparison.Ordinal)) continue;
            var method = endpoint.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods.FirstOrDefault()
                ?? "GET";
            using var response = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            checkedCount++;
            var toSignIn = response.StatusCode == HttpStatusCode.Redirect
                && response.Headers.Location?.OriginalString.StartsWith("/login", StringComparison.Ordinal) == true;
            if (response.StatusCode != HttpStatusCode.Unauthorized && !toSignIn) open.Add($"{method} {path} -> {(int)response.StatusCode}");
        }

        Assert.True(checkedCount > 40, $"only {checkedCount} endpoints checked");
        Assert.Empty(open);
    }

    [Fact]
    public async Task InProductionAnApiFailureAnswersAProblemBodyNotTheErrorPage()
    {
        await using var lab = new LabFactory(settings: new Dictionary<string, string?> { ["environment"] = "Production" });
        var http = lab.CreateClient();
        await using (var context = lab.Services.GetRequiredService<IdentityInit.Web.Data.AppDb>().Create())
            // a broken store: no outage, a fault
            await Microsoft.EntityFrameworkCore.RelationalDatabaseFacadeExtensions.ExecuteSqlRawAsync(context.Database,
                "DROP TABLE studies");

        var response = await http.GetAsync("/api/studies");

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType); // the error page's HTML before
        Assert.Contains("the server's log has the details", await response.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/runs")).StatusCode); // and the app carries on
    }

    [Fact]
    public async Task EveryStylesheetAndScriptOfAPageComesCompressedAsTheReadmeStartsTheApp()
    {
        // `dotnet run` serves the build's manifest in Development: the setup in which MudBlazor's 627 KB stylesheet
        // went out uncompressed (its fingerprinted route has no compressed variant) and the rest recompressed at level 0.
        var data = Directory.CreateTempSubdirectory("identityinit-assets-");
        var port = PostgresServer.FreePort();
        using var app = AppProcess.Start(["--urls", $"http://127.0.0.1:{port}"], new Dictionary<string, string>
        {
            ["IdentityInit__DataDir"] = data.FullName, ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["Logging__LogLevel__Default"] = "Information", // the app's own defaults, as a newcomer gets them
        });
        using var http = new HttpClient(new HttpClientHandler { AutomaticDecompression = DecompressionMethods.None })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{port}"),
        };
        await Wait.UntilAsync(async () =>
        {
            try { return (await http.GetAsync("/healthz")).IsSuccessStatusCode; }
            catch (HttpRequestException) { return false; }
        }, 60, "the app to start");
        await Wait.UntilAsync(() => Task.FromResult(app.FirstAdminLink() is not null), 30, "the first admin's link");
        // A quiet first start: the one line that matters comes within the first 15 (it was line 388, after 102 SQL commands).
        var lines = app.Output.Split('\n');
        var linkLine = Array.FindIndex(lines, l => l.Contains("/invite/", StringComparison.Ordinal));
        Assert.InRange(linkLine, 0, 14);

        var page = await http.GetStringAsync("/login");
        var assets = System.Text.RegularExpressions.Regex.Matches(page, "(?:href|src)=\"([^\":]+\\.(?:css|js))\"")
            .Select(m => m.Groups[1].Value).ToList();
        long total = 0;
        var uncompressed = new List<string>();
        foreach (var asset in assets)
        {
            var request = new HttpRequestMessage(HttpMethod.Get,
                "/" + asset.TrimStart('/'))
            { Headers = { { "Accept-Encoding", "gzip, br" } } };
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsByteArrayAsync();
            total += body.Length;
            if (!response.IsSuccessStatusCode || response.Content.Headers.ContentEncoding.Count == 0
                || response.Content.Headers.ContentEncoding.Contains("gzip") && IsStored(body))
                uncompressed.Add($"{asset}: {(int)response.StatusCode}, {body.Length:N0} bytes");
        }

        Assert.Contains(assets, a => a.Contains("MudBlazor", StringComparison.Ordinal) && a.EndsWith(".css", StringComparison.Ordinal));
        Assert.Empty(uncompressed);
        Assert.InRange(total, 1, 300_000); // 891 KB before, most of it MudBlazor's stylesheet
        app.Dispose();
        try { data.Delete(recursive: true); } catch (IOException) { }
    }

    /// <summary>Whether a gzip body is stored rather than deflated: its size is near the size it declares for its content.</summary>
    static bool IsStored(byte[] gzip) =>
        gzip.Length > 18 && gzip.Length >= 0.9 * BitConverter.ToUInt32(gzip, gzip.Length - 4);

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
