using System.Security.Claims;

namespace IdentityInit.Web.Accounts;

/// <summary>The lab's roles, most powerful first, and the authorization policies named after what they allow.</summary>
public static class LabRoles
{
    public const string Admin = "admin";           // users, workers, the jobs dashboard, and every run
    public const string Researcher = "researcher"; // queues runs; cancels, edits, deletes and shares their own
    public const string Viewer = "viewer";         // reads every run
    public static readonly string[] All = [Admin, Researcher, Viewer];

    public const string QueuePolicy = "queue";
    public const string AdminPolicy = "admin";
}

/// <summary>
/// Who is asking (the caller of a page, an API route or the hub; not the viewer role), from the signed-in principal (a session cookie or an
/// API token): pages, the API and the hub decide with the same rules. Anonymous viewers hold at most a share link.
/// </summary>
public sealed record Caller(string? Name, string? Role)
{
    public static readonly Caller Anonymous = new(null, null);

    public bool SignedIn => Role is not null && Name is not null;
    public bool IsAdmin => Role == LabRoles.Admin;
    public bool CanQueue => Role is LabRoles.Admin or LabRoles.Researcher;

    /// <summary>Cancel, edit, delete, revoke: the owner if they may still write, or an admin.</summary>
    public bool CanChange(string? owner) => IsAdmin || (CanQueue && owner is not null && owner == Name);

    public static Caller From(ClaimsPrincipal? user)
    {
        if (user?.Identity is not { IsAuthenticated: true, Name: { } name }) return Anonymous;
        var role = LabRoles.All.FirstOrDefault(user.IsInRole);
        return role is null ? Anonymous : new Caller(name, role);
    }
}
