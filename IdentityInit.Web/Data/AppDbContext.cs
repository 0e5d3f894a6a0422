using System.Linq.Expressions;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.AspNetCore.Identity.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Query.SqlExpressions;
using Microsoft.EntityFrameworkCore.Storage;

namespace IdentityInit.Web.Data;

/// <summary>Runs and their data, accounts (ASP.NET Core Identity's tables), API tokens and the cookie keys of every web node.</summary>
public abstract class AppDbContext(DbContextOptions options) : IdentityDbContext(options), IDataProtectionKeyContext
{
    public DbSet<Run> Runs => Set<Run>();
    public DbSet<MetricPoint> Points => Set<MetricPoint>();
    public DbSet<Heatmap> Heatmaps => Set<Heatmap>();
    public DbSet<RunLog> Logs => Set<RunLog>();
    public DbSet<ShareLink> ShareLinks => Set<ShareLink>();
    public DbSet<LiveBatch> LiveBatches => Set<LiveBatch>();
    public DbSet<ApiToken> ApiTokens => Set<ApiToken>();
    public DbSet<Study> Studies => Set<Study>();
    public DbSet<Invitation> Invitations => Set<Invitation>();
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    /// <summary>A field of a run's stored config as text (SQL only: the runs list filters on it).</summary>
    public static string? ConfigText(string configJson, string field) => throw new InvalidOperationException("translated to SQL");

    /// <summary>A numeric field of a run's stored config (SQL only: the runs list sorts and filters on it).</summary>
    public static double? ConfigNumber(string configJson, string field) => throw new InvalidOperationException("translated to SQL");

    protected override void OnModelCreating(ModelBuilder model)
    {
        base.OnModelCreating(model);
        // Config fields inside the stored JSON: SQLite's json_extract, PostgreSQL's jsonb_extract_path_text.
        var types = this.GetService<IRelationalTypeMappingSource>();
        var text = types.FindMapping(typeof(string))!;
        var number = types.FindMapping(typeof(double))!;
        var postgres = Database.ProviderName?.Contains("Npgsql", StringComparison.Ordinal) == true;
        SqlExpression Field(IReadOnlyList<SqlExpression> args) => postgres
            ? new SqlFunctionExpression("jsonb_extract_path_text",
                [new SqlUnaryExpression(ExpressionType.Convert, args[0], typeof(string), types.FindMapping("jsonb")), args[1]],
                nullable: true, argumentsPropagateNullability: [true, true], typeof(string), text)
            : new SqlFunctionExpression("json_extract",
                [args[0], new SqlBinaryExpression(ExpressionType.Add, new SqlConstantExpression("$.", typeof(string), text), args[1],
                    typeof(string), text)],
                nullable: true, argumentsPropagateNullability: [true, true], typeof(string), text);
        model.HasDbFunction(typeof(AppDbContext).GetMethod(nameof(ConfigText))!)
            .HasTranslation(args => new SqlUnaryExpression(ExpressionType.Convert, Field(args), typeof(string), text));
        model.HasDbFunction(typeof(AppDbContext).GetMethod(nameof(ConfigNumber))!)
            .HasTranslation(args => new SqlUnaryExpression(ExpressionType.Convert, Field(args), typeof(double), number));

        model.Entity<Run>(e =>
        {
            e.ToTable("runs");
            e.Property(r => r.Status).HasConversion<string>().HasMaxLength(16);
            e.HasIndex(r => r.CreatedAt);
            e.HasIndex(r => r.Status);
            e.HasIndex(r => r.GroupId);
            e.HasIndex(r => new { r.Archived, r.CreatedAt });
            e.HasIndex(r => new { r.Owner, r.Status });
            e.HasIndex(r => r.StudyId);
            e.Property(r => r.Notes).HasDefaultValue("");
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
            e.HasIndex(s => s.Owner);
        });
        model.Entity<Study>(e =>
        {
            e.ToTable("studies");
            e.HasIndex(s => s.CreatedAt);
            e.Property(s => s.Name).HasMaxLength(200);
        });
        model.Entity<ApiToken>(e =>
        {
            e.ToTable("api_tokens");
            e.HasIndex(t => t.Hash).IsUnique();
            e.HasIndex(t => t.UserId);
            e.Property(t => t.Hash).HasMaxLength(64);
            e.Property(t => t.Name).HasMaxLength(100);
            e.Property(t => t.Scope).HasMaxLength(8);
        });
        model.Entity<Invitation>(e =>
        {
            e.ToTable("invitations");
            e.HasIndex(i => i.Hash).IsUnique();
            e.Property(i => i.Hash).HasMaxLength(64);
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
