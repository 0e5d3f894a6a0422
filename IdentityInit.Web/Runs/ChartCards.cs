using System.Text.Json;
using IdentityInit.Training;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Data;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>
/// Chart cards as <c>GET /api/runs/{id}/charts/{key}</c> sends them: the card's own spans and buckets, as JSON. A run that
/// has ended writes nothing more (its points are all stored before it is reported ended), so its cards are kept once
/// read, in a bounded memory cache keyed by the run's end: opening a finished paper-scale run again asks the database
/// nothing for its charts (~700 ms of server time on 2 cores, the per-layer spread card alone ~200 ms), and a run that
/// is resumed and ends again is read afresh. A live run's cards are read every time.
/// </summary>
public sealed class ChartCards(RunQueries queries, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json)
{
    /// <summary>Bytes of JSON kept: ~100 paper-scale runs' cards (each ~0.5 MB before compression).</summary>
    public const long Capacity = 64L << 20;

    readonly MemoryCache kept = new(new MemoryCacheOptions { SizeLimit = Capacity });

    /// <summary>Card reads answered from memory since the app started (the tests' witness that the cache serves).</summary>
    public long Hits => Interlocked.Read(ref hits);
    long hits;

    public async Task<byte[]> JsonAsync(Run run, ChartSpec spec)
    {
        if (!run.Status.HasEnded()) return await ReadAsync(run.Id, spec);
        var key = (run.Id, spec.Key, run.FinishedAt, run.Step);
        if (kept.TryGetValue(key, out byte[]? card))
        {
            Interlocked.Increment(ref hits);
            return card!;
        }
        card = await ReadAsync(run.Id, spec);
        kept.Set(key, card, new MemoryCacheEntryOptions { Size = card.Length, SlidingExpiration = TimeSpan.FromHours(1) });
        return card;
    }

    async Task<byte[]> ReadAsync(Guid runId, ChartSpec spec)
    {
        var (series, upTo) = await queries.ChartAsync(runId, spec.SeriesPrefixes, s => spec.Label(s) is not null);
        var card = new { upTo, overview = series.Any(s => s.Downsampled), columns = spec.Columns(series, null, step => step) };
        return JsonSerializer.SerializeToUtf8Bytes(card, json.Value.SerializerOptions);
    }
}
