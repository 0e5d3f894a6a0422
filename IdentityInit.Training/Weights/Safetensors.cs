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
    public static void Write(string path, IEnumerable<(string Name, Tensor Value)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
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
                if (!Codes.TryGetValue(value.dtype,
                    out var code)) throw new NotSupportedException($"{name}: dtype {value.dtype} has no safetensors code");
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

    /// <summary>The reference reader's limit on the header (100 MB): a larger one is refused before it is parsed.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>One tensor as the header describes it: byte offsets are into the data that follows the header.</summary>
    public sealed record Entry(string Name, ScalarType Dtype, long[] Shape, long Begin, long End);

    /// <summary>
    /// The file's tensors as its header describes them, in the file's order, read and checked without reading any data:
    /// an object of entries, each a known dtype, a shape of non-negative integers whose byte size does not overflow,
    /// offsets that match it, and together the offsets cover the data exactly once (no overlap, no hole), as the format
    /// requires. Errors name the file and what is wrong.
    /// </summary>
    public static (List<Entry> Entries, long DataStart) Header(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such weights file", path);
        using var file = File.OpenRead(path);
        InvalidDataException Bad(string what) => new($"{path}: {what}");
        Span<byte> prefix = stackalloc byte[8];
        if (file.Length < 8) throw Bad("not a safetensors file (shorter than its 8-byte header length)");
        file.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes)
            throw Bad($"not a safetensors file (a {headerLength:N0}-byte header; at most {MaxHeaderBytes:N0})");
        if (headerLength > (ulong)(file.Length - 8))
            throw Bad($"not a safetensors file (header length {headerLength:N0} exceeds the file)");
        var text = new byte[(int)headerLength];
        file.ReadExactly(text);
        JsonObject header;
        try
        {
            // A name given twice anywhere, in the header or inside an entry, is refused while parsing (inside an entry it
            // once surfaced only when the entry was read: a 500).
            header = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                     ?? throw Bad("the safetensors header is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw Bad($"the safetensors header is not valid JSON or names a tensor twice ({e.Message})");
        }
        var dataStart = 8 + (long)headerLength;
        var dataLength = file.Length - dataStart;
        var entries = new List<Entry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__") continue;
            if (node is not JsonObject entry) throw Bad($"tensor '{name}' is not an object of dtype, shape and data_offsets");
            var code = entry["dtype"] is JsonValue v && v.TryGetValue<string>(out var c) ? c : null;
            if (code is null || !Codes.ContainsValue(code)) throw Bad($"tensor '{name}' has unsupported dtype " +
                $"{entry["dtype"]?.ToJsonString() ?? "(none)"}");
            var dtype = Codes.First(kv => kv.Value == code).Key;
            var shape = Integers(entry["shape"]) ?? throw Bad($"tensor '{name}' has no shape of non-negative integers");
            var offsets = Integers(entry["data_offsets"]);
            if (offsets is not [var begin, var end]
                || begin > end) throw Bad($"tensor '{name}' has no data_offsets [begin, end] of non-negative integers");
            long size;
            try
            {
                size = checked(shape.Aggregate(ElementSize(dtype), (n, d) => n * d));
            }
            catch (OverflowException)
            {
                throw Bad($"tensor '{name}' has shape [{string.Join(", ", shape)}]: its byte size overflows");
            }
            if (end - begin != size || end > dataLength)
                throw Bad($"tensor '{name}' has data offsets [{begin}, {end}] that do not fit its shape ({size:N0} bytes) or the file's " +
                    $"{dataLength:N0} data bytes");
            entries.Add(new Entry(name, dtype, shape, begin, end));
        }
        var covered = 0L;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != covered) throw Bad($"tensor '{e.Name}' starts at byte {e.Begin} of the data, not at {covered}: tensors " +
                "overlap or leave a hole");
            covered = e.End;
        }
        if (covered != dataLength) throw Bad($"the tensors cover {covered:N0} of the file's {dataLength:N0} data bytes");
        return (entries, dataStart);
    }

    /// <summary>
    /// Every tensor of the file, on the CPU, in the file's order, after <see cref="Header"/> has checked the header. The
    /// data is read tensor by tensor: the largest tensor, not the file, is what passes through memory twice.
    /// </summary>
    public static List<(string Name, Tensor Value)> Read(string path)
    {
        var (entries, dataStart) = Header(path);
        using var file = File.OpenRead(path);
        var result = new List<(string, Tensor)>();
        foreach (var (name, dtype, shape, begin, end) in entries)
        {
            var data = new byte[end - begin];
            file.Position = dataStart + begin;
            file.ReadExactly(data);
            var tensor = empty(shape, dtype);
            tensor.bytes = data;
            result.Add((name, tensor));
        }
        return result;
    }

    static long[]? Integers(JsonNode? node) =>
        node is JsonArray array && array.All(x => x is JsonValue v && v.TryGetValue<long>(out var n) && n >= 0)
            ? [.. array.Select(x => x!.GetValue<long>())] : null;

    static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };
}
