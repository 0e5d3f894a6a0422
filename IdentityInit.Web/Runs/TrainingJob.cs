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
public sealed class TrainingJob(AppDb db, RunStream stream, RunCancellation cancellation, IOptions<LabOptions> options,
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
            if (Claim(runId) is not { } run) return;
            summary = Train(run, checkpoints, token);
        }
        finally
        {
            cancellation.Unregister(runId);
        }

        var userCancelled = Flag(runId);
        if (summary.Status == RunStatus.Cancelled && !userCancelled)
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
        long? resumeAt = run.CheckpointStep is { } stored && Checkpoint.Completed(checkpoints).LastOrDefault(c => c.Step <= stored) is { Path: not null } found
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
            summary = new RunSummary(RunStatus.Failed, run.Step, 0, null, 0, null, [], $"the worker {WorkerName} could not train it: {e.Message}",
                null, null, 0);
        }
        return summary;
    }

    Run? Claim(Guid runId)
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
        run.Status = RunStatus.Running;
        run.StartedAt ??= DateTime.UtcNow;
        (run.Worker, run.WorkerSince) = (WorkerName, DateTime.UtcNow);
        context.SaveChanges();
        return run;
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
            logger.LogError("run {RunId}: {Points} points still unstored after {Minutes} min without the database", runId, lost, EndPatience.TotalMinutes);
            (state, summary) = (RunStatus.Failed, summary with
            {
                Error = $"the database was unavailable for {EndPatience.TotalMinutes:0} minutes at the end of the run: {lost} points were not stored",
            });
        }
        long totalSteps; // what the run was to train, not where it stopped: a cancelled run reads "step 63 of 3200"
        using (var context = db.Create())
        {
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
        }
        stream.PublishStatus(runId, new RunProgress(state, summary.Steps, totalSteps, 0, summary.Error));
        stream.FlushAsync(runId).GetAwaiter().GetResult();
        stream.Forget(runId);
    }

    /// <summary>Forwards the engine's events to the stream; <paramref name="starting"/> runs before the run's first event is published.</summary>
    sealed class Relay(Guid runId, RunStream stream, Action<RunStarted> starting) : IProgress<RunEvent>
    {
        public void Report(RunEvent value)
        {
            if (value is RunStarted started) starting(started);
            stream.Publish(runId, value);
        }
    }
}
