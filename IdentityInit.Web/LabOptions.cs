namespace IdentityInit.Web;

/// <summary>The "IdentityInit" configuration section.</summary>
public sealed class LabOptions
{
    /// <summary>Where the SQLite file, checkpoints and datasets live by default.</summary>
    public string DataDir { get; set; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData),
        "identityinit");

    public string? CheckpointDir { get; set; }

    /// <summary>Dataset folder for the engine's catalog (default: IDENTITYINIT_DATA or DataDir/datasets).</summary>
    public string? DatasetDir { get; set; }

    /// <summary>Queues this process serves, comma-separated: cpu, cuda.</summary>
    public string Queues { get; set; } = "cpu";

    /// <summary>Training jobs at once per queue (default one per device).</summary>
    public Dictionary<string, int> Workers { get; set; } = new() { ["cpu"] = 1, ["cuda"] = 1 };

    /// <summary>The Hangfire dashboard answers only local requests unless this is true.</summary>
    public bool DashboardAllowRemote { get; set; }

    /// <summary>A run's training process is killed past this resident memory (MiB); null: no limit.</summary>
    public int? RunMemoryLimitMb { get; set; }

    /// <summary>
    /// While the database is away, the points a run produces wait in memory up to this many (about 100 bytes each); beyond
    /// it they go to files in the run's checkpoint folder (unstored/), stored first and deleted once the database is back.
    /// </summary>
    public int StreamMemoryPoints { get; set; } = 1_000_000;

    /// <summary>How long a cancelled run's process has to checkpoint and exit before it is killed.</summary>
    public int CancelGraceSeconds { get; set; } = 30;

    /// <summary>
    /// PostgreSQL: a run whose worker host died (no keep-alive) is fetched again by another worker after this long; it then
    /// resumes from its last stored checkpoint. The bound on "resumes elsewhere".
    /// </summary>
    public int RequeueAfterSeconds { get; set; } = 60;

    /// <summary>
    /// The largest model a queue accepts, by parameters and by the memory one training step needs (weights, gradients,
    /// momentum, activations at the batch size). A queue not named here gets <see cref="DefaultModelLimit"/>.
    /// </summary>
    public Dictionary<string, ModelLimit> ModelLimits { get; set; } = new() { ["cuda"] = new() { MaxMemoryMb = 128 * 1024 } };

    public static readonly ModelLimit DefaultModelLimit = new();

    public ModelLimit ModelLimitFor(string queue) =>
        ModelLimits.TryGetValue(queue, out var limit) ? limit
        : queue.StartsWith("cuda_", StringComparison.Ordinal) && ModelLimits.TryGetValue("cuda", out var cuda) ? cuda
        : DefaultModelLimit;

    /// <summary>Queued runs one user may have waiting at once; more are refused (the list and the workers stay usable).</summary>
    public int MaxQueuedRuns { get; set; } = 500;

    public IReadOnlyList<string> QueueList => Queues.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public string CheckpointRoot => CheckpointDir ?? Path.Combine(DataDir, "checkpoints");
    public string DatasetRoot => DatasetDir ?? Environment.GetEnvironmentVariable("IDENTITYINIT_DATA") ?? Path.Combine(DataDir, "datasets");
}

public sealed class ModelLimit
{
    public double MaxParameters { get; set; } = 500_000_000;
    public double MaxMemoryMb { get; set; } = 64 * 1024;
}
