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
}
