using Hangfire;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>A worker host as Hangfire's server registry reports it; alive while its heartbeat is recent.</summary>
public sealed record WorkerDto(string Name, string Host, IReadOnlyList<string> Queues, int Slots, DateTime StartedAt, DateTime? Heartbeat,
    bool Alive);

/// <summary>A run being trained now: by which worker host, on which device, since when.</summary>
public sealed record RunningDto(Guid RunId, string Name, string? Worker, string Device, DateTime? Since, long Step, long TotalSteps);

public sealed record WorkersDto(IReadOnlyList<WorkerDto> Workers, IReadOnlyList<RunningDto> Running);

/// <summary>Which worker hosts exist (any machine, through the shared job storage) and what each trains.</summary>
public sealed class Workers(JobStorage storage, AppDb db, IOptions<LabOptions> options)
{
    /// <summary>Three missed heartbeats (5 s each) and a host no longer counts as alive.</summary>
    public static readonly TimeSpan AliveWithin = TimeSpan.FromSeconds(15);

    public IReadOnlyList<WorkerDto> List()
    {
        var now = DateTime.UtcNow;
        return [.. storage.GetMonitoringApi().Servers()
            .Select(s => new WorkerDto(s.Name, HostOf(s.Name), [.. s.Queues], s.WorkersCount, s.StartedAt,
            s.Heartbeat, s.Heartbeat is { } beat && now - beat < AliveWithin)).OrderBy(w => w.Name, StringComparer.Ordinal)];
    }

    /// <summary>"machine:pid" of a Hangfire server name ("machine:pid:queue:guid"), as runs record their worker.</summary>
    public static string HostOf(string serverName) => string.Join(':', serverName.Split(':').Take(2));

    /// <summary>Null when a live worker (or this node) serves <paramref name="queue"/>, otherwise why not.</summary>
    public string? QueueProblem(string queue)
    {
        if (options.Value.QueueList.Contains(queue)) return null;
        var alive = List().Where(w => w.Alive).ToList();
        if (alive.Any(w => w.Queues.Contains(queue))) return null;
        var served = alive.SelectMany(w => w.Queues).Distinct().Order().ToList();
        return $"no live worker serves the '{queue}' queue (this node serves: " +
            $"{(options.Value.Queues is { Length: > 0 } q ? q : "none")}; " +
               $"live workers serve: {(served.Count > 0 ? string.Join(", ", served) : "none")}); start one with `IdentityInit.Web " +
                   $"worker` and IdentityInit:Queues={queue}";
    }

    public async Task<WorkersDto> OverviewAsync(CancellationToken cancellationToken = default)
    {
        await using var context = db.Create();
        var running = await context.Runs.AsNoTracking().Where(r => r.Status == RunStatus.Running).OrderBy(r => r.WorkerSince)
            .ToListAsync(cancellationToken);
        return new WorkersDto(List(),
            [.. running.Select(r =>
                new RunningDto(r.Id, r.Name, r.Worker, ConfigOverlay.FromJson(r.ConfigJson, "run config").Device, r.WorkerSince, r.Step,
                    r.TotalSteps))]);
    }
}
