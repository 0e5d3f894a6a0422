using Microsoft.EntityFrameworkCore;
using Npgsql;
using NpgsqlTypes;

namespace IdentityInit.Web.Data;

/// <summary>
/// The app's store: PostgreSQL when ConnectionStrings:Postgres is set, otherwise SQLite in the data folder.
/// Hands out short-lived contexts (Blazor Server circuits outlive requests) and writes metric points in bulk.
/// </summary>
public sealed class AppDb
{
    public AppDb(string? postgres, string sqlitePath)
    {
        Postgres = string.IsNullOrWhiteSpace(postgres) ? null : postgres;
        SqlitePath = sqlitePath;
        if (Postgres is null) Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(sqlitePath))!);
    }

    public string? Postgres { get; }
    public string SqlitePath { get; }
    public bool IsPostgres => Postgres is not null;
    public string Description => IsPostgres ? "PostgreSQL" : $"SQLite ({SqlitePath})";

    public AppDbContext Create() => IsPostgres
        ? new PostgresDbContext(new DbContextOptionsBuilder<PostgresDbContext>().UseNpgsql(Postgres).Options)
        : new SqliteDbContext(new DbContextOptionsBuilder<SqliteDbContext>()
            .UseSqlite($"Data Source={SqlitePath};Cache=Shared;Default Timeout=30").Options);

    public async Task MigrateAsync(CancellationToken cancellationToken = default)
    {
        await using var db = Create();
        await db.Database.MigrateAsync(cancellationToken);
        if (!IsPostgres) await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", cancellationToken);
    }

    /// <summary>Appends points: Npgsql binary COPY on PostgreSQL (measured ~9x EF's SaveChanges), EF on SQLite.</summary>
    public async Task WritePointsAsync(IReadOnlyList<MetricPoint> points, CancellationToken cancellationToken = default)
    {
        if (points.Count == 0) return;
        if (IsPostgres)
        {
            await using var connection = new NpgsqlConnection(Postgres);
            await connection.OpenAsync(cancellationToken);
            await using var copy = await connection.BeginBinaryImportAsync(
                "COPY metric_points (\"RunId\", \"Series\", \"Step\", \"Value\") FROM STDIN (FORMAT BINARY)", cancellationToken);
            foreach (var p in points)
            {
                await copy.StartRowAsync(cancellationToken);
                await copy.WriteAsync(p.RunId, NpgsqlDbType.Uuid, cancellationToken);
                await copy.WriteAsync(p.Series, NpgsqlDbType.Varchar, cancellationToken);
                await copy.WriteAsync(p.Step, NpgsqlDbType.Bigint, cancellationToken);
                if (p.Value is { } value) await copy.WriteAsync(value, NpgsqlDbType.Double, cancellationToken);
                else await copy.WriteNullAsync(cancellationToken);
            }
            await copy.CompleteAsync(cancellationToken);
            return;
        }
        await using var db = Create();
        db.ChangeTracker.AutoDetectChangesEnabled = false;
        db.Points.AddRange(points);
        await db.SaveChangesAsync(cancellationToken);
    }
}
