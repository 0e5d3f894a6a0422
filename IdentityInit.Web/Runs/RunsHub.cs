using IdentityInit.Web.Sharing;
using Microsoft.AspNetCore.SignalR;

namespace IdentityInit.Web.Runs;

/// <summary>Messages the server sends to a subscribed client.</summary>
public interface IRunClient
{
    Task Batch(RunBatch batch);
}

/// <summary>
/// /hubs/runs: Join(runId[, shareToken]) adds the caller to the run's group and returns the stored history; live
/// batches follow as Batch(RunBatch). Joining before reading history means no gap; drop live points at or below the
/// last history step of their series to avoid duplicates.
/// </summary>
public sealed class RunsHub(RunQueries queries, Access access, ShareRevocations revocations) : Hub<IRunClient>
{
    public static string Group(Guid runId) => "run:" + runId.ToString("N");

    public async Task<RunHistory> Join(Guid runId, string? shareToken = null)
    {
        if (!await access.CanReadAsync(Context.User, runId, shareToken))
            throw new HubException($"run {runId} not found");
        if (shareToken is not null)
        {
            // Revoking the link closes this connection at once; the watch ends with the connection.
            var connection = Context;
            var watch = revocations.Watch(shareToken, connection.Abort);
            connection.ConnectionAborted.Register(watch.Dispose);
        }
        await Groups.AddToGroupAsync(Context.ConnectionId, Group(runId));
        return await queries.HistoryAsync(runId) ?? throw new HubException($"run {runId} not found");
    }

    public Task Leave(Guid runId) => Groups.RemoveFromGroupAsync(Context.ConnectionId, Group(runId));
}
