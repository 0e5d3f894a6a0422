using IdentityInit.Training;

namespace IdentityInit.Web.Data;

/// <summary>A training run as the lab stores it: the engine config as JSON plus what the list and pages filter on.</summary>
public sealed class Run
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public string Owner { get; set; } = Ownership.DefaultOwner;
    public string? Preset { get; set; }
    public required string ConfigJson { get; set; }
    public required string Architecture { get; set; }
    public required string Init { get; set; }
    public required string Breakers { get; set; }
    public required string Dataset { get; set; }
    public required string Queue { get; set; }
    public long Seed { get; set; }
    public RunStatus Status { get; set; }
    public long Step { get; set; }
    public long TotalSteps { get; set; }
    public double? BestTestAccuracy { get; set; }
    public double? FinalTestAccuracy { get; set; }
    public int? LayersBroken { get; set; }
    public int? LayerCount { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? RecordJson { get; set; }
    public string? SummaryJson { get; set; }
    public string? Error { get; set; }
    public string Tags { get; set; } = "";
    /// <summary>The researcher's notes on the run, editable after it ends.</summary>
    public string Notes { get; set; } = "";
    /// <summary>Hidden from the runs list unless asked for; kept with all its data.</summary>
    public bool Archived { get; set; }
    public Guid? GroupId { get; set; }
    public string? GroupLabel { get; set; }
    /// <summary>The study this run is one cell of (an arm and a seed), if any.</summary>
    public Guid? StudyId { get; set; }
    public string? Arm { get; set; }
    public string? JobId { get; set; }
    public bool CancelRequested { get; set; }

    /// <summary>The newest checkpoint whose events are all stored: where a resumed run starts, on any worker.</summary>
    public long? CheckpointStep { get; set; }

    /// <summary>The worker host training it now or last ("machine:pid"), and since when.</summary>
    public string? Worker { get; set; }
    public DateTime? WorkerSince { get; set; }

    public bool IsFinished => Status.HasEnded();
    public IReadOnlyList<string> TagList => Tags.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}

/// <summary>
/// One value of one series at one step; (run, series, step) is unique, so history has no duplicates. NaN is stored as
/// NULL (SQLite has no NaN); infinities are stored as they are.
/// </summary>
public sealed class MetricPoint
{
    public Guid RunId { get; set; }
    public required string Series { get; set; }
    public long Step { get; set; }
    public double? Value { get; set; }

    public static double? Store(double value) => double.IsNaN(value) ? null : value;
}

/// <summary>A layer's channel x channel activation-correlation matrix at one step (float32, row-major).</summary>
public sealed class Heatmap
{
    public Guid RunId { get; set; }
    public required string Layer { get; set; }
    public long Step { get; set; }
    public int Size { get; set; }
    public required byte[] Data { get; set; }
}

public sealed class RunLog
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public long Step { get; set; }
    public DateTime Time { get; set; }
    public required string Message { get; set; }
}

/// <summary>A read-only link to one run or one comparison; the token is 256 random bits.</summary>
public sealed class ShareLink
{
    public required string Token { get; set; }
    /// <summary>The runs it shares, comma-separated; empty for a study's link.</summary>
    public required string RunIds { get; set; }
    public Guid? StudyId { get; set; }
    public string Owner { get; set; } = Ownership.DefaultOwner;
    public DateTime CreatedAt { get; set; }
    public DateTime? RevokedAt { get; set; }

    public IReadOnlyList<Guid> Runs => RunIds.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Guid.Parse).ToList();
}

public static class Ownership
{
    // Rows stored before accounts existed belong to this name; only admins may change them.
    public const string DefaultOwner = "owner";
}

/// <summary>
/// A named grid of runs: arms (each a run preset with overrides) x seeds, at one scale, queued together. The definition
/// is what was asked (to extend it with more seeds); Frozen is the results table and figures as they stood when the
/// last run ended (what a share link shows from then on; cleared if the study is extended).
/// </summary>
public sealed class Study
{
    public Guid Id { get; set; }
    public required string Name { get; set; }
    public string? Preset { get; set; }
    public required string Scale { get; set; }
    public string Owner { get; set; } = Ownership.DefaultOwner;
    public required string DefinitionJson { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? EndedAt { get; set; }
    public bool Cancelled { get; set; }
    public string? FrozenJson { get; set; }
}

/// <summary>
/// A personal API token for scripts and the CLI: only its SHA-256 is stored (the token is shown once), scoped to read
/// (the user reads as a viewer) or write (the user's own role); revoked tokens stay listed.
/// </summary>
public sealed class ApiToken
{
    public Guid Id { get; set; }
    public required string UserId { get; set; }
    public required string Name { get; set; }
    public required string Hash { get; set; }
    /// <summary>The token's first characters, to recognise it in the list.</summary>
    public required string Prefix { get; set; }
    public required string Scope { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? LastUsedAt { get; set; }
    public DateTime? RevokedAt { get; set; }
    /// <summary>After this the token is refused, as if revoked; null: it lasts until revoked.</summary>
    public DateTime? ExpiresAt { get; set; }
}

/// <summary>A one-time link that creates an account with a role (the first admin's is printed at start-up).</summary>
public sealed class Invitation
{
    public Guid Id { get; set; }
    public required string Hash { get; set; }
    public required string Role { get; set; }
    public string? CreatedBy { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime ExpiresAt { get; set; }
    public DateTime? UsedAt { get; set; }
    public string? UsedBy { get; set; }
}

/// <summary>
/// A live batch as a worker host persisted it (PostgreSQL only): web nodes, told by NOTIFY, read batches of a run past
/// the last id they relayed, so every viewer gets each batch once and in order, whichever machine trains the run.
/// </summary>
public sealed class LiveBatch
{
    public long Id { get; set; }
    public Guid RunId { get; set; }
    public required string Payload { get; set; }
    public DateTime CreatedAt { get; set; }
}
