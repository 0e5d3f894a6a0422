using System.Net.Http.Json;
using System.Text.Json;

namespace IdentityInit.Bench;

/// <summary>
/// The docs' pictures of the paper's argument (issue 23): the Signal tab of a deterministic ConstNet run and of a He run,
/// both trained for real on Fashion-MNIST at a small size through the API, each page opened in Chromium with the tab's
/// default steps (the first, middle and last snapshot) and written as a PNG to the folder given (docs/). ConstNet
/// propagates yet keeps identical channels (correlation 1, spread 0) at every step; He propagates and is diverse.
/// </summary>
public static class SignalShots
{
    public static async Task RunAsync(string folder)
    {
        await using var app = await WebBenchmarks.StartAppAsync(cpuWorkers: 2);
        var url = app.Urls.First();
        using var http = WebBenchmarks.Client(url);
        var config = new
        {
            dataset = "fashion-mnist", trainLimit = 6400, testLimit = 1000, epochs = 3, threads = 1, batchSize = 64,
            schedule = "cosine-step", correlationEvery = 50
        };
        var runs = new List<(Guid Id, string File)>();
        foreach (var (preset, file) in new[] { ("constnet-deterministic", "signal-constnet-deterministic.png"),
            ("constnet-he", "signal-he.png") })
        {
            var created = await http.PostAsJsonAsync("/api/runs", new { name = preset, preset, config });
            var body = await created.Content.ReadAsStringAsync();
            if (!created.IsSuccessStatusCode) throw new InvalidOperationException(body);
            runs.Add((JsonDocument.Parse(body).RootElement[0].GetProperty("id").GetGuid(), file)); // the API answers the runs it queued
        }
        foreach (var (id, _) in runs)
        {
            string status;
            do
            {
                await Task.Delay(5000);
                var run = JsonDocument.Parse(await http.GetStringAsync($"/api/runs/{id}")).RootElement;
                status = run.GetProperty("status").GetString()!;
                Console.WriteLine($"  {run.GetProperty("name").GetString()}: {status}, step {run.GetProperty("step").GetInt64()}");
            } while (status is "Queued" or "Running");
            if (status != "Completed") throw new InvalidOperationException($"run {id} ended {status}");
        }

        await using var browser = await WebBenchmarks.SignedInBrowserAsync(url);
        Directory.CreateDirectory(folder);
        foreach (var (id, file) in runs)
        {
            var page = await browser.Context.NewPageAsync();
            await page.SetViewportSizeAsync(1400, 900);
            await page.GotoAsync($"{url}/runs/{id}");
            // The tabs answer once the page's circuit is up (the prerendered page shows the Charts tab only).
            await page.WaitForSelectorAsync("#app-ready[data-ready=true]",
                new() { State = Microsoft.Playwright.WaitForSelectorState.Attached });
            await page.GetByRole(Microsoft.Playwright.AriaRole.Tab, new() { Name = "Signal" }).ClickAsync();
            await page.WaitForSelectorAsync(".mud-tab.mud-tab-active:has-text(\"Signal\")");
            await page.WaitForFunctionAsync(
                "() => iiCharts.drawn(document.querySelector(\"[data-signal-chart='forward']\").id, 'step 0') !== null",
                null, new() { Timeout = 60_000 });
            await page.WaitForTimeoutAsync(1000);
            await page.ScreenshotAsync(new() { Path = Path.Combine(folder, file), FullPage = true });
            Console.WriteLine($"wrote {Path.Combine(folder, file)}");
            await page.CloseAsync();
        }
    }
}
