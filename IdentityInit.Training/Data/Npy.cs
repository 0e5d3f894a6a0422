using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace IdentityInit.Training.Data;

/// <summary>NumPy .npy arrays inside .npz archives, as downsampled ImageNet 32x32 ships them (data uint8, labels int).</summary>
internal static partial class Npy
{
    public static Dictionary<string, (long[] Shape, long[] Values, byte[] Bytes)> ReadNpz(string path)
    {
        if (!File.Exists(path)) throw new DatasetFormatException(path, "file not found");
        var arrays = new Dictionary<string, (long[], long[], byte[])>();
        try
        {
            using var zip = ZipFile.OpenRead(path);
            foreach (var entry in zip.Entries)
            {
                using var stream = entry.Open();
                using var memory = new MemoryStream();
                stream.CopyTo(memory);
                arrays[Path.GetFileNameWithoutExtension(entry.Name)] = Parse(path, entry.Name, memory.ToArray());
            }
        }
        catch (InvalidDataException e)
        {
            throw new DatasetFormatException(path, $"corrupt or truncated npz archive ({e.Message})");
        }
        return arrays;
    }

    /// <summary>uint8 arrays come back as raw bytes; integer arrays as values.</summary>
    static (long[] Shape, long[] Values, byte[] Bytes) Parse(string path, string entry, byte[] npy)
    {
        if (npy.Length < 10 || npy[0] != 0x93 || Encoding.ASCII.GetString(npy, 1, 5) != "NUMPY")
            throw new DatasetFormatException(path, $"{entry} is not a .npy array");
        var major = npy[6];
        var headerLength = major == 1 ? BitConverter.ToUInt16(npy, 8) : (int)BitConverter.ToUInt32(npy, 8);
        var dataStart = (major == 1 ? 10 : 12) + headerLength;
        var header = Encoding.ASCII.GetString(npy, major == 1 ? 10 : 12, headerLength);
        var descr = DescrPattern().Match(header).Groups[1].Value;
        if (header.Contains("'fortran_order': True", StringComparison.Ordinal))
            throw new DatasetFormatException(path, $"{entry}: Fortran-ordered arrays are not supported");
        var shape = ShapePattern().Match(header).Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        var count = shape.Aggregate(1L, (a, d) => a * d);
        var width = descr switch { "|u1" => 1, "<i2" => 2, "<i4" => 4, "<i8" => 8, _ => 0 };
        if (width == 0) throw new DatasetFormatException(path, $"{entry}: dtype {descr} is not supported");
        if (npy.Length - dataStart != count * width)
            throw new DatasetFormatException(path, $"{entry}: truncated, needs {count * width} bytes, found {npy.Length - dataStart}");
        var data = npy.AsSpan(dataStart);
        if (width == 1) return (shape, [], data.ToArray());
        var values = new long[count];
        for (var i = 0; i < count; i++)
            values[i] = width switch
            {
                2 => BitConverter.ToInt16(data[(i * 2)..]),
                4 => BitConverter.ToInt32(data[(i * 4)..]),
                _ => BitConverter.ToInt64(data[(i * 8)..]),
            };
        return (shape, values, []);
    }

    /// <summary>Writes a .npy of uint8 (values 0..255) or int64 values, for tests and fixtures.</summary>
    public static byte[] Write(long[] shape, byte[]? bytes, long[]? values)
    {
        var descr = bytes is not null ? "|u1" : "<i8";
        var dims = string.Join(", ", shape) + (shape.Length == 1 ? "," : "");
        var header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        header = header.PadRight(((10 + header.Length + 1 + 63) / 64 * 64) - 10 - 1) + "\n";
        using var output = new MemoryStream();
        output.Write([0x93, .. "NUMPY"u8, 1, 0]);
        output.Write(BitConverter.GetBytes((ushort)header.Length));
        output.Write(Encoding.ASCII.GetBytes(header));
        if (bytes is not null) output.Write(bytes);
        else foreach (var v in values!) output.Write(BitConverter.GetBytes(v));
        return output.ToArray();
    }

    [GeneratedRegex(@"'descr':\s*'([^']+)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'shape':\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
