using System.Text.Json;
using System.Text.Json.Nodes;
using Hangfire;
using Hangfire.States;
using IdentityInit.Training;
using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Symmetry;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>A request to queue one run, or a sweep of runs over seeds or over the values of one field.</summary>
public sealed record CreateRunRequest(
    string? Name = null, string? Preset = null, JsonObject? Config = null, IReadOnlyList<string>? Tags = null, SweepRequest? Sweep = null);

/// <summary>Creating these runs would pass the owner's limit of queued runs; nothing was stored or queued.</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>The viewer's role does not allow this change (a viewer queues nothing; a researcher changes only their own runs).</summary>
public sealed class ForbiddenException(string message) : Exception(message);

/// <summary>An edit of a stored run: each field given is set, each null is left.</summary>
public sealed record RunEdit(string? Name = null, IReadOnlyList<string>? Tags = null, string? Notes = null, bool? Archived = null);

public sealed record SweepRequest(IReadOnlyList<long>? Seeds = null, string? Field = null, IReadOnlyList<JsonNode?>? Values = null);

/// <summary>Field-keyed problems (as in RFC 7807 validation problem details); empty means valid.</summary>
public sealed class ValidationErrors : Dictionary<string, string[]>
{
    public void Add(string field, string message) => this[field] = TryGetValue(field, out var m) ? [.. m, message] : [message];
}

/// <summary>Creating, queueing, cancelling and cloning runs: one place for the API and the pages.</summary>
public sealed class RunService(AppDb db, IBackgroundJobClient jobs, RunCancellation cancellation, Workers workers,
    IOptions<LabOptions> options,
    WeightImports imports, RunQueries queries)
{
    public const int MaxSweep = 64;
    public const int MaxName = 200;

    /// <summary>Expands a request into validated configs, or returns why not; nothing is stored or queued.</summary>
    public (List<ExperimentConfig> Configs, ValidationErrors Errors) Plan(CreateRunRequest request)
    {
        var errors = new ValidationErrors();
        var baseConfig = new ExperimentConfig();
        if (request.Preset is { } presetName)
        {
            if (Presets.Find(presetName) is { } preset) baseConfig = preset.Config;
            else errors.Add("preset", $"unknown preset '{IdentityInit.Training.ConfigValidation.Shown(presetName)}'");
        }
        var config = Overlay(baseConfig, request.Config, "config", errors);
        // The defaults are a paper-scale CIFAR-10 run: an empty request must not queue 300 epochs and a download.
        bool Given(string field) => request.Config?.Any(kv => string.Equals(kv.Key, field, StringComparison.OrdinalIgnoreCase)) == true;
        if (request.Preset is null && !(Given("dataset") && Given("epochs")))
            errors.Add("preset", "give a preset, or a config with at least dataset and epochs");
        if (request.Name is { Length: > MaxName }) errors.Add("name", $"at most {MaxName} characters, got {request.Name.Length}");
        if (ConfigValidation.HasControl(request.Name)) errors.Add("name", NoControl);
        if (config is null || errors.Count > 0) return ([], errors);
        if (!string.IsNullOrWhiteSpace(request.Name)) config = config with { Name = request.Name.Trim() };

        var configs = new List<ExperimentConfig> { config };
        if (request.Sweep is { } sweep)
        {
            if (sweep.Seeds is { Count: > 0 } seeds && sweep.Field is not null)
                errors.Add("sweep", "sweep over seeds or over one field, not both");
            else if (sweep.Seeds is { Count: > 0 } s)
                configs = [.. s.Select(seed => config with { Seed = seed, Name = $"{config.Name} seed {seed}" })];
            else if (sweep.Field is { } field)
            {
                if (ConfigOverlay.FieldName(field) is null) errors.Add("sweep.field", $"unknown field '{field}'");
                else if (sweep.Values is not { Count: > 0 }) errors.Add("sweep.values", "give at least one value");
                else
                {
                    configs = [];
                    for (var i = 0; i < sweep.Values.Count; i++)
                    {
                        var swept = Overlay(config, new JsonObject { [field] = sweep.Values[i]?.DeepClone() }, $"sweep.values[{i}]",
                            errors);
                        if (swept is not null) configs.Add(swept with
                        {
                            Name = $"{config.Name} " +
                            $"{field}={sweep.Values[i]?.ToJsonString().Trim('"')}"
                        });
                    }
                }
            }
            else errors.Add("sweep", "give seeds, or a field and its values");
            if (configs.Count > MaxSweep) errors.Add("sweep", $"at most {MaxSweep} runs per sweep, got {configs.Count}");
        }
        foreach (var c in configs)
        {
            var foreignFile = c.InitFile is { } file && imports.PathOf(file) is null;
            if (foreignFile)
                errors.Add("config.initFile",
                    "must be the id of weights staged by POST /api/weights (an upload) or POST /api/runs/{id}/weights/stage " +
                                              "(a run's checkpoint), as their answer's initFile; no server file is named in a request");
            foreach (var error in ConfigValidation.Validate(imports.Resolved(c)))
                if (error.Field != "initFile") errors.Add("config." + error.Field, error.Message);
                else if (!foreignFile) // said once above for a foreign file (no existence oracle); the engine's message speaks of paths
                    errors.Add("config.initFile",
                        "init 'file' needs staged weights: upload a .safetensors file (POST /api/weights) or stage " +
                                                  "a run's checkpoint (POST /api/runs/{id}/weights/stage), and give their initFile");
            var catalog = new DatasetCatalog(options.Value.DatasetRoot);
            // Only a dataset the lab knows can be missing (an unknown name is refused above, quoted short): the message
            // names where it was looked for, and a 5 KB name in it made a study's answer 31 KB (the corpus found it).
            if (DatasetCatalog.Names.Contains(c.Dataset) && c.Dataset != "synthetic" && !DatasetCatalog.Downloadable(c.Dataset)
                && catalog.Find(c.Dataset) is null)
                errors.Add("config.dataset", catalog.Missing(c.Dataset, null));
            if (workers.QueueProblem(QueueOf(c.Device)) is { } problem) errors.Add("config.device", problem);
            if (errors.Count == 0 && SizeProblem(c) is { } size) errors.Add(size.Field, size.Message); // sized only once the rest is valid
            if (errors.Count == 0 && c.Init == Initializer.FromFile && c.InitFile is not null && imports.Misfit(c) is { } misfit)
                errors.Add("config.initFile", $"the staged weights do not fit this model: {misfit}");
        }
        CheckTags(request.Tags ?? [], errors);
        return (errors.Count == 0 ? configs : [], errors);
    }

    /// <summary>The engine's overlay (the CLI's --set uses the same), with errors keyed "prefix.field".</summary>
    public static ExperimentConfig? Overlay(ExperimentConfig config, JsonObject? overrides, string prefix, ValidationErrors errors)
    {
        if (overrides is null) return config;
        var problems = new List<ConfigError>();
        var result = ConfigOverlay.Apply(config, overrides, problems);
        foreach (var p in problems) errors.Add($"{prefix}.{p.Field}", p.Message);
        return result;
    }

    /// <summary>
    /// The queue a device's runs wait in: <c>cpu</c>; <c>cuda</c> (any GPU a worker serving it has); <c>cuda_N</c> for
    /// <c>cuda:N</c>, served by a host that owns GPU N (IdentityInit:Queues=cuda_N).
    /// </summary>
    public static string QueueOf(string device) => device switch
    {
        _ when device.StartsWith("cuda:", StringComparison.Ordinal) => "cuda_" + device["cuda:".Length..],
        _ when device.StartsWith("cuda", StringComparison.Ordinal) => "cuda",
        _ => "cpu",
    };

    /// <summary>Stores and queues the planned runs (a sweep shares a group id).</summary>
    /// <param name="study">the study these runs are cells of: its id and each config's arm (runs of one arm form one group)</param>
    /// <summary>The tag of the runs <see cref="QueuePairAsync"/> queues.</summary>
    public const string PairTag = "det-pair";

    /// <summary>
    /// A run again as a deterministic and a non-deterministic twin (metrics every step; on CPU the non-deterministic one
    /// gets rounding jitter, the CPU's stand-in for GPU non-determinism): both queued, or neither with the reason.
    /// </summary>
    public async Task<(IReadOnlyList<Guid> Ids, string? Problem)> QueuePairAsync(Guid runId, Caller by)
    {
        if (await queries.GetAsync(runId) is not { } run) return ([], $"run {runId} does not exist");
        var config = ConfigOverlay.FromJson(run.ConfigJson, "run config") with { MetricsEvery = 1 };
        var cpu = config.Device == "cpu";
        ExperimentConfig[] pair =
        [
            config with { Name = run.Name + " · deterministic", Deterministic = true, RoundingJitter = 0 },
            config with { Name = run.Name + " · non-deterministic", Deterministic = false, RoundingJitter = cpu ? 1 : 0 },
        ];
        var configs = new List<ExperimentConfig>();
        foreach (var c in pair)
        {
            var (planned, errors) = Plan(new CreateRunRequest(c.Name, null,
                JsonSerializer.SerializeToNode(c, EngineJson.Options)!.AsObject(), [PairTag]));
            if (errors.Count > 0) return ([], string.Join("; ", errors.Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
            configs.AddRange(planned);
        }
        try
        {
            // One call: the queue limit counts both, so a nearly full queue cannot leave half a pair queued.
            var runs = await CreateAsync(new CreateRunRequest(run.Name + " pair", null, null, [PairTag]), configs, by, grouped: false);
            return ([.. runs.Select(r => r.Id)], null);
        }
        catch (QueueFullException e)
        {
            return ([], e.Message);
        }
    }

    /// <param name="grouped">Several configs form a group (a seed group or a sweep, drawn as one band); a pair does not.</param>
    public async Task<List<Run>> CreateAsync(CreateRunRequest request, IReadOnlyList<ExperimentConfig> configs, Caller by,
        (Guid Id, string Name, IReadOnlyList<string> Arms)? study = null, bool grouped = true)
    {
        if (!by.CanQueue) throw new ForbiddenException($"{by.Name ?? "a signed-out visitor"} is a {by.Role ?? "guest"}: only researchers " +
            "and admins queue runs");
        var groupId = grouped && configs.Count > 1 ? Guid.NewGuid() : (Guid?)null;
        var now = DateTime.UtcNow;
        var runs = configs.Select(c => new Run
        {
            Id = Guid.NewGuid(), Name = c.Name, Preset = c.Preset, ConfigJson = ConfigOverlay.ToJson(c),
            Architecture = c.Architecture,
            Init = c.Architecture == Architectures.LeakyNet ? c.LeakyInit : c.Architecture == Architectures.Toy
                ? $"K={c.ToyUnique}/{c.ToyHidden}" : c.Init,
            Breakers = string.Join(", ", SymmetryBreakers.Describe(c)), Dataset = c.Dataset, Queue = QueueOf(c.Device), Seed = c.Seed,
            Status = RunStatus.Queued, CreatedAt = now, Owner = by.Name!, Tags = string.Join(',', request.Tags ?? []), GroupId = groupId,
            GroupLabel = groupId is null ? null : request.Sweep?.Field is { } f ? $"sweep over {f}" : "seed group",
        }).ToList();
        if (study is { } placement)
            for (var i = 0; i < runs.Count; i++)
            {
                var arm = placement.Arms[i];
                (runs[i].StudyId, runs[i].Arm) = (placement.Id, arm);
                // One group per arm: the compare page draws an arm's seeds as one band.
                runs[i].GroupId =
                    new Guid(System.Security.Cryptography.MD5.HashData(System.Text.Encoding.UTF8.GetBytes($"{placement.Id}/{arm}")));
                runs[i].GroupLabel = $"{placement.Name}: {arm}";
            }
        await using var context = db.Create();
        var waiting = await context.Runs.CountAsync(r => r.Owner == by.Name && r.Status == RunStatus.Queued);
        if (waiting + runs.Count > options.Value.MaxQueuedRuns)
            throw new QueueFullException($"{by.Name} has {waiting} runs queued already and at most {options.Value.MaxQueuedRuns} may " +
                "wait at once; " +
                                         $"these {runs.Count} would make {waiting + runs.Count}. Wait for some to start, or cancel some.");
        context.Runs.AddRange(runs);
        await context.SaveChangesAsync();
        foreach (var run in runs) await EnqueueAsync(run.Id, run.Queue);
        return runs;
    }

    public async Task EnqueueAsync(Guid runId, string queue)
    {
        var jobId = jobs.Create<TrainingJob>(j => j.Run(runId, JobCancellationToken.Null), new EnqueuedState(queue));
        await using var context = db.Create();
        await context.Runs.Where(r => r.Id == runId).ExecuteUpdateAsync(s => s.SetProperty(r => r.JobId, jobId));
    }

    /// <summary>Stops a queued run at once and a running one within one step; false when there is nothing to cancel.</summary>
    public async Task<bool> CancelAsync(Guid runId, Caller by)
    {
        await using var context = db.Create();
        var run = await context.Runs.FirstOrDefaultAsync(r => r.Id == runId);
        if (run is null || run.IsFinished) return false;
        Authorize(run, by, "cancel");
        run.CancelRequested = true;
        if (run.Status == RunStatus.Queued)
        {
            run.Status = RunStatus.Cancelled;
            run.FinishedAt = DateTime.UtcNow;
            if (run.JobId is { } jobId) jobs.Delete(jobId);
        }
        await context.SaveChangesAsync();
        cancellation.Cancel(runId);
        return true;
    }

    /// <summary>The request that recreates a run, to queue as is or to edit first.</summary>
    /// <summary>A model over its queue's limits, named by the field that makes it big (before anything is built).</summary>
    (string Field, string Message)? SizeProblem(ExperimentConfig c)
    {
        var queue = QueueOf(c.Device);
        var limit = options.Value.ModelLimitFor(queue);
        var size = ModelSize.Of(c);
        var field = c.Architecture == Architectures.Toy ? "config.toyHidden" : c.Widen > 10 ? "config.widen" : "config.depth";
        if (size.Parameters > limit.MaxParameters)
            return (field, $"the model would have {size.Parameters:G3} parameters; the '{queue}' queue takes at most " +
                $"{limit.MaxParameters:G3}");
        var mb = size.TrainingBytes / (1024 * 1024);
        if (mb > limit.MaxMemoryMb)
            return (size.Parameters * 12 / (1024 * 1024) < limit.MaxMemoryMb ? "config.batchSize" : field, // the activations make it big
                $"a training step would need about {mb:N0} MiB (weights, gradients, momentum and activations at batch {c.BatchSize}); " +
                    $"the '{queue}' queue allows {limit.MaxMemoryMb:N0} MiB");
        return null;
    }

    public const int MaxNotes = 20_000;
    public const int MaxTags = 20;

    /// <summary>Checks a tag list: 1-40 characters each, no commas, at most <see cref="MaxTags"/>.</summary>
    static void CheckTags(IReadOnlyList<string> tags, ValidationErrors errors)
    {
        if (tags.Count > MaxTags) errors.Add("tags", $"at most {MaxTags} tags, got {tags.Count}");
        foreach (var tag in tags)
            if (string.IsNullOrWhiteSpace(tag) || tag.Contains(',') || tag.Length > 40 || ConfigValidation.HasControl(tag))
                errors.Add("tags", $"'{ConfigValidation.Shown(tag)}': a tag is 1-40 characters without commas or control characters");
    }

    /// <summary>The message for a name or label with a newline, tab or other control character.</summary>
    public const string NoControl = "must not contain control characters (newlines, tabs)";

    /// <summary>Renames, retags, annotates or (un)archives a run; null leaves a field as it is. Errors name the field.</summary>
    public async Task<ValidationErrors> UpdateAsync(Guid runId, RunEdit edit, Caller by)
    {
        var errors = new ValidationErrors();
        if (edit.Name is { } name && (string.IsNullOrWhiteSpace(name) || name.Length > MaxName))
            errors.Add("name", $"a name is 1-{MaxName} characters, got {name.Length}");
        else if (ConfigValidation.HasControl(edit.Name)) errors.Add("name", NoControl);
        if (edit.Notes is { Length: > MaxNotes } notes) errors.Add("notes", $"at most {MaxNotes} characters, got {notes.Length}");
        if (edit.Tags is { } tags) CheckTags(tags, errors);
        if (errors.Count > 0) return errors;
        await using var context = db.Create();
        var run = await context.Runs.FirstAsync(r => r.Id == runId);
        Authorize(run, by, "edit");
        if (edit.Name is { } n) run.Name = n.Trim();
        if (edit.Notes is { } text) run.Notes = text;
        if (edit.Tags is { } t) run.Tags = string.Join(',', t.Select(x => x.Trim()));
        if (edit.Archived is { } archived) run.Archived = archived;
        await context.SaveChangesAsync();
        return errors;
    }

    /// <summary>Deletes an ended run with everything stored for it: series, heatmaps, logs, checkpoints.</summary>
    public async Task DeleteAsync(Guid runId, Caller by)
    {
        var run = await queries.GetAsync(runId) ?? throw new KeyNotFoundException($"run {runId} does not exist");
        Authorize(run, by, "delete");
        if (!run.IsFinished) throw new InvalidOperationException($"run {run.Id} is {run.Status}: cancel it first");
        await using (var context = db.Create())
        {
            await using var transaction = await context.Database.BeginTransactionAsync();
            await context.Points.Where(p => p.RunId == run.Id).ExecuteDeleteAsync();
            await context.Heatmaps.Where(h => h.RunId == run.Id).ExecuteDeleteAsync();
            await context.Logs.Where(l => l.RunId == run.Id).ExecuteDeleteAsync();
            await context.LiveBatches.Where(b => b.RunId == run.Id).ExecuteDeleteAsync();
            await context.Runs.Where(r => r.Id == run.Id).ExecuteDeleteAsync();
            await transaction.CommitAsync();
        }
        var checkpoints = Path.Combine(options.Value.CheckpointRoot, run.Id.ToString("N"));
        if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
    }

    /// <summary>The one rule for changing a run: its owner while they may write, or an admin.</summary>
    public static void Authorize(Run run, Caller by, string action)
    {
        if (!by.CanChange(run.Owner))
            throw new ForbiddenException($"run {run.Id} belongs to {run.Owner}: only its owner or an admin may {action} it" +
                                         (by.CanQueue ? "" : $" ({by.Name ?? "you"} can only read)"));
    }

    public static CreateRunRequest CloneRequest(RunDto run) =>
        new(run.Name + " (clone)", null, JsonNode.Parse(run.Config.GetRawText())!.AsObject(), [.. run.Tags]);
}

/// <summary>In-process cancellation of running jobs; the job also polls the database flag (for other processes).</summary>
public sealed class RunCancellation
{
    readonly Dictionary<Guid, CancellationTokenSource> running = [];
    readonly Lock gate = new();

    /// <summary>
    /// Registers a run as training in this process; false when it already is (its job executing a second time, e.g.
    /// fetched again after the job storage blinked): the second execution must not start another trainer.
    /// </summary>
    public bool TryRegister(Guid runId, CancellationToken linked, out CancellationToken token)
    {
        lock (gate)
        {
            token = default;
            if (running.ContainsKey(runId)) return false;
            var source = CancellationTokenSource.CreateLinkedTokenSource(linked);
            running[runId] = source;
            token = source.Token;
            return true;
        }
    }

    public void Unregister(Guid runId)
    {
        lock (gate)
            if (running.Remove(runId, out var source)) source.Dispose();
    }

    public void Cancel(Guid runId)
    {
        lock (gate)
            if (running.TryGetValue(runId, out var source)) source.Cancel();
    }
}
