using IdentityInit.Web.Accounts;
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
public sealed class RunsHub(RunQueries queries, Access access, Revocations revocations) : Hub<IRunClient>
{
    public static string Group(Guid runId) => "run:" + runId.ToString("N");

    /// <summary>
    /// A connection lives only as long as what authorised it: revoking the personal token it came with, or changing its
    /// user's role, aborts it at once (a client reconnects and is checked afresh); a share token is watched on Join.
    /// </summary>
    public override Task OnConnectedAsync()
    {
        var connection = Context;
        if (connection.User?.FindFirst(Accounts.Accounts.TokenIdClaim)?.Value is { } tokenId && Guid.TryParse(tokenId, out var id))
            Watch(connection, Revocations.Token(id));
        if (connection.User?.Identity is { IsAuthenticated: true, Name: { } name }) Watch(connection, Revocations.User(name));
        return Task.CompletedTask;
    }

    void Watch(HubCallerContext connection, string key)
    {
        var watch = revocations.Watch(key, connection.Abort);
        connection.ConnectionAborted.Register(watch.Dispose);
    }

    public async Task<RunHistory> Join(Guid runId, string? shareToken = null)
    {
        if (!await access.CanReadAsync(Context.User, runId, shareToken))
            throw new HubException($"run {runId} not found");
        if (shareToken is not null)
        {
            Watch(Context, shareToken); // revoking the link closes this connection at once; the watch ends with the connection
        }
        await Groups.AddToGroupAsync(Context.ConnectionId, Group(runId));
        return await queries.HistoryAsync(runId) ?? throw new HubException($"run {runId} not found");
    }

    public Task Leave(Guid runId) => Groups.RemoveFromGroupAsync(Context.ConnectionId, Group(runId));
}
