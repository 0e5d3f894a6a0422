using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>The HTTP API on the embedded default store (SQLite + in-memory Hangfire).</summary>
[Collection(EngineCollection.Name)]
public sealed class RunsApiTests : IAsyncLifetime
{
    readonly LabFactory lab = new();
    HttpClient http = null!;

    public Task InitializeAsync()
    {
        http = lab.CreateClient();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await lab.DisposeAsync();

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AQueuedRunTrainsAndItsSeriesCanBeExportedAsJsonCsvAndFigures()
    {
        var created = await Api.CreateAsync(http, Api.TinyRun());
        var id = created.GetProperty("id").GetGuid();

        var run = await Api.WaitForStatusAsync(http, id, "Completed");
        var points = await Api.PointsAsync(http, $"/api/runs/{id}/metrics");
        var csv = await http.GetStringAsync($"/api/runs/{id}/metrics?format=csv&series=train/loss");
        var png = await http.GetByteArrayAsync($"/api/runs/{id}/figures/spread.png");
        var svg = await http.GetStringAsync($"/api/runs/{id}/figures/wcorr-forward.svg");
        var named = (await http.GetAsync($"/api/runs/{id}/figures/spread.svg")).Content.Headers.ContentDisposition;
        var spread = await http.GetStringAsync($"/api/runs/{id}/figures/spread.svg");

        Assert.Equal("Queued", created.GetProperty("status").GetString());
        Assert.Equal(32, run.GetProperty("step").GetInt64());
        Assert.Equal("rounding-jitter 1", run.GetProperty("breakers").GetString());
        Assert.True(run.GetProperty("layersBroken").GetInt32() > 0);
        Assert.Equal("0.107.0", run.GetProperty("record").GetProperty("torchSharpVersion").GetString());
        // The runs list is a summary: the config (bounded; scripts filter on it), not the reproducibility record (GET one run).
        var listed = JsonDocument.Parse(await http.GetStringAsync("/api/runs")).RootElement.EnumerateArray()
            .Single(r => r.GetProperty("id").GetGuid() == id);
        Assert.False(listed.TryGetProperty("record", out _));
        Assert.Equal(run.GetProperty("config").GetRawText(), listed.GetProperty("config").GetRawText());
        Assert.Equal([10L, 20, 30], points.Where(p => p.Series == "train/loss").Select(p => p.Step));
        Assert.Equal([0L, 8, 16, 24, 32], points.Where(p => p.Series == "wcorr.fwd/block2.layer.0.conv").Select(p => p.Step));
        Assert.Contains(points, p => p.Series.StartsWith("break/", StringComparison.Ordinal));
        Assert.Equal(points.Count, points.Distinct().Count());
        Assert.StartsWith("series,step,value\ntrain/loss,10,", csv);
        Assert.Equal(4, csv.Trim().Split('\n').Length);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        // the run's name, not spread.svg
        Assert.Equal("constnet-nondeterministic-spread.svg", named?.FileNameStar ?? named?.FileName?.Trim('"'));
        Assert.Contains("<svg", svg);
        // Spreads of exactly 0 (before the break) are left out of the log axis, not drawn at a floor 20 decades down;
        // the break is a dashed rule.
        var decades = System.Text.RegularExpressions.Regex.Matches(spread, @">\s*1e(-?\d+)\s*<").Select(m => int.Parse(m.Groups[1].Value))
            .ToList();
        Assert.NotEmpty(decades);
        Assert.True(decades.Min() > -20, $"the spread axis reaches 1e{decades.Min()}");
        // ScottPlot's SVG writes a dashed rule as its dashes
        Assert.Matches(@"<path fill=""#[0-9A-Fa-f]{6}"" d=""(M[^M""]+){5,}""", spread);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task EveryJsonEndpointRefusesABodyThatIsNotJsonWith415AndQueuesNothing()
    {
        await using var lab = new LabFactory();
        var http = lab.CreateClient();
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();
        const string body = """{"preset":"constnet-he"}""";

        foreach (var (method, path) in new[] { ("POST", "/api/runs"), ("POST", "/api/studies"), ("POST", "/api/signal"),
            ("POST", "/api/shares"),
                                               ("PATCH", $"/api/runs/{id}"), ("POST", "/api/tokens"), ("POST", "/api/invitations") })
        {
            // text/plain is what a cross-site form may send without a preflight: it must not be read as JSON.
            var response = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method),
                path)
            { Content = new StringContent(body, System.Text.Encoding.UTF8, "text/plain") });
            Assert.True(response.StatusCode == HttpStatusCode.UnsupportedMediaType, $"{method} {path}: {(int)response.StatusCode}");
            Assert.Contains("application/json", await response.Content.ReadAsStringAsync());
        }
        Assert.Equal("1", (await http.GetAsync("/api/runs")).Headers.GetValues("X-Total-Count").Single());
    }

    [Theory]
    [InlineData("format=xml", "format", "'xml' is not json or csv")]
    [InlineData("from=20&to=10", "from", "from (20) is after to (10)")]
    public async Task InvalidMetricQueriesNameTheParameter(string query, string field, string message)
    {
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1))).GetProperty("id").GetGuid();

        var response = await http.GetAsync($"/api/runs/{id}/metrics?{query}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Contains(message, problem.GetProperty("errors").GetProperty(field)[0].GetString());
    }

    [Fact]
    public async Task UnknownRunsAreNotFoundEverywhere()
    {
        var id = Guid.NewGuid();

        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync($"/api/runs/{id}/clone", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}/figures/loss.png")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/api/runs/{id}/logs")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync($"/api/runs/{id}/weights/stage", null)).StatusCode);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task CancelStopsARunningRunWithinAStepAndAnEndedRunCannotBeCancelledAgain()
    {
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 200))).GetProperty("id").GetGuid();
        await Wait.UntilAsync(async () => (await Api.GetRunAsync(http, id)).GetProperty("step").GetInt64() > 20, 60, "training to start");

        var cancel = await http.PostAsync($"/api/runs/{id}/cancel", null);
        var run = await Api.WaitForStatusAsync(http, id, "Cancelled", 30);
        var again = await http.PostAsync($"/api/runs/{id}/cancel", null);

        Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        Assert.True(run.GetProperty("step").GetInt64() < 200 * 16);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
    }

    [Fact]
    public async Task CloneQueuesTheSameConfigurationAgain()
    {
        var original = await Api.CreateAsync(http, Api.TinyRun(epochs: 1, extra: new { seed = 42 }));
        var id = original.GetProperty("id").GetGuid();

        var response = await http.PostAsync($"/api/runs/{id}/clone", null);
        var clone = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.NotEqual(id, clone.GetProperty("id").GetGuid());
        Assert.Equal(42, clone.GetProperty("config").GetProperty("seed").GetInt64());
        Assert.Equal(original.GetProperty("config").GetProperty("trainLimit").GetInt32(),
            clone.GetProperty("config").GetProperty("trainLimit").GetInt32());
        Assert.EndsWith("(clone)", clone.GetProperty("name").GetString());
    }

    [Fact]
    public async Task ASweepQueuesOneRunPerSeedOrValueAsAGroup()
    {
        var seeds = await http.PostAsJsonAsync("/api/runs",
            new
            {
                preset = "constnet-deterministic", config = new { dataset = "synthetic", maxSteps = 1 },
                sweep = new { seeds = new[] { 1, 2, 3 } }
            });
        var values = await http.PostAsJsonAsync("/api/runs",
            new
            {
                preset = "constnet-deterministic", config = new { dataset = "synthetic", maxSteps = 1 },
                sweep = new { field = "dropout", values = new[] { 0.0, 0.01 } }
            });

        var seedRuns = JsonDocument.Parse(await seeds.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        var valueRuns = JsonDocument.Parse(await values.Content.ReadAsStringAsync()).RootElement.EnumerateArray().ToList();
        Assert.Equal([1L, 2, 3], seedRuns.Select(r => r.GetProperty("seed").GetInt64()));
        Assert.Single(seedRuns.Select(r => r.GetProperty("groupId").GetGuid()).Distinct());
        Assert.Equal([0.0, 0.01], valueRuns.Select(r => r.GetProperty("config").GetProperty("dropout").GetDouble()));
        Assert.Equal("dropout 0.01", valueRuns[1].GetProperty("breakers").GetString());
        var group = seedRuns[0].GetProperty("groupId").GetGuid();
        Assert.Equal(3, JsonDocument.Parse(await http.GetStringAsync($"/api/runs?group={group}")).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task TheRunListFiltersBySearchStatusAndTag()
    {
        await Api.CreateAsync(http,
            new
            {
                preset = "leakynet-1_1111_1111_1111", name = "averaging", tags = new[] { "leaky" },
                config = new { dataset = "synthetic", maxSteps = 1 }
            });
        await Api.CreateAsync(http,
            new { preset = "constnet-he", name = "baseline", config = new { dataset = "synthetic", maxSteps = 1 } });

        var search = JsonDocument.Parse(await http.GetStringAsync("/api/runs?search=averag")).RootElement;
        var tag = JsonDocument.Parse(await http.GetStringAsync("/api/runs?tag=leaky")).RootElement;

        Assert.Equal("averaging", Assert.Single(search.EnumerateArray()).GetProperty("name").GetString());
        Assert.Equal("averaging", Assert.Single(tag.EnumerateArray()).GetProperty("name").GetString());
    }

    [Fact]
    public async Task TheOpenApiDocumentDescribesTheApi()
    {
        var document = await http.GetStringAsync("/openapi/v1.json");

        Assert.Contains("\"/api/runs\"", document);
        Assert.Contains("\"/api/shares\"", document);
        Assert.Contains("\"/api/runs/{id}/metrics\"", document);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task TheDeterministicAndNonDeterministicPairReportsTheFirstStepWhereWeightsDiffer()
    {
        var det = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, extra: new { metricsEvery = 1 }, preset: "constnet-deterministic")))
            .GetProperty("id").GetGuid();
        var twin = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, extra: new { metricsEvery = 1 }, preset: "constnet-deterministic")))
            .GetProperty("id").GetGuid();
        var noisy = (await Api.CreateAsync(http,
            Api.TinyRun(epochs: 1, extra: new { metricsEvery = 1, roundingJitter = 1.0 }, preset: "constnet-deterministic")))
            .GetProperty("id").GetGuid();
        var sparse = (await Api.CreateAsync(http,
            Api.TinyRun(epochs: 1, extra: new { metricsEvery = 8 }, preset: "constnet-deterministic"))).GetProperty("id").GetGuid();
        var sparseNoisy = (await Api.CreateAsync(http,
            Api.TinyRun(epochs: 1, extra: new { metricsEvery = 8, roundingJitter = 1.0 }, preset: "constnet-deterministic")))
            .GetProperty("id").GetGuid();
        foreach (var id in new[] { det, twin, noisy, sparse, sparseNoisy }) await Api.WaitForStatusAsync(http, id, "Completed");

        var same = JsonDocument.Parse(await http.GetStringAsync($"/api/compare/first-difference?a={det}&b={twin}")).RootElement;
        var differ = JsonDocument.Parse(await http.GetStringAsync($"/api/compare/first-difference?a={det}&b={noisy}")).RootElement;
        var unseen = JsonDocument.Parse(await http.GetStringAsync($"/api/compare/first-difference?a={sparse}&b={sparseNoisy}")).RootElement;
        // Fingerprints every 8 steps: a difference found at step 8 may have begun at step 1, so the banner may not say "from step 8 on".
        Assert.Equal(8, unseen.GetProperty("step").GetInt64());
        Assert.StartsWith("weights differ at or before step 8", unseen.GetProperty("message").GetString());

        Assert.Equal(JsonValueKind.Null, same.GetProperty("step").ValueKind);
        Assert.Equal(16, same.GetProperty("comparedThrough").GetInt64());
        Assert.InRange(differ.GetProperty("step").GetInt64(), 1, 3);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AFinishedRunsWeightsDownloadAsSafetensorsAtTheLastStepAndAtTheInitialization()
    {
        var id = (await Api.CreateAsync(http, Api.TinyRun(epochs: 1, preset: "constnet-he"))).GetProperty("id").GetGuid();
        await Api.WaitForStatusAsync(http, id, "Completed");

        var last = await http.GetAsync($"/api/runs/{id}/weights.safetensors");
        var init = await http.GetByteArrayAsync($"/api/runs/{id}/weights.safetensors?step=0");
        var missing = await http.GetAsync($"/api/runs/{id}/weights.safetensors?step=5");

        Assert.Equal(System.Net.HttpStatusCode.OK, last.StatusCode);
        Assert.EndsWith("-step16.safetensors", last.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        var tensors = IdentityInit.Training.Weights.Safetensors.Read(await WriteTemp(await last.Content.ReadAsByteArrayAsync()));
        var initial = IdentityInit.Training.Weights.Safetensors.Read(await WriteTemp(init));
        var name = "block2.layer.0.conv.weight";
        // trained
        Assert.False(tensors.Single(t => t.Name == name).Value.allclose(initial.Single(t => t.Name == name).Value, rtol: 0, atol: 0));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("no checkpoint at step 5", await missing.Content.ReadAsStringAsync());
    }

    static async Task<string> WriteTemp(byte[] bytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"identityinit-test-{Guid.NewGuid():N}.safetensors");
        await File.WriteAllBytesAsync(path, bytes);
        return path;
    }
}

/// <summary>Requests to queue a run that are refused: one app for the class, since none of them may leave a trace in it.</summary>
public sealed class RunRequestRefusalTests(SharedLab lab) : IClassFixture<SharedLab>
{
    readonly HttpClient http = lab.App.CreateClient();

    static readonly string TwentyOneTags = string.Join(",", Enumerable.Range(0, 21).Select(i => $"'t{i}'".Replace('\'', '"')));

    public static TheoryData<string, string, string> InvalidRequests => new()
    {
        { """{"preset":"nope"}""", "preset", "unknown preset 'nope'" },
        { """{"preset":"constnet-he","config":{"depth":8}}""", "config.depth", "depth must be 3n + 4" },
        { """{"preset":"constnet-he","config":{"colour":"red"}}""", "config.colour", "unknown field 'colour'" },
        { """{"preset":"constnet-he","config":{"dropout":"lots"}}""", "config.dropout", "expected a finite number, got \"lots\"" },
        { """{"preset":"constnet-he","config":{"learningRate":1e309}}""", "config.learningRate", "expected a finite number" },
        { """{"preset":"constnet-he","config":{"epochs":1.5}}""", "config.epochs", "expected a whole number" },
        { """{"preset":"constnet-he","config":{"architecture":"leakynet","leakyInit":"h_hhxh_hhhh_hhhh"}}""", "config.leakyInit",
            "character 5 ('x')" },
        { """{"preset":"constnet-he","config":{"device":"cuda"}}""", "config.device", "no live worker serves the 'cuda' queue" },
        { """{"preset":"constnet-he","config":{"device":"cuda:1"}}""", "config.device", "no live worker serves the 'cuda_1' queue" },
        { """{"preset":"constnet-he","config":{"device":"tpu"}}""", "config.device", "'tpu' is not a device" },
        { """{"preset":"constnet-he","config":{"dataset":"svhn"}}""", "config.dataset", "'svhn' is not one of" },
        { """{"preset":"constnet-he","config":{"dataset":"imagenet32"}}""", "config.dataset",
            "dataset 'imagenet32' is not on this machine: looked in" },
        { """{"preset":"constnet-he","sweep":{}}""", "sweep", "give seeds, or a field and its values" },
        { """{"preset":"constnet-he","sweep":{"seeds":[1],"field":"Seed","values":[1]}}""", "sweep", "not both" },
        { """{"preset":"constnet-he","sweep":{"field":"Wingspan","values":[1]}}""", "sweep.field", "unknown field 'Wingspan'" },
        { """{"preset":"constnet-he","sweep":{"field":"Dropout","values":[]}}""", "sweep.values", "give at least one value" },
        { """{"preset":"constnet-he","sweep":{"field":"Dropout","values":[0.1,"x"]}}""", "sweep.values[1].dropout",
            "expected a finite number" },
        { $$$"""{"preset":"constnet-he","sweep":{"seeds":[{{{string.Join(",", Enumerable.Range(1, 65))}}}]}}""", "sweep",
          "at most 64 runs" },
        { """{"preset":"constnet-he","tags":["a,b"]}""", "tags", "without commas" },
        { """{"preset":"constnet-he","tags":["a\tb"]}""", "tags", "without commas or control characters" },
        // Found by the generated corpus (each a 500): a null where a field may not be absent, a NUL in a path.
        { """{"preset":"constnet-he","config":{"device":null}}""", "config.device", "expected a string, got null" },
        { """{"preset":"constnet-he","config":{"init":"file","initFile":"\u0000"}}""", "config.initFile",
            "must be the id of weights staged by POST /api/weights" },
        { """{"preset":"constnet-he","name":"one\ntwo"}""", "name", "must not contain control characters" }, // a newline splits a CSV row
        { """{"preset":"constnet-he","config":{"name":"one\r\ntwo"}}""", "config.name", "must not contain control characters" },
        { """{}""", "preset", "give a preset, or a config with at least dataset and epochs" },
        { """{"config":{"dataset":"synthetic"}}""", "preset", "give a preset, or a config with at least dataset and epochs" },
        { $$"""{"preset":"constnet-he","name":"{{new string('n', 201)}}"}""", "name", "at most 200 characters, got 201" },
        { """{"preset":"constnet-he","config":{"depth":10,"Depth":13}}""", "config", "the key 'Depth' appears more than once" },
        { """{"preset":"constnet-he","config":{"learningRate":0.1},"preset":"constnet-deterministic"}""", "preset",
            "the key 'preset' appears more than once" },
        { """{"preset":"constnet-he","config":""", "body", "not valid JSON" },
        { """[1,2]""", "body", "expected a JSON object" },
        { """{"preset":"constnet-he","tags":"one"}""", "tags", "wrong type" },
        { """{"preset":"constnet-he","config":{"depth":1000000}}""", "config.depth", "parameters; the 'cpu' queue takes at most" },
        { """{"preset":"toy-k4","config":{"toyHidden":1000000000}}""", "config.toyHidden", "parameters; the 'cpu' queue takes at most" },
        { """{"preset":"constnet-he","config":{"dataset":"cifar10","depth":16,"widen":10,"batchSize":65536}}""", "config.batchSize",
            "MiB (weights, gradients, momentum and activations at batch 65536)" },
        { $$"""{"preset":"constnet-he","tags":[{{TwentyOneTags}}]}""", "tags", "at most 20 tags, got 21" },
        { """{"preset":"constnet-he","config":{"init":"file","initFile":"/etc/passwd"}}""", "config.initFile",
            "must be the id of weights staged by POST /api/weights" },
        { """{"preset":"constnet-he","config":{"init":"file","initFile":"/no/such/file.safetensors"}}""", "config.initFile",
            "no server file is named in a request" },
        { $$$"""{"preset":"constnet-he","config":{"name":"{{{new string('n', 1_000_000)}}}"}}""", "config.name",
            "at most 200 characters, got 1,000,000" },
        { $$$"""{"preset":"constnet-he","config":{"preset":"{{{new string('p', 1_000_000)}}}"}}""", "config.preset", "is not a preset" },
        { $$$"""{"preset":"constnet-he","config":{"leakyInit":"{{{new string('h', 3_000_000)}}}"}}""", "config.leakyInit",
            "the init string is a LeakyNet option" },
    };

    [Fact]
    public async Task AMegabyteOfBadInputComesBackAsAShortProblemAndQueuesNothing()
    {
        var huge = new string('x', 1_000_000);
        var body = $$$"""{"preset":"constnet-he","config":{"{{{huge}}}":1,"architecture":"{{{huge}}}"},"tags":["{{{huge}}}"]}""";

        var response = await http.PostAsync("/api/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True(text.Length < 4000, $"a {text.Length:N0}-character answer to 2 MB of bad input");
        Assert.Contains("(1,000,000 characters)", text);
        Assert.Empty(JsonDocument.Parse(await http.GetStringAsync("/api/runs")).RootElement.EnumerateArray());
    }

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task EveryInvalidRequestIsAProblemDetailsNamingTheFieldAndQueuesNothing(string body, string field, string message)
    {
        var response = await http.PostAsync("/api/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(message,
            string.Join(" ", problem.GetProperty("errors").GetProperty(field).EnumerateArray().Select(e => e.GetString())));
        Assert.Empty(JsonDocument.Parse(await http.GetStringAsync("/api/runs")).RootElement.EnumerateArray());
    }
}
