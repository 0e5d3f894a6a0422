using System.Diagnostics;
using IdentityInit.Training;

namespace IdentityInit.Web.Runs;

/// <summary>
/// One run in a child process (the engine's hidden <c>run-child</c> command): libtorch's seed, thread count and
/// determinism flags are process-wide, and a native fault or a run that eats the machine's memory must take only
/// itself down. The config goes in as the first stdin line, events come back as JSON lines on stdout; cancel is a
/// stdin line (the child checkpoints and stops within a step), past <see cref="ChildOptions.CancelGrace"/> it is killed.
/// </summary>
public static class RunProcess
{
    public sealed record ChildOptions(string CheckpointDir, string DataDir, long? ResumeAtMost, long? MemoryLimitBytes,
        TimeSpan CancelGrace);

    /// <summary>Trains the run in a child process; never throws for a failed run (the summary says what happened).</summary>
    public static async Task<RunSummary> RunAsync(ExperimentConfig config, IProgress<RunEvent> progress, ChildOptions options,
        CancellationToken cancellationToken, Action<int>? started = null)
    {
        var clock = Stopwatch.StartNew();
        using var process = new Process { StartInfo = StartInfo(options) };
        process.Start();
        started?.Invoke(process.Id);
        await process.StandardInput.WriteLineAsync(ConfigOverlay.ToJson(config with { DataDir = null }).ReplaceLineEndings(" "));
        await process.StandardInput.FlushAsync(CancellationToken.None);
        var lastError = Task.Run(() => LastLineAsync(process.StandardError), CancellationToken.None);

        string? killedFor = null;
        void Kill(string reason)
        {
            killedFor ??= reason;
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } // already gone
        }

        using var cancelled = cancellationToken.Register(() => AskToStop(process, options.CancelGrace, Kill));
        using var watchdog = options.MemoryLimitBytes is { } limit ? Watchdog(process, limit, Kill) : null;
        var (summary, lastStep) = await ReadEventsAsync(process, progress);
        await process.WaitForExitAsync(CancellationToken.None);
        var last = await lastError ?? "(nothing on stderr)";
        if (summary is not null && killedFor is null) return summary;

        var reason = killedFor ?? Describe(process.ExitCode);
        var error = $"the training process ended without finishing the run: {reason}; its last output: {last}";
        // Cancelled, but too slow to stop (e.g. still building a huge model): the run is cancelled all the same, and says how.
        var status = cancellationToken.IsCancellationRequested ? RunStatus.Cancelled : RunStatus.Failed;
        var failed = new RunSummary(status, lastStep, 0, null, 0, null, [], error, null, null, clock.Elapsed.TotalSeconds);
        progress.Report(new LogLine(lastStep, "failed: " + error));
        return summary is null ? failed : summary with { Status = status, Error = error };
    }

    /// <summary>The child's events, reported as they come; its summary (null if it never ended the run) and last step.</summary>
    static async Task<(RunSummary? Summary, long LastStep)> ReadEventsAsync(Process process, IProgress<RunEvent> progress)
    {
        RunSummary? summary = null;
        long lastStep = 0;
        while (await process.StandardOutput.ReadLineAsync(CancellationToken.None) is { } line)
        {
            RunEvent? e;
            try
            {
                e = RunEvent.FromJsonLine(line);
            }
            catch (System.Text.Json.JsonException)
            {
                e = null; // a truncated last line of a killed child
            }
            if (e is null) continue;
            if (e is RunEnded ended) summary = ended.Summary;
            lastStep = e switch { RunStarted begun => begun.StartStep, StepMetrics m => m.Step, _ => lastStep };
            progress.Report(e);
        }
        return (summary, lastStep);
    }

    /// <summary>The last non-blank line of a stream (a failed child's stderr says why there), read to its end.</summary>
    static async Task<string?> LastLineAsync(StreamReader reader)
    {
        string? last = null;
        while (await reader.ReadLineAsync() is { } line)
            if (line.Trim().Length > 0) last = line;
        return last;
    }

    /// <summary>Asks the child to checkpoint and stop; one that has not stopped after <paramref name="grace"/> is killed.</summary>
    static void AskToStop(Process process, TimeSpan grace, Action<string> kill)
    {
        try
        {
            process.StandardInput.WriteLine("cancel");
            process.StandardInput.Flush();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or ObjectDisposedException)
        {
            // the child has already ended
        }
        _ = Task.Delay(grace, CancellationToken.None).ContinueWith(_ =>
        {
            if (!HasExited(process)) kill($"it did not stop within {grace.TotalSeconds:0} s of being cancelled and was killed");
        }, TaskScheduler.Default);
    }

    /// <summary>Kills the child once its working set passes <paramref name="limit"/> bytes (checked every 200 ms).</summary>
    static Timer Watchdog(Process process, long limit, Action<string> kill) => new(_ =>
    {
        try
        {
            process.Refresh();
            if (!process.HasExited && process.WorkingSet64 > limit)
                kill($"it used {process.WorkingSet64 / (1 << 20)} MiB, over the memory limit of {limit / (1 << 20)} MiB " +
                    "(IdentityInit:RunMemoryLimitMb), and was killed");
        }
        catch (InvalidOperationException)
        {
            // exited between the checks
        }
    }, null, TimeSpan.Zero, TimeSpan.FromMilliseconds(200));

    /// <summary>Exit codes as the runtime reports them: 128 + N for a process ended by signal N.</summary>
    static string Describe(int exitCode) => exitCode switch
    {
        137 => "it was killed (SIGKILL: the kernel's out-of-memory killer, or by hand)",
        139 => "it crashed (SIGSEGV, a native fault)",
        134 => "it aborted (SIGABRT, a native fault or an unhandled error)",
        143 => "it was terminated (SIGTERM)",
        3 => "it lost its host (stdin closed)",
        _ when exitCode > 128 => $"it was ended by signal {exitCode - 128}",
        _ => $"it exited with code {exitCode}",
    };

    static bool HasExited(Process process)
    {
        try { return process.HasExited; } catch (InvalidOperationException) { return true; }
    }

    static ProcessStartInfo StartInfo(ChildOptions options)
    {
        // Full paths: the child works in the app's folder, not in the host's working directory.
        List<string> arguments = ["run-child", "--checkpoints", Path.GetFullPath(options.CheckpointDir), "--data-dir",
            Path.GetFullPath(options.DataDir)];
        if (options.ResumeAtMost is { } step) arguments.AddRange(["--resume-at-most",
            step.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return Engine(arguments);
    }

    /// <summary>The engine's own executable next to this app (apphost, else the dll through the dotnet host running us), with its
    /// standard streams redirected.</summary>
    public static ProcessStartInfo Engine(IEnumerable<string> arguments)
    {
        var directory = AppContext.BaseDirectory;
        var apphost = Path.Combine(directory, OperatingSystem.IsWindows() ? "IdentityInit.Training.exe" : "IdentityInit.Training");
        var info = File.Exists(apphost)
            ? new ProcessStartInfo(apphost)
            : new ProcessStartInfo(DotnetHost()) { ArgumentList = { "exec", Path.Combine(directory, "IdentityInit.Training.dll") } };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        info.RedirectStandardInput = info.RedirectStandardOutput = info.RedirectStandardError = true;
        // cuda:N means the same card on every host and in every child: nvidia-smi's order, not CUDA's fastest-first.
        info.Environment["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
        info.UseShellExecute = false;
        info.WorkingDirectory = directory;
        // The host's runtime must be the child's: an apphost looks for DOTNET_ROOT, which `dotnet run` may not export.
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is null && Path.GetDirectoryName(DotnetHost()) is { Length: > 0 } root)
            info.Environment["DOTNET_ROOT"] = root;
        return info;
    }

    static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        // <root>/shared/Microsoft.NETCore.App/<version>/System.Private.CoreLib.dll
        var runtime = Path.GetDirectoryName(typeof(object).Assembly.Location);
        var root = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(runtime)));
        return root is null ? "dotnet" : Path.Combine(root, "dotnet");
    }
}
