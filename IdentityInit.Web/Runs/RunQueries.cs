using System.Linq.Expressions;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Runs;

/// <summary>Reads of stored runs shared by the API, the hub and the pages.</summary>
public sealed class RunQueries(AppDb db)
{
    public async Task<Run?> GetAsync(Guid id)
    {
        await using var context = db.Create();
        return await context.Runs.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id);
    }

    public async Task<List<Run>> GetManyAsync(IReadOnlyCollection<Guid> ids)
    {
        await using var context = db.Create();
        var runs = await context.Runs.AsNoTracking().Where(r => ids.Contains(r.Id)).ToListAsync();
        return [.. ids.Select(id => runs.FirstOrDefault(r => r.Id == id)).OfType<Run>()];
    }

    /// <summary>A run as the pages show it.</summary>
    public async Task<RunDto?> ReadAsync(Guid id) => await GetAsync(id) is { } run ? RunDto.Of(run) : null;

    /// <summary>These runs as the pages show them, in the order asked; ids that name no run are left out.</summary>
    public async Task<List<RunDto>> ReadManyAsync(IReadOnlyCollection<Guid> ids) => [.. (await GetManyAsync(ids)).Select(RunDto.Of)];

    /// <summary>
    /// One page of the runs list, filtered, sorted and paged in the database. Sort by a column (<see cref="SortColumns"/>)
    /// or by a config field ("config.depth"); filter config fields by equality (numbers compared as numbers).
    /// </summary>
    public async Task<RunPage> PageAsync(RunFilter filter)
    {
        await using var context = db.Create();
        var query = context.Runs.AsNoTracking().Where(r => r.Archived == filter.Archived);
        if (filter.Status is { } s) query = query.Where(r => r.Status == s);
        if (filter.Group is { } g) query = query.Where(r => r.GroupId == g);
        if (filter.Owner is { } owner) query = query.Where(r => r.Owner == owner);
        if (!string.IsNullOrWhiteSpace(filter.Tag)) query = query.Where(r => ("," + r.Tags + ",").Contains("," + filter.Tag.Trim() + ","));
        if (!string.IsNullOrWhiteSpace(filter.Search))
        {
            var q = filter.Search.Trim().ToLower();
            query = query.Where(r => r.Name.ToLower().Contains(q) || (r.Preset ?? "").ToLower().Contains(q) || r.Architecture.Contains(q)
                                     || r.Dataset.Contains(q) || r.Breakers.Contains(q) || r.Tags.ToLower().Contains(q)
                                         || r.Notes.ToLower().Contains(q));
        }
        foreach (var (field, value) in filter.Config)
        {
            var type = ConfigFieldType(field);
            if (type == typeof(bool))
            {
                var on = bool.Parse(value);
                var (word, digit) = on ? ("true", "1") : ("false", "0");
                query = query.Where(r =>
                    AppDbContext.ConfigText(r.ConfigJson, field) == word || AppDbContext.ConfigText(r.ConfigJson, field) == digit);
            }
            else if (type == typeof(string)) query = query.Where(r => AppDbContext.ConfigText(r.ConfigJson, field) == value);
            else
            {
                var number = double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                query = query.Where(r => AppDbContext.ConfigNumber(r.ConfigJson, field) == number);
            }
        }
        var total = await query.CountAsync();
        var sorted = Sort(query, filter.Sort, filter.Descending).ThenByDescending(r => r.CreatedAt).ThenBy(r => r.Id);
        return new RunPage(await sorted.Skip(filter.Offset).Take(filter.Limit).ToListAsync(), total);
    }

    static IOrderedQueryable<Run> Sort(IQueryable<Run> query, string sort, bool descending)
    {
        IOrderedQueryable<Run> By<T>(Expression<Func<Run, T>> key) => descending ? query.OrderByDescending(key) : query.OrderBy(key);
        if (sort.StartsWith("config.", StringComparison.Ordinal))
        {
            var field = sort["config.".Length..];
            return ConfigFieldType(field) is { } t && t != typeof(string) && t != typeof(bool)
                ? By(r => AppDbContext.ConfigNumber(r.ConfigJson, field))
                : By(r => AppDbContext.ConfigText(r.ConfigJson, field));
        }
        return sort switch
        {
            "name" => By(r => r.Name),
            "owner" => By(r => r.Owner),
            "preset" => By(r => r.Preset),
            "architecture" => By(r => r.Architecture),
            "init" => By(r => r.Init),
            "breakers" => By(r => r.Breakers),
            "dataset" => By(r => r.Dataset),
            "seed" => By(r => r.Seed),
            "status" => By(r => r.Status),
            "step" => By(r => r.Step),
            "bestTestAccuracy" => By(r => r.BestTestAccuracy),
            "finalTestAccuracy" => By(r => r.FinalTestAccuracy),
            "layersBroken" => By(r => r.LayersBroken),
            "startedAt" => By(r => r.StartedAt),
            "finishedAt" => By(r => r.FinishedAt),
            _ => By(r => r.CreatedAt),
        };
    }

    public static readonly IReadOnlyList<string> SortColumns =
        ["createdAt", "name", "owner", "preset", "architecture", "init", "breakers", "dataset", "seed", "status", "step",
            "bestTestAccuracy",
         "finalTestAccuracy", "layersBroken", "startedAt", "finishedAt"];

    /// <summary>The CLR type of a config field by its JSON name ("depth"), or null when there is no such field.</summary>
    public static Type? ConfigFieldType(string field)
    {
        var property = typeof(ExperimentConfig).GetProperties().FirstOrDefault(p => ConfigOverlay.FieldName(p.Name) == field);
        return property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
    }

    public async Task<List<PointDto>> PointsAsync(Guid runId, long? from = null, long? to = null, string? seriesPrefix = null)
    {
        await using var context = db.Create();
        var query = context.Points.AsNoTracking().Where(p => p.RunId == runId);
        if (from is { } f) query = query.Where(p => p.Step >= f);
        if (to is { } t) query = query.Where(p => p.Step <= t);
        if (!string.IsNullOrEmpty(seriesPrefix)) query = Under(query, seriesPrefix);
        var rows = await query.OrderBy(p => p.Series).ThenBy(p => p.Step).Select(p => new { p.Series, p.Step, p.Value }).ToListAsync();
        return [.. rows.Select(p => new PointDto(p.Series, p.Step, p.Value ?? double.NaN))]; // NULL is a stored NaN
    }

    /// <summary>
    /// A run's series between two steps, each at most <paramref name="maxPoints"/> long: a series with more points in the
    /// window is cut into maxPoints/2 buckets of equal step width and each bucket drawn by its minimum (at its first
    /// step) and maximum (at its last step), so spikes and the envelope survive; a bucket of only NaN stays a gap.
    /// The reduction runs in the database: a paper-scale run's hundreds of thousands of points are never read out whole.
    /// </summary>
    /// <param name="spans">the run's <see cref="SpansAsync"/> over the same window, when the caller reads it chart by chart</param>
    public async Task<List<SeriesData>> SeriesAsync(Guid runId, Func<string, bool>? include = null, long? from = null, long? to = null,
        int maxPoints = DefaultMaxPoints, IReadOnlyList<SeriesSpan>? spans = null)
    {
        maxPoints = Math.Max(2, maxPoints);
        await using var context = db.Create();
        var window = Window(context, runId, from, to);
        var stats = (spans ?? await SpansAsync(runId, from, to)).Where(s => include?.Invoke(s.Series) ?? true).ToList();
        if (stats.Count == 0) return [];
        var result = new Dictionary<string, SeriesData>();

        var whole = stats.Where(s => s.Count <= maxPoints).Select(s => s.Series).ToList();
        if (whole.Count > 0)
        {
            var rows = await window.Where(p => whole.Contains(p.Series)).OrderBy(p => p.Series).ThenBy(p => p.Step)
                .Select(p => new { p.Series, p.Step, p.Value }).ToListAsync();
            foreach (var g in rows.GroupBy(r => r.Series))
                result[g.Key] = new SeriesData(g.Key, [.. g.Select(r => r.Step)], [.. g.Select(r => r.Value ?? double.NaN)]);
        }

        // Series that share a span share a bucket width: one grouped query per width, not one per series.
        foreach (var span in stats.Where(s => s.Count > maxPoints).GroupBy(s => (s.First, s.Last)))
        {
            var (origin, last) = span.Key;
            var width = Math.Max(1, (last - origin) / (maxPoints / 2) + 1);
            var names = span.Select(s => s.Series).ToList();
            var buckets = await window.Where(p => names.Contains(p.Series))
                .GroupBy(p => new { p.Series, Bucket = (p.Step - origin) / width })
                .Select(g => new
                {
                    g.Key.Series, g.Key.Bucket, First = g.Min(p => p.Step), Last = g.Max(p => p.Step),
                    Min = g.Min(p => p.Value), Max = g.Max(p => p.Value)
                })
                .ToListAsync();
            foreach (var g in buckets.GroupBy(b => b.Series))
            {
                var steps = new List<long>();
                var values = new List<double>();
                foreach (var b in g.OrderBy(b => b.Bucket))
                {
                    steps.Add(b.First);
                    values.Add(b.Min ?? double.NaN);
                    if (b.Last == b.First || b.Min is null) continue;
                    steps.Add(b.Last);
                    values.Add(b.Max!.Value);
                }
                result[g.Key] = new SeriesData(g.Key, [.. steps], [.. values], Downsampled: true);
            }
        }
        return [.. result.Values.OrderBy(s => s.Series, StringComparer.Ordinal)];
    }

    /// <summary>
    /// Each series of a run between two steps: how many points, first and last step. With <paramref name="prefixes"/>, only
    /// the series named so ("loss") or under them ("spread/"): one chart's, at the cost of its own points only.
    /// </summary>
    public async Task<List<SeriesSpan>> SpansAsync(Guid runId, long? from = null, long? to = null, IReadOnlyList<string>? prefixes = null)
    {
        await using var context = db.Create();
        var spans = new List<SeriesSpan>();
        foreach (var prefix in prefixes ?? [""])
        {
            var window = Window(context, runId, from, to);
            if (prefix.EndsWith('/')) window = Under(window, prefix);
            else if (prefix.Length > 0) window = window.Where(p => p.Series == prefix);
            spans.AddRange(await window.GroupBy(p => p.Series)
                .Select(g => new SeriesSpan(g.Key, g.Count(), g.Min(p => p.Step), g.Max(p => p.Step))).ToListAsync());
        }
        return spans;
    }

    /// <summary>
    /// What one chart draws of a run, as <see cref="SeriesAsync"/> reads it, with the last step among its series when read:
    /// a page that drew this can take the rest from there on (points at that step again are dropped by the chart).
    /// </summary>
    public async Task<(List<SeriesData> Series, long? UpTo)> ChartAsync(Guid runId, IReadOnlyList<string> prefixes,
        Func<string, bool> include)
    {
        var spans = (await SpansAsync(runId, prefixes: prefixes)).Where(s => include(s.Series)).ToList();
        return (await SeriesAsync(runId, include, spans: spans), spans.Count == 0 ? null : spans.Max(s => s.Last));
    }

    static IQueryable<MetricPoint> Window(AppDbContext context, Guid runId, long? from, long? to)
    {
        var window = context.Points.AsNoTracking().Where(p => p.RunId == runId);
        if (from is { } f) window = window.Where(p => p.Step >= f);
        if (to is { } t) window = window.Where(p => p.Step <= t);
        return window;
    }

    /// <summary>The points of the series named with this prefix ("spread/", "break/").</summary>
    IQueryable<MetricPoint> Under(IQueryable<MetricPoint> points, string prefix)
    {
        if (db.IsPostgres || prefix.Length == 0) return points.Where(p => p.Series.StartsWith(prefix));
        // SQLite's LIKE cannot use the (run, series, step) key and walks all of a run's points (37 ms for an empty chart
        // of a paper-scale run); "spread/" <= s < "spread0" is the same set in bytewise order and a range of the key.
        var end = prefix[..^1] + (char)(prefix[^1] + 1);
        return points.Where(p => string.Compare(p.Series, prefix) >= 0 && string.Compare(p.Series, end) < 0);
    }

    /// <summary>
    /// Per layer: the step its symmetry broke (its "break/" point, if any) and its latest channel spread with that step,
    /// in the engine's layer order (the order of the run's summary, else of the stored series).
    /// </summary>
    public async Task<List<LayerSymmetryNow>> SymmetryAsync(Guid runId)
    {
        await using var context = db.Create();
        var latest = await Under(Window(context, runId, null, null), Series.Spread)
            .GroupBy(p => p.Series).Select(g => new { Series = g.Key, Step = g.Max(p => p.Step) }).ToListAsync();
        var steps = latest.Select(l => l.Step).Distinct().ToList();
        var spreads = (await Under(Window(context, runId, null, null), Series.Spread).Where(p => steps.Contains(p.Step)).ToListAsync())
            .Where(p => latest.Any(l => l.Series == p.Series && l.Step == p.Step))
            .ToDictionary(p => p.Series[Series.Spread.Length..], p => (p.Step, Value: p.Value ?? double.NaN));
        var breaks = (await Under(Window(context, runId, null, null), Series.Break).ToListAsync())
            .GroupBy(p => p.Series[Series.Break.Length..]).ToDictionary(g => g.Key, g => g.Min(p => p.Step));
        var summary = await context.Runs.AsNoTracking().Where(r => r.Id == runId).Select(r => r.SummaryJson).FirstOrDefaultAsync();
        var order = summary is null ? [] : System.Text.Json.JsonDocument.Parse(summary).RootElement.GetProperty("symmetry").EnumerateArray()
            .Select(l => l.GetProperty("layer").GetString()!).ToList();
        var layers = order.Concat(spreads.Keys.Order(StringComparer.Ordinal)).Distinct().ToList();
        return [.. layers.Select(l => new LayerSymmetryNow(l, breaks.TryGetValue(l, out var b) ? b : null,
            spreads.TryGetValue(l, out var s) ? s.Value : null, spreads.TryGetValue(l, out var at) ? at.Step : null))];
    }

    /// <summary>Points per series a chart asks for at once: a few per pixel column of a wide chart.</summary>
    public const int DefaultMaxPoints = 1000;

    public async Task<HeatmapDto?> HeatmapAsync(Guid runId, string layer, long? step)
    {
        await using var context = db.Create();
        var query = context.Heatmaps.AsNoTracking().Where(h => h.RunId == runId && h.Layer == layer);
        var heatmap = step is { } s
            ? await query.Where(h => h.Step <= s).OrderByDescending(h => h.Step).FirstOrDefaultAsync()
            : await query.OrderByDescending(h => h.Step).FirstOrDefaultAsync();
        return heatmap is null ? null : new HeatmapDto(heatmap.Layer, heatmap.Step, heatmap.Size, Heatmaps.FromBytes(heatmap.Data));
    }

    public async Task<List<LogDto>> LogsAsync(Guid runId, int last = 500)
    {
        await using var context = db.Create();
        var logs = await context.Logs.AsNoTracking().Where(l => l.RunId == runId).OrderByDescending(l => l.Id).Take(last).ToListAsync();
        return [.. logs.OrderBy(l => l.Id).Select(l => new LogDto(l.Step, l.Time, l.Message))];
    }

    public async Task<RunHistory?> HistoryAsync(Guid runId)
    {
        var run = await GetAsync(runId);
        if (run is null) return null;
        var series = await SeriesAsync(runId);
        return new RunHistory(runId, new RunProgress(run.Status, run.Step, run.TotalSteps, null, run.Error), Flatten(series),
            await HeatmapStepsAsync(runId), await LogsAsync(runId),
            [.. series.Where(s => s.Downsampled).Select(s => s.Series)]);
    }

    /// <summary>The steps at which each layer's activation matrix was stored.</summary>
    public async Task<Dictionary<string, long[]>> HeatmapStepsAsync(Guid runId)
    {
        await using var context = db.Create();
        return (await context.Heatmaps.AsNoTracking().Where(h => h.RunId == runId).Select(h => new { h.Layer, h.Step }).ToListAsync())
            .GroupBy(h => h.Layer).ToDictionary(g => g.Key, g => g.Select(h => h.Step).Order().ToArray());
    }

    public static List<PointDto> Flatten(IEnumerable<SeriesData> series) =>
        [.. series.SelectMany(s => s.Steps.Select((step, i) => new PointDto(s.Series, step, s.Values[i])))];

    public static RunProgress ProgressOf(RunDto run) => new(run.Status, run.Step, run.TotalSteps, null, run.Error);
}
