using System.Collections.Concurrent;

namespace IdentityInit.Web.Sharing;

/// <summary>
/// What is open on this node through a share token: SignalR connections that joined with it and share pages showing it.
/// Revoking the token closes them at once: connections are aborted, pages drop what they show. On PostgreSQL a
/// revocation on any node reaches every node (NOTIFY on <see cref="Channel"/>, heard by the live relay's listener).
/// </summary>
public sealed class ShareRevocations
{
    public const string Channel = "identityinit_revoked";

    readonly ConcurrentDictionary<string, ConcurrentDictionary<Guid, Action>> open = new();

    /// <summary>Calls <paramref name="onRevoked"/> once when the token is revoked; dispose when the viewer goes away.</summary>
    public IDisposable Watch(string token, Action onRevoked)
    {
        var key = Guid.NewGuid();
        open.GetOrAdd(token, _ => new())[key] = onRevoked;
        return new Unwatch(() =>
        {
            if (open.TryGetValue(token, out var watchers)) watchers.TryRemove(key, out _);
        });
    }

    /// <summary>Closes everything open through this token on this node.</summary>
    public void Revoked(string token)
    {
        if (!open.TryRemove(token, out var watchers)) return;
        foreach (var onRevoked in watchers.Values) onRevoked();
    }

    sealed class Unwatch(Action action) : IDisposable
    {
        int disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) action();
        }
    }
}
