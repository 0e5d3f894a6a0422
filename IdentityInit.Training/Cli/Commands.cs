using System.CommandLine;
using System.Globalization;
using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using Spectre.Console;

namespace IdentityInit.Training.Cli;

/// <summary>
/// The headless command line (System.CommandLine): train, export-weights, list-presets,
/// datasets, config. Exit codes: 0 ok, 1 run failed, 2 bad input, 130 cancelled.
/// </summary>
public static class Commands
{
    static readonly Option<string?> PresetOption = new("--preset") { Description = "start from a preset (list-presets shows them)" };
    static readonly Option<string?> ConfigOption = new("--config")
    {
        Description = "a config JSON file (camelCase fields, as " +
        "config.json)"
    };
    static readonly Option<string[]> SetOption = new("--set")
    {
        Description = "override one field, key=value (repeatable; keys as in " +
        "config JSON, any case)", AllowMultipleArgumentsPerToken = false
    };
    static readonly Option<int?> EpochsOption = new("--epochs") { Description = "shorthand for --set epochs=N" };
    static readonly Option<string?> DataDirOption = new("--data-dir")
    {
        Description = "where datasets are found and downloaded to " +
        "(default $IDENTITYINIT_DATA)"
    };

    static Command Root(TextWriter output, TextWriter errors, CancellationToken cancellationToken)
    {
        var outOption = new Option<string?>("--out") { Description = "output folder (default runs/<name>)" };
        var resume = new Option<bool>("--resume") { Description = "continue from the newest checkpoint in --out" };
        var train = new Command("train", "train one run headless; writes config.json, steps.csv, epochs.csv, weight_correlation.csv, " +
                                         "activation_correlation.csv, diversity.csv, symmetry.csv, run.json and checkpoints/ to --out")
            { PresetOption, ConfigOption, SetOption, EpochsOption, DataDirOption, outOption, resume };
        train.SetAction(r => Train(BuildConfig(r), r.GetValue(outOption), r.GetValue(resume), output, cancellationToken));

        var run = new Option<string>("--run") { Description = "a train --out folder", Required = true };
        var step = new Option<long?>("--step") { Description = "the checkpoint's step (default: the last; 0: the initialization)" };
        var file = new Option<string>("--out") { Description = "the .safetensors file to write", Required = true };
        var export = new Command("export-weights",
            "a run's weights as safetensors in the reference's names (model.py/remodel.py load them with load_state_dict)")
            { run, step, file };
        export.SetAction(r => ExportWeights(r.GetValue(run)!, r.GetValue(step), r.GetValue(file)!, output));

        var listPresets = new Command("list-presets", "the paper's runs, CPU scale and paper scale");
        listPresets.SetAction(_ => ListPresets(output));

        var download = new Option<string?>("--download")
        {
            Description = "fetch one dataset (MD5-checked): " +
            string.Join(", ", DatasetCatalog.Names)
        };
        var mirror = new Option<string?>("--mirror") { Description = "a base URL that replaces the official hosts" };
        var datasets = new Command("datasets", "where each dataset was found; --download fetches one") { download, DataDirOption, mirror };
        datasets.SetAction((r, token) => DatasetsAsync(r.GetValue(download), r.GetValue(DataDirOption), r.GetValue(mirror), output, token));

        var config = new Command("config", "print the resulting config as JSON") { PresetOption, ConfigOption, SetOption, EpochsOption,
            DataDirOption };
        config.SetAction(r =>
        {
            output.WriteLine(ConfigOverlay.ToJson(BuildConfig(r)));
            return 0;
        });

        var inits = new Option<string?>("--inits")
        {
            Description = "compare several inits, comma-separated (" +
            string.Join(", ", Initializer.Drawn) + "; scheme*scale for a bad scale, e.g. he-fanin*0.5); default: the config's"
        };
        var json = new Option<bool>("--json") { Description = "one JSON object per init on stdout, for scripts (the web app reads it)" };
        var signal = new Command("signal", "signal propagation and feature diversity at initialization, per layer, without training: " +
                                           "forward and backward signal, block Jacobian gain, activation correlation, weight spread")
            { PresetOption, ConfigOption, SetOption, DataDirOption, inits, json };
        signal.SetAction(r => Signal(BuildConfig(r), r.GetValue(inits), r.GetValue(json), output));

        var checkpoints = new Option<string>("--checkpoints") { Description = "the run's checkpoint folder", Required = true };
        var resumeAtMost = new Option<long?>("--resume-at-most")
        {
            Description = "resume from the newest checkpoint at or before this " +
            "step"
        };
        var child = new Command("run-child", "train one run for a worker host: the config as the first stdin line, events as JSON lines " +
                                             "on stdout; a later stdin line 'cancel' checkpoints and stops; stdin closing ends the " +
                                                 "process at once")
            { checkpoints, resumeAtMost, DataDirOption };
        child.Hidden = true;
        child.SetAction(r => RunChild(r.GetValue(checkpoints)!, r.GetValue(resumeAtMost), r.GetValue(DataDirOption), Console.In, output));

        return new RootCommand("IdentityInit's training engine: the paper's networks, inits and symmetry breakers, headless")
            { train, export, listPresets, datasets, config, signal, child };
    }

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter errors,
        CancellationToken cancellationToken = default)
    {
        var parsed = Root(output, errors, cancellationToken).Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) errors.WriteLine("error: " + error.Message);
            errors.WriteLine($"(run with --help for usage)");
            return 2;
        }
        try
        {
            return await parsed.InvokeAsync(new InvocationConfiguration
            {
                Output = output, Error = errors,
                EnableDefaultExceptionHandler = false
            },
                cancellationToken);
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
        catch (DatasetMissingException e)
        {
            errors.WriteLine("error: " + e.Message);
            return 2;
        }
    }

    static ExperimentConfig BuildConfig(ParseResult r)
    {
        var config = new ExperimentConfig();
        if (r.GetValue(PresetOption) is { } name)
            config = (Presets.Find(name) ?? throw new ArgumentException(
                $"--preset: unknown preset '{name}'; run list-presets to see them")).Config;
        if (r.GetValue(ConfigOption) is { } file)
            config = File.Exists(file) ? ConfigOverlay.FromJson(File.ReadAllText(file), "--config " + file)
                : throw new ArgumentException($"--config: file '{file}' not found");
        var sets = (r.GetValue(SetOption) ?? []).ToList();
        if (r.GetValue(EpochsOption) is { } epochs) sets.Add("epochs=" + epochs.ToString(CultureInfo.InvariantCulture));
        if (r.GetValue(DataDirOption) is { } dataDir) sets.Add("dataDir=" + dataDir);
        config = ConfigOverlay.ApplyAssignments(config, sets);
        ConfigValidation.ThrowIfInvalid(config);
        return config;
    }

    /// <summary>
    /// One run in a process of its own (libtorch's seed, threads and determinism flags are process-wide). Exit 0 once the
    /// run has ended, whatever its status (the last line says it); exit 3 when the host is gone (stdin closed).
    /// </summary>
    static int RunChild(string checkpoints, long? resumeAtMost, string? dataDir, TextReader input, TextWriter output)
    {
        var line = input.ReadLine() ?? throw new ArgumentException("stdin: no config line");
        var config = ConfigOverlay.FromJson(line, "stdin") with { DataDir = dataDir };
        using var cancel = new CancellationTokenSource();
        var listener = new Thread(() =>
        {
            while (input.ReadLine() is { } line)
                if (line.Trim() == "cancel") cancel.Cancel();
            Environment.Exit(3); // the host is gone: nobody would store what this run does next
        })
        { IsBackground = true, Name = "host-commands" };
        listener.Start();
        var gate = new Lock();
        var progress = new SyncProgress(e =>
        {
            lock (gate)
            {
                output.WriteLine(e.ToJsonLine());
                output.Flush();
            }
        });
        Trainer.Run(config, progress, cancel.Token, // its last event is RunEnded with the summary
            new RunOptions(checkpoints, Resume: true, new DatasetCatalog(config.DataDir), ResumeAtMost: resumeAtMost));
        return 0;
    }

    static int ExportWeights(string run, long? wanted, string file, TextWriter output)
    {
        var configPath = Path.Combine(run, "config.json");
        if (!File.Exists(configPath)) throw new ArgumentException($"--run: '{run}' holds no config.json (not a train --out folder)");
        var config = ConfigOverlay.FromJson(File.ReadAllText(configPath), configPath);
        long step;
        try
        {
            step = Weights.ModelWeights.ExportCheckpoint(config, Path.Combine(run, "checkpoints"), wanted, file);
        }
        catch (ArgumentException e) when (e.ParamName is "step" or "checkpointDir")
        {
            throw new ArgumentException((e.ParamName == "step" ? "--step: " : "--run: ") +
                e.Message[..e.Message.IndexOf(" (Parameter", StringComparison.Ordinal)]);
        }
        output.WriteLine($"wrote {file}: {config.Name} at step {step}");
        return 0;
    }

    /// <summary>
    /// Spectre.Console over the command's writer: live progress and colour on a terminal, plain wide text when redirected.
    /// </summary>
    static IAnsiConsole Terminal(TextWriter output)
    {
        var terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = 240; // tables of paths stay one row per entry in logs and pipes
        return console;
    }

    static int Train(ExperimentConfig config, string? outOption, bool resume, TextWriter output, CancellationToken cancellationToken)
    {
        var outDir = outOption ?? Path.Combine("runs", config.Name);
        var files = new RunFiles(outDir);
        var console = Terminal(output);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        RunSummary summary;
        try
        {
            summary = console.Profile.Capabilities.Interactive
                ? console.Progress().AutoClear(false)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                    .Start(ctx => TrainWith(config, outDir, resume, files, console, ctx.AddTask(config.Name), cancel.Token))
                : TrainWith(config, outDir, resume, files, console, task: null, cancel.Token);
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        files.Write(config, summary);
        WriteSummary(console, summary, outDir);
        return summary.Status switch
        {
            RunStatus.Completed => 0,
            RunStatus.Cancelled => 130,
            _ => 1,
        };
    }

    /// <summary>Trains, writing the run's files as events arrive; a live task on a terminal, a line per 5 % otherwise.</summary>
    static RunSummary TrainWith(ExperimentConfig config, string outDir, bool resume, RunFiles files, IAnsiConsole console,
        ProgressTask? task, CancellationToken cancellationToken)
    {
        var lastBucket = -1;
        long total = 1;
        var progress = new SyncProgress(e =>
        {
            files.Add(e);
            switch (e)
            {
                case RunStarted s:
                    total = Math.Max(1, s.TotalSteps);
                    if (task is not null) (task.MaxValue, task.Value) = (total, s.StartStep);
                    console.WriteLine(
                        $"seed {s.Record.Seed}, {s.Record.Device}, {s.Record.Threads} threads, TorchSharp {s.Record.TorchSharpVersion}, " +
                        $"{s.Record.Parameters:N0} parameters, deterministic algorithms: {s.Record.Determinism.DeterministicAlgorithms}");
                    break;
                case StepMetrics m:
                    var status = $"step {m.Step}/{total} loss {m.Loss:F4} acc {m.Accuracy:P1} {m.ImagesPerSecond:F0} img/s";
                    if (task is not null)
                    {
                        task.Value = m.Step;
                        task.Description = Markup.Escape($"{config.Name}  {status}");
                    }
                    else if ((int)(20 * m.Step / total) is var bucket && bucket != lastBucket)
                    {
                        lastBucket = bucket;
                        console.WriteLine($"{(double)m.Step / total,4:P0} {status}");
                    }
                    break;
                case EpochMetrics m:
                    var losses = $"epoch {m.Epoch + 1}: train loss {m.TrainLoss:F4} acc {m.TrainAccuracy:P2}, test loss {m.TestLoss:F4}";
                    console.MarkupLineInterpolated($"{losses} acc [bold]{m.TestAccuracy:P2}[/] (best {m.BestTestAccuracy:P2})");
                    if (m.PreciseTestAccuracy is { } precise)
                        console.WriteLine($"  with precise BatchNorm statistics: test loss {m.PreciseTestLoss:F4} acc {precise:P2}");
                    break;
                case SymmetryBroken b:
                    console.MarkupLineInterpolated($"[yellow]symmetry broke[/] in {b.Layer} at step {b.Step} (spread {b.Spread:G3})");
                    break;
                case LogLine l:
                    console.WriteLine(l.Message);
                    break;
            }
        });
        return Trainer.Run(config, progress, cancellationToken,
            new RunOptions(Path.Combine(outDir, "checkpoints"), resume, new DatasetCatalog(config.DataDir)));
    }

    static void WriteSummary(IAnsiConsole console, RunSummary s, string outDir)
    {
        var colour = s.Status == RunStatus.Completed ? "green" : "red";
        var error = Markup.Escape(s.Error is null ? "" : " - " + s.Error);
        console.MarkupLine($"status: [{colour}]{s.Status.ToString().ToLowerInvariant()}[/]{error}");
        console.WriteLine($"steps: {s.Steps} ({s.EpochsCompleted} epochs) in {s.Seconds:F1} s");
        if (s.FinalTestAccuracy is { } acc) console.WriteLine($"test accuracy: {acc:P2} (best {s.BestTestAccuracy:P2})");
        if (s.Record is { } r) console.WriteLine($"breakers: {string.Join(", ", r.Breakers)}");
        var broken = s.Symmetry.Count(l => l.BrokeAtStep is not null);
        console.WriteLine("symmetry: " + (broken == 0 ? "intact in every layer (channels bitwise identical)"
                                                     : $"broken in {broken} of {s.Symmetry.Count} layers"));
        if (s.Symmetry.Count > 0)
        {
            var table = new Table().Border(TableBorder.Simple).AddColumns("layer", "symmetry", "spread");
            foreach (var l in s.Symmetry)
                table.AddRow(Markup.Escape(l.Layer), l.BrokeAtStep is { } step ? $"broke at step {step}" : "identical",
                    l.Spread.ToString("G3", CultureInfo.InvariantCulture));
            console.Write(table);
        }
        console.WriteLine($"metrics: {Path.GetFullPath(outDir)}");
    }

    /// <summary>The step-0 snapshot of the config's network under each init: a table per init, or JSON lines.</summary>
    static int Signal(ExperimentConfig config, string? initList, bool json, TextWriter output)
    {
        var schemes = initList is null ? [config.Init]
            : initList.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var spec in schemes)
            if (Initializer.Variant(spec, out var problem) is null) throw new ArgumentException($"--inits: {problem}");
        var console = Terminal(output);
        foreach (var scheme in schemes)
        {
            var (name, scale) = Initializer.Variant(scheme, out _)!.Value;
            var snapshot = Trainer.AtInit(config with { Init = name, InitScale = config.InitScale * scale });
            if (json)
            {
                output.WriteLine(System.Text.Json.JsonSerializer.Serialize(new SignalAtInit(scheme, snapshot), EngineJson.Options));
                continue;
            }
            var correlation = snapshot.Activations.ToDictionary(a => a.Layer, a => a.Correlation);
            var table = new Table().Border(TableBorder.Simple)
                .Title(Markup.Escape($"{config.Architecture} depth {config.Depth} width x{config.Widen}, init {scheme}: probe of " +
                    $"{config.ProbeSize}, E[x^2] = {snapshot.InputSignal:G3}"))
                .AddColumns(new[] { "layer", "E[a^2] / E[x^2]", "E[(dL/da)^2]", "Jacobian gain", "activation rho" }.Select(Markup.Escape)
                    .ToArray());
            foreach (var l in snapshot.Signals ?? [])
                table.AddRow(l.Layer, (l.Forward / snapshot.InputSignal).ToString("G3", CultureInfo.InvariantCulture),
                    l.Backward.ToString("G3", CultureInfo.InvariantCulture),
                    $"{l.Gain.ToString("G3", CultureInfo.InvariantCulture)} ± {l.GainSpread.ToString("G2", CultureInfo.InvariantCulture)}",
                    correlation.TryGetValue(l.Layer, out var rho) ? rho.ToString("F6", CultureInfo.InvariantCulture) : "");
            console.Write(table);
        }
        return 0;
    }

    /// <summary>What `signal --json` prints per init.</summary>
    public sealed record SignalAtInit(string Init, CorrelationSnapshot Snapshot);


    static int ListPresets(TextWriter output)
    {
        var console = Terminal(output);
        foreach (var group in Presets.All.GroupBy(p => p.Scale))
        {
            var table = new Table().Border(TableBorder.Simple)
                .Title(group.Key == "cpu" ? "CPU scale (minutes on 2 cores)" : "Paper scale (CIFAR-10 or MNIST, CUDA)")
                .AddColumns("preset", "network", "dataset", "epochs", "what it shows");
            foreach (var p in group)
                table.AddRow(p.Name, p.Config.Architecture.ToString(), p.Config.Dataset,
                    p.Config.Epochs.ToString(CultureInfo.InvariantCulture), Markup.Escape(p.Description));
            console.Write(table);
        }
        return 0;
    }

    static async Task<int> DatasetsAsync(string? name, string? dataDir, string? mirrorUrl, TextWriter output,
        CancellationToken cancellationToken)
    {
        var console = Terminal(output);
        var mirror = mirrorUrl is { } m ? new Uri(m.EndsWith('/') ? m : m + "/") : null;
        var catalog = new DatasetCatalog(dataDir, mirror);
        if (name is not null)
        {
            var lastPercent = -1;
            var progress = new SyncProgress<DownloadProgress>(p =>
            {
                var percent = p.Total is { } t && t > 0 ? (int)(100 * p.Bytes / t) : -1;
                if (percent == lastPercent || percent % 10 != 0) return;
                lastPercent = percent;
                console.WriteLine($"{p.File}: {percent}% of {p.Total / 1e6:F1} MB");
            });
            using var data = await catalog.LoadAsync(name, progress, cancellationToken);
            console.WriteLine($"{name}: {data.TrainCount} train / {data.TestCount} test images, " +
                $"{data.Channels}x{data.Height}x{data.Width}, {data.Classes} classes");
        }
        console.WriteLine($"data directory: {catalog.DataDir}");
        var table = new Table().Border(TableBorder.Simple).AddColumns("dataset", "found at", "what it is");
        foreach (var d in catalog.List())
            table.AddRow(d.Name, Markup.Escape(d.FoundAt ?? (d.Downloadable ? "missing (downloadable)" : "missing")),
                Markup.Escape(d.Description));
        console.Write(table);
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
}
