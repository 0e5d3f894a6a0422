using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace IdentityInit.Web.Data;

/// <summary>
/// The app's store: PostgreSQL when ConnectionStrings:Postgres is set, otherwise SQLite in the data folder.
/// Short-lived contexts (Blazor Server circuits outlive requests) come from EF Core's context factory; this class adds
/// what the factory does not: migration at start-up and bulk writes of metric points.
/// </summary>
public sealed class AppDb
{
    /// <summary>Whether an exception is the database being away (a transient connection failure), not a fault of the request.</summary>
    public static bool IsOutage(Exception? e) => e switch
    {
        null => false,
        System.Data.Common.DbException db => db.IsTransient || db.InnerException is System.Net.Sockets.SocketException or IOException,
        System.Net.Sockets.SocketException => true,
        AggregateException all => all.InnerExceptions.Any(IsOutage),
        _ => IsOutage(e.InnerException),
    };

    readonly IDbContextFactory<AppDbContext> contexts;

    public AppDb(IDbContextFactory<AppDbContext> contexts, string? postgres, string sqlitePath)
    {
        this.contexts = contexts;
        Postgres = string.IsNullOrWhiteSpace(postgres) ? null : postgres;
        SqlitePath = sqlitePath;
        if (Postgres is null) Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(sqlitePath))!);
    }

    public string? Postgres { get; }
    public string SqlitePath { get; }
    public bool IsPostgres => Postgres is not null;
    public string Description => IsPostgres ? "PostgreSQL" : $"SQLite ({SqlitePath})";

    public AppDbContext Create() => contexts.CreateDbContext();

    /// <summary>
    /// Whether the database answers now (the readiness probe). On PostgreSQL through a connection of its own, outside the
    /// pool: after an outage the pool still holds connections the restart broke, and one of those says nothing of now.
    /// </summary>
    public async Task<bool> AnswersAsync(CancellationToken cancellationToken = default)
    {
        if (!IsPostgres)
        {
            await using var context = Create();
            return await context.Database.CanConnectAsync(cancellationToken);
        }
        try
        {
            var fresh = new NpgsqlConnectionStringBuilder(Postgres) { Pooling = false, Timeout = 5 };
            await using var connection = new NpgsqlConnection(fresh.ConnectionString);
            await connection.OpenAsync(cancellationToken);
            await using var probe = new NpgsqlCommand("SELECT 1", connection);
            await probe.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var db = Create();
        // The migrations were squashed into one Initial per provider on 2026-12-07 (no database had been deployed): a
        // store made before then knows none of today's migrations, and would fail half-way creating tables it has.
        var applied = (await db.Database.GetAppliedMigrationsAsync(cancellationToken)).ToList();
        if (applied.Count > 0 && !applied.Intersect(db.Database.GetMigrations()).Any())
            throw new InvalidOperationException(
                $"the database ({Description}) was made by a build before 2026-12-07, whose migrations were squashed; start from " +
                "a fresh data folder or database (the runs in it cannot be carried over)");
        await db.Database.MigrateAsync(cancellationToken);
        if (!IsPostgres) await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
    }

    /// <summary>
    /// Stores points: Npgsql binary COPY on PostgreSQL (measured ~9x EF's SaveChanges), EF on SQLite. On PostgreSQL a point
    /// stored already (same run, series and step) takes the new value, as a repeat inside one batch does: a repeated point
    /// once failed its batch's COPY on the primary key, and the stream retried that batch forever, so the run never ended.
    /// Only a batch the plain COPY refuses so pays for the merge through a temporary table.
    /// </summary>
    public async Task WritePointsAsync(IReadOnlyList<MetricPoint> points, CancellationToken cancellationToken = default)
    {
        if (points.Count == 0) return;
        if (IsPostgres)
        {
            await using var connection = new NpgsqlConnection(Postgres);
            await connection.OpenAsync(cancellationToken);
            try
            {
                await CopyAsync(connection, "metric_points", points, cancellationToken);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                await MergeAsync(connection, points, cancellationToken);
            }
            return;
        }
        await using var db = Create();
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        db.Points.AddRange(points);
        await db.SaveChangesAsync(cancellationToken);
    }

    /// <summary>The points merged into what is stored: copied into a temporary table, then inserted or updated, at once.</summary>
    static async Task MergeAsync(NpgsqlConnection connection, IReadOnlyList<MetricPoint> points, CancellationToken cancellationToken)
    {
        points = [.. points.GroupBy(p => (p.RunId, p.Series, p.Step)).Select(g => g.Last())]; // ON CONFLICT takes a key once
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var incoming = new NpgsqlCommand("""
            CREATE TEMP TABLE incoming_points ("RunId" uuid, "Series" text, "Step" bigint, "Value" double precision) ON COMMIT DROP
            """, connection, transaction))
            await incoming.ExecuteNonQueryAsync(cancellationToken);
        await CopyAsync(connection, "incoming_points", points, cancellationToken);
        await using (var merge = new NpgsqlCommand("""
            INSERT INTO metric_points ("RunId", "Series", "Step", "Value")
            SELECT "RunId", "Series", "Step", "Value" FROM incoming_points
            ON CONFLICT ("RunId", "Series", "Step") DO UPDATE SET "Value" = EXCLUDED."Value"
            """, connection, transaction))
            await merge.ExecuteNonQueryAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    static async Task CopyAsync(NpgsqlConnection connection, string table, IReadOnlyList<MetricPoint> points,
        CancellationToken cancellationToken)
    {
        await using var copy = await connection.BeginBinaryImportAsync(
            $"COPY {table} (\"RunId\", \"Series\", \"Step\", \"Value\") FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var p in points)
        {
            await copy.StartRowAsync(cancellationToken);
            await copy.WriteAsync(p.RunId, NpgsqlDbType.Uuid, cancellationToken);
            await copy.WriteAsync(p.Series, NpgsqlDbType.Text, cancellationToken);
            await copy.WriteAsync(p.Step, NpgsqlDbType.Bigint, cancellationToken);
            if (p.Value is { } value) await copy.WriteAsync(value, NpgsqlDbType.Double, cancellationToken);
            else await copy.WriteNullAsync(cancellationToken);
        }
        await copy.CompleteAsync(cancellationToken);
    }
}
