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

    public async Task<List<Run>> ListAsync(string? search = null, RunState? status = null, string? tag = null, Guid? group = null)
    {
        await using var context = db.Create();
        var query = context.Runs.AsNoTracking();
        if (status is { } s) query = query.Where(r => r.Status == s);
        if (group is { } g) query = query.Where(r => r.GroupId == g);
        if (!string.IsNullOrWhiteSpace(tag)) query = query.Where(r => ("," + r.Tags + ",").Contains("," + tag.Trim() + ","));
        if (!string.IsNullOrWhiteSpace(search))
        {
            var q = search.Trim().ToLower();
            query = query.Where(r => r.Name.ToLower().Contains(q) || (r.Preset ?? "").ToLower().Contains(q) || r.Architecture.Contains(q)
                                     || r.Dataset.Contains(q) || r.Breakers.Contains(q) || r.Tags.ToLower().Contains(q));
        }
        var runs = await query.ToListAsync();
        return [.. runs.OrderByDescending(r => r.CreatedAt)];
    }

    public async Task<List<PointDto>> PointsAsync(Guid runId, long? from = null, long? to = null, string? seriesPrefix = null)
    {
        await using var context = db.Create();
        var query = context.Points.AsNoTracking().Where(p => p.RunId == runId);
        if (from is { } f) query = query.Where(p => p.Step >= f);
        if (to is { } t) query = query.Where(p => p.Step <= t);
        if (!string.IsNullOrEmpty(seriesPrefix)) query = query.Where(p => p.Series.StartsWith(seriesPrefix));
        var rows = await query.OrderBy(p => p.Series).ThenBy(p => p.Step).Select(p => new { p.Series, p.Step, p.Value }).ToListAsync();
        return [.. rows.Select(p => new PointDto(p.Series, p.Step, p.Value ?? double.NaN))]; // NULL is a stored NaN
    }

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
        return new RunHistory(runId, ProgressOf(run), await PointsAsync(runId), await HeatmapStepsAsync(runId), await LogsAsync(runId));
    }

    /// <summary>The steps at which each layer's activation matrix was stored.</summary>
    public async Task<Dictionary<string, long[]>> HeatmapStepsAsync(Guid runId)
    {
        await using var context = db.Create();
        return (await context.Heatmaps.AsNoTracking().Where(h => h.RunId == runId).Select(h => new { h.Layer, h.Step }).ToListAsync())
            .GroupBy(h => h.Layer).ToDictionary(g => g.Key, g => g.Select(h => h.Step).Order().ToArray());
    }

    public static RunProgress ProgressOf(Run run) => new(run.Status, run.Step, run.TotalSteps, null, run.Error);
}
