using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Npgsql;

namespace IdentityInit.Web.Runs;

/// <summary>
/// Live points across machines on PostgreSQL. The node that trains a run stores each flushed batch in live_batches and
/// NOTIFYs the run's id in the same statement; every web node LISTENs, reads that run's batches past the last id it
/// delivered and hands them to its viewers. Ids grow in commit order within a run (one writer, one batch at a time), so a
/// node delivers each batch once and in order; after a lost connection or a restart it reads what it missed by id.
/// Batches older than <see cref="Keep"/> are deleted. A batch small enough for a notification's payload travels in it
/// (with its id), so a node delivers it without reading it back; a larger one is read from the table.
/// </summary>
public sealed class LiveRelay(AppDb db, RunStream stream, ILogger<LiveRelay> logger) : BackgroundService
{
    public const string Channel = "identityinit_live";
    public static readonly TimeSpan Keep = TimeSpan.FromHours(1);
    public const string ListenerName = "identityinit-live-relay";


    /// <summary>PostgreSQL refuses a notification payload of 8,000 bytes or more; the run id and the batch id come first.</summary>
    public const int InlineLimit = 7800;

    readonly ConcurrentDictionary<Guid, long> delivered = new();
    readonly Dictionary<Guid, long> sequence = []; // the last batch delivered per run (the delivery loop's own)
    readonly Channel<Notified> notified =
        System.Threading.Channels.Channel.CreateUnbounded<Notified>(new UnboundedChannelOptions { SingleReader = true });
    long startMark;

    /// <summary>A run with a new batch; the batch itself (and its id) when it came in the payload.</summary>
    readonly record struct Notified(Guid RunId, long Id, RunBatch? Batch);

    /// <summary>Stores a batch and tells every listening node, atomically (one statement).</summary>
    public static async Task PublishAsync(AppDb db, RunBatch batch, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(db.Postgres);
        await connection.OpenAsync(cancellationToken);
        // "run id" alone, or "run id batch id json" when the batch fits (UTF-8 bytes, measured in the statement).
        await using var command = new NpgsqlCommand(
            """
            WITH stored AS (INSERT INTO live_batches ("RunId", "Payload", "CreatedAt")
                            VALUES (@run, @payload, now() at time zone 'utc') RETURNING "Id")
            SELECT pg_notify(@channel, CASE WHEN octet_length(@payload) <= @limit THEN @run::text || ' ' || "Id" || ' ' || @payload
                                            ELSE @run::text END)
            FROM stored
            """, connection);
        command.Parameters.AddWithValue("run", batch.RunId);
        command.Parameters.AddWithValue("payload", JsonSerializer.Serialize(batch, EngineJson.Options));
        command.Parameters.AddWithValue("channel", Channel);
        command.Parameters.AddWithValue("limit", InlineLimit);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        startMark = await MaxIdAsync(stoppingToken); // viewers load what came before from the stored series
        var deliver = DeliverLoopAsync(stoppingToken);
        var pruned = DateTime.MinValue;
        await PgListener.ListenAsync(db, ListenerName, Channel, payload =>
        {
            if (Parse(payload) is { } n) notified.Writer.TryWrite(n);
        }, async (connection, token) =>
        {
            // Whatever arrived while this node was not listening: every run with a batch past what it delivered.
            foreach (var runId in await RunsWithBatchesSinceAsync(connection,
                Math.Min(startMark, delivered.Values.DefaultIfEmpty(startMark).Min()), token))
                notified.Writer.TryWrite(new(runId, 0, null));
            while (!token.IsCancellationRequested)
            {
                await connection.WaitAsync(TimeSpan.FromSeconds(30), token);
                if (DateTime.UtcNow - pruned > TimeSpan.FromMinutes(5))
                {
                    await using var prune = new NpgsqlCommand("""DELETE FROM live_batches WHERE "CreatedAt" < @before""", connection);
                    prune.Parameters.AddWithValue("before", DateTime.UtcNow - Keep);
                    await prune.ExecuteNonQueryAsync(token);
                    pruned = DateTime.UtcNow;
                }
            }
        }, logger, stoppingToken);
        notified.Writer.TryComplete();
        await deliver.ContinueWith(_ => { }, TaskScheduler.Default);
    }

    static Notified? Parse(string payload)
    {
        var parts = payload.Split(' ', 3);
        if (!Guid.TryParse(parts[0], out var runId)) return null;
        if (parts.Length < 3 || !long.TryParse(parts[1], out var id)) return new(runId, 0, null);
        try
        {
            return new(runId, id, JsonSerializer.Deserialize<RunBatch>(parts[2], EngineJson.Options));
        }
        catch (JsonException)
        {
            return new(runId, 0, null); // read it from the table instead
        }
    }

    async Task DeliverLoopAsync(CancellationToken stoppingToken)
    {
        while (await notified.Reader.WaitToReadAsync(stoppingToken))
        {
            // Everything notified meanwhile, in commit order. A run with a batch that did not fit its notification is read
            // from the table, every run of those in one query (with 20 runs streaming, one read per notification was most of
            // a web node's work between a flush and its viewers); the others' batches are delivered as they came.
            // An inline batch is delivered only when it follows the last one this node delivered of its run (by sequence):
            // a batch committed while the node was not listening, or not yet read after it started, is read first.
            var items = new List<Notified>();
            while (notified.Reader.TryRead(out var item)) items.Add(item);
            var read = items.Where(n => n.Batch is null).Select(n => n.RunId).ToHashSet();
            try
            {
                foreach (var n in items)
                {
                    if (n.Batch is not { } batch || read.Contains(n.RunId)
                        || n.Id <= delivered.GetValueOrDefault(n.RunId, startMark)) continue;
                    if (sequence.TryGetValue(n.RunId, out var last) && batch.Sequence == last + 1)
                    {
                        await stream.DeliverAsync(batch);
                        (delivered[n.RunId], sequence[n.RunId]) = (n.Id, batch.Sequence);
                    }
                    else read.Add(n.RunId);
                }
                if (read.Count > 0) await ReadAndDeliverAsync(read, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "relaying live batches of {Runs} runs failed; the next notification retries", read.Count);
            }
        }
    }

    async Task ReadAndDeliverAsync(HashSet<Guid> runs, CancellationToken stoppingToken)
    {
        await using var connection = new NpgsqlConnection(db.Postgres);
        await connection.OpenAsync(stoppingToken);
        await using var command = new NpgsqlCommand(
            """SELECT "Id", "RunId", "Payload" FROM live_batches WHERE "RunId" = ANY(@runs) AND "Id" > @after ORDER BY "Id" """,
                connection);
        command.Parameters.AddWithValue("runs", runs.ToArray());
        command.Parameters.AddWithValue("after", runs.Min(r => delivered.GetValueOrDefault(r, startMark)));
        var batches = new List<(long Id, Guid RunId, RunBatch Batch)>();
        await using (var reader = await command.ExecuteReaderAsync(stoppingToken))
            while (await reader.ReadAsync(stoppingToken))
                if (reader.GetInt64(0) > delivered.GetValueOrDefault(reader.GetGuid(1), startMark))
                    batches.Add((reader.GetInt64(0), reader.GetGuid(1),
                        JsonSerializer.Deserialize<RunBatch>(reader.GetString(2), EngineJson.Options)!));
        foreach (var (id, runId, batch) in batches)
        {
            await stream.DeliverAsync(batch);
            (delivered[runId], sequence[runId]) = (id, batch.Sequence);
        }
    }

    async Task<long> MaxIdAsync(CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(db.Postgres);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("""SELECT COALESCE(MAX("Id"), 0) FROM live_batches""", connection);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    static async Task<List<Guid>> RunsWithBatchesSinceAsync(NpgsqlConnection connection, long since, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("""SELECT DISTINCT "RunId" FROM live_batches WHERE "Id" > @since""", connection);
        command.Parameters.AddWithValue("since", since);
        var runs = new List<Guid>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) runs.Add(reader.GetGuid(0));
        return runs;
    }
}
