using System.Globalization;
using IdentityInit.Training.Data;

namespace IdentityInit.Training.Cli;

/// <summary>The headless command line: train, list-presets, datasets. Exit codes: 0 ok, 1 run failed, 2 bad input, 130 cancelled.</summary>
public static class Commands
{
    const string Usage = """
        usage: IdentityInit.Training <command> [options]
          train [--preset NAME] [--config FILE.json] [--set key=value]... [--epochs N] [--out DIR] [--resume] [--data-dir DIR]
                trains headless; writes config.json, steps.csv, epochs.csv, weight_correlation.csv,
                activation_correlation.csv, diversity.csv, symmetry.csv and run.json to --out (default runs/<name>)
          list-presets         the paper's runs, CPU scale and paper scale
          datasets [--download NAME] [--data-dir DIR] [--mirror URL]
                               where each dataset was found; --download fetches one (MD5-checked)
          config [--preset NAME] [--set key=value]...   prints the resulting config as JSON
          export-weights --run DIR [--step N] --out FILE.safetensors
                               a train --out folder's weights at checkpoint N (default: the last; 0: the initialization)
                               in the reference's names (model.py / remodel.py load them with load_state_dict)
        """;

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors, CancellationToken cancellationToken = default)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        try
        {
            var options = Options.Parse(args[1..]);
            return args[0] switch
            {
                "train" => Train(options, output, errors, cancellationToken),
                "list-presets" => ListPresets(output),
                "datasets" => await DatasetsAsync(options, output, cancellationToken),
                "config" => PrintConfig(options, output),
                "export-weights" => ExportWeights(options, output),
                _ => throw new ArgumentException($"unknown command '{args[0]}'\n{Usage}"),
            };
        }
        catch (ArgumentException e)
        {
            errors.WriteLine("error: " + e.Message);
            return 2;
        }
        catch (InvalidConfigException e)
        {
            foreach (var error in e.Errors) errors.WriteLine($"error: {error.Field}: {error.Message}");
            return 2;
        }
    }

    static ExperimentConfig BuildConfig(Options options)
    {
        var config = new ExperimentConfig();
        if (options.Single("--preset") is { } name)
            config = (Presets.Find(name) ?? throw new ArgumentException(
                $"--preset: unknown preset '{name}'; run list-presets to see them")).Config;
        if (options.Single("--config") is { } file) config = ConfigOverrides.FromFile(file);
        var sets = options.All("--set").ToList();
        if (options.Single("--epochs") is { } epochs) sets.Add("Epochs=" + epochs);
        if (options.Single("--data-dir") is { } dataDir) sets.Add("DataDir=" + dataDir);
        config = ConfigOverrides.Apply(config, sets);
        ConfigValidation.ThrowIfInvalid(config);
        return config;
    }

    static int ExportWeights(Options options, TextWriter output)
    {
        var run = options.Single("--run") ?? throw new ArgumentException("--run: the train --out folder to export from is required");
        var file = options.Single("--out") ?? throw new ArgumentException("--out: the .safetensors file to write is required");
        var configPath = Path.Combine(run, "config.json");
        if (!File.Exists(configPath)) throw new ArgumentException($"--run: '{run}' holds no config.json (not a train --out folder)");
        var config = ConfigOverrides.FromFile(configPath);
        var checkpoints = Checkpoint.Completed(Path.Combine(run, "checkpoints"));
        if (checkpoints.Count == 0) throw new ArgumentException($"--run: '{run}' holds no checkpoints");
        long? wanted = options.Single("--step") is { } s
            ? long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0 ? n
                : throw new ArgumentException($"--step: '{s}' is not a step number")
            : null;
        var (step, path) = wanted is { } w
            ? checkpoints.FirstOrDefault(c => c.Step == w) is { Path: not null } found ? found
                : throw new ArgumentException($"--step: no checkpoint at step {w}; kept: {string.Join(", ", checkpoints.Select(c => c.Step))}")
            : checkpoints[^1];
        var (channels, height, width, classes, _) = DatasetCatalog.Shape(config.Dataset);
        TorchRuntime.Initialize();
        using var model = Models.ModelFactory.Create(config, channels, height, width, classes);
        Checkpoint.LoadModel(path, model);
        Weights.ModelWeights.Save(model, file, new Dictionary<string, string>
        {
            ["run"] = config.Name, ["step"] = step.ToString(CultureInfo.InvariantCulture), ["architecture"] = config.Architecture,
            ["config"] = ConfigOverrides.ToJson(config),
        });
        output.WriteLine($"wrote {file}: {config.Name} at step {step}");
        return 0;
    }

    static int PrintConfig(Options options, TextWriter output)
    {
        output.WriteLine(ConfigOverrides.ToJson(BuildConfig(options)));
        return 0;
    }

    static int Train(Options options, TextWriter output, TextWriter errors, CancellationToken cancellationToken)
    {
        var config = BuildConfig(options);
        var outDir = options.Single("--out") ?? Path.Combine("runs", config.Name);
        var files = new RunFiles(outDir);
        var bar = new ProgressBar(output, interactive: ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        var lastStatus = "";
        var progress = new SyncProgress(e =>
        {
            files.Add(e);
            switch (e)
            {
                case RunStarted s:
                    bar.Start(s.StartStep, s.TotalSteps);
                    bar.Message($"seed {s.Record.Seed}, {s.Record.Device}, {s.Record.Threads} threads, TorchSharp {s.Record.TorchSharpVersion}, " +
                                $"{s.Record.Parameters:N0} parameters, deterministic algorithms: {s.Record.Determinism.DeterministicAlgorithms}");
                    break;
                case StepMetrics m:
                    lastStatus = $"loss {m.Loss:F4} acc {m.Accuracy:P1} {m.ImagesPerSecond:F0} img/s";
                    bar.Update(m.Step, lastStatus);
                    break;
                case EpochMetrics m:
                    bar.Message($"epoch {m.Epoch + 1}: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}, test loss {m.TestLoss:F4} acc {m.TestAccuracy:P2} (best {m.BestTestAccuracy:P2})");
                    break;
                case SymmetryBroken b:
                    bar.Message($"symmetry broke in {b.Layer} at step {b.Step} (spread {b.Spread:G3})");
                    break;
                case LogLine l:
                    bar.Message(l.Message);
                    break;
            }
        });
        RunSummary summary;
        try
        {
            summary = Trainer.Run(config, progress, cancel.Token,
                new RunOptions(Path.Combine(outDir, "checkpoints"), options.Flag("--resume"), new DatasetCatalog(config.DataDir)));
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        bar.Finish();
        files.Write(config, summary);
        WriteSummary(output, summary, outDir);
        return summary.Status switch
        {
            RunStatus.Completed => 0,
            RunStatus.Cancelled => 130,
            _ => 1,
        };
    }

    static void WriteSummary(TextWriter output, RunSummary s, string outDir)
    {
        output.WriteLine($"status: {s.Status.ToString().ToLowerInvariant()}{(s.Error is null ? "" : " - " + s.Error)}");
        output.WriteLine($"steps: {s.Steps} ({s.EpochsCompleted} epochs) in {s.Seconds:F1} s");
        if (s.FinalTestAccuracy is { } acc) output.WriteLine($"test accuracy: {acc:P2} (best {s.BestTestAccuracy:P2})");
        if (s.Record is { } r) output.WriteLine($"breakers: {string.Join(", ", r.Breakers)}");
        var broken = s.Symmetry.Count(l => l.BrokeAtStep is not null);
        output.WriteLine($"symmetry: {(broken == 0 ? "intact in every layer (channels bitwise identical)" : $"broken in {broken} of {s.Symmetry.Count} layers")}");
        foreach (var l in s.Symmetry)
            output.WriteLine($"  {l.Layer,-24} {(l.BrokeAtStep is { } step ? $"broke at step {step}" : "identical"),-22} spread {l.Spread:G3}");
        output.WriteLine($"metrics: {Path.GetFullPath(outDir)}");
    }

    static int ListPresets(TextWriter output)
    {
        foreach (var group in Presets.All.GroupBy(p => p.Scale))
        {
            output.WriteLine(group.Key == "cpu" ? "CPU scale (minutes on 2 cores):" : "Paper scale (CIFAR-10 or MNIST, CUDA):");
            foreach (var p in group)
                output.WriteLine($"  {p.Name,-40} {p.Config.Architecture}/{p.Config.Dataset}/{p.Config.Epochs} ep  {p.Description}");
        }
        return 0;
    }

    static async Task<int> DatasetsAsync(Options options, TextWriter output, CancellationToken cancellationToken)
    {
        var mirror = options.Single("--mirror") is { } m ? new Uri(m.EndsWith('/') ? m : m + "/") : null;
        var catalog = new DatasetCatalog(options.Single("--data-dir"), mirror);
        if (options.Single("--download") is { } name)
        {
            var lastPercent = -1;
            var progress = new SyncProgress<DownloadProgress>(p =>
            {
                var percent = p.Total is { } t && t > 0 ? (int)(100 * p.Bytes / t) : -1;
                if (percent == lastPercent || percent % 10 != 0) return;
                lastPercent = percent;
                output.WriteLine($"{p.File}: {percent}% of {p.Total / 1e6:F1} MB");
            });
            using var data = await catalog.LoadAsync(name, progress, cancellationToken);
            output.WriteLine($"{name}: {data.TrainCount} train / {data.TestCount} test images, {data.Channels}x{data.Height}x{data.Width}, {data.Classes} classes");
        }
        output.WriteLine($"data directory: {catalog.DataDir}");
        foreach (var d in catalog.List())
            output.WriteLine($"  {d.Name,-14} {(d.FoundAt ?? (d.Downloadable ? "missing (downloadable)" : "missing")),-48} {d.Description}");
        return 0;
    }

    sealed class SyncProgress(Action<RunEvent> handler) : IProgress<RunEvent>
    {
        public void Report(RunEvent value) => handler(value);
    }

    sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
    {
        public void Report(T value) => handler(value);
    }

    /// <summary>--name value pairs (repeatable) and bare --flags.</summary>
    sealed class Options
    {
        static readonly HashSet<string> Flags = ["--resume"];
        static readonly HashSet<string> Valued = ["--preset", "--config", "--set", "--epochs", "--out", "--data-dir", "--download", "--mirror", "--run", "--step"];
        readonly List<(string Name, string? Value)> items = [];

        public static Options Parse(string[] args)
        {
            var options = new Options();
            for (var i = 0; i < args.Length; i++)
            {
                if (Flags.Contains(args[i])) options.items.Add((args[i], null));
                else if (Valued.Contains(args[i]))
                {
                    if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
                    options.items.Add((args[i], args[++i]));
                }
                else throw new ArgumentException($"unknown option '{args[i]}'");
            }
            if (options.Single("--epochs") is { } epochs && !int.TryParse(epochs, NumberStyles.Integer, CultureInfo.InvariantCulture, out _))
                throw new ArgumentException($"--epochs: '{epochs}' is not a whole number");
            return options;
        }

        public string? Single(string name) => items.LastOrDefault(i => i.Name == name).Value;
        public IEnumerable<string> All(string name) => items.Where(i => i.Name == name).Select(i => i.Value!);
        public bool Flag(string name) => items.Any(i => i.Name == name);
    }
}
