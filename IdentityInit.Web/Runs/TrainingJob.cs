using System.Text.Json;
using System.Text.Json.Serialization;
using Hangfire;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>
/// The Hangfire job: receives a run id, reads everything else from the database, trains the run in a child process
/// (<see cref="RunProcess"/>) and streams its events through <see cref="RunStream"/>. A retried or re-enqueued job, on
/// this worker or any other, resumes from the run's newest checkpoint whose events are all stored (checkpoints live in
/// the shared CheckpointDir) after deleting stored points past it, so the series stays continuous with no duplicated step.
/// </summary>
public sealed class TrainingJob(AppDb db, RunStream stream, RunCancellation cancellation, Workers workers, IOptions<LabOptions> options,
    ILogger<TrainingJob> logger)
{
    public static readonly TimeSpan CancelPoll = TimeSpan.FromSeconds(2);

    // Attempts = 0: a failed run is a result to show, not a transient fault; restarts after a crash are RunRecovery's.
    [AutomaticRetry(Attempts = 0)]
    [JobDisplayName("train run {0}")] // the dashboard at /jobs names the run, not TrainingJob.Run
    public void Run(Guid runId, IJobCancellationToken jobToken)
    {
        if (!cancellation.TryRegister(runId, jobToken.ShutdownToken, out var token))
        {
            logger.LogWarning("run {RunId} is already training in this process: a second execution of its job ends here", runId);
            return;
        }
        // Registered until training ends, whatever throws on the way (a database outage while claiming): a registration
        // left behind would refuse every later execution of this run's job in this process.
        RunSummary summary;
        var checkpoints = Path.Combine(options.Value.CheckpointRoot, runId.ToString("N"));
        try
        {
            if (Claim(runId, token) is not { } run) return;
            summary = Train(run, checkpoints, token);
        }
        finally
        {
            cancellation.Unregister(runId);
        }

        // Cancelled without a shutdown: the user's cancel. With one, the flag tells; a database away at that moment counts
        // as no (the run resumes on restart, where its claim honours a cancel request). Training may well end while the
        // database is away: nothing here may need it to answer at once (a read that threw left the run "running" for good).
        if (summary.Status == RunStatus.Cancelled && jobToken.ShutdownToken.IsCancellationRequested && !UserCancelled(runId))
        {
            stream.FlushAllAsync(runId, TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
            logger.LogInformation("run {RunId} interrupted by shutdown at step {Step}; it resumes on restart", runId, summary.Steps);
            jobToken.ThrowIfCancellationRequested(); // lets Hangfire requeue it
            return;
        }
        Checkpoint.Tidy(checkpoints); // a child killed while saving leaves its step-N.tmp behind
        Finish(runId, summary);
    }

    /// <summary>Trains a claimed run in its own process, resuming from its newest stored checkpoint; how it ended.</summary>
    RunSummary Train(Run run, string checkpoints, CancellationToken token)
    {
        var runId = run.Id;
        var lab = options.Value;
        var config = WeightImports.Resolved(ConfigOverlay.FromJson(run.ConfigJson, "run config"), lab.CheckpointRoot);
        // The newest checkpoint whose events are all stored; the engine may still fall back from it to an older intact one.
        long? resumeAt = run.CheckpointStep is { } stored
            && Checkpoint.Completed(checkpoints).LastOrDefault(c => c.Step <= stored) is { Path: not null } found
            ? found.Step : null;
        var pid = 0;

        using var poll = new Timer(_ => PollCancel(runId), null, CancelPoll, CancelPoll);
        RunSummary summary;
        try
        {
            // Nothing here may leave the run Running: a host-side fault (the engine missing, a full disk) fails it with the reason.
            var child = new RunProcess.ChildOptions(checkpoints, lab.DatasetRoot, resumeAt ?? -1,
                lab.RunMemoryLimitMb is { } mb ? mb * (1L << 20) : null, TimeSpan.FromSeconds(lab.CancelGraceSeconds));
            var relay = new Relay(runId, stream, started =>
            {
                // Where the engine really starts: only now is it known which stored points it will replay.
                TrimPast(runId, resumeAt is null ? null : started.StartStep);
                stream.Publish(runId, new LogLine(started.StartStep, $"training in process {pid} on {WorkerName} ({config.Device})"));
            });
            summary = RunProcess.RunAsync(config, relay, child, token, started: id => pid = id).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "run {RunId} could not be trained on {Worker}", runId, WorkerName);
            summary = new RunSummary(RunStatus.Failed, run.Step, 0, null, 0, null, [],
                $"the worker {WorkerName} could not train it: {e.Message}",
                null, null, 0);
        }
        return summary;
    }

    Run? Claim(Guid runId, CancellationToken token)
    {
        using var context = db.Create();
        var run = context.Runs.FirstOrDefault(r => r.Id == runId);
        if (run is null || run.IsFinished) return null;
        if (run.CancelRequested)
        {
            run.Status = RunStatus.Cancelled;
            run.FinishedAt = DateTime.UtcNow;
            context.SaveChanges();
            return null;
        }
        // Another worker host that is alive holds the run: this is a second execution of its job (fetched again by another
        // host after the holder could not extend its claim on the job, e.g. while the job storage was unreachable). It ends
        // here rather than train the run a second time beside the first; a dead holder's run is taken over and resumes.
        var holder = run.Worker;
        if (run.Status == RunStatus.Running && holder is not null && holder != WorkerName && HolderAlive(holder, token))
        {
            logger.LogWarning("run {RunId} is being trained by {Holder}, a live worker: this execution of its job on {Worker} ends here",
                runId, holder, WorkerName);
            return null;
        }
        // Claimed only if no one else claimed it since it was read: two hosts executing the job at once cannot both win.
        var now = DateTime.UtcNow;
        var claimed = context.Runs.Where(r => r.Id == runId && r.Worker == holder && r.Status == run.Status).ExecuteUpdate(u => u
            .SetProperty(r => r.Status, RunStatus.Running).SetProperty(r => r.StartedAt, r => r.StartedAt ?? now)
            .SetProperty(r => r.Worker, WorkerName).SetProperty(r => r.WorkerSince, now));
        if (claimed == 0)
        {
            logger.LogWarning("run {RunId} changed while it was being claimed (another execution claimed it, or it was cancelled or " +
                "deleted): this execution on {Worker} ends here", runId, WorkerName);
            return null;
        }
        run.Status = RunStatus.Running;
        run.StartedAt ??= now;
        (run.Worker, run.WorkerSince) = (WorkerName, now);
        return run;
    }

    /// <summary>
    /// Whether the worker host "machine:pid" holding a run is alive: on this machine, whether its process exists; elsewhere,
    /// whether its heartbeat stays recent for a whole <see cref="Workers.AliveWithin"/> (a host killed a moment ago still
    /// looks alive until then, and its run must be taken over, not left "running" for good).
    /// </summary>
    bool HolderAlive(string holder, CancellationToken token)
    {
        var parts = holder.Split(':');
        if (parts.Length == 2 && parts[0] == Environment.MachineName.ToLowerInvariant() && int.TryParse(parts[1], out var pid))
            return Directory.Exists($"/proc/{pid}");
        var until = DateTime.UtcNow + Workers.AliveWithin + TimeSpan.FromSeconds(2);
        while (workers.List().Any(w => w.Alive && Workers.HostOf(w.Name) == holder))
        {
            if (DateTime.UtcNow > until || token.WaitHandle.WaitOne(TimeSpan.FromSeconds(1))) return true;
        }
        return false;
    }

    /// <summary>This worker host as the runs list and the workers page show it.</summary>
    public static string WorkerName => $"{Environment.MachineName.ToLowerInvariant()}:{Environment.ProcessId}";

    /// <summary>
    /// Points, heatmaps and logs past <paramref name="resumedAt"/> are replayed identically by the resumed run: drop them;
    /// a fresh start (null) drops every point and heatmap.
    /// </summary>
    void TrimPast(Guid runId, long? resumedAt)
    {
        var step = resumedAt ?? 0;
        stream.DropSpilled(runId);
        using var context = db.Create();
        context.Points.Where(p => p.RunId == runId && p.Step > step).ExecuteDelete();
        context.Heatmaps.Where(h => h.RunId == runId && h.Step > step).ExecuteDelete();
        context.Logs.Where(l => l.RunId == runId && l.Step > step).ExecuteDelete();
        if (resumedAt is null)
        {
            context.Points.Where(p => p.RunId == runId).ExecuteDelete();
            context.Heatmaps.Where(h => h.RunId == runId).ExecuteDelete();
        }
    }

    bool UserCancelled(Guid runId)
    {
        try
        {
            return Flag(runId);
        }
        catch (Exception e) when (AppDb.IsOutage(e))
        {
            return false;
        }
    }

    /// <summary>A write at a run's end, retried while the database is away, for at most <see cref="EndPatience"/>.</summary>
    void Patiently(Guid runId, Action write)
    {
        var deadline = DateTime.UtcNow + EndPatience;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                write();
                return;
            }
            catch (Exception e) when (AppDb.IsOutage(e) && DateTime.UtcNow < deadline)
            {
                if (attempt == 0) logger.LogWarning("run {RunId}: the database is away as the run ends; retrying its final status", runId);
                Thread.Sleep(TimeSpan.FromSeconds(1));
            }
        }
    }

    bool Flag(Guid runId)
    {
        using var context = db.Create();
        return context.Runs.Where(r => r.Id == runId).Select(r => r.CancelRequested).FirstOrDefault();
    }

    void PollCancel(Guid runId)
    {
        try
        {
            if (Flag(runId)) cancellation.Cancel(runId);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "polling the cancel flag of {RunId} failed", runId);
        }
    }

    /// <summary>How long a finished run waits for an absent database to store its last points before it fails.</summary>
    static readonly TimeSpan EndPatience = TimeSpan.FromMinutes(5);

    void Finish(Guid runId, RunSummary summary)
    {
        // The engine reports how a run ended; anything else from it (never seen) would be a fault.
        var state = summary.Status is RunStatus.Completed or RunStatus.Cancelled or RunStatus.Diverged ? summary.Status : RunStatus.Failed;
        if (summary.Error is { } raw)
        {
            logger.LogWarning("run {RunId} ended {State}: {Error}", runId, state, raw); // the whole text stays in the server's log
            summary = summary with { Error = ErrorText.ForDisplay(raw) };
        }
        // Order matters: every point is stored before the run reads as ended, and viewers hear of the end last. A database
        // that is away keeps the points in the stream; the run waits for it rather than ending over a hole.
        if (!stream.FlushAllAsync(runId, EndPatience).GetAwaiter().GetResult())
        {
            var lost = stream.Unstored(runId);
            logger.LogError("run {RunId}: {Points} points still unstored after {Minutes} min without the database", runId, lost,
                EndPatience.TotalMinutes);
            (state, summary) = (RunStatus.Failed, summary with
            {
                Error = $"the database was unavailable for {EndPatience.TotalMinutes:0} minutes at the end of the run: {lost} points " +
                    "were not stored",
            });
        }
        long totalSteps = 0; // what the run was to train, not where it stopped: a cancelled run reads "step 63 of 3200"
        Patiently(runId, () =>
        {
            using var context = db.Create();
            var run = context.Runs.First(r => r.Id == runId);
            totalSteps = run.TotalSteps > 0 ? run.TotalSteps : summary.Steps;
            run.Status = state;
            // A process that died reports no steps; the run still trained (and stored) as far as the stream got it.
            run.Step = state == RunStatus.Completed ? summary.Steps : Math.Max(summary.Steps, run.Step);
            run.FinishedAt = DateTime.UtcNow;
            run.BestTestAccuracy = summary.Record is null ? null : summary.BestTestAccuracy;
            run.FinalTestAccuracy = summary.FinalTestAccuracy;
            run.LayersBroken = summary.Symmetry.Count(l => l.BrokeAtStep is not null);
            run.LayerCount = summary.Symmetry.Count;
            run.RecordJson = summary.Record is null ? run.RecordJson : JsonSerializer.Serialize(summary.Record, EngineJson.Options);
            run.SummaryJson = JsonSerializer.Serialize(summary, EngineJson.Options);
            run.Error = summary.Error;
            context.SaveChanges();
        });
        stream.PublishStatus(runId, new RunProgress(state, summary.Steps, totalSteps, 0, summary.Error));
        stream.FlushAsync(runId).GetAwaiter().GetResult();
        stream.Forget(runId);
    }

    /// <summary>
    /// Forwards the engine's events to the stream; <paramref name="starting"/> runs before the run's first event is published.
    /// </summary>
    sealed class Relay(Guid runId, RunStream stream, Action<RunStarted> starting) : IProgress<RunEvent>
    {
        public void Report(RunEvent value)
        {
            if (value is RunStarted started) starting(started);
            stream.Publish(runId, value);
        }
    }
}
