using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityInit.Training;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Studies;

/// <summary>A study to create: a preset's arms, or arms of your own; seeds 1..Seeds; Config overrides every run. Vary adds
/// one arm per value of one config field (on the run preset it names), beside any arms given (baselines, e.g. He).</summary>
public sealed record CreateStudyRequest(
    string? Name = null, string? Preset = null, string? Scale = null, int? Seeds = null, IReadOnlyList<StudyArm>? Arms = null,
    JsonObject? Config = null, string? Device = null, VaryRequest? Vary = null);

/// <summary>One config field over numeric values, each an arm "field = value" on <paramref name="Preset"/> (a run preset).</summary>
public sealed record VaryRequest(string Field, IReadOnlyList<JsonNode?> Values, string? Preset = null);

/// <summary>What a study was asked to be (stored as its definition): enough to add seeds later.</summary>
public sealed record StudyDefinition(IReadOnlyList<StudyArm> Arms, IReadOnlyList<long> Seeds, JsonObject? Config, string? Device,
    string? SweepAxis);

public sealed record StudySummary(Guid Id, string Name, string? Preset, string Scale, string Owner, DateTime CreatedAt, DateTime? EndedAt,
    bool Cancelled, int Runs, int Finished, int Running);

/// <summary>A study as the API and the pages show it: what it is, what was asked, its results and its runs.</summary>
/// <param name="ScaleCaveat">what the study's scale cannot show of the paper's claims (the preset's CPU caveat), if anything</param>
public sealed record StudyDto(StudySummary Summary, StudyDefinition Definition, string? Description, StudyResults Results,
    IReadOnlyList<StudyRunDto> Runs, string? ScaleCaveat);

/// <summary>One run of a study, in the results table's order (arm by arm, seed by seed).</summary>
public sealed record StudyRunDto(Guid Id, string Arm, long Seed, RunStatus Status, long Step, long TotalSteps, string? Worker,
    double? FinalTestAccuracy, string? Error);

/// <summary>
/// Studies, one place for the API and the pages: create (queues arms x seeds as ordinary runs that carry the study and
/// arm), extend with more seeds, cancel as a whole, and the results table, computed from the stored runs on each call
/// and frozen once every run has ended.
/// </summary>
public sealed class StudyService(AppDb db, RunService runs)
{
    public const int MaxArms = 32;
    public const int MaxSeeds = 20;
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<(Study? Study, ValidationErrors Errors)> CreateAsync(CreateStudyRequest request, Caller by)
    {
        var errors = new ValidationErrors();
        var preset = request.Preset is null ? null : StudyPresets.Find(request.Preset);
        if (request.Preset is not null && preset is null)
            errors.Add("preset",
                $"unknown study preset '{request.Preset}' (one of {string.Join(", ", StudyPresets.All.Select(p => p.Name))})");
        if (request.Preset is not null && request.Arms is not null) errors.Add("arms", "give a preset or arms, not both");
        if (request.Preset is null && request.Arms is not { Count: > 0 } && request.Vary is null)
            errors.Add("arms", "give a study preset, at least one arm, or a field to vary");
        var scale = request.Scale ?? "cpu";
        if (scale is not ("cpu" or "paper")) errors.Add("scale", $"'{scale}' is not cpu or paper");
        var seedCount = request.Seeds ?? preset?.Seeds ?? 3;
        if (seedCount is < 1 or > MaxSeeds) errors.Add("seeds", $"from 1 to {MaxSeeds} seeds, got {seedCount}");
        if (string.IsNullOrWhiteSpace(request.Name) && preset is null) errors.Add("name", "name the study");
        if (request.Name is { Length: > RunService.MaxName }) errors.Add("name", $"at most {RunService.MaxName} characters");
        if (ConfigValidation.HasControl(request.Name)) errors.Add("name", RunService.NoControl);
        var arms = preset?.Arms ?? request.Arms ?? [];
        var sweepAxis = preset?.SweepAxis;
        if (request.Vary is { } vary)
        {
            if (preset is not null) errors.Add("vary", "vary one field of your own arms, not of a study preset's");
            else if (Varied(vary, request.Config, errors) is { } varied)
            {
                arms = [.. arms, .. varied];
                sweepAxis = ConfigOverlay.FieldName(vary.Field);
            }
        }
        if (arms.Count > MaxArms) errors.Add("arms", $"at most {MaxArms} arms, got {arms.Count}");
        for (var i = 0; i < arms.Count; i++)
        {
            // null: a 500 the corpus found
            if (arms[i] is null) errors.Add($"arms[{i}]", "an arm is an object: { label, preset, config? }");
            else if (string.IsNullOrWhiteSpace(arms[i].Label) || arms[i].Label.Length > 60 || ConfigValidation.HasControl(arms[i].Label))
                errors.Add($"arms[{i}].label", "a label is 1-60 characters, without control characters (newlines, tabs)");
            else if (arms.Take(i).Any(a => a?.Label == arms[i].Label)) errors.Add($"arms[{i}].label", $"'{arms[i].Label}' names two arms");
        }
        if (errors.Count > 0) return (null, errors);
        var definition = new StudyDefinition(arms, [.. Enumerable.Range(1, seedCount).Select(s => (long)s)], request.Config, request.Device,
            sweepAxis);
        var name = string.IsNullOrWhiteSpace(request.Name) ? $"{preset!.Name} ({scale})" : request.Name.Trim();
        var study = new Study
        {
            Id = Guid.NewGuid(), Name = name, Preset = preset?.Name, Scale = scale, Owner = by.Name ?? Ownership.DefaultOwner,
            DefinitionJson = JsonSerializer.Serialize(definition, Json), CreatedAt = DateTime.UtcNow,
        };
        var (configs, labels) = Plan(study, definition, definition.Seeds, errors);
        if (errors.Count > 0) return (null, errors);
        await using (var context = db.Create())
        {
            context.Studies.Add(study);
            await context.SaveChangesAsync();
        }
        try
        {
            await runs.CreateAsync(new CreateRunRequest(Tags: ["study"]), configs, by, (study.Id, study.Name, labels));
        }
        catch
        {
            await using var context = db.Create(); // nothing half-written: a refused study leaves no row
            await context.Studies.Where(s => s.Id == study.Id).ExecuteDeleteAsync();
            throw;
        }
        return (study, errors);
    }

    /// <summary>The arms of a vary request, or null with its problems named by field.</summary>
    static List<StudyArm>? Varied(VaryRequest vary, JsonObject? config, ValidationErrors errors)
    {
        var count = errors.Count;
        var field = ConfigOverlay.FieldName(vary.Field ?? "");
        if (field is null) errors.Add("vary.field", $"unknown config field '{ConfigValidation.Shown(vary.Field ?? "")}'");
        else if (config?.Any(kv => string.Equals(kv.Key, field, StringComparison.OrdinalIgnoreCase)) == true)
            errors.Add("config." + field, $"the study's config sets {field} for every run, which would undo the variation");
        if (vary.Values is not { Count: > 0 and <= MaxArms }) errors.Add("vary.values",
            $"give 1 to {MaxArms} values, got {vary.Values?.Count ?? 0}");
        if (vary.Preset is null) errors.Add("vary.preset", "name the run preset whose field is varied (e.g. constnet-deterministic)");
        var xs = new List<double>();
        for (var i = 0; i < (vary.Values?.Count ?? 0); i++)
        {
            if (vary.Values![i] is JsonValue v && v.TryGetValue<double>(out var x) && double.IsFinite(x)) xs.Add(x);
            else errors.Add($"vary.values[{i}]", $"a number, got {ConfigValidation.Shown(vary.Values[i]?.ToJsonString() ?? "null")}");
        }
        if (xs.Distinct().Count() != xs.Count) errors.Add("vary.values", "each value once");
        if (errors.Count > count) return null;
        return [.. xs.Select(x => new StudyArm(StudyArm.Of(field!, x), vary.Preset,
            new JsonObject { [field!] = x }, X: x, Line: field))];
    }

    /// <summary>Each arm's run for each seed: the arm's run preset at the study's scale, overlaid by the study's config.</summary>
    (List<ExperimentConfig> Configs, List<string> Arms) Plan(Study study, StudyDefinition definition, IReadOnlyList<long> seeds,
        ValidationErrors errors)
    {
        var preset = study.Preset is null ? null : StudyPresets.Find(study.Preset);
        var (configs, labels) = (new List<ExperimentConfig>(), new List<string>());
        for (var i = 0; i < definition.Arms.Count; i++)
        {
            var arm = definition.Arms[i];
            var runPreset = arm.Preset is null ? null : study.Scale == "paper" ? arm.Preset + "-paper" : arm.Preset;
            var overrides = new JsonObject();
            void Apply(JsonObject? layer) { foreach (var (key, value) in layer ?? []) overrides[key] = value?.DeepClone(); }
            if (study.Scale == "cpu") Apply(preset?.CpuConfig);
            Apply(arm.Config);
            Apply(definition.Config);
            if (definition.Device is { } device) overrides["device"] = device;
            foreach (var seed in seeds)
            {
                overrides["seed"] = seed;
                var (planned, problems) = runs.Plan(new CreateRunRequest($"{study.Name} · {arm.Label} · seed {seed}", runPreset,
                    overrides.DeepClone().AsObject()));
                foreach (var (field, messages) in problems)
                    foreach (var message in messages) errors.Add($"arms[{i}].{field}", message);
                if (problems.Count > 0) break; // the same problem for every seed
                configs.AddRange(overrides.Any(kv =>
                    kv.Key.Equals(nameof(ExperimentConfig.PreciseBatchNorm), StringComparison.OrdinalIgnoreCase))
                    ? planned : planned.Select(WithPreciseBatchNorm));
                labels.AddRange(planned.Select(_ => arm.Label));
            }
        }
        return (configs, labels);
    }

    /// <summary>Training batches a study's runs recompute BatchNorm statistics over when their running averages lag.</summary>
    public const int PreciseBatches = 100;

    /// <summary>
    /// A schedule that does not decay the learning rate to 0 by the last step leaves BatchNorm's exponential averages lagging
    /// behind the final weights (issue 20: 1.7-2.4 points at 2 epochs): such runs also report precise-BN test figures.
    /// </summary>
    static ExperimentConfig WithPreciseBatchNorm(ExperimentConfig config) =>
        config.LearningRateEndsAtZero || config.PreciseBatchNorm > 0 ? config : config with { PreciseBatchNorm = PreciseBatches };

    public static StudyDefinition DefinitionOf(Study study) => JsonSerializer.Deserialize<StudyDefinition>(study.DefinitionJson, Json)!;

    /// <summary>Adds <paramref name="more"/> seeds to every arm (the next seed numbers); the frozen results thaw.</summary>
    public async Task<ValidationErrors> ExtendAsync(Guid studyId, int more, Caller by)
    {
        var study = await GetAsync(studyId) ?? throw new KeyNotFoundException($"study {studyId} does not exist");
        var errors = new ValidationErrors();
        if (!by.CanChange(study.Owner)) throw new ForbiddenException($"study {study.Id} belongs to {study.Owner}: only its owner or an " +
            "admin may extend it");
        var definition = DefinitionOf(study);
        if (study.Cancelled) errors.Add("study", "a cancelled study is not extended; create a new one");
        if (more < 1 || definition.Seeds.Count + more > MaxSeeds) errors.Add("seeds",
            $"add 1 to {MaxSeeds - definition.Seeds.Count} seeds, got {more}");
        if (errors.Count > 0) return errors;
        var added = Enumerable.Range(1, more).Select(i => definition.Seeds.Max() + i).ToList();
        var (configs, labels) = Plan(study, definition, added, errors);
        if (errors.Count > 0) return errors;
        await runs.CreateAsync(new CreateRunRequest(Tags: ["study"]), configs, by, (study.Id, study.Name, labels));
        await using var context = db.Create();
        var extended = definition with { Seeds = [.. definition.Seeds, .. added] };
        await context.Studies.Where(s => s.Id == study.Id).ExecuteUpdateAsync(s => s
            .SetProperty(x => x.DefinitionJson, JsonSerializer.Serialize(extended, Json))
            .SetProperty(x => x.EndedAt, (DateTime?)null).SetProperty(x => x.FrozenJson, (string?)null));
        return errors;
    }

    /// <summary>Cancels every run of the study that has not ended.</summary>
    public async Task CancelAsync(Guid studyId, Caller by)
    {
        var study = await GetAsync(studyId) ?? throw new KeyNotFoundException($"study {studyId} does not exist");
        if (!by.CanChange(study.Owner)) throw new ForbiddenException($"study {study.Id} belongs to {study.Owner}: only its owner or an " +
            "admin may cancel it");
        await using (var context = db.Create())
            await context.Studies.Where(s => s.Id == study.Id).ExecuteUpdateAsync(s => s.SetProperty(x => x.Cancelled, true));
        foreach (var run in await RunsAsync(study.Id))
            if (!run.IsFinished) await runs.CancelAsync(run.Id, by);
    }

    public async Task<Study?> GetAsync(Guid id)
    {
        await using var context = db.Create();
        return await context.Studies.AsNoTracking().FirstOrDefaultAsync(s => s.Id == id);
    }

    /// <summary>
    /// The study as the API and its page show it; <paramref name="shared"/>: through a share link (no owner's name, no worker host:pid).
    /// </summary>
    public async Task<StudyDto?> ReadAsync(Guid id, bool shared = false)
    {
        if (await GetAsync(id) is not { } study) return null;
        var runs = await RunsAsync(study.Id);
        var results = await ResultsAsync(study, runs);
        var summary = new StudySummary(study.Id, study.Name, study.Preset, study.Scale, shared ? "" : study.Owner, study.CreatedAt,
            study.EndedAt,
            study.Cancelled, runs.Count, runs.Count(r => r.IsFinished), runs.Count(r => r.Status == RunStatus.Running));
        return new StudyDto(summary, DefinitionOf(study), study.Preset is null ? null : StudyPresets.Find(study.Preset)?.Claim, results,
            [.. runs.Select(r =>
                new StudyRunDto(r.Id, r.Arm ?? "", r.Seed, r.Status, r.Step, r.TotalSteps, shared ? null : r.Worker, r.FinalTestAccuracy,
                    r.Error))],
            StudyPresets.CaveatOf(study));
    }

    public async Task<List<Run>> RunsAsync(Guid studyId)
    {
        await using var context = db.Create();
        var runs = await context.Runs.AsNoTracking().Where(r => r.StudyId == studyId).ToListAsync();
        var study = await context.Studies.AsNoTracking().FirstOrDefaultAsync(s => s.Id == studyId);
        var arms = study is null ? [] : DefinitionOf(study).Arms.Select(a => a.Label).ToList();
        // Arm by arm in the definition's order, seed by seed: the order of the results table.
        return [.. runs.OrderBy(r => arms.IndexOf(r.Arm ?? "") is var i and >= 0 ? i : int.MaxValue).ThenBy(r => r.Seed)
            .ThenBy(r => r.CreatedAt)];
    }

    public async Task<List<StudySummary>> ListAsync()
    {
        await using var context = db.Create();
        var studies = await context.Studies.AsNoTracking().OrderByDescending(s => s.CreatedAt).Take(500).ToListAsync();
        var ids = studies.Select(s => s.Id).ToList();
        var counts = await context.Runs.Where(r => r.StudyId != null && ids.Contains(r.StudyId.Value))
            .GroupBy(r => new { r.StudyId, r.Status })
            .Select(g => new { g.Key.StudyId, g.Key.Status, Count = g.Count() }).ToListAsync();
        return [.. studies.Select(s =>
        {
            var mine = counts.Where(c => c.StudyId == s.Id).ToList();
            return new StudySummary(s.Id, s.Name, s.Preset, s.Scale, s.Owner, s.CreatedAt, s.EndedAt, s.Cancelled, mine.Sum(c => c.Count),
                mine.Where(c => c.Status.HasEnded()).Sum(c => c.Count),
                mine.Where(c => c.Status == RunStatus.Running).Sum(c => c.Count));
        })];
    }

    /// <summary>
    /// The results as they stand; once every run has ended they are stored and served frozen from then on.
    /// <paramref name="runs"/>: the study's runs when the caller has just read them (the page refreshes every 2 s).
    /// </summary>
    public async Task<StudyResults> ResultsAsync(Study study, IReadOnlyList<Run>? runs = null)
    {
        if (study.FrozenJson is { } frozen) return JsonSerializer.Deserialize<StudyResults>(frozen, Json)!;
        var definition = DefinitionOf(study);
        var studyRuns = runs ?? await RunsAsync(study.Id);
        var ids = studyRuns.Select(r => r.Id).ToList();
        await using var context = db.Create();
        var epochPoints = await context.Points.AsNoTracking()
            .Where(p => ids.Contains(p.RunId)
                        && (p.Series == Series.EpochTestAccuracy || p.Series == Series.EpochIndex
                            || p.Series == Series.EpochPreciseTestAccuracy))
            .Select(p => new { p.RunId, p.Series, p.Step, p.Value }).ToListAsync();
        var breaks = await context.Points.AsNoTracking().Where(p => ids.Contains(p.RunId) && p.Series.StartsWith(Series.Break))
            .GroupBy(p => new { p.RunId, p.Series }).Select(g => new { g.Key.RunId, Step = g.Min(p => p.Step) }).ToListAsync();
        // The mean over layers of each snapshot's forward weight correlation, averaged in the database (one row per snapshot).
        var correlation = await context.Points.AsNoTracking()
            .Where(p => ids.Contains(p.RunId) && p.Series.StartsWith(Series.WeightCorrelationForward))
            .GroupBy(p => new { p.RunId, p.Step }).Select(g => new { g.Key.RunId, g.Key.Step, Mean = g.Average(p => p.Value) })
                .ToListAsync();
        var cells = studyRuns.Select(run =>
        {
            var mine = epochPoints.Where(p => p.RunId == run.Id).ToList();
            // The engine numbers epochs from 0; the table counts epochs trained (1 after the first).
            var index = mine.Where(p => p.Series == Series.EpochIndex).ToDictionary(p => p.Step, p => (int)(p.Value ?? 0) + 1);
            var epochs = mine.Where(p => p.Series == Series.EpochTestAccuracy && p.Value is not null && index.ContainsKey(p.Step))
                .OrderBy(p => p.Step).Select(p => (index[p.Step], p.Value!.Value)).ToList();
            var precise = mine.Where(p => p.Series == Series.EpochPreciseTestAccuracy && p.Value is not null).MaxBy(p => p.Step)?.Value;
            return new RunCell(run, epochs, [.. breaks.Where(b => b.RunId == run.Id).Select(b => b.Step)],
                [.. correlation.Where(c => c.RunId == run.Id && c.Mean is not null).OrderBy(c => c.Step)
                    .Select(c => (c.Step, c.Mean!.Value))], precise);
        }).ToList();
        var preset = study.Preset is null ? null : StudyPresets.Find(study.Preset);
        var results = StudyTable.Compute(definition.Arms, cells, preset, definition.SweepAxis);
        if (results.Final)
            await context.Studies.Where(s => s.Id == study.Id && s.FrozenJson == null).ExecuteUpdateAsync(s => s
                .SetProperty(x => x.FrozenJson, JsonSerializer.Serialize(results, Json))
                .SetProperty(x => x.EndedAt, studyRuns.Max(r => r.FinishedAt) ?? DateTime.UtcNow));
        return results;
    }
}
