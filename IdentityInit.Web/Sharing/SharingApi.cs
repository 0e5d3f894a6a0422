using System.Security.Claims;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Exports;
using IdentityInit.Web.Runs;

namespace IdentityInit.Web.Sharing;

/// <summary>
/// Owner side: create, list and revoke share links (/api/shares). Reader side (/api/share/{token}/...): read-only access
/// to exactly the runs a live link names; anything else, or a revoked link, is 404.
/// </summary>
public static class SharingApi
{
    /// <summary>Runs (one, or a comparison), or one study.</summary>
    public sealed record CreateShareRequest(IReadOnlyList<Guid>? RunIds, Guid? StudyId = null);

    public static void MapSharingApi(this IEndpointRouteBuilder app)
    {
        var owner = app.MapGroup("/api/shares").WithTags("sharing");

        owner.MapPost("", async (JsonBody<CreateShareRequest> body, ClaimsPrincipal user, ShareService shares) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var request = body.Value!;
            var (link, errors) = request.StudyId is { } study && request.RunIds is null
                ? await shares.CreateForStudyAsync(study, Caller.From(user))
                : await shares.CreateAsync(request.RunIds, Caller.From(user));
            return link is null ? Results.ValidationProblem(errors) : Results.Created(link.Url, link);
        }).RequireAuthorization(LabRoles.QueuePolicy);

        owner.MapGet("", async (ClaimsPrincipal user, ShareService shares) => await shares.ListAsync(Caller.From(user)));

        owner.MapDelete("/{token}", async (string token, ClaimsPrincipal user, ShareService shares) =>
            await shares.RevokeAsync(token, Caller.From(user)) ? Results.NoContent() : Results.NotFound());

        var viewer = app.MapGroup("/api/share/{token}").WithTags("shared").AllowAnonymous(); // the token is the permission

        viewer.MapGet("", async (string token, ShareService shares) =>
            await shares.ReadAsync(token) is { } link ? Results.Ok(await shares.RunsOfAsync(link)) : Results.NotFound());

        viewer.MapGet("/runs/{id:guid}/metrics", async (string token, Guid id, string? format, long? from, long? to, string? series,
            int? maxPoints, Access access, RunQueries queries) =>
            (await access.ShareAsync(token))?.Runs.Contains(id) == true
                ? await RunsApi.MetricsAsync(queries, id, format, from, to, series, maxPoints)
                : Results.NotFound());

        viewer.MapGet("/runs/{id:guid}/figures/{chart}.{extension}", async (string token, Guid id, string chart, string extension,
            Access access, RunQueries queries) =>
            (await access.ShareAsync(token))?.Runs.Contains(id) == true
                ? await Exporter.FigureAsync(queries, [id], chart, extension)
                : Results.NotFound());
    }
}
