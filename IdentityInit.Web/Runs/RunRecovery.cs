using Hangfire;
using Hangfire.Storage;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Runs;

/// <summary>
/// At start-up, re-queues runs a previous process left queued or running: with in-memory job storage their jobs are
/// gone; with PostgreSQL a job still "processing" on a dead server of this host is requeued at once instead of after
/// the invisibility timeout. The job resumes from the run's last checkpoint.
/// </summary>
public sealed class RunRecovery(AppDb db, RunService runs, JobStorage storage, IBackgroundJobClient jobs, ILogger<RunRecovery> logger)
    : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var context = db.Create();
        var unfinished = await context.Runs.AsNoTracking()
            .Where(r => r.Status == RunStatus.Queued || r.Status == RunStatus.Running).ToListAsync(cancellationToken);
        using var connection = storage.GetConnection();
        foreach (var run in unfinished)
        {
            var job = run.JobId is null ? null : connection.GetJobData(run.JobId);
            if (job is not null && !IsOrphaned(connection, run.JobId!, job)) continue;
            if (job is not null) jobs.Delete(run.JobId);
            logger.LogInformation("re-queueing run {RunId} ({Status}) left by a previous process", run.Id, run.Status);
            await runs.EnqueueAsync(run.Id, run.Queue);
        }
    }

    /// <summary>Processing on a server whose process (same host, other pid) no longer exists.</summary>
    static bool IsOrphaned(IStorageConnection connection, string jobId, JobData job)
    {
        if (job.State is "Enqueued" or "Scheduled" or "Awaiting") return false;
        if (job.State != "Processing") return true;
        var state = connection.GetStateData(jobId);
        if (state?.Data.TryGetValue("ServerId", out var serverId) != true) return true;
        var parts = serverId!.Split(':');
        return parts.Length >= 2 && parts[0] == Environment.MachineName.ToLowerInvariant() && int.TryParse(parts[1], out var pid)
               && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
