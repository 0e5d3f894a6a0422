using System.Security.Cryptography;
using IdentityInit.Training;
using IdentityInit.Training.Weights;
using Microsoft.Extensions.Options;

namespace IdentityInit.Web.Runs;

/// <summary>
/// A safetensors file placed where every worker reads it, ready to be a run's <c>initFile</c>: named in requests by its
/// <see cref="Id"/> (the content's SHA-256), never by a server path.
/// </summary>
public sealed record StagedWeights(string Id, int Tensors, long Bytes, string Source)
{
    /// <summary>What a run's config names as <c>initFile</c>: the id (the API's answers carry it under that name too).</summary>
    public string InitFile => Id;
}

/// <summary>
/// Weights in and out of runs: a run's checkpoint exported as safetensors (reference names), and weights staged as the
/// initialization of a new run, from an upload or from a run's checkpoint. Staged files live under the shared
/// CheckpointDir (imports/), named by content hash, so any worker that resumes or starts the run reads the same bytes.
/// </summary>
public sealed class WeightImports(IOptions<LabOptions> options)
{
    public const long MaxUploadBytes = 2L << 30;

    string Folder => Path.Combine(options.Value.CheckpointRoot, "imports");

    /// <summary>Whether <paramref name="initFile"/> is the id of staged weights (64 lowercase hex digits, the file's SHA-256).</summary>
    public static bool IsId(string initFile) => System.Text.RegularExpressions.Regex.IsMatch(initFile, "^[0-9a-f]{64}$");

    /// <summary>
    /// The file of the staged weights <paramref name="id"/> names (null: no such weights): the only files a request may use
    /// as initFile, so a request can neither read nor probe any other file on the server.
    /// </summary>
    public string? PathOf(string id) => PathOf(id, options.Value.CheckpointRoot);

    static string? PathOf(string id, string checkpointRoot) =>
        IsId(id) && Path.Combine(checkpointRoot, "imports", id + ".safetensors") is var path && File.Exists(path) ? path : null;

    /// <summary>
    /// The config the engine is given: a staged id as initFile becomes the staged file's path (the engine and the CLI read
    /// paths). Anything else is left as it is (runs stored before ids named the file by its path).
    /// </summary>
    public static ExperimentConfig Resolved(ExperimentConfig c, string checkpointRoot) =>
        c.InitFile is { } id && PathOf(id, checkpointRoot) is { } path ? c with { InitFile = path } : c;

    public ExperimentConfig Resolved(ExperimentConfig c) => Resolved(c, options.Value.CheckpointRoot);

    readonly Lock gate = new();
    (string Key, string? Problem)? lastFit;

    /// <summary>
    /// What keeps the staged weights a config names from fitting the model it builds (null: they fit), from the file's
    /// header: checked when the run is queued, not when its process loads them. The New run form asks on every change,
    /// so the last answer is kept for as long as the fields that shape the model stay the same.
    /// </summary>
    public string? Misfit(ExperimentConfig c)
    {
        c = Resolved(c);
        var key = string.Join('|', c.InitFile, c.Architecture, c.Depth, c.Widen, c.BatchNorm, c.Dataset, c.ToyHidden, c.ToyUnique,
            c.LeakyInit);
        lock (gate) if (lastFit is { } last && last.Key == key) return last.Problem;
        var (channels, height, width, classes, _) = Training.Data.DatasetCatalog.Shape(c.Dataset);
        string? problem;
        using (TorchSharp.torch.NewDisposeScope())
        {
            using var random = TorchRuntime.GlobalRandom.EnterScope(); // PyTorch's default layer init draws from the global generator
            using var model = Training.Models.ModelFactory.Create(c, channels, height, width, classes);
            problem = ModelWeights.Misfit(model, Safetensors.Header(c.InitFile!).Entries);
        }
        lock (gate) lastFit = (key, problem);
        return problem;
    }

    /// <summary>
    /// Writes a run's checkpoint at <paramref name="step"/> (null: the last) to <paramref name="file"/>; returns its step.
    /// </summary>
    public long Export(RunDto run, long? step, string file) =>
        ModelWeights.ExportCheckpoint(Resolved(run.ReadConfig()),
            Path.Combine(options.Value.CheckpointRoot, run.Id.ToString("N")), step, file);

    /// <summary>
    /// Stages an uploaded file after reading it as safetensors; InvalidDataException says what is wrong with it, by the upload's name.
    /// </summary>
    public async Task<StagedWeights> FromUploadAsync(Stream content, string name, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(Folder);
        var temporary = Path.Combine(Folder, $"upload-{Guid.NewGuid():N}.tmp");
        try
        {
            await using (var file = File.Create(temporary)) await content.CopyToAsync(file, cancellationToken);
            return Stage(temporary, $"upload {name}");
        }
        catch (InvalidDataException e) // the reader names the file: name the upload, not this server's staging path
        {
            throw new InvalidDataException(e.Message.Replace(temporary, name), e);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>Stages a run's checkpoint (null: its last; 0: its initialization).</summary>
    public StagedWeights FromRun(RunDto run, long? step)
    {
        Directory.CreateDirectory(Folder);
        var temporary = Path.Combine(Folder, $"run-{Guid.NewGuid():N}.tmp");
        try
        {
            var saved = Export(run, step, temporary);
            return Stage(temporary, $"run {run.Name} ({run.Id}) at step {saved}");
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    StagedWeights Stage(string temporary, string source)
    {
        var tensors = Safetensors.Read(temporary); // the format check: header, dtypes, offsets
        var count = tensors.Count;
        foreach (var (_, value) in tensors) value.Dispose();
        string hash;
        using (var stream = File.OpenRead(temporary)) hash = Convert.ToHexStringLower(SHA256.HashData(stream));
        var final = Path.Combine(Folder, hash + ".safetensors");
        if (!File.Exists(final)) File.Move(temporary, final);
        return new StagedWeights(hash, count, new FileInfo(final).Length, source);
    }
}
