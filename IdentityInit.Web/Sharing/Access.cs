using System.Security.Cryptography;
using System.Text;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Sharing;

/// <summary>
/// Who may read what. Without IdentityInit:OwnerKey everyone who reaches the app is its owner (a lab on localhost);
/// with it, owner requests carry the key (X-Owner-Key header or owner_key cookie). A share token grants read access to
/// exactly the runs it names, and nothing else; a revoked token stops working at once (no caching).
/// </summary>
public sealed class Access(AppDb db, IOptions<LabOptions> options)
{
    public const string KeyHeader = "X-Owner-Key";
    public const string KeyCookie = "owner_key";

    public bool IsOwner(HttpContext? http)
    {
        var key = options.Value.OwnerKey;
        if (string.IsNullOrEmpty(key)) return true;
        if (http is null) return false;
        var presented = http.Request.Headers[KeyHeader].FirstOrDefault() ?? http.Request.Cookies[KeyCookie];
        return presented is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(key));
    }

    /// <summary>The live (not revoked) share link with this token, or null.</summary>
    public async Task<ShareLink?> ShareAsync(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 64) return null;
        await using var context = db.Create();
        return await context.ShareLinks.AsNoTracking().FirstOrDefaultAsync(s => s.Token == token && s.RevokedAt == null);
    }

    public async Task<bool> CanReadAsync(HttpContext? http, Guid runId, string? shareToken) =>
        shareToken is null ? IsOwner(http) : (await ShareAsync(shareToken))?.Runs.Contains(runId) == true;

    public static string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))
        .TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
