using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Cli;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class CliTests
{
    internal static async Task<(int Code, string Output, string Errors)> Cli(params string[] args)
    {
        var (output, errors) = (new StringWriter(), new StringWriter());
        var code = await Commands.RunAsync(args, output, errors);
        return (code, output.ToString(), errors.ToString());
    }

    [Fact]
    public async Task TrainRunsAPresetHeadlessAndWritesItsMetrics()
    {
        var outDir = Tiny.TempDir();

        var (code, output, errors) = await Cli("train", "--preset", "constnet-nondeterministic", "--set", "dataset=synthetic",
            "--set", "TrainLimit=256", "--set", "TestLimit=64", "--set", "batchsize=32", "--epochs", "2", "--set", "depth=7",
            "--set", "CorrelationEvery=8", "--out", outDir);

        Assert.True(code == 0, errors + output);
        Assert.Contains("status: completed", output);
        Assert.Contains("breakers: rounding-jitter 1", output);
        Assert.Contains("symmetry: broken in", output);
        var steps = File.ReadAllLines(Path.Combine(outDir, "steps.csv"));
        Assert.Equal("step,epoch,loss,accuracy,learning_rate,images_per_second,step_ms", steps[0]);
        Assert.Equal(2, steps.Length); // header, then step 10: metrics every 10 of 16 steps
        Assert.Equal(3, File.ReadAllLines(Path.Combine(outDir, "epochs.csv")).Length);
        var correlations = File.ReadAllLines(Path.Combine(outDir, "weight_correlation.csv"));
        Assert.Equal(7 * 3 + 1, correlations.Length); // steps 0, 8 and 16 (the last), 7 layers each
        var run = File.ReadAllText(Path.Combine(outDir, "run.json"));
        Assert.Contains("\"status\": \"Completed\"", run); // camelCase, as config.json and the API
        Assert.Contains("\"dataset\": \"synthetic\"", run);
        Assert.NotNull(Checkpoint.Latest(Path.Combine(outDir, "checkpoints")));
    }

    [Fact]
    public async Task AnInvalidSettingExitsWithTwoAndNamesTheField()
    {
        var (code, _, errors) = await Cli("train", "--preset", "constnet-deterministic", "--set", "depth=8");

        Assert.Equal(2, code);
        Assert.Contains("error: depth: depth must be 3n + 4", errors);
    }

    [Theory]
    [InlineData("--preset|nope", "unknown preset 'nope'")]
    [InlineData("--set|colour=red", "error: colour: unknown field 'colour'")]
    [InlineData("--set|epochs=many", "error: epochs: expected a whole number, got \"many\"")]
    [InlineData("--set|dropout=1e309", "error: dropout: expected a finite number")]
    [InlineData("--set|noequals", "'noequals': expected key=value")]
    [InlineData("--epochs|1.5", "'1.5'")]
    [InlineData("--config|/nonexistent.json", "file '/nonexistent.json' not found")]
    [InlineData("--frobnicate", "'--frobnicate'")]
    public async Task BadArgumentsExitWithTwoAndSayWhatIsWrong(string args, string message)
    {
        var (code, _, errors) = await Cli(["train", .. args.Split('|')]);

        Assert.Equal(2, code);
        Assert.Contains(message, errors);
    }

    [Fact]
    public async Task ConfigFileAndSetsCombineOverAPreset()
    {
        var file = Path.Combine(Tiny.TempDir(), "config.json");
        File.WriteAllText(file, """{ "architecture": "leakynet", "LeakyInit": "1_iiii_11ii_iiii", "epochs": 7 }""");

        var (code, output, _) = await Cli("config", "--config", file, "--set", "Widen=3");

        Assert.Equal(0, code);
        Assert.Contains("\"leakyInit\": \"1_iiii_11ii_iiii\"", output);
        Assert.Contains("\"widen\": 3", output);
        Assert.Contains("\"epochs\": 7", output);
    }

    [Fact]
    public async Task ListPresetsShowsEveryPaperRunAtBothScales()
    {
        var (code, output, _) = await Cli("list-presets");

        Assert.Equal(0, code);
        Assert.All(Presets.All, p => Assert.Contains(p.Name, output));
        Assert.Equal(2 * (6 + 7 + 6), Presets.All.Count); // six ConstNet arms, seven LeakyNet strings, six toy K values; each at two scales
        Assert.Contains("toy-k256-paper", output);
        Assert.Contains("leakynet-1_ii11_ii11_ii11", output);
    }

    [Fact]
    public async Task SignalMeasuresInitsAtInitializationAsTablesOrJsonAndRefusesAnUnknownInit()
    {
        string[] network = ["--preset", "constnet-deterministic", "--set", "dataset=synthetic", "--set", "depth=7", "--set",
            "probeSize=16"];
        var (code, output, _) = await Cli(["signal", .. network, "--inits", "const,he-fanin"]);
        var (jsonCode, json, _) = await Cli(["signal", .. network, "--inits", "const", "--json"]);
        var (badCode, _, errors) = await Cli(["signal", .. network, "--inits", "const,file"]);

        Assert.Equal(0, code);
        Assert.Contains("init const", output);
        Assert.Contains("init he-fanin", output);
        Assert.Contains("E[a^2] / E[x^2]", output);
        Assert.Contains("block3.layer.0", output);
        Assert.Equal(0, jsonCode);
        var line = System.Text.Json.JsonSerializer.Deserialize<Commands.SignalAtInit>(json.Trim(), EngineJson.Options)!;
        Assert.Equal("const", line.Init);
        Assert.Equal(0, line.Snapshot.Step);
        Assert.All(line.Snapshot.Activations, a => Assert.Equal(1.0, a.Correlation, 6)); // ConstNet at init: identical channels
        Assert.Equal(2, badCode);
        Assert.Contains("--inits: 'file' is not one of", errors);
    }

    [Fact]
    public async Task DatasetsListsTheCatalogAndWhereEachWasFound()
    {
        var dataDir = Tiny.TempDir();

        var (code, output, _) = await Cli("datasets", "--data-dir", dataDir);

        Assert.Equal(0, code);
        Assert.Contains($"data directory: {dataDir}", output);
        Assert.Matches(@"imagenet32 +missing +1000 classes", output);
        Assert.Matches(@"cifar10 +missing \(downloadable\)", output);
        Assert.Matches(@"synthetic +\(generated\)", output);
    }

    [Theory]
    [InlineData("train")]
    [InlineData("export-weights")]
    [InlineData("datasets")]
    [InlineData("list-presets")]
    [InlineData("config")]
    public async Task EveryCommandHasHelp(string command)
    {
        var (code, output, _) = await Cli(command, "--help");

        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
        Assert.Contains(command, output);
    }

    [Fact]
    public async Task TrainHelpListsItsOptions()
    {
        var (_, output, _) = await Cli("train", "--help");

        Assert.Contains("--preset", output);
        Assert.Contains("--set", output);
        Assert.Contains("--resume", output);
    }

    [Fact]
    public async Task AMissingDatasetSaysWhereItLookedWhatItTriedAndHowToProvideIt()
    {
        var dataDir = Tiny.TempDir();

        var (code, output, _) = await Cli("train", "--preset", "constnet-deterministic", "--set", "dataset=imagenet32", "--data-dir",
            dataDir,
            "--out", Tiny.TempDir());

        Assert.Equal(1, code);
        Assert.Contains($"dataset 'imagenet32' is not on this machine: looked in {Path.Combine(dataDir, "imagenet32")}", output);
        Assert.Contains("it cannot be downloaded automatically", output);
        Assert.Contains("unzip both into", output);
    }
}
