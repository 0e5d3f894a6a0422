using System.Text.Json;
using System.Text.Json.Serialization;
using IdentityInit.Training;
using IdentityInit.Web.Data;

namespace IdentityInit.Web.Runs;

/// <summary>
/// A run as the API and the pages show it (the pages bind this, never the stored entity); through a share link,
/// <see cref="ForShare"/> leaves out who and where.
/// </summary>
public sealed record RunDto(
    Guid Id, string Name, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Owner, string? Preset,
        string Architecture,
    string Init, string Breakers, string Dataset, string Queue,
    long Seed, RunStatus Status, long Step, long TotalSteps, double? BestTestAccuracy, double? FinalTestAccuracy,
    int? LayersBroken, int? LayerCount, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt, IReadOnlyList<string> Tags,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Notes, bool Archived, Guid? GroupId, Guid? StudyId,
        string? Arm,
    string? Error, string? Worker, DateTime? WorkerSince, long? CheckpointStep, JsonElement Config,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Record)
{
    /// <summary>
    /// What a collaborator reading a shared result needs: the run, its config and its reproducibility record, but not
    /// the owner's name, their notes, or the worker host and process that trained it (nor the record's machine name).
    /// </summary>
    public RunDto ForShare() => this with
    {
        Owner = null,
        Notes = null,
        Worker = null,
        WorkerSince = null,
        Record = Record is { ValueKind: JsonValueKind.Object } record
            ? JsonSerializer.SerializeToElement(record.EnumerateObject().Where(p => !p.NameEquals("machine"))
                .ToDictionary(p => p.Name, p => p.Value))
            : Record,
    };

    [JsonIgnore] public bool IsFinished => Status.HasEnded();

    /// <summary>The run's config as the engine reads it.</summary>
    public ExperimentConfig ReadConfig() => ConfigOverlay.FromJson(Config.GetRawText(), "run config");

    public static RunDto Of(Run r) => new(r.Id, r.Name, r.Owner, r.Preset, r.Architecture, r.Init, r.Breakers, r.Dataset, r.Queue, r.Seed,
        r.Status, r.Step, r.TotalSteps, r.BestTestAccuracy, r.FinalTestAccuracy, r.LayersBroken, r.LayerCount, r.CreatedAt,
        r.StartedAt, r.FinishedAt, r.TagList, r.Notes, r.Archived, r.GroupId, r.StudyId, r.Arm, r.Error, r.Worker, r.WorkerSince,
        r.CheckpointStep, JsonDocument.Parse(r.ConfigJson).RootElement,
            r.RecordJson is null ? null : JsonDocument.Parse(r.RecordJson).RootElement);
}
