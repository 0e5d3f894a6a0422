using System.Collections.Concurrent;
using System.Text.Json;
using IdentityInit.Training;
using IdentityInit.Web.Components.Runs;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>
/// Chart cards as <c>GET /api/runs/{id}/charts/{key}</c> sends them: the card's own spans and buckets, as JSON. A run that
/// has ended writes nothing more (its points are all stored before it is reported ended), so its cards are kept once
/// read, in a bounded memory cache keyed by the run's end: opening a finished paper-scale run again asks the database
/// nothing for its charts (~700 ms of server time on 2 cores, the per-layer spread card alone ~200 ms), and a run that
/// is resumed and ends again is read afresh. A live run's cards are read every time. The run page's prerender reads a
/// finished run's cards ahead (<see cref="ReadAhead"/>) while the browser is still loading its scripts; a fetch that
/// comes while its card is being read waits for that read instead of starting another.
/// </summary>
public sealed class ChartCards(RunQueries queries, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, ILogger<ChartCards> logger)
{
    /// <summary>Bytes of JSON kept: ~100 paper-scale runs' cards (each ~0.5 MB before compression).</summary>
    public const long Capacity = 64L << 20;

    readonly MemoryCache kept = new(new MemoryCacheOptions { SizeLimit = Capacity });
    readonly ConcurrentDictionary<(Guid, string, DateTime?, long), Lazy<Task<byte[]>>> reading = new();

    /// <summary>Cards read from the database since the app started (the tests' witness of what was read, and when).</summary>
    public long Reads => Interlocked.Read(ref reads);
    long reads;

    public Task<byte[]> JsonAsync(RunDto run, ChartSpec spec)
    {
        if (!run.Status.HasEnded()) return ReadAsync(run.Id, spec);
        var key = (run.Id, spec.Key, run.FinishedAt, run.Step);
        if (kept.TryGetValue(key, out byte[]? card)) return Task.FromResult(card!);
        return reading.GetOrAdd(key, k => new Lazy<Task<byte[]>>(() => KeepAsync(k, spec))).Value;
    }

    /// <summary>Starts reading a finished run's cards, in page order, one at a time; a live run's are left to the browser.</summary>
    public void ReadAhead(RunDto run)
    {
        if (!run.Status.HasEnded()) return;
        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var spec in ChartSpec.All) await JsonAsync(run, spec);
            }
            catch (Exception e) // the browser's own fetch reads the card again and answers its error
            {
                logger.LogDebug(e, "run {RunId}: reading its chart cards ahead failed", run.Id);
            }
        });
    }

    async Task<byte[]> KeepAsync((Guid Id, string, DateTime?, long) key, ChartSpec spec)
    {
        try
        {
            var card = await ReadAsync(key.Id, spec);
            kept.Set(key, card, new MemoryCacheEntryOptions { Size = card.Length, SlidingExpiration = TimeSpan.FromHours(1) });
            return card;
        }
        finally
        {
            reading.TryRemove(key, out _);
        }
    }

    async Task<byte[]> ReadAsync(Guid runId, ChartSpec spec)
    {
        Interlocked.Increment(ref reads);
        var (series, upTo) = await queries.ChartAsync(runId, spec.SeriesPrefixes, s => spec.Label(s) is not null);
        var card = new { upTo, overview = series.Any(s => s.Downsampled), columns = spec.Columns(series, null, step => step) };
        return JsonSerializer.SerializeToUtf8Bytes(card, json.Value.SerializerOptions);
    }
}
