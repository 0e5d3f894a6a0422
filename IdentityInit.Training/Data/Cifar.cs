using static TorchSharp.torch;

namespace IdentityInit.Training.Data;

/// <summary>CIFAR-10/100 "binary version" records: label byte(s) then 3072 bytes of 3x32x32 pixels.</summary>
internal static class Cifar
{
    public const int ImageBytes = 3 * 32 * 32;

    /// <summary>
    /// Labels int64 [N] and images uint8 [N, 3, 32, 32] of <paramref name="paths"/>; CIFAR-100 records carry coarse then fine label.
    /// </summary>
    public static (Tensor Labels, Tensor Images) Read(IEnumerable<string> paths, bool cifar100)
    {
        var labelBytes = cifar100 ? 2 : 1;
        var record = labelBytes + ImageBytes;
        using var all = new MemoryStream();
        foreach (var path in paths)
        {
            if (!File.Exists(path)) throw new DatasetFormatException(path, "file not found");
            var bytes = File.ReadAllBytes(path);
            if (bytes.Length == 0 || bytes.Length % record != 0)
                throw new DatasetFormatException(path,
                    $"truncated or corrupt: {bytes.Length} bytes is not a whole number of {record}-byte records");
            all.Write(bytes);
        }
        var records = tensor(all.ToArray()).reshape(-1, record);
        return (records[.., labelBytes - 1].to(int64), records[.., labelBytes..].reshape(-1, 3, 32, 32).contiguous());
    }
}
