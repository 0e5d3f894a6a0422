using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training.Weights;

/// <summary>
/// A model's weights in the reference's names. The engine's module names are model.py's and remodel.py's, so the state
/// dict maps one to one; model.py's blocks also carry Fixup parameters unused with BatchNorm (scale 1, biases 0), which
/// the export adds so that WideResNet.load_state_dict (strict) accepts the file, and the import skips.
/// </summary>
public static class ModelWeights
{
    static readonly string[] FixupExtras = ["scale", "biases.0", "biases.1"];

    public static List<(string Name, Tensor Value)> Export(ImageModel model)
    {
        var state = model.state_dict().Select(kv => (kv.Key, kv.Value)).ToList();
        if (model is not ConstNet) return state;
        var blocks = state.Select(s => s.Key).Where(k => k.EndsWith(".conv.weight", StringComparison.Ordinal))
            .Select(k => k[..^".conv.weight".Length]).ToList();
        foreach (var block in blocks)
            foreach (var extra in FixupExtras)
                state.Add(($"{block}.{extra}", extra == "scale" ? ones(1) : zeros(1)));
        return state;
    }

    public static void Save(ImageModel model, string path, IReadOnlyDictionary<string, string>? metadata = null) =>
        Safetensors.Write(path, Export(model), metadata);

    /// <summary>
    /// Writes a run's checkpoint at <paramref name="step"/> (null: the last; 0: the initialization) as safetensors and
    /// returns its step; an ArgumentException names a missing step and the ones kept.
    /// </summary>
    public static long ExportCheckpoint(ExperimentConfig config, string checkpointDir, long? step, string file)
    {
        var checkpoints = Checkpoint.Completed(checkpointDir);
        if (checkpoints.Count == 0) throw new ArgumentException($"no checkpoints in {checkpointDir}", nameof(checkpointDir));
        var (found, path) = step is { } wanted
            ? checkpoints.FirstOrDefault(c => c.Step == wanted) is { Path: not null } hit ? hit
                : throw new ArgumentException($"no checkpoint at step {wanted}; kept: {string.Join(", ", checkpoints.Select(c => c.Step))}",
                    nameof(step))
            : checkpoints[^1];
        var (channels, height, width, classes, _) = Data.DatasetCatalog.Shape(config.Dataset);
        TorchRuntime.Initialize();
        using var model = ModelFactory.Create(config, channels, height, width, classes);
        Checkpoint.LoadModel(path, model);
        Save(model, file, new Dictionary<string, string>
        {
            ["run"] = config.Name, ["step"] = found.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["architecture"] = config.Architecture, ["config"] = ConfigOverlay.ToJson(config),
        });
        return found;
    }

    /// <summary>
    /// What keeps the file's tensors (as its header lists them) from being this model's state, or null when they fit:
    /// missing, unknown and misshapen tensors, named (five of each at most), joined by "; ". Read from the header alone, so a request
    /// can be checked against the model before it is queued.
    /// </summary>
    public static string? Misfit(ImageModel model, IReadOnlyList<Safetensors.Entry> file)
    {
        var state = model.state_dict();
        var shapes = file.ToDictionary(e => e.Name, e => e.Shape);
        static string List(List<string> names) =>
            string.Join(", ", names.Take(5)) + (names.Count > 5 ? $" and {names.Count - 5} more" : "");
        static string Shape(long[] shape) => $"[{string.Join(", ", shape)}]";
        var missing = state.Keys.Where(k => !shapes.ContainsKey(k)).ToList();
        var extra = shapes.Keys.Where(k => !state.ContainsKey(k) && !FixupExtras.Any(e => k.EndsWith("." + e, StringComparison.Ordinal)))
            .ToList();
        var misshapen = state.Where(kv => shapes.TryGetValue(kv.Key, out var shape) && !shape.SequenceEqual(kv.Value.shape))
            .Select(kv => $"'{kv.Key}' is {Shape(shapes[kv.Key])}, the model expects {Shape(kv.Value.shape)}").ToList();
        if (missing.Count + extra.Count + misshapen.Count == 0) return null;
        return string.Join("; ",
            new[] { missing.Count > 0 ? $"missing {List(missing)}" : null, extra.Count > 0 ? $"unknown {List(extra)}" : null,
                                         misshapen.Count > 0 ? List(misshapen) : null }.OfType<string>());
    }

    /// <summary>
    /// Copies every tensor of the model's state from the file; a missing, extra or misshapen tensor is an error naming it.
    /// </summary>
    public static void Load(ImageModel model, string path)
    {
        if (Misfit(model, Safetensors.Header(path).Entries) is { } misfit) throw new InvalidDataException($"{path}: does not fit this " +
            $"model; {misfit}");
        var file = Safetensors.Read(path);
        try
        {
            var state = model.state_dict();
            var byName = file.ToDictionary(t => t.Name, t => t.Value);
            using var noGrad = no_grad();
            foreach (var (name, target) in state) target.copy_(byName[name].to(target.dtype));
        }
        finally
        {
            foreach (var (_, value) in file) value.Dispose();
        }
    }
}
