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
        model.Entity<ShareLink>(e =>
        {
            e.ToTable("share_links");
            e.HasKey(s => s.Token);
            e.Ignore(s => s.Runs);
        });
    }
}

/// <summary>The embedded default store (one file, no server).</summary>
public sealed class SqliteDbContext(DbContextOptions<SqliteDbContext> options) : AppDbContext(options);

/// <summary>The production store.</summary>
public sealed class PostgresDbContext(DbContextOptions<PostgresDbContext> options) : AppDbContext(options);

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
