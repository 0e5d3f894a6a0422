using System.Security.Claims;
using System.Text;
using IdentityInit.Training;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using IdentityInit.Web.Sharing;

namespace IdentityInit.Web.Studies;

/// <summary>
/// /api/studies: presets, create, list, one study with its table, extend, cancel, exports; the share side under /api/share/{token}/study.
/// </summary>
public static class StudiesApi
{
    public sealed record ExtendRequest(int? Seeds);

    public static void MapStudiesApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/studies").WithTags("studies").AddEndpointFilter(RunsApi.Refusals);

        api.MapGet("/presets", () => StudyPresets.All.Select(p => new
        {
            p.Name, p.Title, p.Claim, p.Seeds, p.SweepAxis, Arms = p.Arms, CpuConfig = p.CpuConfig,
        }));

        api.MapGet("", async (StudyService studies) => await studies.ListAsync());

        api.MapPost("", async (JsonBody<CreateStudyRequest> body, ClaimsPrincipal user, StudyService studies) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var (study, errors) = await studies.CreateAsync(body.Value!, Caller.From(user));
            return study is null ? Results.ValidationProblem(errors, title: "The study is invalid")
                : Results.Created($"/api/studies/{study.Id}", await studies.ReadAsync(study.Id));
        }).RequireAuthorization(LabRoles.QueuePolicy);

        api.MapGet("/{id:guid}", async (Guid id, StudyService studies) =>
            await studies.ReadAsync(id) is { } study ? Results.Ok(study) : Results.NotFound());

        api.MapPost("/{id:guid}/extend", async (Guid id, JsonBody<ExtendRequest> body, ClaimsPrincipal user, StudyService studies) =>
        {
            if (await studies.GetAsync(id) is null) return Results.NotFound();
            if (body.Refusal is { } refusal) return refusal;
            var errors = await studies.ExtendAsync(id, body.Value!.Seeds ?? 1, Caller.From(user));
            return errors.Count > 0 ? Results.ValidationProblem(errors, title: "The extension is invalid")
                : Results.Ok(await studies.ReadAsync(id));
        }).RequireAuthorization(LabRoles.QueuePolicy);

        api.MapPost("/{id:guid}/cancel", async (Guid id, ClaimsPrincipal user, StudyService studies) =>
        {
            if (await studies.GetAsync(id) is null) return Results.NotFound();
            await studies.CancelAsync(id, Caller.From(user));
            return Results.Accepted($"/api/studies/{id}");
        }).RequireAuthorization(LabRoles.QueuePolicy);

        api.MapGet("/{id:guid}/{file}.{extension}", async (Guid id, string file, string extension, StudyService studies) =>
            await studies.GetAsync(id) is { } study ? Export(await studies.ResultsAsync(study), study, file, extension)
                : Results.NotFound());

        var shared = app.MapGroup("/api/share/{token}/study").WithTags("shared").AllowAnonymous(); // the token is the permission
        shared.MapGet("", async (string token, Access access, StudyService studies) =>
            await SharedAsync(token, access, studies) is { } study ? Results.Ok(await studies.ReadAsync(study.Id, shared: true))
                : Results.NotFound());
        shared.MapGet("/{file}.{extension}", async (string token, string file, string extension, Access access, StudyService studies) =>
            await SharedAsync(token, access, studies) is { } study ? Export(await studies.ResultsAsync(study), study, file, extension)
                : Results.NotFound());
    }

    public static async Task<Study?> SharedAsync(string token, Access access, StudyService studies) =>
        await access.ShareAsync(token) is { StudyId: { } id } ? await studies.GetAsync(id) : null;

    /// <summary>table.csv, table.md, table.tex (the last two with the claims), claims.csv, and each figure as png or svg.</summary>
    static IResult Export(StudyResults results, Study study, string file, string extension)
    {
        var stem = Exports.Exporter.FileStem(study.Name);
        var caveat = StudyPresets.CaveatOf(study);
        if (file == "table")
            return extension switch
            {
                "csv" => Results.File(Encoding.UTF8.GetBytes(StudyExports.Csv(results)), "text/csv", $"{stem}.csv"),
                "md" => Results.File(Encoding.UTF8.GetBytes(StudyExports.Markdown(results, caveat)), "text/markdown", $"{stem}.md"),
                "tex" => Results.File(Encoding.UTF8.GetBytes(StudyExports.Latex(results, caveat)), "application/x-tex", $"{stem}.tex"),
                _ => Results.ValidationProblem(new Dictionary<string, string[]> { ["format"] = [$"'{extension}' is not csv, md or tex"] }),
            };
        if (file == "claims")
            return extension == "csv"
                ? Results.File(Encoding.UTF8.GetBytes(StudyExports.ClaimsCsv(results)), "text/csv", $"{stem}-claims.csv")
                : Results.ValidationProblem(new Dictionary<string, string[]> { ["format"] = [$"'{extension}' is not csv"] });
        if (!StudyExports.Figures(results).Contains(file))
            return Results.ValidationProblem(new Dictionary<string, string[]>
            {
                ["figure"] = [$"'{file}' is not table, claims or one of " +
                $"{string.Join(", ", StudyExports.Figures(results))}"]
            });
        if (extension is not ("png" or "svg"))
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["format"] = [$"'{extension}' is not png or svg"] });
        var bytes = StudyExports.Figure(results, file, extension, out var contentType);
        return Results.File(bytes, contentType, $"{stem}-{file}.{extension}");
    }
}
