using Microsoft.Playwright;

namespace IdentityInit.Tests.Browser;

/// <summary>Debian's Chromium driven by Playwright (never `playwright install`), one fresh profile per context.</summary>
public static class Chromium
{
    public const string Executable = "/usr/bin/chromium";

    public static readonly string Artifacts = Path.Combine(AppContext.BaseDirectory, "artifacts");

    public static async Task<(IPlaywright Playwright, IBrowserContext Context)> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        var profile = Path.Combine(Path.GetTempPath(), "identityinit-chromium-" + Guid.NewGuid().ToString("N")[..8]);
        var context = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Executable,
            Headless = true,
            ViewportSize = new ViewportSize { Width = 1400, Height = 1000 },
            // The machine has no network but loopback: without these Chromium keeps dialling Google's hosts.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
        Directory.CreateDirectory(Artifacts);
        return (playwright, context);
    }

    /// <summary>
    /// A browser signed in to the lab at <paramref name="baseUrl"/> through its sign-in page, as <paramref name="user"/>.
    /// </summary>
    public static async Task<(IPlaywright Playwright, IBrowserContext Context)> SignedInAsync(
        Infrastructure.LabFactory lab, Uri baseUrl, string user = Infrastructure.LabFactory.Admin,
            string role = global::IdentityInit.Web.Accounts.LabRoles.Admin)
    {
        await lab.EnsureUserAsync(user, role);
        var (playwright, context) = await LaunchAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(baseUrl, "/login").ToString());
        await page.FillAsync("#userName", user);
        await page.FillAsync("#password", Infrastructure.LabFactory.Password);
        await page.ClickAsync("#sign-in");
        await page.WaitForSelectorAsync("#signed-in-as");
        await page.CloseAsync();
        return (playwright, context);
    }
}
