using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using IdentityInit.Training;
using IdentityInit.Training.Cli;
using IdentityInit.Training.Initialization;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Runs;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Signal;

/// <summary>Which network to build and which inits to compare at initialization (a preset and/or config, as for a run).</summary>
public sealed record SignalRequest(string? Preset = null, JsonObject? Config = null, IReadOnlyList<string>? Inits = null);

/// <summary>
/// Signal propagation and diversity at initialization, without training: the engine's <c>signal</c> command in a process
/// of its own (libtorch's threads and memory never in the web process), one step-0 snapshot per init.
/// </summary>
public sealed class SignalService(RunService runs, IOptions<LabOptions> options, ILogger<SignalService> logger)
{
    public const int MaxInits = 8;
    static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);

    /// <summary>What the page offers: every scheme, and He at half and twice its scale (scheme*scale works for any scheme).</summary>
    public static IReadOnlyList<string> Inits => [.. Initializer.Drawn, "he-fanin*0.5", "he-fanin*2"];

    /// <summary>The snapshots, or why not (the same validation and size check as queueing a run; nothing is started then).</summary>
    public async Task<(List<Commands.SignalAtInit> Results, ValidationErrors Errors)> MeasureAsync(SignalRequest request, Caller by,
        CancellationToken cancellationToken)
    {
        if (!by.CanQueue) throw new ForbiddenException($"{by.Name ?? "a signed-out visitor"} is a {by.Role ?? "guest"}: only researchers " +
            "and admins start measurements");
        var errors = new ValidationErrors();
        var inits = request.Inits ?? [];
        if (inits.Count is 0 or > MaxInits) errors.Add("inits", $"give 1 to {MaxInits} inits, got {inits.Count}");
        foreach (var (init, i) in inits.Select((x, i) => (x, i)))
            if (Initializer.Variant(init ?? "", out var problem) is null) errors.Add($"inits[{i}]", problem!);
        // The config as a run would be planned: a preset or a config with dataset (and epochs, which a signal ignores).
        var config = request.Config?.DeepClone().AsObject() ?? [];
        if (request.Preset is null && !config.ContainsKey("epochs")) config["epochs"] = 1;
        var (configs, planned) = runs.Plan(new CreateRunRequest(Preset: request.Preset, Config: config));
        foreach (var (field, messages) in planned) foreach (var m in messages) errors.Add(field, m);
        if (errors.Count > 0) return ([], errors);

        var file = Path.Combine(Path.GetTempPath(), $"identityinit-signal-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(file, ConfigOverlay.ToJson(configs[0]), cancellationToken);
        try
        {
            var info = RunProcess.Engine(["signal", "--config", file, "--inits", string.Join(',', inits), "--json",
                "--data-dir", Path.GetFullPath(options.Value.DatasetRoot)]);
            using var process = Process.Start(info)!;
            process.StandardInput.Close();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Limit);
            var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
            try { await process.WaitForExitAsync(timeout.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                if (cancellationToken.IsCancellationRequested) throw;
                errors.Add("config", $"measuring took over {Limit.TotalMinutes:0} minutes: choose a smaller network or probe");
                return ([], errors);
            }
            if (process.ExitCode != 0)
            {
                var why = (await stderr).Trim();
                logger.LogWarning("signal at init failed ({Code}): {Error}", process.ExitCode, why);
                errors.Add("config",
                    why.Length > 0 ? ConfigValidation.Shown(why.Replace("error: ", ""))
                    : $"the engine exited with code {process.ExitCode}");
                return ([], errors);
            }
            var results = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(line => JsonSerializer.Deserialize<Commands.SignalAtInit>(line, EngineJson.Options)!).ToList();
            return (results, errors);
        }
        finally
        {
            File.Delete(file);
        }
    }

}

public static class SignalApi
{
    public static void MapSignalApi(this IEndpointRouteBuilder app) =>
        app.MapPost("/api/signal",
            async (JsonBody<SignalRequest> body, System.Security.Claims.ClaimsPrincipal user, SignalService signal,
                CancellationToken cancellationToken) =>
        {
            if (body.Refusal is { } refusal) return refusal;
            var (results, errors) = await signal.MeasureAsync(body.Value!, Caller.From(user), cancellationToken);
            return errors.Count > 0 ? Results.ValidationProblem(errors, title: "The measurement is invalid")
                : Results.Json(results, EngineJson.Options);
        }).WithTags("signal").AddEndpointFilter(RunsApi.Refusals);
}
