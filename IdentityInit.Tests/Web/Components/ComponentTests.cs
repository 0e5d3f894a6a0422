using Microsoft.AspNetCore.Components;
using System.Text.Json;
using Bunit;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Components;
using IdentityInit.Web.Components.Pages;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;

namespace IdentityInit.Tests.Web.Components;

/// <summary>The real MudBlazor components rendered by bUnit, on the real app's services.</summary>
public sealed class ComponentTests : IAsyncLifetime
{
    static readonly IdentityInit.Web.Accounts.Caller Admin = new(LabFactory.Admin, IdentityInit.Web.Accounts.LabRoles.Admin);

    readonly LabFactory lab = new();
    readonly BunitContext context = new();
    IServiceScope appScope = null!;

    public async Task InitializeAsync()
    {
        _ = lab.CreateClient(); // boots the app: migrations, Hangfire, the stream
        appScope = lab.Services.CreateScope();
        context.JSInterop.Mode = JSRuntimeMode.Loose;
        context.Services.AddMudServices();
        // Whatever bUnit and MudBlazor do not provide comes from the app's own container (a scope of it, as a circuit has), so
        // components read and write the same store the app uses, and a service a component starts to inject needs no line here.
        context.Services.AddFallbackServiceProvider(appScope.ServiceProvider);
        context.Renderer.SetRendererInfo(new RendererInfo("Server", true)); // interactive, as the circuit renders
        context.Render<MudPopoverProvider>();
        await Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await context.DisposeAsync();
        appScope.Dispose();
        await lab.DisposeAsync();
    }

    IRenderedComponent<NewRun> RenderForm(string? preset = "constnet-deterministic")
    {
        var navigation = context.Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>();
        navigation.NavigateTo(navigation.GetUriWithQueryParameter("preset", preset));
        return context.Render<NewRun>(p => p.AddCascadingValue(Admin));
    }

    static void Type(IRenderedComponent<NewRun> form, string id, string value) =>
        form.Find($"input#{id}").Input(value);

    [Fact]
    public async Task TheCostEstimateTakesItsSpeedFromCompletedRunsOfTheSameModelWhenThereAreAny()
    {
        var config = Presets.Find("constnet-deterministic")!.Config;
        var db = lab.Services.GetRequiredService<AppDb>();
        var id = Guid.NewGuid();
        await using (var store = db.Create())
        {
            store.Runs.Add(new Run
            {
                Id = id, Name = "earlier run", ConfigJson = ConfigOverlay.ToJson(config), Architecture = config.Architecture,
                Init = config.Init,
                Breakers = "none", Dataset = config.Dataset, Queue = "cpu", Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow,
            });
            await store.SaveChangesAsync();
        }
        double[] rates = [3, 4, 480, 500, 510, 505, 495]; // the first two (warm-up) are left out: median 500
        await db.WritePointsAsync([.. rates.Select((r, i) =>
            new MetricPoint { RunId = id, Series = "throughput", Step = 10 * (i + 1), Value = r })]);
        var form = RenderForm();

        form.Find("#estimate").Click();

        form.WaitForAssertion(() => Assert.StartsWith("500 img/s", form.Find("#estimate-speed").TextContent), TimeSpan.FromSeconds(60));
        Assert.Contains("measured: median of 5 steps of 1 completed run", form.Find("#estimate-speed").TextContent);
        Assert.Contains("earlier run", form.Find("#estimate-speed").TextContent);
    }

    [Fact]
    public void LettersInANumberFieldAreAnErrorOnThatFieldNotASilentZero()
    {
        var form = RenderForm();

        Type(form, "field-epochs", "abc");

        form.WaitForAssertion(() =>
            Assert.Contains("must be from 1 to 100000", form.Find("#field-epochs").Closest(".mud-input-control")!.TextContent));
        Assert.Equal("true", form.Find("input#field-epochs").GetAttribute("aria-invalid"));
        Assert.True(form.Find("#submit-run").HasAttribute("disabled"));
    }

    [Fact]
    public async Task ASeedListWithSomethingNotANumberNamesItAndDisablesQueueing()
    {
        var form = RenderForm();
        var sweep = form.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Queue");
        await form.InvokeAsync(() => sweep.Instance.ValueChanged.InvokeAsync("seeds"));
        var seeds = form.FindComponents<MudTextField<string>>().Single(f => f.Instance.Label == "Seeds (comma-separated)");

        await form.InvokeAsync(() => seeds.Instance.ValueChanged.InvokeAsync("1, a, 3"));

        form.WaitForAssertion(() => Assert.Contains("'a' is not a seed: give whole numbers separated by commas", form.Markup));
        Assert.DoesNotContain("must not be negative", form.Markup); // what "a" used to read as
        Assert.True(form.Find("#submit-run").HasAttribute("disabled"));
    }

    [Fact]
    public void TheFormMarksAnInvalidDepthAndDisablesQueueing()
    {
        var form = RenderForm();

        Type(form, "field-depth", "8");

        form.WaitForAssertion(() =>
            Assert.StartsWith("Depth: depth must be 3n + 4", form.Find(".form-error[data-field='config.depth']").TextContent.Trim()));
        Assert.True(form.Find("#submit-run").HasAttribute("disabled"));
    }

    [Fact]
    public void AMalformedLeakyNetStringIsReportedWhereItGoesWrong()
    {
        var form = RenderForm("leakynet-1_iiii_11ii_iiii");

        Type(form, "field-leakyinit", "1_iiqi_11ii_iiii");

        form.WaitForAssertion(() =>
            Assert.Contains("character 5 ('q')", form.Find(".form-error[data-field='config.leakyInit']").TextContent));
        // the form's words, not the API key
        Assert.StartsWith("Leaky init:", form.Find(".form-error[data-field='config.leakyInit']").TextContent.Trim());
    }

    [Fact]
    public void FixingTheFieldClearsTheErrorAndShowsTheBreakers()
    {
        var form = RenderForm();
        Type(form, "field-depth", "8");
        form.WaitForAssertion(() => Assert.NotEmpty(form.FindAll(".form-error")));

        Type(form, "field-depth", "13");
        Type(form, "field-dropout", "0.01");

        form.WaitForAssertion(() => Assert.Empty(form.FindAll(".form-error")));
        Assert.False(form.Find("#submit-run").HasAttribute("disabled"));
        Assert.Contains("dropout 0.01", form.Find("#breakers").TextContent);
    }

    [Fact]
    public void APresetFillsTheForm()
    {
        var blank = RenderForm(null);
        var form = RenderForm("toy-k16");

        var values = form.FindAll("input").Select(i => i.GetAttribute("value")).ToList();
        Assert.Contains("rounding-jitter 1", form.Find("#breakers").TextContent);
        Assert.Contains("16", values);  // ToyUnique
        Assert.Contains("256", values); // ToyHidden
        Assert.Contains("2", values);   // the toy CPU preset's epochs
        Assert.DoesNotContain("256", blank.FindAll("input").Select(i => i.GetAttribute("value")));
        Assert.DoesNotContain("rounding-jitter", blank.Find("#breakers").TextContent);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task TheRunViewShowsTheReproducibilityRecordAndTheSymmetryAchievedPerLayer()
    {
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, preset: "constnet-deterministic"))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");
        var run = await lab.Services.GetRequiredService<RunQueries>().ReadAsync(id);

        var view = context.Render<RunView>(p => p.AddCascadingValue(Admin).Add(v => v.Run, run!));

        view.WaitForAssertion(() => Assert.Contains("Completed", view.Find("#run-status").TextContent));
        var record = view.Find("#record-table").TextContent;
        Assert.Contains("0.107.0", record);
        Assert.Contains("True", record); // deterministic algorithms, as read back
        var symmetry = view.Find("#symmetry-table");
        Assert.Equal(7, symmetry.QuerySelectorAll("tbody tr").Length);
        Assert.All(symmetry.QuerySelectorAll("tbody tr"), row => Assert.Contains("never (channels identical)", row.TextContent));
        Assert.Contains("\"deterministic\": true", view.Find("#run-config").TextContent);
    }

    [Fact]
    public async Task TheSignalTabAddsALiveSnapshotFromItsBatchWithoutReadingTheHistoryAgain()
    {
        var id = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services);
        var db = lab.Services.GetRequiredService<AppDb>();
        PointDto[] Snapshot(long step) => [new("signal.input", step, 2), new("signal.fwd/conv1", step, 4), new("acorr/conv1", step, 1)];
        await db.WritePointsAsync([.. Snapshot(0)
            .Select(p => new MetricPoint { RunId = id, Series = p.Series, Step = p.Step, Value = p.Value })]);
        var view = context.Render<SignalView>(p => p.Add(v => v.RunId, id));
        bool Drawn(string line) => context.JSInterop.Invocations.Any(i => i.Identifier == "iiCharts.add"
            && System.Text.Json.JsonSerializer.Serialize(i.Arguments).Contains($"\"{line}\""));
        view.WaitForAssertion(() => Assert.True(Drawn("step 0")));
        // A finished run's tab (no live batch to follow) offers its steps, not "no snapshot yet" above drawn charts.
        view.WaitForAssertion(() => Assert.Empty(view.FindAll("#signal-empty")));
        Assert.Contains("Steps drawn", view.Find(".mud-select").TextContent);

        // Step 40's snapshot arrives live; the database does not have it (yet), so only the batch can show it.
        await view.InvokeAsync(() => view.Instance.NoteAsync(new RunBatch(id, 2, Snapshot(40), [], [], null)));

        view.WaitForAssertion(() => Assert.True(Drawn("step 40"), "the live snapshot's step was not drawn"));
    }

    [Fact]
    public async Task LiveBatchesReachEveryChartInOrderEvenWhenTheBrowserAnswersSlowly()
    {
        var id = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services);
        var db = lab.Services.GetRequiredService<AppDb>();
        await using (var store = db.Create())
            await store.Runs.Where(r => r.Id == id).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, RunStatus.Running));
        var run = (await lab.Services.GetRequiredService<RunQueries>().ReadAsync(id))!;
        var charts = context.Render<RunCharts>(p => p.Add(c => c.Runs, [run]));
        charts.WaitForAssertion(() => Assert.Contains(context.JSInterop.Invocations, i => i.Identifier == "iiCharts.add"));
        static bool To(JSRuntimeInvocation i, string chart, long step) => i.Identifier == "iiCharts.add"
            && ((string)i.Arguments[0]!).EndsWith("-" + chart, StringComparison.Ordinal)
                && JsonSerializer.Serialize(i.Arguments).Contains($"{step}");
        // The browser is slow to take the loss points of step 100000: the batch after it (a correlation snapshot only) must
        // still reach the correlation chart after that batch's own correlation points, or the chart drops the older step.
        var slow = context.JSInterop.SetupVoid(i => To(i, "loss", 100000));
        var stream = lab.Services.GetRequiredService<RunStream>();
        await stream.DeliverAsync(new RunBatch(id, 1,
            [new(Series.TrainLoss, 100000, 1.5), new(Series.WeightCorrelationForward + "conv1", 100000, 0.5)], [], [], null));
        await stream.DeliverAsync(new RunBatch(id, 2, [new(Series.WeightCorrelationForward + "conv1", 100008, 0.4)], [], [], null));
        await Task.Delay(300);
        await charts.InvokeAsync(() => slow.SetVoidResult());

        charts.WaitForAssertion(() => Assert.Contains(context.JSInterop.Invocations, i => To(i, "wcorr-fwd", 100008)));
        var order = context.JSInterop.Invocations.Where(i => To(i, "wcorr-fwd", 100000) || To(i, "wcorr-fwd", 100008))
            .Select(i => To(i, "wcorr-fwd", 100008) ? 100008 : 100000).ToList();
        Assert.Equal([100000, 100008], order);
    }

    [Fact]
    public async Task TheSymmetryTabShowsPerLayerWhereSymmetryBrokeAndTheLatestSpreadReadably()
    {
        var id = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services);
        var db = lab.Services.GetRequiredService<AppDb>();
        await db.WritePointsAsync([
            .. new[] { 10L, 20, 30 }.Select(s =>
                new MetricPoint { RunId = id, Series = "spread/conv", Step = s, Value = s == 30 ? 2.5e-9 : 0 }),
            .. new[] { 10L, 20, 30 }.Select(s => new MetricPoint { RunId = id, Series = "spread/fc", Step = s, Value = 0 }),
            new MetricPoint { RunId = id, Series = "break/conv", Step = 23, Value = 1e-9 },
        ]);

        var table = context.Render<SymmetryTable>(p => p.Add(t => t.RunId, id));

        var rows = table.FindAll("#symmetry-table tbody tr")
            .Select(r => r.QuerySelectorAll("td").Select(c => c.TextContent.Trim()).ToArray()).ToList();
        Assert.Equal(["conv", "23", "2.500e-9", "30"], rows[0]);
        Assert.Equal(["fc", "never (channels identical)", "0", "30"], rows[1]);
        Assert.Contains("Symmetry broke in 1 of 2 layers, first at step 23", table.Find("#symmetry-summary").TextContent);
    }

    [Fact]
    public async Task NotesAndTagsAreEditedOnTheRunPageAndABadTagIsNamedOnItsField()
    {
        var id = await IdentityInit.Tests.Web.HistoryTests.SeedAsync(lab.Services);
        var queries = lab.Services.GetRequiredService<RunQueries>();
        var view = context.Render<RunView>(p => p.AddCascadingValue(Admin).Add(v => v.Run, queries.ReadAsync(id).Result!));
        view.FindAll(".mud-tab").First(t => t.TextContent.Trim() == "Notes").Click();

        view.Find("#run-notes").Change("seed 3 diverged at lr 0.1");
        view.Find("#run-tags").Change("fig2, " + new string('x', 41));
        view.Find("#save-notes").Click();
        view.WaitForAssertion(() => Assert.Contains("1-40 characters without commas", view.Markup));
        view.Find("#run-tags").Change("fig2, ablation");
        view.Find("#save-notes").Click();

        await IdentityInit.Tests.Infrastructure.Wait.UntilAsync(async () => (await queries.GetAsync(id))!.Notes != "", 10,
            "the notes to be stored");
        var stored = (await queries.GetAsync(id))!;
        Assert.Equal(("seed 3 diverged at lr 0.1", "fig2,ablation"), (stored.Notes, stored.Tags));
    }

    [Fact]
    public async Task ASharedRunViewOffersExportsButNoOwnerActions()
    {
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        var run = (await lab.Services.GetRequiredService<RunQueries>().ReadAsync(id))!.ForShare(); // as the shared page passes it

        var view = context.Render<RunView>(p => p.Add(v => v.Run, run).Add(v => v.ShareToken, "token123"));

        Assert.Empty(view.FindAll("#cancel-run"));
        Assert.Empty(view.FindAll("#share-run"));
        Assert.NotEmpty(view.FindAll("#export-menu"));
    }

    [Fact]
    public async Task ASharedRunPageShowsTheRecordButNotTheMachineTheRunTrainedOn()
    {
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");
        var (link, _) = await lab.Services.GetRequiredService<IdentityInit.Web.Sharing.ShareService>().CreateAsync([id], Admin);
        var machine = Environment.MachineName;

        var shared = context.Render<IdentityInit.Web.Components.Pages.SharedPage>(p => p.Add(s => s.Token, link!.Token));
        var own = context.Render<RunView>(p =>
            p.AddCascadingValue(Admin).Add(v => v.Run, lab.Services.GetRequiredService<RunQueries>().ReadAsync(id).Result!));

        shared.WaitForAssertion(() => Assert.Contains("Breakers configured", shared.Find("#record-table").TextContent));
        // The record as the share API gives it: no machine ("vm (2 cores)"), no worker ("on vm:1234"), no owner, no log.
        Assert.DoesNotContain($"{machine} (", shared.Markup);
        Assert.DoesNotContain($"on {machine}:", shared.Markup);
        Assert.DoesNotContain(LabFactory.Admin, shared.Find("#run-name").Parent!.TextContent);
        Assert.Empty(shared.FindAll("#run-log"));
        Assert.Contains($"{machine} (", own.Find("#record-table").TextContent); // the lab's own page shows where it ran
        Assert.Contains($"on {machine}:", own.Find("#run-log").TextContent);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AFinishedRunsCheckpointBecomesTheInitialWeightsOfANewRun()
    {
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, preset: "constnet-he"))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");
        var form = RenderForm("constnet-he");

        var init = form.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Init scheme");
        await form.InvokeAsync(() => init.Instance.ValueChanged.InvokeAsync("file"));
        form.WaitForAssertion(() =>
            Assert.Contains("init 'file' needs staged weights: upload a .safetensors file", form.Find("#init-file-status").TextContent));
        var source = form.FindComponents<MudSelect<Guid?>>().Single(s => s.Instance.Label == "From a run's checkpoint");
        await form.InvokeAsync(() => source.Instance.ValueChanged.InvokeAsync(id));

        form.WaitForAssertion(() => Assert.Matches(@"run .+ at step 16: \d+ tensors", form.Find("#init-file-status").TextContent));
        var step = form.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Checkpoint");
        await form.InvokeAsync(() => step.Instance.ValueChanged.InvokeAsync("0"));
        form.WaitForAssertion(() => Assert.Contains("at step 0:", form.Find("#init-file-status").TextContent));
        // The preset is a WRN-16 on Fashion-MNIST, the run a WRN-7 on 3-channel images: the form names the tensors that do not fit.
        form.WaitForAssertion(() => Assert.Contains("do not fit this model: missing block1.layer.1.", form.Markup));
        Assert.True(form.Find("#submit-run").HasAttribute("disabled"));
        Type(form, "field-depth", "7");
        // and its images
        form.WaitForAssertion(() => Assert.Contains("'conv1.weight' is [16, 3, 3, 3], the model expects [16, 1, 3, 3]", form.Markup));
        var dataset = form.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Dataset");
        await form.InvokeAsync(() => dataset.Instance.ValueChanged.InvokeAsync("synthetic"));
        form.WaitForAssertion(() => Assert.DoesNotContain("do not fit this model", form.Markup));
        Assert.Empty(form.FindAll(".form-error[data-field='config.initFile']"));
        Assert.False(form.Find("#submit-run").HasAttribute("disabled"));
    }

    [Fact]
    public async Task TheRunsListSaysWhyARunFailed()
    {
        _ = lab.CreateClient();
        const string reason = "the training process ended without finishing the run: it was killed (SIGKILL)";
        await using (var db = lab.Services.GetRequiredService<AppDb>().Create())
        {
            db.Runs.Add(new Run
            {
                Id = Guid.NewGuid(), Name = "killed", ConfigJson = "{}", Architecture = "constnet", Init = "const", Breakers = "none",
                Dataset = "synthetic", Queue = "cpu", Status = RunStatus.Failed, Error = reason, CreatedAt = DateTime.UtcNow
            });
            db.Runs.Add(new Run
            {
                Id = Guid.NewGuid(), Name = "fine", ConfigJson = "{}", Architecture = "constnet", Init = "const", Breakers = "none",
                Dataset = "synthetic", Queue = "cpu", Status = RunStatus.Completed, CreatedAt = DateTime.UtcNow
            });
            await db.SaveChangesAsync();
        }

        var page = context.Render<RunsPage>(p => p.AddCascadingValue(Admin));

        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("tr.run-row").Count));
        var rows = page.FindAll("tr.run-row");
        Assert.Contains(reason, rows.Single(r => r.TextContent.Contains("killed")).QuerySelector(".run-error")!.TextContent);
        Assert.Null(rows.Single(r => r.TextContent.Contains("fine")).QuerySelector(".run-error"));
    }

    async Task<Run> SeedFinishedRunAsync(int queuedBeside = 0)
    {
        var config = new ExperimentConfig
        {
            Name = "source", Dataset = "synthetic", Depth = 7, Widen = 1, TrainLimit = 64, TestLimit = 32,
            Epochs = 1
        };
        Run Row(string name, RunStatus status) => new()
        {
            Id = Guid.NewGuid(), Name = name, ConfigJson = ConfigOverlay.ToJson(config), Architecture = Architectures.ConstNet,
            Init = "const",
            Breakers = "none", Dataset = "synthetic", Queue = "cpu", Status = status, CreatedAt = DateTime.UtcNow, Owner = LabFactory.Admin,
        };
        var source = Row("source", RunStatus.Completed);
        await using var store = lab.Services.GetRequiredService<AppDb>().Create();
        store.Runs.Add(source);
        store.Runs.AddRange(Enumerable.Range(0, queuedBeside).Select(i => Row($"waiting {i}", RunStatus.Queued)));
        await store.SaveChangesAsync();
        return source;
    }

    async Task<List<Run>> PairRunsAsync()
    {
        await using var store = lab.Services.GetRequiredService<AppDb>().Create();
        return await store.Runs.Where(r => r.Tags == RunService.PairTag).OrderBy(r => r.Name).ToListAsync();
    }

    [Fact]
    public async Task TheDeterministicPairQueuesBothTwinsAndOpensTheirComparison()
    {
        var source = await SeedFinishedRunAsync();
        var view = context.Render<RunView>(p => p.AddCascadingValue(Admin).Add(v => v.Run, RunDto.Of(source)));

        await view.InvokeAsync(() => view.Find("#pair-run").Click());

        var pair = await PairRunsAsync();
        Assert.Equal(["source · deterministic", "source · non-deterministic"], pair.Select(r => r.Name));
        var (deterministic, noisy) = (ConfigOverlay.FromJson(pair[0].ConfigJson, "a"), ConfigOverlay.FromJson(pair[1].ConfigJson, "b"));
        Assert.True(deterministic.Deterministic && deterministic.RoundingJitter == 0 && deterministic.MetricsEvery == 1);
        Assert.True(!noisy.Deterministic && noisy.RoundingJitter == 1 && noisy.MetricsEvery == 1); // CPU: jitter stands in for the GPU
        Assert.Null(pair[0].GroupId); // twins, not a seed group to draw as one band
        Assert.EndsWith($"/compare?ids={string.Join(',', pair.Select(r => r.Id))}", // deterministic first, as queued
            context.Services.GetRequiredService<NavigationManager>().Uri);
    }

    [Fact]
    public async Task ADeterministicPairTheQueueCannotHoldQueuesNeitherTwin()
    {
        var source = await SeedFinishedRunAsync(queuedBeside: 499); // one place left of the 500 a user may have waiting
        var view = context.Render<RunView>(p => p.AddCascadingValue(Admin).Add(v => v.Run, RunDto.Of(source)));

        await view.InvokeAsync(() => view.Find("#pair-run").Click());

        Assert.Empty(await PairRunsAsync()); // half a pair queued before: the first twin took the last place
        Assert.Contains(context.Services.GetRequiredService<ISnackbar>().ShownSnackbars,
            s => s.Message?.Contains("at most 500 may wait at once") == true);
    }

    [Fact]
    public void ARoundingJitterTooSmallToSurviveRoundingIsPointedOut()
    {
        var form = RenderForm("constnet-deterministic");
        Type(form, "field-rounding-jitter", "0.1");
        form.WaitForAssertion(() => Assert.Contains("under half a float32 ulp", form.Markup));
        Type(form, "field-rounding-jitter", "1");
        form.WaitForAssertion(() => Assert.DoesNotContain("under half a float32 ulp", form.Markup));
    }

    [Fact]
    public async Task TheInitSchemeSaysWhatItPutsInWhichLayers()
    {
        var form = RenderForm("constnet-he");
        Assert.Contains("He fan-out (model.py's varnet): block convs N(0, 2/(k² C_out))", form.Markup);
        var init = form.FindComponents<MudSelect<string>>().Single(s => s.Instance.Label == "Init scheme");
        await form.InvokeAsync(() => init.Instance.ValueChanged.InvokeAsync("delta-orthogonal"));
        form.WaitForAssertion(() => Assert.Contains("centre tap an orthogonal W[C_out, C_in], the other taps 0", form.Markup));
        Assert.DoesNotContain("He fan-out (model.py's varnet)", form.Markup);
    }

    [Fact]
    public async Task AStudyPageFillsInFromItsRunsLiveFeedsNotByPolling()
    {
        // One worker slot, held by a long run: the study's run stays queued, so nothing but this test writes its points.
        var http = lab.CreateClient();
        // One thread and few events, so the 1-s window below measures the page, not a machine the blocker keeps busy.
        var blocker = (await IdentityInit.Tests.Web.Api.CreateAsync(http, IdentityInit.Tests.Web.Api.TinyRun(epochs: 400,
            extra: new { threads = 1, correlationEvery = 1000, checkpointEvery = 1000 }))).GetProperty("id").GetGuid();
        var studies = lab.Services.GetRequiredService<IdentityInit.Web.Studies.StudyService>();
        var tiny = System.Text.Json.Nodes.JsonNode.Parse(JsonSerializer.Serialize(IdentityInit.Tests.Web.Api.TinyConfig(epochs: 3)))!
            .AsObject();
        var (study, errors) = await studies.CreateAsync(
            new IdentityInit.Web.Studies.CreateStudyRequest(Name: "live", Seeds: 1, Arms: [new("He", Config: tiny)]), Admin);
        Assert.Empty(errors);
        var run = (await studies.RunsAsync(study!.Id)).Single();
        var db = lab.Services.GetRequiredService<AppDb>();
        await using (var store = db.Create()) // as the worker marks it when it starts (the table shows a running arm's newest epoch)
            await store.Runs.Where(r => r.Id == run.Id).ExecuteUpdateAsync(u => u.SetProperty(r => r.Status, RunStatus.Running));
        var studyView = await studies.ReadAsync(study.Id);
        var page = context.Render<IdentityInit.Web.Components.Studies.StudyView>(p =>
            p.Add(v => v.Study, studyView!).AddCascadingValue(Admin));
        page.WaitForAssertion(() => Assert.Contains("1 running", page.Find("#study-progress").TextContent));

        // Three epochs arrive at uneven moments; each shows within 1 s of its batch (a 2-s poll misses ~7 in 8).
        var stream = lab.Services.GetRequiredService<RunStream>();
        foreach (var (epoch, accuracy, pause) in new[] { (0, 0.4321, 300), (1, 0.5612, 1100), (2, 0.6789, 500) })
        {
            await Task.Delay(pause);
            PointDto[] points = [new("epoch/index", 16 * (epoch + 1), epoch), new(Series.EpochTestAccuracy, 16 * (epoch + 1), accuracy)];
            await db.WritePointsAsync([.. points.Select(p =>
                new MetricPoint { RunId = run.Id, Series = p.Series, Step = p.Step, Value = p.Value })]);
            await stream.DeliverAsync(new RunBatch(run.Id, epoch + 1, points, [], [], null));
            var shown = (100 * accuracy).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
            page.WaitForAssertion(() => Assert.Contains(shown, page.Find("tr.study-row").TextContent), TimeSpan.FromMilliseconds(1000));
        }
        await http.PostAsync($"/api/runs/{blocker}/cancel", null);
    }

    [Fact]
    public async Task AStudyPageAtTheCpuScaleShowsWhatThatScaleCannotReachBesideTheClaims()
    {
        var preset = IdentityInit.Web.Studies.StudyPresets.Find("constnet-breakers")!;
        var study = new Study
        {
            Id = Guid.NewGuid(), Name = "breakers", Preset = preset.Name, Scale = "cpu", Owner = LabFactory.Admin,
            CreatedAt = DateTime.UtcNow,
            DefinitionJson = JsonSerializer.Serialize(new IdentityInit.Web.Studies.StudyDefinition(preset.Arms, [1], null, null, null),
                new JsonSerializerOptions(JsonSerializerDefaults.Web)),
        };
        await using (var store = lab.Services.GetRequiredService<AppDb>().Create())
        {
            store.Studies.Add(study);
            await store.SaveChangesAsync();
        }
        var studyView = await lab.Services.GetRequiredService<IdentityInit.Web.Studies.StudyService>().ReadAsync(study.Id);

        var page = context.Render<IdentityInit.Web.Components.Studies.StudyView>(p =>
            p.Add(v => v.Study, studyView!).AddCascadingValue(Admin));

        page.WaitForAssertion(() => Assert.Equal(preset.CpuCaveat, page.Find("#study-scale-caveat").TextContent.Trim()));
    }

    [Fact]
    public async Task TheTokensPageShowsANewTokenOnceListsItAndRevokesIt()
    {
        await lab.EnsureUserAsync("ada", IdentityInit.Web.Accounts.LabRoles.Researcher);
        var page = context.Render<IdentityInit.Web.Components.Account.TokensPage>(p =>
            p.AddCascadingValue(new IdentityInit.Web.Accounts.Caller("ada", IdentityInit.Web.Accounts.LabRoles.Researcher)));

        await page.InvokeAsync(() =>
            page.FindComponents<MudTextField<string>>()
            .Single(f => f.Instance.Label == "Name").Instance.ValueChanged.InvokeAsync("sweeps"));
        page.Find("#create-token").Click();
        page.WaitForAssertion(() => Assert.StartsWith("ii_", page.Find("#token-link").TextContent));
        var token = page.Find("#token-link").TextContent;
        var http = lab.CreateClient();
        http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        var before = await http.GetAsync("/api/runs");
        page.Find(".revoke-token").Click();
        page.WaitForAssertion(() => Assert.Contains("revoked", page.Find("#tokens-table").TextContent));
        var after = await http.GetAsync("/api/runs");

        Assert.Contains("sweeps", page.Find("#tokens-table").TextContent);
        Assert.Matches(@"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", page.Find("#tokens-table").TextContent); // dates read alike on every page
        Assert.DoesNotMatch(@"\d{1,2}/\d{1,2}/\d{4}", page.Find("#tokens-table").TextContent);
        Assert.DoesNotContain(token, page.Find("#tokens-table").TextContent); // only its first characters are listed
        Assert.Equal(System.Net.HttpStatusCode.OK, before.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, after.StatusCode);
    }

    [Fact]
    public async Task TheUsersPageInvitesChangesRolesAndKeepsTheLastAdmin()
    {
        await lab.EnsureUserAsync(LabFactory.Admin, IdentityInit.Web.Accounts.LabRoles.Admin);
        await lab.EnsureUserAsync("grace", IdentityInit.Web.Accounts.LabRoles.Viewer);
        var page = context.Render<IdentityInit.Web.Components.Account.UsersPage>(p => p.AddCascadingValue(Admin));
        var accounts = lab.Services.GetRequiredService<IdentityInit.Web.Accounts.Accounts>();

        page.Find("#create-invitation").Click();
        page.WaitForAssertion(() => Assert.Contains("/invite/", page.Find("#invitation-link").TextContent));
        var invitation = page.Find("#invitation-link").TextContent;
        var roles = page.FindComponents<MudSelect<string>>().Where(s => s.Instance.Class?.Contains("user-role") == true).ToList();
        await page.InvokeAsync(() => roles[1].Instance.ValueChanged.InvokeAsync("researcher")); // grace (rows are sorted by name)
        await page.InvokeAsync(() => roles[0].Instance.ValueChanged.InvokeAsync("viewer")); // the only admin

        Assert.Equal("researcher", await accounts.InvitationRoleAsync(invitation[(invitation.LastIndexOf('/') + 1)..]));
        page.WaitForAssertion(() => Assert.Contains("only admin", page.Find("#role-error").TextContent));
        var users = (await accounts.UsersAsync()).ToDictionary(u => u.Name, u => u.Role);
        Assert.Equal("researcher", users["grace"]);
        Assert.Equal("admin", users[LabFactory.Admin]);
    }
}
