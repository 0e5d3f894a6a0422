using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace IdentityInit.Tests.Infrastructure;

/// <summary>
/// The account pages through HTTP, as a browser uses them: read the form (its antiforgery field and cookie), post it,
/// keep the session cookie. Used where a test has only the app's real interface (a separate process).
/// </summary>
public static partial class SignInClient
{
    public static HttpClient Browser(Uri baseUrl) =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = baseUrl };

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();

    /// <summary>Posts the form found at <paramref name="page"/> with <paramref name="fields"/>; the redirect it answers.</summary>
    public static async Task<HttpResponseMessage> SubmitAsync(HttpClient browser, string page, string action,
        IDictionary<string, string> fields)
    {
        var html = await browser.GetStringAsync(page);
        var antiforgery = AntiforgeryField().Match(html);
        if (!antiforgery.Success) throw new InvalidOperationException($"no form on {page}: {html[..Math.Min(html.Length, 400)]}");
        var body = new Dictionary<string, string>(fields)
        {
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(antiforgery.Groups[1].Value),
        };
        return await browser.PostAsync(action, new FormUrlEncodedContent(body));
    }

    public static async Task<HttpResponseMessage> SignInAsync(HttpClient browser, string user, string password) =>
        await SubmitAsync(browser, "/login", "/account/login",
            new Dictionary<string, string> { ["userName"] = user, ["password"] = password, ["returnUrl"] = "/" });

    public static async Task<HttpResponseMessage> AcceptAsync(HttpClient browser, string invitePath, string user, string password) =>
        await SubmitAsync(browser, invitePath, "/account" + invitePath,
            new Dictionary<string, string> { ["userName"] = user, ["password"] = password, ["confirm"] = password });

    /// <summary>A personal API token made from a signed-in session.</summary>
    public static async Task<string> TokenAsync(HttpClient signedIn, string scope = "write")
    {
        var response = await signedIn.PostAsJsonAsync("/api/tokens", new { name = "tests", scope });
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
    }

    public static HttpClient WithToken(Uri baseUrl, string token) =>
        new() { BaseAddress = baseUrl, DefaultRequestHeaders = { Authorization = new AuthenticationHeaderValue("Bearer", token) } };
}
