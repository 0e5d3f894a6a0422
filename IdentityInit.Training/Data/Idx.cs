using System.Buffers.Binary;
using System.IO.Compression;

namespace IdentityInit.Training.Data;

/// <summary>The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed): big-endian dims, then uint8 data.</summary>
internal static class Idx
{
    public static (int[] Dims, byte[] Data) Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = ReadMaybeGzip(path);
        }
        catch (InvalidDataException e)
        {
            throw new DatasetFormatException(path, $"corrupt gzip stream ({e.Message})");
        }
        if (bytes.Length < 4 || bytes[0] != 0 || bytes[1] != 0)
            throw new DatasetFormatException(path, "not an IDX file (bad magic number)");
        if (bytes[2] != 0x08) throw new DatasetFormatException(path, $"IDX element type 0x{bytes[2]:x2} is not unsigned byte");
        var rank = bytes[3];
        var headerLength = 4 + 4 * rank;
        if (rank == 0 || bytes.Length < headerLength) throw new DatasetFormatException(path, "truncated IDX header");
        var dims = new int[rank];
        for (var i = 0; i < rank; i++) dims[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4 + 4 * i));
        var expected = dims.Aggregate(1L, (a, d) => a * d);
        var found = bytes.Length - headerLength;
        if (found != expected)
            throw new DatasetFormatException(path,
                $"{(found < expected ? "truncated" : "too long")}: header [{string.Join(", ", dims)}] needs {expected} bytes of data, " +
                    $"found {found}");
        return (dims, bytes[headerLength..]);
    }

    public static void Write(string path, int[] dims, byte[] data, bool gzip)
    {
        using var file = File.Create(path);
        using Stream stream = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        stream.Write([0, 0, 0x08, (byte)dims.Length]);
        Span<byte> dim = stackalloc byte[4];
        foreach (var d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(dim, d);
            stream.Write(dim);
        }
        stream.Write(data);
    }

    static byte[] ReadMaybeGzip(string path)
    {
        var raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1f || raw[1] != 0x8b) return raw;
        using var gzip = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
        using var output = new MemoryStream();
        gzip.CopyTo(output);
        return output.ToArray();
    }
}
