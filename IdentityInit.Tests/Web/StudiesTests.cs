using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Studies;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>Studies through the API: the results table against hand computation, and the grid's life (create, extend, cancel).</summary>
public sealed class StudiesTests
{
    // Student's t 0.975 quantile for 2 degrees of freedom in closed form, (2p - 1) / sqrt(2p(1 - p)) = 4.3026527297...; a table's 4.303 is
    // off by 3.5e-4.
    static readonly double T975For2 = 0.95 / Math.Sqrt(2 * 0.975 * 0.025);

    /// <summary>A constnet-breakers study stored as runs would leave it: two arms of 3 completed seeds, one arm of 2 running.</summary>
    static async Task<Guid> SeedAsync(IServiceProvider services)
    {
        var preset = StudyPresets.Find("constnet-breakers")!;
        var study = new Study
        {
            Id = Guid.NewGuid(), Name = "seeded", Preset = preset.Name, Scale = "cpu", Owner = LabFactory.Admin,
            CreatedAt = DateTime.UtcNow,
            DefinitionJson = JsonSerializer.Serialize(new StudyDefinition(preset.Arms, [1, 2, 3], null, null, null),
                new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        };
        await using var context = services.GetRequiredService<AppDb>().Create();
        context.Studies.Add(study);
        void Add(string arm, int seed, RunStatus status, double? final, double? best, int broken, double[] epochAccuracies, long[] breaks,
            double[] lastCorrelations)
        {
            var run = new Run
            {
                Id = Guid.NewGuid(), Name = $"{arm} {seed}", ConfigJson = "{}", Architecture = "constnet", Init = "const", Breakers = "",
                Dataset = "synthetic",
                Queue = "cpu", Seed = seed, Status = status, CreatedAt = DateTime.UtcNow, StudyId = study.Id, Arm = arm,
                FinalTestAccuracy = final,
                BestTestAccuracy = best, LayersBroken = status == RunStatus.Completed ? broken : null,
                LayerCount = status == RunStatus.Completed ? 10 : null,
                FinishedAt = status == RunStatus.Completed ? DateTime.UtcNow : null,
            };
            context.Runs.Add(run);
            for (var e = 0; e < epochAccuracies.Length; e++)
            {
                // the engine counts from 0
                context.Points.Add(new MetricPoint { RunId = run.Id, Series = "epoch/index", Step = 100 * (e + 1), Value = e });
                context.Points.Add(new MetricPoint
                {
                    RunId = run.Id, Series = "epoch/test_acc", Step = 100 * (e + 1),
                    Value = epochAccuracies[e]
                });
            }
            for (var l = 0; l < breaks.Length; l++) context.Points.Add(new MetricPoint
            {
                RunId = run.Id, Series = $"break/block{l}",
                Step = breaks[l], Value = 1e-7
            });
            for (var l = 0; l < lastCorrelations.Length; l++)
            {
                // not the last snapshot
                context.Points.Add(new MetricPoint { RunId = run.Id, Series = $"wcorr.fwd/block{l}", Step = 100, Value = 0.99 });
                context.Points.Add(new MetricPoint
                {
                    RunId = run.Id, Series = $"wcorr.fwd/block{l}", Step = 300,
                    Value = lastCorrelations[l]
                });
            }
        }
        Add("He (random init)", 1, RunStatus.Completed, 0.80, 0.81, 10, [0.45, 0.60, 0.80], [5, 7], [0.1, 0.3]);
        Add("He (random init)", 2, RunStatus.Completed, 0.82, 0.84, 10, [0.55, 0.70, 0.82], [6], [0.0, 0.2]);
        Add("He (random init)", 3, RunStatus.Completed, 0.87, 0.87, 10, [0.40, 0.45, 0.87], [9, 10, 11], [0.3]);
        Add("deterministic", 1, RunStatus.Completed, 0.30, 0.31, 0, [0.2, 0.25, 0.30], [], [1.0]);
        Add("deterministic", 2, RunStatus.Completed, 0.31, 0.33, 0, [0.2, 0.26, 0.31], [], [1.0]);
        Add("deterministic", 3, RunStatus.Completed, 0.35, 0.35, 0, [0.3, 0.33, 0.35], [], [1.0]);
        Add("GPU non-determinism", 1, RunStatus.Running, null, null, 0, [0.5, 0.6], [], []);
        Add("GPU non-determinism", 2, RunStatus.Running, null, null, 0, [0.4], [], []);
        await context.SaveChangesAsync();
        return study.Id;
    }

    [Fact]
    public async Task TheResultsTableEqualsAHandComputationFromTheStoredRuns()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedAsync(lab.Services);

        var study = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement;
        var arms = study.GetProperty("results").GetProperty("arms").EnumerateArray().ToDictionary(a => a.GetProperty("arm").GetString()!);
        var claims = study.GetProperty("results").GetProperty("claims").EnumerateArray().ToList();
        var markdown = await http.GetStringAsync($"/api/studies/{id}/table.md");
        var latex = await http.GetStringAsync($"/api/studies/{id}/table.tex");
        var csv = (await http.GetStringAsync($"/api/studies/{id}/table.csv")).Split('\n');
        var figure = await http.GetStringAsync($"/api/studies/{id}/accuracy.svg");

        var he = arms["He (random init)"];
        var final = he.GetProperty("finalAccuracy");
        Assert.Equal(0.83, final.GetProperty("mean").GetDouble(), 12);
        var sd = Math.Sqrt((0.03 * 0.03 + 0.01 * 0.01 + 0.04 * 0.04) / 2);
        Assert.Equal(T975For2 * sd / Math.Sqrt(3), final.GetProperty("halfWidth").GetDouble(), 9);
        Assert.Equal(3, final.GetProperty("n").GetInt32());
        Assert.Equal(1.0, he.GetProperty("brokenFraction").GetDouble(), 12);
        Assert.Equal(8.0, he.GetProperty("medianBreakStep").GetDouble(), 12); // breaks 5 6 7 9 10 11
        Assert.Equal(0.2, he.GetProperty("finalWeightCorrelation").GetDouble(), 12); // last snapshots' layer means 0.2, 0.1, 0.3
        Assert.Equal(2.0, he.GetProperty("epochsToHalf").GetProperty("mean").GetDouble(), 12); // epochs 2, 1, 3
        Assert.Equal(T975For2 * 1 / Math.Sqrt(3), he.GetProperty("epochsToHalf").GetProperty("halfWidth").GetDouble(), 9);
        var deterministic = arms["deterministic"];
        Assert.Equal(0.0, deterministic.GetProperty("brokenFraction").GetDouble());
        Assert.Equal(0, deterministic.GetProperty("reachedHalf").GetInt32());
        var running = arms["GPU non-determinism"];
        Assert.Equal(JsonValueKind.Null, running.GetProperty("finalAccuracy").ValueKind);
        Assert.Equal(1, running.GetProperty("latestEpoch").GetInt32()); // the newest epoch both running seeds reached
        Assert.Equal(0.45, running.GetProperty("latest").GetDouble(), 12);
        Assert.Equal("Holds", claims[0].GetProperty("verdict").GetString()); // no deterministic layer broke
        Assert.StartsWith("-51.0 ±", claims[1].GetProperty("measured").GetString());
        Assert.Equal("Holds", claims[1].GetProperty("verdict").GetString());
        Assert.Equal("Inconclusive", claims[2].GetProperty("verdict").GetString()); // GPU non-determinism: no finished seed yet
        Assert.Equal("needs finished seeds of both arms", claims[2].GetProperty("reason").GetString());
        Assert.Contains($"| He (random init) | 3/3 | 83.0 ± {T975For2 * sd / Math.Sqrt(3) * 100:F1} | 84.0 ± ", markdown);
        Assert.Contains("| GPU non-determinism | 0/2 | (45.0 at epoch 1) |", markdown);
        Assert.Contains("83.0 $\\pm$ 9.0", latex);
        Assert.Contains("never (0/3)", markdown);
        var heLine = csv.Single(l => l.StartsWith("He (random init),", StringComparison.Ordinal)).Split(',');
        Assert.Equal(("3", "3"), (heLine[1], heLine[2]));
        Assert.Equal(0.83, double.Parse(heLine[3], System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.Contains("He (random init)", figure);
        Assert.False(study.GetProperty("results").GetProperty("final").GetBoolean());
        var band = study.GetProperty("results").GetProperty("accuracy").EnumerateArray()
            .Single(c => c.GetProperty("label").GetString() == "GPU non-determinism (n=2)");
        // 0.45 ± 0.89, clipped to [0, 1]
        Assert.Equal((0.0, 1.0), (band.GetProperty("low")[0].GetDouble(), band.GetProperty("high")[0].GetDouble()));
        Assert.Equal(["deterministic 1", "deterministic 2", "deterministic 3", "GPU non-determinism 1", "GPU non-determinism 2",
                      "He (random init) 1", "He (random init) 2", "He (random init) 3"],
            study.GetProperty("runs").EnumerateArray()
                .Select(r => $"{r.GetProperty("arm").GetString()} {r.GetProperty("seed").GetInt64()}"));
    }

    /// <summary>
    /// A constnet-breakers study whose arms have completed with these final test accuracies (no layer broke); with
    /// <paramref name="precise"/>, those arms' seeds also measured precise-BN test accuracy (these last, one epoch before 0.1).
    /// </summary>
    static async Task<Guid> SeedFinalsAsync(IServiceProvider services, Dictionary<string, double[]> finals,
        Dictionary<string, double[]>? precise = null)
    {
        var preset = StudyPresets.Find("constnet-breakers")!;
        var study = new Study
        {
            Id = Guid.NewGuid(), Name = "judged", Preset = preset.Name, Scale = "cpu", Owner = LabFactory.Admin,
            CreatedAt = DateTime.UtcNow,
            DefinitionJson = JsonSerializer.Serialize(new StudyDefinition(preset.Arms, [1, 2, 3], null, null, null),
                new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        };
        await using var context = services.GetRequiredService<AppDb>().Create();
        context.Studies.Add(study);
        foreach (var (arm, values) in finals)
            foreach (var (value, seed) in values.Select((v, i) => (v, i + 1)))
            {
                var run = new Run
                {
                    Id = Guid.NewGuid(), Name = $"{arm} {seed}", ConfigJson = "{}", Architecture = "constnet", Init = "const",
                    Breakers = "",
                    Dataset = "synthetic", Queue = "cpu", Seed = seed, Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow,
                    FinishedAt = DateTime.UtcNow,
                    StudyId = study.Id, Arm = arm, FinalTestAccuracy = value, BestTestAccuracy = value, LayersBroken = 0, LayerCount = 10,
                };
                context.Runs.Add(run);
                if (precise?.GetValueOrDefault(arm) is not { } mine) continue;
                context.Points.Add(new MetricPoint
                {
                    RunId = run.Id, Series = "epoch/test_acc_precise_bn", Step = 200,
                    Value = mine[seed - 1]
                });
                context.Points.Add(new MetricPoint { RunId = run.Id, Series = "epoch/test_acc_precise_bn", Step = 100, Value = 0.1 });
            }
        await context.SaveChangesAsync();
        return study.Id;
    }

    [Fact]
    public async Task ClaimsAreJudgedByTheirIntervalsAndEveryExportCarriesTheVerdictAndWhy()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedFinalsAsync(lab.Services, new()
        {
            ["He (random init)"] = [0.818, 0.820, 0.822],
            ["deterministic"] = [0.30, 0.31, 0.32],
            ["dropout 0.01, deterministic"] = [0.819, 0.820, 0.821], // inside ±2 as a whole: holds
            ["init noise 1e-6"] = [0.70, 0.80, 0.90], // mean -2, interval about ±25: inconclusive
            ["GPU non-determinism"] = [0.50, 0.51, 0.52], // wholly below -2: fails
            ["dropout 0.01, non-deterministic"] = [0.82], // one seed: no interval
        });

        var claims = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement.GetProperty("results")
            .GetProperty("claims")
            .EnumerateArray().ToDictionary(c => c.GetProperty("paper").GetString()!,
                c => (Verdict: c.GetProperty("verdict").GetString(), Reason: c.GetProperty("reason").GetString()!));
        var csv = await http.GetStringAsync($"/api/studies/{id}/claims.csv");
        var markdown = await http.GetStringAsync($"/api/studies/{id}/table.md");
        var latex = await http.GetStringAsync($"/api/studies/{id}/table.tex");

        Assert.Equal("Holds", claims["A deterministic ConstNet keeps every channel identical: no layer's symmetry breaks"].Verdict);
        Assert.Equal("Holds", claims["Without a breaker it trains far below He (more than 2 points)"].Verdict);
        Assert.Equal("Holds", claims["With dropout 0.01, deterministic it trains to within 2 points of He"].Verdict);
        Assert.Equal("Inconclusive", claims["With init noise 1e-6 it trains to within 2 points of He"].Verdict);
        Assert.Equal("Fails", claims["With GPU non-determinism it trains to within 2 points of He"].Verdict);
        var single = claims["With dropout 0.01, non-deterministic it trains to within 2 points of He"];
        Assert.Equal(("Inconclusive", "one seed in an arm (n = 1 and 3): no interval to judge by"), single);
        Assert.StartsWith("claim,measured,verdict,reason\n", csv);
        Assert.Contains("\nWith init noise 1e-6 it trains to within 2 points of He,", csv);
        Assert.Contains(",inconclusive,\"the 95 % interval [", csv);
        Assert.Contains("| With init noise 1e-6 it trains to within 2 points of He | -2.0 ± ", markdown);
        Assert.Contains("| inconclusive | the 95 % interval [", markdown);
        Assert.Contains("| fails | the whole 95 % interval [", markdown);
        Assert.Contains("inconclusive & one seed in an arm (n = 1 and 3)", latex);
    }

    [Fact]
    public async Task PreciseBatchNormIsALabelledColumnBesideTheJudgedFigureWhereSeedsMeasuredIt()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        Dictionary<string, double[]> finals = new() { ["He (random init)"] = [0.80, 0.82, 0.87], ["deterministic"] = [0.30, 0.31, 0.35] };
        var measured = await SeedFinalsAsync(lab.Services, finals, new() { ["He (random init)"] = [0.83, 0.84, 0.88] });
        var unmeasured = await SeedFinalsAsync(lab.Services, finals);

        var results = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{measured}")).RootElement.GetProperty("results");
        var markdown = await http.GetStringAsync($"/api/studies/{measured}/table.md");
        var latex = await http.GetStringAsync($"/api/studies/{measured}/table.tex");
        var csv = (await http.GetStringAsync($"/api/studies/{measured}/table.csv")).Split('\n');
        var plain = await http.GetStringAsync($"/api/studies/{unmeasured}/table.md");

        var arms = results.GetProperty("arms").EnumerateArray().ToDictionary(a => a.GetProperty("arm").GetString()!);
        var precise = arms["He (random init)"].GetProperty("preciseFinalAccuracy");
        var sd = Math.Sqrt((0.02 * 0.02 + 0.01 * 0.01 + 0.03 * 0.03) / 2); // the last epoch's 0.83, 0.84, 0.88 around 0.85
        Assert.Equal(0.85, precise.GetProperty("mean").GetDouble(), 12);
        Assert.Equal(T975For2 * sd / Math.Sqrt(3), precise.GetProperty("halfWidth").GetDouble(), 9);
        Assert.Equal(JsonValueKind.Null, arms["deterministic"].GetProperty("preciseFinalAccuracy").ValueKind);
        Assert.Contains("| arm | n | final test acc (%) | final test acc, precise BN (%) | best test acc (%) |", markdown);
        var halfWidth = T975For2 * sd / Math.Sqrt(3) * 100;
        Assert.Contains($"| He (random init) | 3/3 | 83.0 ± 9.0 | 85.0 ± {halfWidth:F1} | 83.0 ± 9.0 |", markdown);
        Assert.Matches(@"\| deterministic \| 3/3 \| 32\.0 ± [0-9.]+ \|  \| 32\.0 ± ", markdown); // measured nothing: an empty cell
        Assert.Contains("final test acc, precise BN (\\%)", latex);
        // Claims are judged on the running statistics' figure: He 83.0 vs deterministic 32.0, not the precise 85.0.
        Assert.Contains("| Without a breaker it trains far below He (more than 2 points) | -51.0 ± ", markdown);
        Assert.EndsWith(",precise_bn_final_acc_mean,precise_bn_final_acc_ci95", csv[0]);
        Assert.Equal(0.85, double.Parse(csv.Single(l => l.StartsWith("He (random init),", StringComparison.Ordinal)).Split(',')[13],
            System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.DoesNotContain("precise", plain);
    }

    [Fact]
    public async Task AStudysRunsWhoseLearningRateDoesNotDecayToZeroPerStepAlsoMeasurePreciseBatchNorm()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var request = new
        {
            name = "lagging", seeds = 1,
            arms = new[]
            {
                TinyArm("constant", new { schedule = "constant" }), TinyArm("cosine-step", new { schedule = "cosine-step" }),
                TinyArm("off", new { schedule = "constant", preciseBatchNorm = 0 }), TinyArm("mine", new { preciseBatchNorm = 3 }),
            },
        };

        var created = await http.PostAsJsonAsync("/api/studies", request);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("summary").GetProperty("id").GetGuid();
        await http.PostAsync($"/api/studies/{id}/cancel", null);
        var stored = JsonDocument.Parse(await http.GetStringAsync("/api/runs?search=lagging")).RootElement.EnumerateArray()
            .ToDictionary(r => r.GetProperty("arm").GetString()!, r => r.GetProperty("config").GetProperty("preciseBatchNorm").GetInt32());

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(StudyService.PreciseBatches, stored["constant"]);
        Assert.Equal(0, stored["cosine-step"]); // decayed to 0 by the last step: the running statistics describe the final weights
        Assert.Equal(0, stored["off"]); // the researcher's own choice stands
        Assert.Equal(3, stored["mine"]);
    }

    [Fact]
    public async Task AnEndedStudysResultsAreFrozenAndItsShareLinkShowsThem()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = await SeedAsync(lab.Services);
        await SaveAsync(lab, r => r.Status == RunStatus.Running, r => (r.Status, r.FinishedAt) = (RunStatus.Cancelled, DateTime.UtcNow));
        var link = await (await http.PostAsJsonAsync("/api/shares", new { studyId = id })).Content.ReadFromJsonAsync<JsonElement>();
        var token = link.GetProperty("token").GetString()!;

        var ended = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement.GetProperty("results");
        await SaveAsync(lab, r => r.Arm == "He (random init)", r => r.FinalTestAccuracy = 0.10); // after the end: must not show
        var shared = JsonDocument.Parse(await (await lab.CreateDefaultClient()
            .GetAsync($"/api/share/{token}/study")).Content.ReadAsStringAsync()).RootElement;
        var sharedTable = await lab.CreateDefaultClient().GetStringAsync($"/api/share/{token}/study/table.csv");
        var page = await lab.CreateDefaultClient().GetStringAsync($"/share/{token}");
        var otherRun = await lab.CreateDefaultClient().GetAsync($"/api/share/{token}/runs/{Guid.NewGuid()}/metrics");

        Assert.True(ended.GetProperty("final").GetBoolean());
        var he = shared.GetProperty("results").GetProperty("arms").EnumerateArray()
            .First(a => a.GetProperty("arm").GetString() == "He (random init)");
        Assert.Equal(0.83, he.GetProperty("finalAccuracy").GetProperty("mean").GetDouble(), 12); // frozen at the end
        Assert.Contains(",0.83", sharedTable);
        Assert.Contains("study-table", page);
        Assert.Equal(HttpStatusCode.NotFound, otherRun.StatusCode); // a study's link grants no run's data by itself
    }

    [Fact]
    public async Task ExportsNeutraliseFormulasQuoteLineBreaksAndEscapeMarkupAndTex()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        // Labels as a study stored before they were checked at input could carry them.
        string[] labels = ["=HYPERLINK(\"http://evil.example\")", "two\nlines", "<img src=x onerror=alert(1)>", "$x^2~{y}$ 50% a_b #1 \\"];
        var study = new Study
        {
            Id = Guid.NewGuid(), Name = "hostile", Scale = "cpu", Owner = LabFactory.Admin, CreatedAt = DateTime.UtcNow,
            DefinitionJson = JsonSerializer.Serialize(new StudyDefinition([.. labels.Select(l => new StudyArm(l, "constnet-he"))], [1],
                null, null, null),
                new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        };
        await using (var context = lab.Services.GetRequiredService<AppDb>().Create())
        {
            context.Studies.Add(study);
            foreach (var label in labels)
                context.Runs.Add(new Run
                {
                    Id = Guid.NewGuid(), Name = "r", ConfigJson = "{}", Architecture = "constnet", Init = "he-fanout", Breakers = "",
                    Dataset = "synthetic", Queue = "cpu",
                    Seed = 1, Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow, FinishedAt = DateTime.UtcNow, StudyId = study.Id,
                    Arm = label,
                    FinalTestAccuracy = 0.5, BestTestAccuracy = 0.5, LayersBroken = 10, LayerCount = 10,
                });
            await context.SaveChangesAsync();
        }

        var csv = await http.GetStringAsync($"/api/studies/{study.Id}/table.csv");
        var markdown = await http.GetStringAsync($"/api/studies/{study.Id}/table.md");
        var latex = await http.GetStringAsync($"/api/studies/{study.Id}/table.tex");

        Assert.Contains("\n\"'=HYPERLINK(\"\"http://evil.example\"\")\",", csv); // a text cell, never a formula
        Assert.Contains("\n\"two\nlines\",", csv); // quoted: one row, not two
        Assert.DoesNotContain("<img", markdown);
        Assert.Contains("&lt;img src=x onerror=alert(1)&gt;", markdown);
        Assert.Contains("| two lines |", markdown);
        Assert.Contains("\\$x\\textasciicircum{}2\\textasciitilde{}\\{y\\}\\$ 50\\% a\\_b \\#1 \\textbackslash{}", latex);
    }

    static async Task SaveAsync(LabFactory lab, Func<Run, bool> which, Action<Run> change)
    {
        await using var context = lab.Services.GetRequiredService<AppDb>().Create();
        foreach (var run in context.Runs.AsEnumerable().Where(which)) change(run);
        await context.SaveChangesAsync();
    }

    static object TinyArm(string label, object? extra = null) =>
        new { label, preset = "constnet-nondeterministic", config = Api.TinyConfig(200, extra) };

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AStudyQueuesEveryArmForEverySeedGrowsBySeedsAndIsCancelledAsAWhole()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var request = new { name = "grid", seeds = 2, arms = new[] { TinyArm("plain"), TinyArm("dropout", new { dropout = 0.01 }) } };

        var created = await http.PostAsJsonAsync("/api/studies", request);
        var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("summary").GetProperty("id").GetGuid();
        var extended = await http.PostAsJsonAsync($"/api/studies/{id}/extend", new { seeds = 1 });
        var runs = (await extended.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("runs").EnumerateArray().ToList();
        var cancelled = await http.PostAsync($"/api/studies/{id}/cancel", null);
        await Wait.UntilAsync(async () => JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{id}")).RootElement
            .GetProperty("runs").EnumerateArray().All(r => r.GetProperty("status").GetString() == "Cancelled"), 60, "every run cancelled");
        var stored = JsonDocument.Parse(await http.GetStringAsync("/api/runs?search=grid")).RootElement.EnumerateArray().ToList();

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, extended.StatusCode);
        Assert.Equal(6, runs.Count);
        Assert.Equal(["dropout:1", "dropout:2", "dropout:3", "plain:1", "plain:2", "plain:3"],
            runs.Select(r => $"{r.GetProperty("arm").GetString()}:{r.GetProperty("seed").GetInt64()}").Order());
        Assert.Equal(HttpStatusCode.Accepted, cancelled.StatusCode);
        Assert.Equal(6, stored.Count);
        Assert.All(stored, r =>
            Assert.Equal(r.GetProperty("arm").GetString() == "dropout" ? 0.01 : 0.0,
                r.GetProperty("config").GetProperty("dropout").GetDouble()));
        Assert.All(stored, r => Assert.Equal(id, r.GetProperty("studyId").GetGuid()));
        var groups = stored.GroupBy(r => r.GetProperty("arm").GetString())
            .ToDictionary(g => g.Key!, g => g.Select(r => r.GetProperty("groupId").GetGuid()).Distinct().ToList());
        Assert.All(groups.Values, g => Assert.Single(g)); // one group per arm, extension included: its seeds band together
        Assert.NotEqual(groups["plain"][0], groups["dropout"][0]);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AStudyVariesOneFieldOverValuesBesideABaselineArm()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var request = new
        {
            name = "how small", seeds = 1, arms = new[] { new { label = "He", preset = "constnet-he" } }, config = Api.TinyConfig(200),
            vary = new { field = "Dropout", values = new object[] { 0, 1e-5, 0.1 }, preset = "constnet-deterministic" },
        };

        var created = await http.PostAsJsonAsync("/api/studies", request);
        var body = await created.Content.ReadFromJsonAsync<JsonElement>();
        var id = body.GetProperty("summary").GetProperty("id").GetGuid();
        await http.PostAsync($"/api/studies/{id}/cancel", null);
        var stored = JsonDocument.Parse(await http.GetStringAsync("/api/runs?search=how%20small")).RootElement.EnumerateArray()
            .ToDictionary(r => r.GetProperty("arm").GetString()!, r => r.GetProperty("config"));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        // 1e-5, not 1E-05
        Assert.Equal(["He", "dropout = 0", "dropout = 0.1", "dropout = 1e-5"], stored.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1e-5, stored["dropout = 1e-5"].GetProperty("dropout").GetDouble());
        Assert.Equal("const", stored["dropout = 0.1"].GetProperty("init").GetString()); // the varied preset's, not He's
        Assert.Equal("he-fanout", stored["He"].GetProperty("init").GetString());
        var results = body.GetProperty("results");
        Assert.Equal("dropout", results.GetProperty("sweepAxis").GetString());
        Assert.Equal([null, 0.0, 1e-5, 0.1], results.GetProperty("arms").EnumerateArray()
            .Select(a => a.GetProperty("x").ValueKind == JsonValueKind.Null ? (double?)null : a.GetProperty("x").GetDouble()));
    }

    [Fact]
    public async Task AStudyAtTheCpuScaleSaysWhichOfThePapersClaimsThatScaleCannotReach()
    {
        // Issue 20: at CPU scale the ConstNet breakers stay 12-19 points below He; the page and the API say so beside the
        // verdicts, for the preset's own config only (a study that changes the config or runs at the paper's scale does not).
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        async Task<JsonElement> CaveatAsync(string preset, string scale, JsonObject? config = null)
        {
            var arms = StudyPresets.Find(preset)!.Arms;
            var study = new Study
            {
                Id = Guid.NewGuid(), Name = preset, Preset = preset, Scale = scale, Owner = LabFactory.Admin, CreatedAt = DateTime.UtcNow,
                DefinitionJson = JsonSerializer.Serialize(new StudyDefinition(arms, [1], config, null, null),
                    new JsonSerializerOptions(JsonSerializerDefaults.Web)),
            };
            await using (var context = lab.Services.GetRequiredService<AppDb>().Create())
            {
                context.Studies.Add(study);
                await context.SaveChangesAsync();
            }
            var caveat = JsonDocument.Parse(await http.GetStringAsync($"/api/studies/{study.Id}")).RootElement.GetProperty("scaleCaveat")
                .Clone();
            var markdown = await http.GetStringAsync($"/api/studies/{study.Id}/table.md"); // the export carries it too
            Assert.Equal(caveat.ValueKind == JsonValueKind.String, markdown.Contains("**At this scale:** " + caveat.GetString()?[..40]));
            return caveat;
        }

        var cpu = await CaveatAsync("constnet-breakers", "cpu");
        var paper = await CaveatAsync("constnet-breakers", "paper");
        var changed = await CaveatAsync("constnet-breakers", "cpu", new JsonObject { ["epochs"] = 8 });
        var leaky = await CaveatAsync("leakynet-strings", "cpu");
        var toy = await CaveatAsync("toy-unique-features", "cpu");

        Assert.Contains("\"within 2 points of He\" claims are expected to fail at this scale", cpu.GetString());
        Assert.Equal(JsonValueKind.Null, paper.ValueKind);
        Assert.Equal(JsonValueKind.Null, changed.ValueKind);
        Assert.Equal(JsonValueKind.Null, leaky.ValueKind); // both of its claims are decided as the paper says
        Assert.Contains("2.7 ± 0.3 points", toy.GetString());
    }

    [Fact]
    public async Task TheStudyPresetsAreThePapersExperimentsAndOnlyResearchersQueueThem()
    {
        await using var lab = new LabFactory();
        var baseUrl = lab.StartKestrel();
        using var admin = lab.Client(baseUrl);
        using var viewer = lab.Client(baseUrl, await lab.TokenForAsync("victor", LabRoles.Viewer));

        var presets = JsonDocument.Parse(await admin.GetStringAsync("/api/studies/presets")).RootElement.EnumerateArray()
            .ToDictionary(p => p.GetProperty("name").GetString()!, p => p.GetProperty("arms").GetArrayLength());
        var refused = await viewer.PostAsJsonAsync("/api/studies", new { preset = "toy-unique-features" });

        Assert.Equal(new Dictionary<string, int>
        {
            ["constnet-breakers"] = 6, ["leakynet-strings"] = 7, ["toy-unique-features"] = 12,
            ["smallest-dropout"] = 7, ["smallest-init-noise"] = 7, ["smallest-rounding-jitter"] = 7, // 0, five decades, He
        }, presets);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }
}

/// <summary>Studies refused: one app for the class, since none of them may leave a trace in it.</summary>
public sealed class StudyRequestRefusalTests(SharedLab lab) : IClassFixture<SharedLab>
{
    readonly HttpClient http = lab.App.CreateClient();

    [Fact]
    public async Task AHugeUnknownDatasetNameIsRefusedOnceQuotedShortNotEchoedPerArm()
    {
        // The 100k-case corpus found it: a 5,000-character dataset in a vary study came back as a 31 KB answer, every arm's
        // "not on this machine" message naming the folders it was looked for in, each with the whole name.
        var body = JsonSerializer.Serialize(new
        {
            name = "x", config = new { dataset = new string('x', 5000) },
            vary = new { field = "dropout", values = new[] { 0.0, 0.1, 0.2 }, preset = "constnet-deterministic" },
        });

        var response = await http.PostAsync("/api/studies", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var reply = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(reply.Length < 4096, $"{reply.Length:N0} characters");
        var errors = JsonDocument.Parse(reply).RootElement.GetProperty("errors");
        Assert.Contains(errors.EnumerateObject(), e => e.Name.EndsWith("config.dataset", StringComparison.Ordinal)
                                                       && e.Value[0].GetString()!.Contains("is not one of"));
        Assert.Equal("0", (await http.GetAsync("/api/runs")).Headers.GetValues("X-Total-Count").Single());
    }

    [Theory]
    [InlineData("""{"preset":"no-such-study"}""", "preset")]
    [InlineData("""{"preset":"constnet-breakers","scale":"huge"}""", "scale")]
    [InlineData("""{"preset":"constnet-breakers","seeds":0}""", "seeds")]
    [InlineData("""{"name":"x"}""", "arms")]
    [InlineData("""{"name":"x","arms":[{"label":"a","preset":"constnet-he"},{"label":"a","preset":"constnet-he"}]}""", "arms[1].label")]
    [InlineData("""{"name":"x","arms":[{"label":"a","preset":"constnet-he"},{"label":"b","preset":"constnet-he","config":{"depth":8}}]}""",
        "arms[1].config.depth")]
    [InlineData("""{"name":"x","arms":[{"label":"a","preset":"nope"}]}""", "arms[0].preset")]
    [InlineData("""{"name":"x","arms":[{"label":"a","preset":"constnet-he"},null]}""", "arms[1]")] // a 500 the generated corpus found
    // 500 before
    [InlineData("""{"name":"x","arms":[{"label":"a","preset":"constnet-he","config":{"depth":10,"depth":16}}]}""", "arms[0].config")]
    [InlineData("""{"name":"x","config":{"epochs":1,"Epochs":2},"arms":[{"label":"a","preset":"constnet-he"}]}""", "config")]
    [InlineData("""{"name":"x","name":"y","arms":[{"label":"a","preset":"constnet-he"}]}""", "name")] // the last one won before
    [InlineData("""{"name":"x","arms":[{"label":"a\nb","preset":"constnet-he"}]}""", "arms[0].label")]
    [InlineData("""{"name":"x\ty","arms":[{"label":"a","preset":"constnet-he"}]}""", "name")]
    [InlineData("""{"name":"x","vary":{"field":"bogus","values":[1],"preset":"constnet-deterministic"}}""", "vary.field")]
    [InlineData("""{"name":"x","vary":{"field":"dropout","values":[0.1,"a"],"preset":"constnet-deterministic"}}""", "vary.values[1]")]
    [InlineData("""{"name":"x","vary":{"field":"dropout","values":[0.1,0.1],"preset":"constnet-deterministic"}}""", "vary.values")]
    [InlineData("""{"name":"x","vary":{"field":"dropout","values":[0.1]}}""", "vary.preset")]
    [InlineData("""{"name":"x","config":{"dropout":0.2},"vary":{"field":"dropout","values":[0.1],"preset":"constnet-deterministic"}}""",
        "config.dropout")]
    [InlineData("""{"preset":"constnet-breakers","vary":{"field":"dropout","values":[0.1],"preset":"constnet-deterministic"}}""", "vary")]
    [InlineData("""{"name":"x","vary":{"field":"dropout","values":[2],"preset":"constnet-deterministic"}}""", "arms[0].config.dropout")]
    public async Task ABadStudyIsRefusedNamingTheFieldAndNothingIsQueued(string body, string field)
    {
        var response = await http.PostAsync("/api/studies", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(field, out _), $"no error on {field}: {errors}");
        Assert.Equal("0", (await http.GetAsync("/api/runs")).Headers.GetValues("X-Total-Count").Single());
        Assert.Empty(JsonDocument.Parse(await http.GetStringAsync("/api/studies")).RootElement.EnumerateArray());
    }
}
