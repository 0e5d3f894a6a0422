using System.Security.Claims;
using System.Security.Cryptography;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Sharing;

/// <summary>
/// Who may read which run: every signed-in account reads every run (roles limit writes); a share token grants read
/// access to exactly the runs it names, and nothing else; a revoked token stops working at once (no caching).
/// </summary>
public sealed class Access(AppDb db)
{
    /// <summary>The live (not revoked) share link with this token, or null.</summary>
    public async Task<ShareLink?> ShareAsync(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 64) return null;
        await using var context = db.Create();
        return await context.ShareLinks.AsNoTracking().FirstOrDefaultAsync(s => s.Token == token && s.RevokedAt == null);
    }

    public async Task<bool> CanReadAsync(ClaimsPrincipal? user, Guid runId, string? shareToken) =>
        shareToken is null ? Caller.From(user).SignedIn : (await ShareAsync(shareToken))?.Runs.Contains(runId) == true;

    public static string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))
        .TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
