using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Accounts;

/// <summary>
/// How a request is signed in: a personal API token (<c>Authorization: Bearer ii_...</c>, or <c>access_token</c> on
/// the hub, where browsers' WebSockets cannot send headers), else Identity's session cookie. Authorization is declared and
/// denies by default: every endpoint and page needs a signed-in user unless it says <c>AllowAnonymous</c> (sign-in, invitations,
/// shares, health, assets), and writes add their role policies.
/// </summary>
public static class SignIn
{
    public const string Scheme = "lab";
    public const string TokenScheme = "token";

    public static void AddLabAccounts(this IServiceCollection services)
    {
        services.AddSingleton<Accounts>();
        services.AddAuthentication(o =>
            {
                o.DefaultScheme = Scheme;
                o.DefaultChallengeScheme = Scheme;
            })
            .AddPolicyScheme(Scheme, "cookie or token", o => o.ForwardDefaultSelector = http =>
                PresentedToken(http.Request) is null ? IdentityConstants.ApplicationScheme : TokenScheme)
            .AddScheme<AuthenticationSchemeOptions, TokenHandler>(TokenScheme, null)
            .AddIdentityCookies();
        services.AddIdentityCore<IdentityUser>(o =>
            {
                // Length over character classes (NIST SP 800-63B); lockout after repeated failures.
                o.Password = new PasswordOptions
                {
                    RequiredLength = Accounts.MinPassword, RequireDigit = false, RequireLowercase = false,
                    RequireUppercase = false, RequireNonAlphanumeric = false, RequiredUniqueChars = 1
                };
                o.Lockout.MaxFailedAccessAttempts = 10;
                o.User.AllowedUserNameCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
            })
            .AddRoles<IdentityRole>()
            .AddEntityFrameworkStores<Data.AppDbContext>()
            .AddSignInManager()
            .AddDefaultTokenProviders();
        services.ConfigureApplicationCookie(o =>
        {
            o.Cookie.Name = "identityinit";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Lax;
            o.LoginPath = "/login";
            o.ExpireTimeSpan = TimeSpan.FromDays(14);
            o.SlidingExpiration = true;
            o.ReturnUrlParameter = "returnUrl"; // as the sign-in page reads it
            o.Events.OnRedirectToLogin = context => Refuse(context.HttpContext, StatusCodes.Status401Unauthorized, context.RedirectUri);
            o.Events.OnRedirectToAccessDenied = context => Refuse(context.HttpContext, StatusCodes.Status403Forbidden, null);
        });
        // A role change or a sign-out elsewhere reaches open sessions within this long (the stamp is re-read).
        services.Configure<SecurityStampValidatorOptions>(o => o.ValidationInterval = TimeSpan.FromMinutes(1));
        services.AddAuthorizationBuilder()
            // Default-deny: an endpoint or page that declares nothing needs a signed-in user, so a new one is protected
            // without editing any list; the deliberately anonymous ones say AllowAnonymous where they are mapped.
            .SetFallbackPolicy(new Microsoft.AspNetCore.Authorization.AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build())
            .AddPolicy(LabRoles.QueuePolicy, p => p.RequireRole(LabRoles.Admin, LabRoles.Researcher))
            .AddPolicy(LabRoles.AdminPolicy, p => p.RequireRole(LabRoles.Admin));
    }

    /// <summary>
    /// A refusal as its caller can read it: a page sent to sign in (when there is a sign-in redirect and the request is a
    /// browser's GET), anything else a problem body, 401 with the reason a presented token failed, or 403.
    /// </summary>
    static Task Refuse(HttpContext http, int status, string? redirect)
    {
        if (redirect is not null && !http.Request.Path.StartsWithSegments("/api") && HttpMethods.IsGet(http.Request.Method))
        {
            // this site's path, whatever Host said
            http.Response.Redirect(Uri.TryCreate(redirect, UriKind.Absolute, out var absolute) ? absolute.PathAndQuery : redirect);
            return Task.CompletedTask;
        }
        http.Response.StatusCode = status;
        if (status == StatusCodes.Status401Unauthorized) http.Response.Headers.WWWAuthenticate = "Bearer";
        return http.Response.WriteAsJsonAsync(new
        {
            title = status == 401 ? "sign in first" : "not allowed",
            detail = status == 401
                ? PresentedToken(http.Request) is not null ? "the API token is unknown, revoked or expired"
                    : "sign in, or send a personal API token as 'Authorization: Bearer ii_...' (made on the Tokens page)"
                : "your role does not allow this (researchers queue and change their own runs; admins manage the lab)",
            status,
        });
    }

    public static string? PresentedToken(HttpRequest request)
    {
        if (request.Headers.Authorization is [{ } header] && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            return header["Bearer ".Length..].Trim();
        return request.Path.StartsWithSegments("/hubs") && request.Query["access_token"] is [{ Length: > 0 } query] ? query : null;
    }

    /// <summary>
    /// Only a path of this site: "//evil.example/" and "/\evil.example" are hosts to a browser, and so is "/\t/evil.example"
    /// (browsers drop tabs and newlines from URLs); any control character sends the user to the start page.
    /// </summary>
    public static string LocalOrRoot(string? url) =>
        url is { Length: > 0 } && url[0] == '/' && !url.StartsWith("//", StringComparison.Ordinal)
            && !url.StartsWith("/\\", StringComparison.Ordinal)
        && !url.Any(char.IsControl) ? url : "/";

    sealed class TokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
        Accounts accounts)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (PresentedToken(Request) is not { } token) return AuthenticateResult.NoResult();
            return await accounts.PrincipalForTokenAsync(token, TokenScheme) is { } principal
                ? AuthenticateResult.Success(new AuthenticationTicket(principal, TokenScheme))
                : AuthenticateResult.Fail("unknown, revoked or expired API token");
        }

        // A token that may not do this (a read token writing, a viewer's token queueing) gets the same problem body as a
        // signed-in session, not a bare 403.
        protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
            Refuse(Context, StatusCodes.Status403Forbidden, null);

        protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
            Refuse(Context, StatusCodes.Status401Unauthorized, null);
    }
}
