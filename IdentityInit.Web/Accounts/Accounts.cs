using IdentityInit.Training;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;

namespace IdentityInit.Web.Accounts;

public sealed record UserRow(string Name, string Role, int Runs, bool LockedOut);

public sealed record TokenRow(Guid Id, string Name, string Prefix, string Scope, DateTime CreatedAt, DateTime? LastUsedAt,
    DateTime? RevokedAt,
    DateTime? ExpiresAt);

public sealed record NewToken(string Token, TokenRow Row);

/// <summary>
/// Accounts, one place for the API, the pages and start-up: invitations (one-time links that create an account with a
/// role; the first admin's is printed to the console), roles, and personal API tokens (stored as SHA-256, shown once).
/// Identity's managers are scoped; each call takes its own scope because Blazor circuits outlive requests.
/// </summary>
public sealed class Accounts(IServiceScopeFactory scopes, AppDb db, Revocations revocations)
{
    public const string TokenPrefix = "ii_";
    public const string ReadScope = "read";
    public const string WriteScope = "write";
    public const int MinPassword = 10;
    public const int MaxUserName = 64;
    public static readonly TimeSpan InvitationLifetime = TimeSpan.FromDays(7);

    public static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public async Task<bool> AnyUsersAsync()
    {
        await using var context = db.Create();
        return await context.Users.AnyAsync();
    }

    /// <summary>A one-time link token for a new account with <paramref name="role"/>.</summary>
    public async Task<string> InviteAsync(string role, string? createdBy)
    {
        if (!LabRoles.All.Contains(role)) throw new ArgumentException($"role must be one of {string.Join(", ", LabRoles.All)}",
            nameof(role));
        var token = Sharing.Access.NewToken();
        await using var context = db.Create();
        context.Invitations.Add(new Invitation
        {
            Id = Guid.NewGuid(), Hash = Hash(token), Role = role, CreatedBy = createdBy, CreatedAt = DateTime.UtcNow,
            ExpiresAt = DateTime.UtcNow + InvitationLifetime,
        });
        await context.SaveChangesAsync();
        return token;
    }

    /// <summary>The role a live invitation grants, or null when it is unknown, used or expired.</summary>
    public async Task<string?> InvitationRoleAsync(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 64) return null;
        await using var context = db.Create();
        var hash = Hash(token);
        var invitation = await context.Invitations.AsNoTracking().FirstOrDefaultAsync(i => i.Hash == hash);
        return invitation is { UsedAt: null } && invitation.ExpiresAt > DateTime.UtcNow ? invitation.Role : null;
    }

    /// <summary>Creates the account an invitation grants; the invitation is used up only when the account exists.</summary>
    public async Task<(string? UserName, ValidationErrors Errors)> AcceptAsync(string? token, string? userName, string? password)
    {
        var errors = new ValidationErrors();
        var role = await InvitationRoleAsync(token);
        if (role is null)
        {
            errors.Add("invitation", "this invitation link is unknown, already used or expired; ask an admin for a new one");
            return (null, errors);
        }
        await using var context = db.Create();
        var hash = Hash(token!);
        // Claim the invitation first, atomically: two tabs accepting the same link cannot both create an account.
        var claimed = await context.Invitations.Where(i => i.Hash == hash && i.UsedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(i => i.UsedAt, DateTime.UtcNow).SetProperty(i => i.UsedBy, userName));
        if (claimed == 0)
        {
            errors.Add("invitation", "this invitation link has just been used");
            return (null, errors);
        }
        errors = await CreateUserAsync(userName, password, role);
        if (errors.Count > 0)
            await context.Invitations.Where(i => i.Hash == hash)
                .ExecuteUpdateAsync(s => s.SetProperty(i => i.UsedAt, (DateTime?)null).SetProperty(i => i.UsedBy, (string?)null));
        return (errors.Count == 0 ? userName : null, errors);
    }

    public async Task<ValidationErrors> CreateUserAsync(string? userName, string? password, string role)
    {
        var errors = new ValidationErrors();
        if (string.IsNullOrWhiteSpace(userName) || userName.Length > MaxUserName
            || !userName.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            errors.Add("userName", $"use 1 to {MaxUserName} letters, digits, '.', '-' or '_'");
        if (string.IsNullOrEmpty(password) || password.Length < MinPassword)
            errors.Add("password", $"use at least {MinPassword} characters");
        if (errors.Count > 0) return errors;
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        await EnsureRolesAsync(scope.ServiceProvider);
        var user = new IdentityUser(userName!);
        var created = await users.CreateAsync(user, password!);
        if (!created.Succeeded)
        {
            foreach (var error in created.Errors)
                errors.Add(error.Code.Contains("Password", StringComparison.Ordinal) ? "password" : "userName", error.Description);
            return errors;
        }
        await users.AddToRoleAsync(user, role);
        return errors;
    }

    static async Task EnsureRolesAsync(IServiceProvider services)
    {
        var roles = services.GetRequiredService<RoleManager<IdentityRole>>();
        foreach (var role in LabRoles.All)
            if (!await roles.RoleExistsAsync(role)) await roles.CreateAsync(new IdentityRole(role));
    }

    public async Task<List<UserRow>> UsersAsync()
    {
        await using var context = db.Create();
        var roles = await (from ur in context.UserRoles join r in context.Roles on ur.RoleId equals r.Id select new { ur.UserId, r.Name })
            .ToListAsync();
        var runs = await context.Runs.GroupBy(r => r.Owner).Select(g => new { Owner = g.Key, Count = g.Count() })
            .ToDictionaryAsync(g => g.Owner, g => g.Count);
        var users = await context.Users.AsNoTracking().OrderBy(u => u.UserName).ToListAsync();
        return [.. users.Select(u => new UserRow(u.UserName!, HighestRole(roles.Where(r => r.UserId == u.Id).Select(r => r.Name!)),
            runs.GetValueOrDefault(u.UserName!), u.LockoutEnd > DateTimeOffset.UtcNow))];
    }

    static string HighestRole(IEnumerable<string> roles) => LabRoles.All.FirstOrDefault(roles.Contains) ?? LabRoles.Viewer;

    /// <summary>Gives a user exactly one role; the last admin cannot stop being one. Sessions pick it up within a minute.</summary>
    public async Task<ValidationErrors> SetRoleAsync(string userName, string role)
    {
        var errors = new ValidationErrors();
        if (!LabRoles.All.Contains(role)) errors.Add("role", $"role must be one of {string.Join(", ", LabRoles.All)}");
        if (errors.Count > 0) return errors;
        await using var scope = scopes.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<IdentityUser>>();
        if (await users.FindByNameAsync(userName) is not { } user)
        {
            errors.Add("userName", $"there is no user {userName}");
            return errors;
        }
        var current = await users.GetRolesAsync(user);
        if (current.Contains(LabRoles.Admin) && role != LabRoles.Admin && (await users.GetUsersInRoleAsync(LabRoles.Admin)).Count == 1)
        {
            errors.Add("role", $"{userName} is the only admin; make someone else admin first");
            return errors;
        }
        await EnsureRolesAsync(scope.ServiceProvider);
        await users.RemoveFromRolesAsync(user, current);
        await users.AddToRoleAsync(user, role);
        await users.UpdateSecurityStampAsync(user); // signed-in sessions are re-checked against the stamp
        await revocations.RevokeEverywhereAsync(Revocations.User(userName)); // open live connections reconnect under the new role
        return errors;
    }

    /// <summary>The longest a token may be given to live, in days (ten years); no expiry at all is also allowed.</summary>
    public const int MaxTokenDays = 3650;

    /// <param name="expiresInDays">days until it is refused (1 to <see cref="MaxTokenDays"/>); null: until revoked</param>
    public async Task<(NewToken? Token, ValidationErrors Errors)> CreateTokenAsync(string userName, string? name, string? scope,
        int? expiresInDays = null)
    {
        var errors = new ValidationErrors();
        if (string.IsNullOrWhiteSpace(name) || name.Length > 100 || ConfigValidation.HasControl(name))
            errors.Add("name", "name the token (1 to 100 characters, one line), e.g. the script that uses it");
        if (scope is not (ReadScope or WriteScope)) errors.Add("scope", $"scope must be '{ReadScope}' or '{WriteScope}'");
        if (expiresInDays is < 1 or > MaxTokenDays) errors.Add("expiresInDays",
            $"from 1 to {MaxTokenDays} days, or leave it out for a token that lasts until revoked; got {expiresInDays}");
        await using var context = db.Create();
        var user = await context.Users.AsNoTracking().FirstOrDefaultAsync(u => u.UserName == userName);
        if (user is null) errors.Add("userName", $"there is no user {userName}");
        if (errors.Count > 0) return (null, errors);
        var secret = TokenPrefix + Sharing.Access.NewToken();
        var token = new ApiToken
        {
            Id = Guid.NewGuid(), UserId = user!.Id, Name = name!.Trim(), Hash = Hash(secret), Prefix = secret[..9], Scope = scope!,
            CreatedAt = DateTime.UtcNow, ExpiresAt = expiresInDays is { } days ? DateTime.UtcNow.AddDays(days) : null,
        };
        context.ApiTokens.Add(token);
        await context.SaveChangesAsync();
        return (new NewToken(secret, Row(token)), errors);
    }

    static TokenRow Row(ApiToken t) => new(t.Id, t.Name, t.Prefix, t.Scope, t.CreatedAt, t.LastUsedAt, t.RevokedAt, t.ExpiresAt);

    public async Task<List<TokenRow>> TokensAsync(string userName)
    {
        await using var context = db.Create();
        var tokens = await (from t in context.ApiTokens join u in context.Users on t.UserId equals u.Id
                            where u.UserName == userName select t).AsNoTracking().ToListAsync();
        return [.. tokens.OrderByDescending(t => t.CreatedAt).Select(Row)];
    }

    public async Task<bool> RevokeTokenAsync(string userName, Guid id)
    {
        await using var context = db.Create();
        var token = await (from t in context.ApiTokens join u in context.Users on t.UserId equals u.Id
                           where u.UserName == userName && t.Id == id && t.RevokedAt == null select t).FirstOrDefaultAsync();
        if (token is null) return false;
        token.RevokedAt = DateTime.UtcNow;
        await context.SaveChangesAsync();
        await revocations.RevokeEverywhereAsync(Revocations.Token(token.Id)); // its open live connections close at once
        return true;
    }

    /// <summary>
    /// The principal a live token stands for: its user with the user's current role (write scope), or as a viewer (read
    /// scope). Looked up on every request, so a revoked token or a changed role counts at once.
    /// </summary>
    /// <summary>The claim naming the personal token a principal came from.</summary>
    public const string TokenIdClaim = "token_id";

    public async Task<ClaimsPrincipal?> PrincipalForTokenAsync(string secret, string authenticationType)
    {
        if (!secret.StartsWith(TokenPrefix, StringComparison.Ordinal) || secret.Length > 100) return null;
        var hash = Hash(secret);
        await using var context = db.Create();
        var now = DateTime.UtcNow;
        var token = await context.ApiTokens.FirstOrDefaultAsync(t =>
            t.Hash == hash && t.RevokedAt == null && (t.ExpiresAt == null || t.ExpiresAt > now));
        if (token is null || await context.Users.AsNoTracking().FirstOrDefaultAsync(u => u.Id == token.UserId) is not { } user) return null;
        var roles = await (from ur in context.UserRoles join r in context.Roles on ur.RoleId equals r.Id
                           where ur.UserId == user.Id select r.Name).ToListAsync();
        var role = token.Scope == WriteScope ? HighestRole(roles!) : LabRoles.Viewer;
        if (token.LastUsedAt is null || token.LastUsedAt < DateTime.UtcNow.AddMinutes(-1))
        {
            token.LastUsedAt = DateTime.UtcNow; // at most one write a minute per token
            await context.SaveChangesAsync();
        }
        var identity = new ClaimsIdentity(
            [new(ClaimTypes.NameIdentifier, user.Id), new(ClaimTypes.Name, user.UserName!), new(ClaimTypes.Role, role),
                new("token_scope", token.Scope),
             new(TokenIdClaim, token.Id.ToString("N"))],
            authenticationType);
        return new ClaimsPrincipal(identity);
    }
}
