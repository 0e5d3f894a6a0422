using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Sharing;

/// <summary>A share link as the API and the pages show it; <paramref name="Url"/> is the page's path (/share/{token}).</summary>
public sealed record ShareDto(string Token, string Url, string Owner, IReadOnlyList<Guid> RunIds, Guid? StudyId, DateTime CreatedAt,
    DateTime? RevokedAt)
{
    public static ShareDto Of(ShareLink link) =>
        new(link.Token, $"/share/{link.Token}", link.Owner, link.Runs, link.StudyId, link.CreatedAt, link.RevokedAt);
}

/// <summary>
/// Creating, listing and revoking share links: one place for the API and the pages. Researchers share any run (every
/// account reads every run); each sees and revokes their own links, admins all of them.
/// </summary>
public sealed class ShareService(AppDb db, RunQueries queries, Revocations revocations, Access access)
{
    /// <summary>The live (not revoked) link with this token, or null.</summary>
    public async Task<ShareDto?> ReadAsync(string? token) => await access.ShareAsync(token) is { } link ? ShareDto.Of(link) : null;

    /// <summary>
    /// The runs a link shares, as a collaborator reads them (<see cref="RunDto.ForShare"/>): the API's and the page's one rule.
    /// </summary>
    public async Task<List<RunDto>> RunsOfAsync(ShareDto link) => [.. (await queries.ReadManyAsync(link.RunIds)).Select(r => r.ForShare())];

    public async Task<(ShareDto? Link, ValidationErrors Errors)> CreateAsync(IReadOnlyList<Guid>? runIds, Caller by)
    {
        if (!by.CanQueue) throw new ForbiddenException($"{by.Name} can only read: researchers and admins make share links");
        var errors = new ValidationErrors();
        var ids = runIds?.Distinct().ToList() ?? [];
        if (ids.Count == 0) errors.Add("runIds", "name at least one run");
        if (ids.Count > 16) errors.Add("runIds", "a comparison shares at most 16 runs");
        var found = await queries.GetManyAsync(ids);
        foreach (var missing in ids.Except(found.Select(r => r.Id))) errors.Add("runIds", $"run {missing} does not exist");
        if (errors.Count > 0) return (null, errors);
        var link = new ShareLink
        {
            Token = Access.NewToken(), RunIds = string.Join(',', ids), CreatedAt = DateTime.UtcNow,
            Owner = by.Name!
        };
        await using var context = db.Create();
        context.ShareLinks.Add(link);
        await context.SaveChangesAsync();
        return (ShareDto.Of(link), errors);
    }

    /// <summary>A read-only link to a study's result page: its table, claims and figures (frozen once the study ends).</summary>
    public async Task<(ShareDto? Link, ValidationErrors Errors)> CreateForStudyAsync(Guid studyId, Caller by)
    {
        if (!by.CanQueue) throw new ForbiddenException($"{by.Name} can only read: researchers and admins make share links");
        var errors = new ValidationErrors();
        await using var context = db.Create();
        if (!await context.Studies.AnyAsync(s => s.Id == studyId)) errors.Add("studyId", $"study {studyId} does not exist");
        if (errors.Count > 0) return (null, errors);
        var link = new ShareLink
        {
            Token = Access.NewToken(), RunIds = "", StudyId = studyId, CreatedAt = DateTime.UtcNow,
            Owner = by.Name!
        };
        context.ShareLinks.Add(link);
        await context.SaveChangesAsync();
        return (ShareDto.Of(link), errors);
    }

    public async Task<List<ShareDto>> ListAsync(Caller by)
    {
        await using var context = db.Create();
        var links = context.ShareLinks.AsNoTracking().Where(s => by.IsAdmin || s.Owner == by.Name);
        return [.. (await links.ToListAsync()).OrderByDescending(s => s.CreatedAt).Select(ShareDto.Of)];
    }

    /// <summary>False when there is no live link with this token that the viewer may revoke (theirs, or any for admins).</summary>
    public async Task<bool> RevokeAsync(string token, Caller by)
    {
        await using var context = db.Create();
        var link = await context.ShareLinks.FirstOrDefaultAsync(s => s.Token == token && s.RevokedAt == null);
        if (link is null || !by.CanChange(link.Owner)) return false;
        link.RevokedAt = DateTime.UtcNow;
        await context.SaveChangesAsync();
        await revocations.RevokeEverywhereAsync(token);
        return true;
    }
}
