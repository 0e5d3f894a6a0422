using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace IdentityInit.Web.Data;

public abstract class AppDbContext(DbContextOptions options) : DbContext(options)
{
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<MetricPoint> Points => Set<MetricPoint>();
    public DbSet<Heatmap> Heatmaps => Set<Heatmap>();
    public DbSet<RunLog> Logs => Set<RunLog>();
    public DbSet<ShareLink> ShareLinks => Set<ShareLink>();
    public DbSet<LiveBatch> LiveBatches => Set<LiveBatch>();

    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<Run>(e =>
        {
            e.ToTable("runs");
            e.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(r => r.CreatedAt);
            e.HasIndex(r => r.Status);
            e.HasIndex(r => r.GroupId);
            e.Ignore(r => r.TagList);
        });
        model.Entity<MetricPoint>(e =>
        {
            e.ToTable("metric_points");
            e.HasKey(p => new { p.RunId, p.Series, p.Step });
            e.Property(p => p.Series).HasMaxLength(128);
        });
        model.Entity<Heatmap>(e =>
        {
            e.ToTable("heatmaps");
            e.HasKey(h => new { h.RunId, h.Layer, h.Step });
            e.Property(h => h.Layer).HasMaxLength(128);
        });
        model.Entity<RunLog>(e =>
        {
            e.ToTable("run_logs");
            e.HasIndex(l => new { l.RunId, l.Id });
        });
        model.Entity<LiveBatch>(e =>
        {
            e.ToTable("live_batches");
            e.HasIndex(b => new { b.RunId, b.Id });
            e.HasIndex(b => b.CreatedAt);
        });
        model.Entity<ShareLink>(e =>
        {
            e.ToTable("share_links");
            e.HasKey(s => s.Token);
            e.Ignore(s => s.Runs);
        });
    }
}

/// <summary>The embedded default store (one file, no server).</summary>
public sealed class SqliteDbContext(DbContextOptions options) : AppDbContext(options);

/// <summary>The production store.</summary>
public sealed class PostgresDbContext(DbContextOptions options) : AppDbContext(options);

/// <summary>
/// EF Core's context factory for the app (registered by <c>AddDbContextFactory</c>): one options object for
/// <see cref="AppDbContext"/>, and the provider's own context type, so each provider keeps its own migrations.
/// </summary>
public sealed class StoreContextFactory(DbContextOptions<AppDbContext> options) : IDbContextFactory<AppDbContext>
{
    readonly bool postgres = options.Extensions.Any(e => e.GetType().Name.StartsWith("Npgsql", StringComparison.Ordinal));

    public AppDbContext CreateDbContext() => postgres ? new PostgresDbContext(options) : new SqliteDbContext(options);

    /// <summary>The provider settings both the app and the tests use.</summary>
    public static void Configure(DbContextOptionsBuilder builder, string? postgres, string sqlitePath)
    {
        if (string.IsNullOrWhiteSpace(postgres)) builder.UseSqlite($"Data Source={sqlitePath};Cache=Shared;Default Timeout=30");
        else builder.UseNpgsql(postgres);
    }
}

// Design-time factories for `dotnet ef migrations add X --context ...`; the connection strings are never opened.
public sealed class SqliteDesignFactory : IDesignTimeDbContextFactory<SqliteDbContext>
{
    public SqliteDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<SqliteDbContext>().UseSqlite("Data Source=design.db").Options);
}

public sealed class PostgresDesignFactory : IDesignTimeDbContextFactory<PostgresDbContext>
{
    public PostgresDbContext CreateDbContext(string[] args) =>
        new(new DbContextOptionsBuilder<PostgresDbContext>().UseNpgsql("Host=localhost;Database=design").Options);
}
