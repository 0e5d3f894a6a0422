using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.AspNetCore.SignalR;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Runs;

/// <summary>
/// The one place a run's progress fans out: training jobs publish events here; as soon as something is pending (at most one round every
/// <see cref="FlushGap"/>) each run's pending batch is (a) persisted, then (b) delivered: pushed to the run's SignalR group and handed to
/// in-process subscribers (Blazor components). Persisting before pushing is what lets a viewer load history and then go live with no gap.
/// On PostgreSQL delivery goes through the database (<see cref="LiveRelay"/>): the batch is stored with a NOTIFY, and every web node,
/// whichever machine trains the run, delivers it to its own viewers.
/// </summary>
public sealed class RunStream(AppDb db, IHubContext<RunsHub, IRunClient> hub, Microsoft.Extensions.Options.IOptions<LabOptions> options,
    ILogger<RunStream> logger) : BackgroundService
{
    /// <summary>
    /// The shortest time between two rounds of flushes. An idle stream flushes the moment an event arrives (a point waits
    /// for its own write, not for a timer: a fixed 150 ms tick made the cross-node p95 153 ms); under load what arrives
    /// during a round is batched into the next, and the gap bounds the writes per second.
    /// </summary>
    public static readonly TimeSpan FlushGap = TimeSpan.FromMilliseconds(15);

    /// <summary>How often a batch the database refused is retried, and how often an idle stream looks for work anyway.</summary>
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(150);

    readonly System.Threading.Channels.Channel<bool> wake = System.Threading.Channels.Channel.CreateBounded<bool>(
        new System.Threading.Channels.BoundedChannelOptions(1) { FullMode = System.Threading.Channels.BoundedChannelFullMode.DropWrite });

    readonly ConcurrentDictionary<Guid, Pending> pending = new();
    readonly ConcurrentDictionary<Guid, ImmutableSubscribers> subscribers = new();

    sealed class Pending
    {
        public readonly Lock Gate = new();
        public readonly SemaphoreSlim Flushing = new(1, 1);
        public List<PointDto> Points = [];
        public List<HeatmapDto> Heatmaps = [];
        public List<LogDto> Logs = [];
        public RunProgress? Progress;          // the latest state; survives flushes
        public bool ProgressChanged;
        public string? RecordJson;
        public long? CheckpointStep;           // a checkpoint reported since the last flush
        public IReadOnlyList<string> Layers = [];
        public long Sequence;
        public DateTime WindowStart = DateTime.UtcNow;
        public long WindowStartStep;
        public bool Failing;                   // the last flush was refused: log once per outage, not every 150 ms
        public readonly Queue<RunBatch> Unpushed = new(); // stored, not yet pushed live (the database went away between)
        public readonly Queue<(string Path, int Count)> Spilled = new(); // points older than those in memory, oldest first
    }

    /// <summary>Where a run's points wait on disk while the database is away and memory holds no more.</summary>
    public string SpillFolder(Guid runId) => Path.Combine(options.Value.CheckpointRoot, runId.ToString("N"), "unstored");

    sealed record ImmutableSubscribers(IReadOnlyList<Func<RunBatch, Task>> Handlers);

    /// <summary>Called on the training thread for every engine event; only buffers.</summary>
    public void Publish(Guid runId, RunEvent e)
    {
        var p = pending.GetOrAdd(runId, _ => new Pending());
        lock (p.Gate)
        {
            switch (e)
            {
                case RunStarted s:
                    p.Layers = s.Layers;
                    p.WindowStart = DateTime.UtcNow;
                    p.WindowStartStep = s.StartStep;
                    p.Progress = new RunProgress(RunStatus.Running, s.StartStep, s.TotalSteps, null, null);
                    p.ProgressChanged = true;
                    p.RecordJson = JsonSerializer.Serialize(s.Record, EngineJson.Options);
                    break;
                case StepMetrics m when p.Progress is { } progress:
                    var done = m.Step - p.WindowStartStep;
                    var eta = done > 0 ? (DateTime.UtcNow - p.WindowStart).TotalSeconds / done * (progress.TotalSteps - m.Step)
                        : (double?)null;
                    p.Progress = progress with { Step = m.Step, EtaSeconds = eta };
                    p.ProgressChanged = true;
                    p.Points.Add(new PointDto(Series.Time, m.Step, (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds));
                    break;
                case CorrelationSnapshot c:
                    p.Heatmaps.AddRange(c.Activations.Select(a => new HeatmapDto(a.Layer, c.Step, a.Size, a.Matrix)));
                    break;
                case LogLine l:
                    p.Logs.Add(new LogDto(l.Step, DateTime.UtcNow, ErrorText.ForDisplay(l.Message)));
                    break;
                case SymmetryBroken b:
                    p.Logs.Add(new LogDto(b.Step, DateTime.UtcNow, $"symmetry broke in {b.Layer} at step {b.Step} (spread {b.Spread:G3})"));
                    break;
                case CheckpointSaved s:
                    p.Logs.Add(new LogDto(s.Step, DateTime.UtcNow, $"checkpoint at step {s.Step}"));
                    p.CheckpointStep = s.Step;
                    break;
            }
            p.Points.AddRange(Series.Of(e, p.Layers));
        }
        wake.Writer.TryWrite(true);
    }

    /// <summary>Sets the status viewers see next flush (the job calls this for terminal states).</summary>
    public void PublishStatus(Guid runId, RunProgress progress)
    {
        var p = pending.GetOrAdd(runId, _ => new Pending());
        lock (p.Gate) (p.Progress, p.ProgressChanged) = (progress, true);
        wake.Writer.TryWrite(true);
    }

    /// <summary>In-process live feed (Blazor components): handlers run after the batch is persisted.</summary>
    public IDisposable Subscribe(Guid runId, Func<RunBatch, Task> handler)
    {
        subscribers.AddOrUpdate(runId, _ => new([handler]), (_, s) => new([.. s.Handlers, handler]));
        return new Unsubscriber(() =>
            subscribers.AddOrUpdate(runId, _ => new([]), (_, s) => new([.. s.Handlers.Where(h => h != handler)])));
    }

    sealed class Unsubscriber(Action action) : IDisposable
    {
        int disposed;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref disposed, 1) == 0) action();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                using (var idle = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
                {
                    idle.CancelAfter(FlushInterval);
                    try
                    {
                        await wake.Reader.ReadAsync(idle.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                    {
                        // nothing arrived: look anyway (a refused batch waits to be retried)
                    }
                }
                var round = System.Diagnostics.Stopwatch.GetTimestamp();
                var stored = true;
                // PostgreSQL takes the runs' writes side by side (20 streaming runs one after another made a round ~100 ms);
                // SQLite has one writer, so there they go one by one.
                if (db.IsPostgres) stored = (await Task.WhenAll(pending.Keys.Select(runId => RoundAsync(runId, stoppingToken))))
                    .All(ok => ok);
                else
                    foreach (var runId in pending.Keys)
                        stored &= await RoundAsync(runId, stoppingToken);
                // A refused batch is retried at the flush interval, not in a tight loop against an absent database.
                var rest = (stored ? FlushGap : FlushInterval) - System.Diagnostics.Stopwatch.GetElapsedTime(round);
                if (rest > TimeSpan.Zero) await Task.Delay(rest, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // shutting down; a training job flushes its own last batch
        }
    }

    /// <summary>One run's flush in a round: a fault of one run (a full disk while spilling) is logged, never the host's end.</summary>
    async Task<bool> RoundAsync(Guid runId, CancellationToken stoppingToken)
    {
        try
        {
            return await FlushAsync(runId, stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogError(e, "run {RunId}: flushing failed; retrying", runId);
            return false;
        }
    }

    /// <summary>
    /// Persists and pushes whatever is pending for a run, now; false when the database refused it. Flushes of one run never
    /// overlap. A refused batch is not dropped: what was not stored goes back ahead of what arrived since, its sequence
    /// number is reused, and the next flush retries it in order, so a database that blinks loses no point and a viewer
    /// still gets every sequence once.
    /// </summary>
    public async Task<bool> FlushAsync(Guid runId, CancellationToken cancellationToken = default)
    {
        if (!pending.TryGetValue(runId, out var p)) return true;
        await p.Flushing.WaitAsync(cancellationToken);
        try
        {
            return await FlushLockedAsync(runId, p, cancellationToken);
        }
        finally
        {
            p.Flushing.Release();
        }
    }

    async Task<bool> FlushLockedAsync(Guid runId, Pending p, CancellationToken cancellationToken)
    {
        if (!await PushAsync(p, cancellationToken)) return false; // viewers get every sequence, in order, before a new one
        RunBatch batch;
        string? record = null, spill = null;
        long? checkpoint = null;
        lock (p.Gate)
        {
            while (p.Spilled.TryPeek(out var gone) && !File.Exists(gone.Path)) p.Spilled.Dequeue(); // removed by hand or by DropSpilled
            if (p.Spilled.TryPeek(out var oldest)) // older than anything in memory: stored first, on its own
            {
                spill = oldest.Path;
                batch = new RunBatch(runId, ++p.Sequence,
                    JsonSerializer.Deserialize<List<PointDto>>(File.ReadAllBytes(oldest.Path), EngineJson.Options)!, [], [], null);
            }
            else
            {
                if (p.Points.Count == 0 && p.Heatmaps.Count == 0 && p.Logs.Count == 0 && !p.ProgressChanged) return true;
                batch = new RunBatch(runId, ++p.Sequence, p.Points, p.Heatmaps, p.Logs, p.ProgressChanged ? p.Progress : null);
                (p.Points, p.Heatmaps, p.Logs, p.ProgressChanged, record, checkpoint) = ([], [], [], false, p.RecordJson, p.CheckpointStep);
                (p.RecordJson, p.CheckpointStep) = (null, null);
            }
        }
        var stored = new Stored();
        try
        {
            await PersistAsync(batch, record, checkpoint, stored, cancellationToken);
        }
        catch (Exception e)
        {
            lock (p.Gate)
            {
                if (spill is null)
                {
                    if (!stored.Points) p.Points = [.. batch.Points, .. p.Points];
                    if (!stored.Rows) (p.Heatmaps, p.Logs) = ([.. batch.Heatmaps, .. p.Heatmaps], [.. batch.Logs, .. p.Logs]);
                    p.ProgressChanged |= batch.Progress is not null; // p.Progress is the newest state either way
                    p.RecordJson ??= record;
                    // a newer checkpoint, should one have come meanwhile, is stored after this batch anyway
                    p.CheckpointStep ??= checkpoint;
                } // a spilled batch stays in its file: the next flush reads it again
                p.Sequence--;
                if (p.Points.Count > options.Value.StreamMemoryPoints) Spill(runId, p);
            }
            if (e is OperationCanceledException) throw;
            if (!p.Failing) logger.LogError(e, "run {RunId}: the database refused a batch; keeping it and retrying every flush", runId);
            p.Failing = true;
            return false;
        }
        if (spill is not null) lock (p.Gate) Dequeue(p);
        if (p.Failing) logger.LogWarning("run {RunId}: the database is back; the points kept meanwhile are stored", runId);
        p.Failing = false;
        p.Unpushed.Enqueue(batch);
        await PushAsync(p, cancellationToken);
        return true; // stored; a batch not pushed yet goes out first on the next flush
    }

    /// <summary>Pushes the stored batches not yet pushed live, oldest first; false when one could not be (it stays queued).</summary>
    async Task<bool> PushAsync(Pending p, CancellationToken cancellationToken)
    {
        while (p.Unpushed.TryPeek(out var batch))
        {
            try
            {
                if (db.IsPostgres) await LiveRelay.PublishAsync(db, batch, cancellationToken);
                else await DeliverAsync(batch);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "run {RunId}: batch {Sequence} is stored but not pushed live yet; retrying before the next",
                    batch.RunId, batch.Sequence);
                return false;
            }
            p.Unpushed.Dequeue();
        }
        return true;
    }

    /// <summary>
    /// Flushes until everything pending is stored, retrying while the database is away, for at most <paramref name="patience"/>;
    /// false when points are still unstored then (the caller must not report the run as complete).
    /// </summary>
    public async Task<bool> FlushAllAsync(Guid runId, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            // One flush stores one batch: the oldest spill file, else what memory holds. After an outage that spilled,
            // a flush that succeeded has not stored everything (the CI caught a run "Completed" with 170-480 unstored).
            if (await FlushAsync(runId))
            {
                if (!HasPending(runId)) return true;
                continue;
            }
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    bool HasPending(Guid runId)
    {
        if (!pending.TryGetValue(runId, out var p)) return false;
        lock (p.Gate) return p.Points.Count > 0 || p.Heatmaps.Count > 0 || p.Logs.Count > 0 || p.ProgressChanged || p.Spilled.Count > 0
                || p.Unpushed.Count > 0;
    }

    /// <summary>Unstored points of a run (kept through a database outage, in memory or on disk), for the run's final status.</summary>
    public int Unstored(Guid runId)
    {
        if (!pending.TryGetValue(runId, out var p)) return 0;
        lock (p.Gate) return p.Points.Count + p.Spilled.Sum(s => s.Count);
    }

    /// <summary>Moves the points in memory to a file behind those spilled before (under the run's lock).</summary>
    void Spill(Guid runId, Pending p)
    {
        var folder = SpillFolder(runId);
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, $"{p.Sequence + 1:D12}-{Guid.NewGuid():N}.json");
        File.WriteAllBytes(path, JsonSerializer.SerializeToUtf8Bytes(p.Points, EngineJson.Options));
        if (p.Spilled.Count == 0) logger.LogWarning("run {RunId}: over {Points} points wait for the database; the rest go to {Folder}",
            runId, options.Value.StreamMemoryPoints, folder);
        p.Spilled.Enqueue((path, p.Points.Count));
        p.Points = [];
    }

    /// <summary>
    /// Forgets the points a run spilled to disk, and any file a process that died left there: a run that starts again
    /// replays every step past its stored checkpoint, and the checkpoint is stored only once all before it are.
    /// </summary>
    public void DropSpilled(Guid runId)
    {
        if (pending.TryGetValue(runId, out var p)) lock (p.Gate) p.Spilled.Clear();
        if (Directory.Exists(SpillFolder(runId))) Directory.Delete(SpillFolder(runId), recursive: true);
    }

    static void Dequeue(Pending p)
    {
        if (p.Spilled.TryDequeue(out var spilled)) File.Delete(spilled.Path); // DropSpilled may have emptied the queue meanwhile
    }

    /// <summary>Which parts of a batch reached the database before it failed (each part is written at most once).</summary>
    sealed class Stored
    {
        public bool Points, Rows;
    }

    /// <summary>Pushes a stored batch to this node's viewers: the run's SignalR group, then in-process subscribers.</summary>
    public async Task DeliverAsync(RunBatch batch)
    {
        await hub.Clients.Group(RunsHub.Group(batch.RunId)).Batch(batch);
        // Not awaited: a slow or closing Blazor circuit must not hold up the stream or the training job. Each circuit's
        // dispatcher runs what it is given in order, so a subscriber still sees batches in sequence.
        if (subscribers.TryGetValue(batch.RunId, out var subs))
            foreach (var handler in subs.Handlers)
                _ = handler(batch).ContinueWith(t => logger.LogWarning(t.Exception, "a subscriber of run {RunId} failed", batch.RunId),
                    CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Drops the buffer of a run that has ended (after its last flush).</summary>
    public void Forget(Guid runId) => pending.TryRemove(runId, out _);


    async Task PersistAsync(RunBatch batch, string? record, long? checkpoint, Stored stored, CancellationToken cancellationToken)
    {
        // (series, step) is the key: should an event repeat a point, the later value wins rather than failing the batch.
        var points = batch.Points.GroupBy(p => (p.Series, p.Step)).Select(g => g.Last())
            .Select(p => new MetricPoint { RunId = batch.RunId, Series = p.Series, Step = p.Step, Value = MetricPoint.Store(p.Value) })
                .ToList();
        await db.WritePointsAsync(points, cancellationToken); // one COPY or one SaveChanges: all or nothing
        stored.Points = true;
        if (batch.Heatmaps.Count == 0 && batch.Logs.Count == 0 && batch.Progress is null && record is null && checkpoint is null) return;
        await using var context = db.Create();
        context.Heatmaps.AddRange(batch.Heatmaps.Select(h => new Heatmap
        {
            RunId = batch.RunId, Layer = h.Layer, Step = h.Step, Size = h.Size, Data = Heatmaps.ToBytes(h.Data),
        }));
        context.Logs.AddRange(batch.Logs.Select(l =>
            new RunLog { RunId = batch.RunId, Step = l.Step, Time = l.Time, Message = l.Message }));
        await context.SaveChangesAsync(cancellationToken);
        stored.Rows = true; // the updates below are idempotent: a retry may repeat them
        if (batch.Progress is { } progress)
            await context.Runs.Where(r => r.Id == batch.RunId).ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Step, progress.Step).SetProperty(r => r.TotalSteps, progress.TotalSteps), cancellationToken);
        if (checkpoint is not null) // only now are all the events before it stored: a resumed run may start there
            await context.Runs.Where(r => r.Id == batch.RunId)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.CheckpointStep, checkpoint), cancellationToken);
        if (record is not null)
            await context.Runs.Where(r => r.Id == batch.RunId)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.RecordJson, record), cancellationToken);
    }
}

public static class Heatmaps
{
    public static byte[] ToBytes(float[] data)
    {
        var bytes = new byte[data.Length * sizeof(float)];
        Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    public static float[] FromBytes(byte[] bytes)
    {
        var data = new float[bytes.Length / sizeof(float)];
        Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
        return data;
    }
}
