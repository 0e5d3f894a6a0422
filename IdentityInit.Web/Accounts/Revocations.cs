using System.Collections.Concurrent;
using IdentityInit.Web.Data;

namespace IdentityInit.Web.Accounts;

/// <summary>
/// What is open on this node on the strength of a grant: SignalR connections and share pages opened through a share token,
/// connections authenticated by a personal API token, connections of a user. Revoking the grant (a share link, a token,
/// an account's role) closes them at once: connections are aborted, pages drop what they show. On PostgreSQL a
/// revocation on any node reaches every node (NOTIFY on <see cref="Channel"/>, heard by each node's <see cref="RevocationListener"/>).
/// </summary>
public sealed class Revocations(AppDb db)
{
    public const string Channel = "identityinit_revoked";

    /// <summary>The key of what a personal API token opened.</summary>
    public static string Token(Guid tokenId) => "token:" + tokenId.ToString("N");

    /// <summary>The key of what a user opened (cookie or token): closed when their role changes.</summary>
    public static string User(string userName) => "user:" + userName;

    readonly ConcurrentDictionary<string, ConcurrentDictionary<Guid, Action>> open = new();

    /// <summary>Calls <paramref name="onRevoked"/> once when the key is revoked; dispose when the viewer goes away.</summary>
    public IDisposable Watch(string key, Action onRevoked)
    {
        var id = Guid.NewGuid();
        open.GetOrAdd(key, _ => new())[id] = onRevoked;
        return new Unwatch(() =>
        {
            if (open.TryGetValue(key, out var watchers)) watchers.TryRemove(id, out _);
        });
    }

    /// <summary>Closes everything open through this key on this node (what the other nodes call on hearing it).</summary>
    public void Revoked(string key)
    {
        if (!open.TryRemove(key, out var watchers)) return;
        foreach (var onRevoked in watchers.Values) onRevoked();
    }

    /// <summary>Closes everything open through this key on this node at once, and on every other node through NOTIFY.</summary>
    public async Task RevokeEverywhereAsync(string key)
    {
        Revoked(key);
        if (!db.IsPostgres) return;
        await using var connection = new Npgsql.NpgsqlConnection(db.Postgres);
        await connection.OpenAsync();
        await using var notify = new Npgsql.NpgsqlCommand("SELECT pg_notify(@channel, @key)", connection);
        notify.Parameters.AddWithValue("channel", Channel);
        notify.Parameters.AddWithValue("key", key);
        await notify.ExecuteNonQueryAsync();
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

/// <summary>On PostgreSQL, hears the revocations made on other nodes and closes what this node opened through them.</summary>
public sealed class RevocationListener(AppDb db, Revocations revocations, ILogger<RevocationListener> logger) : BackgroundService
{
    public const string ListenerName = "identityinit-revocations";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PgListener.ListenAsync(db, ListenerName, Revocations.Channel, revocations.Revoked, PgListener.WaitAsync, logger, stoppingToken);
}
