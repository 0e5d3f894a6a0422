using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;

namespace IdentityInit.Bench;

/// <summary>
/// The docs' picture of a real study compared with seed bands (issue 21): a two-arm study (ConstNet with dropout 0.01,
/// He) x 2 seeds trained on Fashion-MNIST at a small size through the API, the compare page of its 4 runs opened in
/// Chromium with bands on (one shaded band per arm, means as lines): the whole page and its accuracy and per-layer
/// spread cards written as PNGs to the folder given (docs/).
/// </summary>
public static class StudyCompareShots
{
    public static async Task RunAsync(string folder)
    {
        await using var app = await WebBenchmarks.StartAppAsync(cpuWorkers: 2);
        var url = app.Urls.First();
        using var http = WebBenchmarks.Client(url);
        var config = new { trainLimit = 6400, testLimit = 1000, epochs = 3, threads = 1, batchSize = 64, schedule = "cosine-step" };
        var created = await http.PostAsJsonAsync("/api/studies", new
        {
            name = "dropout vs He", seeds = 2,
            arms = new object[] { new { label = "ConstNet, dropout 0.01", preset = "constnet-deterministic-dropout", config },
                new { label = "He", preset = "constnet-he", config } },
        });
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException(body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("summary").GetProperty("id").GetGuid();
        JsonElement study;
        do
        {
            await Task.Delay(5000);
            study = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement;
            Console.WriteLine($"  {study.GetProperty("summary").GetProperty("finished").GetInt32()} of 4 runs ended");
        } while (study.GetProperty("summary").GetProperty("finished").GetInt32() < 4);
        var ids = study.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ToList();

        await using var browser = await WebBenchmarks.SignedInBrowserAsync(url);
        var page = await browser.Context.NewPageAsync();
        await page.GotoAsync($"{url}/compare?ids={string.Join(',', ids)}"); // the study's arms are seed groups: bands are on
        Directory.CreateDirectory(folder);
        try
        {
            await page.WaitForFunctionAsync("() => iiCharts.bandFills(document.querySelector(\"[data-chart='accuracy']\").id).length >= 2",
                null, new() { Timeout = 60_000 });
        }
        catch (TimeoutException)
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "study-compare-failed.png"), FullPage = true });
            throw;
        }
        await page.WaitForTimeoutAsync(1000);
        await page.ScreenshotAsync(new() { Path = Path.Combine(folder, "study-compare-bands.png"), FullPage = true });
        foreach (var (chart, file) in new[] { ("accuracy", "study-compare-bands-accuracy.png"),
            ("spread", "study-compare-bands-spread.png") })
        {
            var card = page.Locator("div.mud-paper", new() { Has = page.Locator($"[data-chart='{chart}']") });
            await card.ScrollIntoViewIfNeededAsync();
            await card.ScreenshotAsync(new() { Path = Path.Combine(folder, file) });
            Console.WriteLine($"wrote {Path.Combine(folder, file)}");
        }
        Console.WriteLine(await http.GetStringAsync($"/api/studies/{id}/table.md"));
    }
}
