using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace IdentityInit.Training.Weights;

/// <summary>
/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a JSON header mapping each
/// name to dtype, shape and [begin, end) byte offsets into the data that follows (row-major, little-endian), and an
/// optional string map "__metadata__". No package on our feed reads or writes it, and the format is this small.
/// </summary>
public static class Safetensors
{
    static readonly Dictionary<ScalarType, string> Codes = new()
    {
        [ScalarType.Float32] = "F32", [ScalarType.Float64] = "F64", [ScalarType.Float16] = "F16", [ScalarType.BFloat16] = "BF16",
        [ScalarType.Int64] = "I64", [ScalarType.Int32] = "I32", [ScalarType.Int16] = "I16", [ScalarType.Int8] = "I8",
        [ScalarType.Byte] = "U8", [ScalarType.Bool] = "BOOL",
    };

    /// <summary>Writes the tensors (in the given order) to a temporary file, then renames it into place.</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Value)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors export needs a little-endian machine");
        var hosts = tensors.Select(t => (t.Name, Value: t.Value.detach().cpu().contiguous())).ToList();
        try
        {
            var header = new JsonObject();
            if (metadata is { Count: > 0 })
                header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
            long offset = 0;
            foreach (var (name, value) in hosts)
            {
                if (!Codes.TryGetValue(value.dtype, out var code)) throw new NotSupportedException($"{name}: dtype {value.dtype} has no safetensors code");
                var length = value.numel() * value.ElementSize;
                header[name] = new JsonObject
                {
                    ["dtype"] = code,
                    ["shape"] = new JsonArray(value.shape.Select(d => (JsonNode?)d).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + length),
                };
                offset += length;
            }
            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            var padded = (json.Length + 7) / 8 * 8; // the spec allows trailing spaces; 8-byte alignment lets readers map the data
            var temporary = path + ".tmp";
            using (var file = File.Create(temporary))
            {
                Span<byte> size = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(size, (ulong)padded);
                file.Write(size);
                file.Write(json);
                for (var i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
                foreach (var (_, value) in hosts) file.Write(value.bytes);
            }
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            foreach (var (_, value) in hosts) value.Dispose();
        }
    }

    /// <summary>Every tensor of the file, on the CPU, in the file's order; errors name the file and what is wrong.</summary>
    public static List<(string Name, Tensor Value)> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such weights file", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new InvalidDataException($"{path}: not a safetensors file (shorter than its 8-byte header length)");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8)) throw new InvalidDataException($"{path}: not a safetensors file (header length {headerLength} exceeds the file)");
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLength))?.AsObject() ?? throw new InvalidDataException($"{path}: empty header");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the safetensors header is not JSON ({e.Message})");
        }
        var dataStart = 8 + (long)headerLength;
        var result = new List<(string, Tensor)>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            var code = (string?)node?["dtype"];
            var dtype = Codes.FirstOrDefault(kv => kv.Value == code).Key;
            if (code is null || !Codes.ContainsValue(code)) throw new InvalidDataException($"{path}: tensor '{name}' has unsupported dtype '{code}'");
            var shape = node!["shape"]!.AsArray().Select(d => (long)d!).ToArray();
            var offsets = node["data_offsets"]!.AsArray().Select(d => (long)d!).ToArray();
            using var probe = empty(shape, dtype);
            var expected = probe.numel() * probe.ElementSize;
            if (offsets.Length != 2 || offsets[1] - offsets[0] != expected || dataStart + offsets[1] > bytes.Length)
                throw new InvalidDataException($"{path}: tensor '{name}' has data offsets [{string.Join(", ", offsets)}] that do not fit its shape or the file");
            var tensor = empty(shape, dtype);
            tensor.bytes = bytes.AsSpan((int)(dataStart + offsets[0]), (int)expected);
            result.Add((name, tensor));
        }
        return result;
    }
}
