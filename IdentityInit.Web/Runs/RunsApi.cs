using Microsoft.AspNetCore.Mvc;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Training;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Components.Runs;
using IdentityInit.Web.Data;
using IdentityInit.Web.Exports;

namespace IdentityInit.Web.Runs;

/// <summary>The owner's API: presets, runs (create, list, get, metrics, cancel, clone), the det-vs-nondet comparison.</summary>
public static class RunsApi
{
    public sealed record FirstDifference(Guid A, Guid B, long? Step, long ComparedThrough, string Message);

    public static void MapRunsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").WithTags("runs").AddEndpointFilter(Refusals);

        api.MapGet("/presets", () => Presets.All.Select(p => new { p.Name, p.Description, p.Scale, p.Config }));
        MapLifecycle(api);
        MapData(api);
        MapWeights(api);
        api.MapGet("/workers",
            async (Workers workers, CancellationToken cancellationToken) => await workers.OverviewAsync(cancellationToken))
            .RequireAuthorization(LabRoles.AdminPolicy);
    }

    /// <summary>A run's life: create, list, read, edit, delete, cancel, clone.</summary>
    static void MapLifecycle(RouteGroupBuilder api)
    {
        api.MapPost("/runs", async (JsonBody<CreateRunRequest> body, ClaimsPrincipal user, RunService service) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var request = body.Value!;
            var (configs, errors) = service.Plan(request);
            if (errors.Count > 0) return Results.ValidationProblem(errors, title: "The run configuration is invalid");
            var runs = await service.CreateAsync(request, configs, Caller.From(user));
            return Results.Created($"/api/runs/{runs[0].Id}", runs.Select(RunDto.Of));
        }).RequireAuthorization(LabRoles.QueuePolicy);

        // One page of runs (newest first unless sorted otherwise); X-Total-Count and a Link rel="next" say what else there is.
        api.MapGet("/runs", async (HttpContext http, RunQueries queries) =>
        {
            var (filter, errors) = ReadFilter(http.Request.Query, http.User.Identity?.Name);
            if (filter is null) return Results.ValidationProblem(errors, title: "The runs query is invalid");
            var page = await queries.PageAsync(filter);
            http.Response.Headers["X-Total-Count"] = page.Total.ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (filter.Offset + page.Runs.Count < page.Total)
            {
                var next = QueryString.Create(http.Request.Query.Where(q => q.Key != "offset")
                    .Append(new("offset", (filter.Offset + filter.Limit).ToString(System.Globalization.CultureInfo.InvariantCulture))));
                http.Response.Headers.Link = $"</api/runs{next}>; rel=\"next\"";
            }
            return Results.Ok(page.Runs.Select(r => RunDto.Of(r) with { Record = null })); // a summary: GET /runs/{id} has the record
        });

        api.MapMethods("/runs/{id:guid}", ["PATCH"],
            async (Guid id, JsonBody<RunEdit> body, ClaimsPrincipal user, RunService service, RunQueries queries) =>
        {
            if (await queries.GetAsync(id) is null) return Results.NotFound();
            if (body.Refusal is { } refusal) return refusal;
            var errors = await service.UpdateAsync(id, body.Value!, Caller.From(user));
            return errors.Count > 0 ? Results.ValidationProblem(errors, title: "The edit is invalid")
                : Results.Ok(RunDto.Of((await queries.GetAsync(id))!));
        });

        api.MapDelete("/runs/{id:guid}", async (Guid id, ClaimsPrincipal user, RunService service, RunQueries queries) =>
        {
            if (await queries.GetAsync(id) is not { } run) return Results.NotFound();
            RunService.Authorize(run, Caller.From(user), "delete");
            if (!run.IsFinished) return Results.Problem($"run {id} is {run.Status}: cancel it first",
                statusCode: StatusCodes.Status409Conflict);
            await service.DeleteAsync(id, Caller.From(user));
            return Results.NoContent();
        });

        api.MapGet("/runs/{id:guid}", async (Guid id, RunQueries queries) =>
            await queries.ReadAsync(id) is { } run ? Results.Ok(run) : Results.NotFound());

        api.MapPost("/runs/{id:guid}/cancel", async (Guid id, ClaimsPrincipal user, RunService service, RunQueries queries) =>
        {
            if (await queries.GetAsync(id) is not { } run) return Results.NotFound();
            if (run.IsFinished) return Results.Problem($"run {id} has already ended ({run.Status})",
                statusCode: StatusCodes.Status409Conflict);
            await service.CancelAsync(id, Caller.From(user));
            return Results.Accepted($"/api/runs/{id}");
        });

        api.MapPost("/runs/{id:guid}/clone", async (Guid id, ClaimsPrincipal user, RunService service, RunQueries queries) =>
        {
            if (await queries.ReadAsync(id) is not { } run) return Results.NotFound();
            var request = RunService.CloneRequest(run);
            var (configs, errors) = service.Plan(request);
            if (errors.Count > 0) return Results.ValidationProblem(errors);
            var runs = await service.CreateAsync(request, configs, Caller.From(user));
            return Results.Created($"/api/runs/{runs[0].Id}", RunDto.Of(runs[0]));
        }).RequireAuthorization(LabRoles.QueuePolicy);
    }

    /// <summary>What a run measured: metrics, chart cards, heatmaps, logs, and where two runs' weights first differ.</summary>
    static void MapData(RouteGroupBuilder api)
    {
        api.MapGet("/runs/{id:guid}/metrics",
            async (Guid id, RunQueries queries, string? format, long? from, long? to, string? series, int? maxPoints) =>
            await queries.GetAsync(id) is null ? Results.NotFound() : await MetricsAsync(queries, id, format, from, to, series, maxPoints));

        // One chart card's history as the run page draws it (columns for iiCharts.add), so a page can draw its charts from
        // the HTML before its interactive circuit is up; upTo is the last step read, where the page's live tail starts.
        api.MapGet("/runs/{id:guid}/charts/{key}", async (Guid id, string key, RunQueries queries, ChartCards cards) =>
        {
            if (ChartSpec.All.FirstOrDefault(s => s.Key == key) is not { } spec)
                return Results.Problem($"no chart '{ConfigValidation.Shown(key)}'; charts: " +
                    $"{string.Join(", ", ChartSpec.All.Select(s => s.Key))}", statusCode: StatusCodes.Status404NotFound);
            if (await queries.ReadAsync(id) is not { } run) return Results.NotFound();
            return Results.Bytes(await cards.JsonAsync(run, spec), "application/json");
        });

        api.MapGet("/runs/{id:guid}/heatmap", async (Guid id, string layer, long? step, RunQueries queries) =>
            await queries.HeatmapAsync(id, layer, step) is { } heatmap ? Results.Ok(heatmap) : Results.NotFound());

        api.MapGet("/runs/{id:guid}/logs", async (Guid id, RunQueries queries) =>
            await queries.GetAsync(id) is null ? Results.NotFound() : Results.Ok(await queries.LogsAsync(id)));

        api.MapGet("/compare/first-difference", async (Guid a, Guid b, RunQueries queries) =>
            await FirstDifferenceAsync(queries, a, b) is { } result ? Results.Ok(result) : Results.NotFound());
    }

    /// <summary>Weights out (safetensors of a checkpoint) and in (staged for a new run's init "file").</summary>
    static void MapWeights(RouteGroupBuilder api)
    {
        api.MapGet("/runs/{id:guid}/weights.safetensors", async (Guid id, long? step, RunQueries queries, WeightImports weights) =>
        {
            if (await queries.ReadAsync(id) is not { } run) return Results.NotFound();
            var file = Path.Combine(Path.GetTempPath(), $"identityinit-weights-{Guid.NewGuid():N}.safetensors");
            try
            {
                var saved = weights.Export(run, step, file);
                var bytes = await File.ReadAllBytesAsync(file);
                return Results.File(bytes, "application/octet-stream", $"{run.Name}-step{saved}.safetensors");
            }
            catch (ArgumentException e) when (e.ParamName is "step" or "checkpointDir")
            {
                return CheckpointProblem(e);
            }
            finally
            {
                File.Delete(file);
            }
        });

        // Weights as the initialization of a new run: stage them, then create the run with init "file" and the returned initFile.
        api.MapPost("/runs/{id:guid}/weights/stage", async (Guid id, long? step, RunQueries queries, WeightImports weights) =>
        {
            if (await queries.ReadAsync(id) is not { } run) return Results.NotFound();
            try
            {
                var staged = weights.FromRun(run, step);
                return Results.Created($"/api/runs/{id}/weights.safetensors", staged);
            }
            catch (ArgumentException e) when (e.ParamName is "step" or "checkpointDir")
            {
                return CheckpointProblem(e);
            }
        }).RequireAuthorization(LabRoles.QueuePolicy);

        api.MapPost("/weights", async (IFormFile? file, WeightImports weights, CancellationToken cancellationToken) =>
        {
            if (file is null || file.Length == 0)
                return Results.ValidationProblem(new Dictionary<string, string[]>
                {
                    ["file"] = ["send a .safetensors file as the " +
                    "multipart field 'file'"]
                });
            try
            {
                await using var content = file.OpenReadStream();
                var staged = await weights.FromUploadAsync(content, file.FileName, cancellationToken);
                return Results.Created((string?)null, staged);
            }
            catch (InvalidDataException e)
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["file"] = [e.Message] });
            }
        }).RequireAuthorization(LabRoles.QueuePolicy).DisableAntiforgery()
            .WithMetadata(new RequestSizeLimitAttribute(WeightImports.MaxUploadBytes))
          .WithMetadata(new RequestFormLimitsAttribute { MultipartBodyLengthLimit = WeightImports.MaxUploadBytes });
    }

    /// <summary>
    /// What the services refuse, as problems, for every endpoint that creates or changes runs (runs, studies): a role that
    /// may not (403, naming whose run it is) and a full queue (429 on the field "queue"; nothing was stored).
    /// </summary>
    public static async ValueTask<object?> Refusals(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try { return await next(context); }
        catch (ForbiddenException e)
        {
            return Results.Problem(e.Message, title: "not allowed",
            statusCode: StatusCodes.Status403Forbidden);
        }
        catch (QueueFullException e)
        {
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["queue"] = [e.Message] }, title: "Too many queued runs",
                statusCode: StatusCodes.Status429TooManyRequests);
        }
    }

    /// <summary>Reads the runs list's query string; every problem is named by its parameter.</summary>
    /// <param name="me">the signed-in user, for owner=me</param>
    public static (RunFilter? Filter, ValidationErrors Errors) ReadFilter(IQueryCollection query, string? me = null)
    {
        var errors = new ValidationErrors();
        string? One(string key) => query.TryGetValue(key, out var v) ? v.ToString() : null;
        int Int(string key, int fallback, int min, int max)
        {
            if (One(key) is not { } text) return fallback;
            if (int.TryParse(text, out var n) && n >= min && n <= max) return n;
            errors.Add(key, $"'{text}' is not a whole number from {min} to {max}");
            return fallback;
        }
        RunStatus? status = null;
        if (One("status") is { Length: > 0 } s)
        {
            if (Enum.TryParse<RunStatus>(s, ignoreCase: true, out var parsed) && !int.TryParse(s, out _)) status = parsed;
            else errors.Add("status", $"'{s}' is not one of {string.Join(", ", Enum.GetNames<RunStatus>())}");
        }
        Guid? group = null;
        if (One("group") is { Length: > 0 } g)
        {
            if (Guid.TryParse(g, out var id)) group = id;
            else errors.Add("group", $"'{g}' is not a run group id");
        }
        var archived = false;
        if (One("archived") is { Length: > 0 } a && !bool.TryParse(a, out archived)) errors.Add("archived", $"'{a}' is not true or false");
        var sort = One("sort") ?? "createdAt";
        if (!RunQueries.SortColumns.Contains(sort)
            && !(sort.StartsWith("config.", StringComparison.Ordinal) && RunQueries.ConfigFieldType(sort[7..]) is not null))
            errors.Add("sort", $"'{sort}' is not a column ({string.Join(", ", RunQueries.SortColumns)}) or config.<field>");
        var order = One("order") ?? "desc";
        if (order is not ("asc" or "desc")) errors.Add("order", $"'{order}' is not asc or desc");
        var config = new Dictionary<string, string>();
        foreach (var (key, value) in query.Where(q => q.Key.StartsWith("config.", StringComparison.Ordinal)))
        {
            var field = key[7..];
            var type = RunQueries.ConfigFieldType(field);
            var text = value.ToString();
            if (type is null) errors.Add(key, $"unknown config field '{field}'");
            else if (type == typeof(bool) && !bool.TryParse(text, out _)) errors.Add(key, $"'{text}' is not true or false");
            else if (type != typeof(bool) && type != typeof(string)
                     && !double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture,
                         out _))
                errors.Add(key, $"'{text}' is not a number");
            else config[field] = text;
        }
        var filter = new RunFilter(One("search"), status, One("tag"), group, archived, sort, order == "desc",
            Int("offset", 0, 0, int.MaxValue), Int("limit", RunFilter.DefaultLimit, 1, RunFilter.MaxLimit), config,
            One("owner") is "me" ? me : One("owner") is { Length: > 0 } owner ? owner : null);
        return errors.Count > 0 ? (null, errors) : (filter, errors);
    }

    /// <summary>
    /// A run's stored points as JSON or CSV, optionally one series prefix, a window of steps, and at most maxPoints per
    /// series (min/max per bucket; without it every point).
    /// </summary>
    public static async Task<IResult> MetricsAsync(RunQueries queries, Guid id, string? format, long? from, long? to, string? series,
        int? maxPoints)
    {
        var errors = new ValidationErrors();
        if (format is not (null or "json" or "csv")) errors.Add("format", $"'{format}' is not json or csv");
        if (from > to) errors.Add("from", $"from ({from}) is after to ({to})");
        if (maxPoints is < 2) errors.Add("maxPoints", $"maxPoints ({maxPoints}) must be at least 2");
        if (errors.Count > 0) return Results.ValidationProblem(errors);
        var points = maxPoints is { } max
            ? RunQueries.Flatten(await queries.SeriesAsync(id, s => series is null || s.StartsWith(series, StringComparison.Ordinal), from,
                to, max))
            : await queries.PointsAsync(id, from, to, series);
        return Exporter.Metrics(points, format ?? "json", id);
    }

    /// <summary>A step that was not kept answers 400 naming the kept ones; a run with no checkpoint yet answers 409.</summary>
    static IResult CheckpointProblem(ArgumentException e)
    {
        var message = e.Message[..e.Message.IndexOf(" (Parameter", StringComparison.Ordinal)];
        return e.ParamName == "step" ? Results.ValidationProblem(new Dictionary<string, string[]> { ["step"] = [message] })
            : Results.Problem(message, statusCode: StatusCodes.Status409Conflict);
    }

    /// <summary>The first step where two runs' weight fingerprints differ (same seed: where their weights part).</summary>
    public static async Task<FirstDifference?> FirstDifferenceAsync(RunQueries queries, Guid a, Guid b)
    {
        if (await queries.GetAsync(a) is null || await queries.GetAsync(b) is null) return null;
        var fa = (await queries.PointsAsync(a, seriesPrefix: "fingerprint")).ToDictionary(p => p.Step, p => p.Value);
        var fb = (await queries.PointsAsync(b, seriesPrefix: "fingerprint")).ToDictionary(p => p.Step, p => p.Value);
        var common = fa.Keys.Intersect(fb.Keys).Order().ToList();
        if (common.Count == 0) return new FirstDifference(a, b, null, 0, "no common steps recorded yet");
        long? lastEqual = null;
        foreach (var step in common)
        {
            if (!fa[step].Equals(fb[step]))
                return new FirstDifference(a, b, step, step, lastEqual switch
                {
                    null => $"weights differ at or before step {step}, the first step compared (fingerprints are recorded every " +
                        "MetricsEvery steps)",
                    { } equal when equal < step - 1 =>
                        $"weights differ at step {step}; identical at step {equal}, the last step compared before it (fingerprints are " +
                            "recorded every MetricsEvery steps)",
                    _ => $"weights differ from step {step} on",
                });
            lastEqual = step;
        }
        return new FirstDifference(a, b, null, common[^1], $"weights identical through step {common[^1]}");
    }
}
