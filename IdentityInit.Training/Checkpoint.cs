using System.Text.Json;
using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Training;

/// <summary>
/// The loop state between two steps. RNG state is not stored because there is none to store: every random stream
/// (data order, augmentation, dropout, jitter) is re-seeded from (seed, epoch or step), so the step determines it.
/// </summary>
internal sealed record TrainerState(
    long Step, double EpochLossSum, double EpochCorrect, double EpochSeen, double BestTestAccuracy, double? LastTestAccuracy,
    Dictionary<string, long> BrokeAt, string ConfigJson);

public static class Checkpoint
{
    /// <summary>Writes model, optimizer buffers and loop state to a fresh folder, then renames it into place.</summary>
    internal static string Save(string directory, ImageModel model, Sgd optimizer, TrainerState state)
    {
        Directory.CreateDirectory(directory);
        Tidy(directory);
        var final = Path.Combine(directory, $"step-{state.Step:D9}");
        var temporary = final + ".tmp";
        Directory.CreateDirectory(temporary);
        try
        {
            WriteTensors(Path.Combine(temporary, "model.bin"), model.state_dict().Select(kv => (kv.Key, kv.Value)));
            WriteTensors(Path.Combine(temporary, "optimizer.bin"), optimizer.Buffers.Select((b, i) => ($"momentum.{i}", b)));
            File.WriteAllText(Path.Combine(temporary, "state.json"), JsonSerializer.Serialize(state));
        }
        catch
        {
            Directory.Delete(temporary, recursive: true); // a full disk leaves no half checkpoint behind
            throw;
        }
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(temporary, final);
        foreach (var old in Completed(directory).Where(d => d.Step > 0).SkipLast(2)) // the initialization (step 0) is always kept
            Directory.Delete(old.Path, recursive: true);
        return final;
    }

    /// <summary>Removes half-written checkpoint folders (step-N.tmp) that a process killed while saving left behind.</summary>
    public static void Tidy(string directory)
    {
        if (!Directory.Exists(directory)) return;
        foreach (var stale in Directory.GetDirectories(directory, "step-*.tmp")) Directory.Delete(stale, recursive: true);
    }

    /// <summary>The newest complete checkpoint folder under <paramref name="directory"/>, or null.</summary>
    public static string? Latest(string directory) => Completed(directory).LastOrDefault().Path;

    /// <summary>Complete checkpoint folders (step-N with its state.json), oldest first; anything else there is ignored.</summary>
    public static List<(long Step, string Path)> Completed(string directory) =>
        Directory.Exists(directory)
            ? Directory.GetDirectories(directory, "step-*")
                .Select(d => (Ok: long.TryParse(System.IO.Path.GetFileName(d)["step-".Length..], out var s), Step: s, Path: d))
                .Where(d => d.Ok && File.Exists(System.IO.Path.Combine(d.Path, "state.json")))
                .Select(d => (d.Step, d.Path)).OrderBy(d => d.Step).ToList()
            : [];

    /// <summary>Reads only the model tensors of a checkpoint (for export).</summary>
    public static void LoadModel(string checkpoint, ImageModel model)
    {
        var modelState = model.state_dict();
        ReadTensors(Path.Combine(checkpoint, "model.bin"), name => modelState.TryGetValue(name, out var t) ? t : null);
    }

    internal static TrainerState Load(string checkpoint, ImageModel model, Sgd optimizer)
    {
        var state = JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(Path.Combine(checkpoint, "state.json")))
                    ?? throw new InvalidDataException($"{checkpoint}/state.json is empty");
        var modelState = model.state_dict();
        ReadTensors(Path.Combine(checkpoint, "model.bin"), name => modelState.TryGetValue(name, out var t) ? t : null);
        ReadTensors(Path.Combine(checkpoint, "optimizer.bin"),
            name => int.TryParse(name["momentum.".Length..], out var i) && i < optimizer.Buffers.Count ? optimizer.Buffers[i] : null);
        return state;
    }

    // Format: count, then per tensor: name, dtype, rank, dims, byte length, raw bytes (host order).
    static void WriteTensors(string path, IEnumerable<(string Name, Tensor Value)> tensors)
    {
        var list = tensors.ToList();
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(list.Count);
        foreach (var (name, value) in list)
        {
            using var host = value.detach().cpu().contiguous();
            writer.Write(name);
            writer.Write((int)host.dtype);
            writer.Write(host.dim());
            foreach (var d in host.shape) writer.Write(d);
            var bytes = host.bytes;
            writer.Write(bytes.Length);
            writer.Write(bytes);
        }
    }

    static void ReadTensors(string path, Func<string, Tensor?> target)
    {
        using var reader = new BinaryReader(File.OpenRead(path));
        var count = reader.ReadInt32();
        using var noGrad = no_grad();
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            var dtype = (ScalarType)reader.ReadInt32();
            var shape = new long[reader.ReadInt64()];
            for (var d = 0; d < shape.Length; d++) shape[d] = reader.ReadInt64();
            var bytes = reader.ReadBytes(reader.ReadInt32());
            var destination = target(name) ?? throw new InvalidDataException($"{path}: tensor '{name}' does not belong to this model");
            if (destination.dtype != dtype || !destination.shape.SequenceEqual(shape))
                throw new InvalidDataException($"{path}: tensor '{name}' has shape [{string.Join(", ", shape)}], the model expects " +
                    $"[{string.Join(", ", destination.shape)}]");
            if (bytes.Length != destination.numel() * destination.element_size())
                throw new InvalidDataException($"{path}: tensor '{name}' is cut short ({bytes.Length} of " +
                    $"{destination.numel() * destination.element_size()} bytes)");
            using var host = empty(shape, dtype);
            host.bytes = bytes;
            destination.copy_(host);
        }
    }
}
