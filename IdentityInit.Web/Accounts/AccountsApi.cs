using System.Security.Claims;
using IdentityInit.Web.Data;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;

namespace IdentityInit.Web.Accounts;

/// <summary>
/// Sign-in, sign-out and invitations as form posts from the account pages (antiforgery-checked), and the JSON API for
/// tokens (/api/tokens: your own, from a signed-in session) and users (/api/users, /api/invitations: admins).
/// </summary>
public static class AccountsApi
{
    public sealed record CreateTokenRequest(string? Name, string? Scope, int? ExpiresInDays = null);
    public sealed record RoleRequest(string? Role);
    public sealed record InvitationRequest(string? Role);
    public sealed record InvitationDto(string Url, string Role, DateTime ExpiresAt);

    public static void MapAccountsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("ok")).AllowAnonymous(); // liveness: the process answers
        // Readiness: the database answers too (what a load balancer or Kubernetes routes by).
        app.MapGet("/healthz/ready", async (AppDb db, CancellationToken cancellationToken) =>
            await db.AnswersAsync(cancellationToken) ? Results.Text("ready")
                : Results.Problem("The lab's database does not answer.", title: "Not ready",
                    statusCode: StatusCodes.Status503ServiceUnavailable))
            .AllowAnonymous();

        var forms = app.MapGroup("/account").ExcludeFromDescription().AllowAnonymous(); // signing in, out and accepting an invitation
        forms.MapPost("/login", async ([FromForm] string? userName, [FromForm] string? password, [FromForm] string? returnUrl,
            SignInManager<IdentityUser> signIn) =>
        {
            var target = SignIn.LocalOrRoot(returnUrl);
            var result = string.IsNullOrEmpty(userName) || string.IsNullOrEmpty(password)
                ? Microsoft.AspNetCore.Identity.SignInResult.Failed
                : await signIn.PasswordSignInAsync(userName, password, isPersistent: true, lockoutOnFailure: true);
            if (result.Succeeded) return Results.LocalRedirect(target);
            var error = result.IsLockedOut ? "locked" : "failed";
            return Results.LocalRedirect($"/login?error={error}&returnUrl={Uri.EscapeDataString(target)}");
        });
        forms.MapPost("/logout", async (HttpContext http, IAntiforgery antiforgery, SignInManager<IdentityUser> signIn) =>
        {
            // Binds no form field, so nothing checks the antiforgery field unless asked: another site could sign you out.
            if (!await antiforgery.IsRequestValidAsync(http)) return Results.BadRequest("sign out from the lab's own page");
            await signIn.SignOutAsync();
            return Results.LocalRedirect("/login");
        });
        forms.MapPost("/invite/{token}", async (string token, [FromForm] string? userName, [FromForm] string? password,
            [FromForm] string? confirm, Accounts accounts, SignInManager<IdentityUser> signIn) =>
        {
            var (created, errors) = password != confirm
                ? (null, new Runs.ValidationErrors { ["confirm"] = ["the two passwords differ"] })
                : await accounts.AcceptAsync(token, userName, password);
            if (created is null)
            {
                var message = string.Join(" ", errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"));
                return Results.LocalRedirect($"/invite/{Uri.EscapeDataString(token)}?error={Uri.EscapeDataString(message)}");
            }
            await signIn.PasswordSignInAsync(created, password!, isPersistent: true, lockoutOnFailure: false);
            return Results.LocalRedirect("/");
        });

        var tokens = app.MapGroup("/api/tokens").WithTags("accounts");
        tokens.MapGet("", async (ClaimsPrincipal user, Accounts accounts) => await accounts.TokensAsync(user.Identity!.Name!));
        tokens.MapPost("", async (JsonBody<CreateTokenRequest> body, ClaimsPrincipal user, Accounts accounts) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var request = body.Value!;
            // A token cannot mint tokens: a leaked read token must not become a write token.
            if (user.Identity?.AuthenticationType == SignIn.TokenScheme)
                return Results.Problem("API tokens are made from a signed-in session (the Tokens page), not with another token",
                    statusCode: 403);
            var (token, errors) = await accounts.CreateTokenAsync(user.Identity!.Name!, request.Name, request.Scope, request.ExpiresInDays);
            return token is null ? Results.ValidationProblem(errors, title: "The token request is invalid")
                : Results.Created("/api/tokens", token);
        });
        tokens.MapDelete("/{id:guid}", async (Guid id, ClaimsPrincipal user, Accounts accounts) =>
            await accounts.RevokeTokenAsync(user.Identity!.Name!, id) ? Results.NoContent() : Results.NotFound());

        var admin = app.MapGroup("/api").WithTags("accounts").RequireAuthorization(LabRoles.AdminPolicy);
        admin.MapGet("/users", async (Accounts accounts) => await accounts.UsersAsync());
        admin.MapMethods("/users/{name}", ["PATCH"], async (string name, JsonBody<RoleRequest> body, Accounts accounts) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var errors = await accounts.SetRoleAsync(name, body.Value!.Role ?? "");
            if (errors.ContainsKey("userName")) return Results.NotFound();
            return errors.Count > 0 ? Results.ValidationProblem(errors, title: "The role change is invalid")
                : Results.Ok((await accounts.UsersAsync()).First(u => u.Name == name));
        });
        admin.MapPost("/invitations", async (JsonBody<InvitationRequest> body, ClaimsPrincipal user, Accounts accounts) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var request = body.Value!;
            if (!LabRoles.All.Contains(request.Role))
                return Results.ValidationProblem(new Dictionary<string, string[]>
                {
                    ["role"] = ["role must be one of " +
                    $"{string.Join(", ", LabRoles.All)}"]
                });
            var token = await accounts.InviteAsync(request.Role!, user.Identity!.Name);
            return Results.Created((string?)null,
                new InvitationDto($"/invite/{token}", request.Role!, DateTime.UtcNow + Accounts.InvitationLifetime));
        });
    }
}

/// <summary>
/// A fresh install has no accounts: at start-up the web node prints a one-time link that creates the first admin (a new
/// link at each start until someone has used one). Nothing else can create an account without an admin.
/// </summary>
public sealed class FirstAdmin(Accounts accounts, IServer server, IHostApplicationLifetime lifetime, ILogger<FirstAdmin> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource();
        using var registration = lifetime.ApplicationStarted.Register(started.SetResult);
        await started.Task.WaitAsync(stoppingToken); // the store is migrated and the server's addresses are known
        if (await accounts.AnyUsersAsync()) return;
        var token = await accounts.InviteAsync(LabRoles.Admin, createdBy: null);
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()?.Replace("://[::]", "://localhost")
            .Replace("://0.0.0.0", "://localhost").Replace("://+", "://localhost").Replace("://*", "://localhost") ?? "";
        // The console, not the log: it must show whatever the log level, and only to whoever started the server.
        // Set apart by blank lines: on a first start it is the one line that matters.
        Console.WriteLine("\nIdentityInit has no accounts yet. Create the first admin with this one-time link (valid 7 days): " +
            $"{address}/invite/{token}\n");
        logger.LogWarning("no accounts yet: the first admin's one-time link is on the console");
    }
}
