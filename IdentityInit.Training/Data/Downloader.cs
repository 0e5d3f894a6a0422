using System.Security.Cryptography;

namespace IdentityInit.Training.Data;

/// <summary>Progress of one download: bytes so far and the total when the server says it.</summary>
internal sealed record DownloadProgress(string File, long Bytes, long? Total);

/// <summary>Streams a file to disk through a temporary name, checks its MD5, and only then gives it its final name.</summary>
internal sealed class Downloader(HttpClient http)
{
    public async Task DownloadAsync(Uri url, string destination, string md5, IProgress<DownloadProgress>? progress,
        CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        var partial = destination + ".partial";
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new HttpRequestException($"{url}: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
            var total = response.Content.Headers.ContentLength;
            await using (var input = await response.Content.ReadAsStreamAsync(cancellationToken))
            await using (var output = File.Create(partial))
            {
                var buffer = new byte[1 << 16];
                long bytes = 0;
                int read;
                while ((read = await input.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    bytes += read;
                    progress?.Report(new DownloadProgress(Path.GetFileName(destination), bytes, total));
                }
                if (total is { } expected && bytes != expected)
                    throw new DatasetFormatException(destination, $"download truncated: {bytes} of {expected} bytes from {url}");
            }
            var actual = Md5(partial);
            if (!string.Equals(actual, md5, StringComparison.OrdinalIgnoreCase))
                throw new DatasetFormatException(destination, $"checksum mismatch: MD5 {actual}, expected {md5} (from {url})");
            File.Move(partial, destination, overwrite: true);
        }
        finally
        {
            if (File.Exists(partial)) File.Delete(partial);
        }
    }

    public static string Md5(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }
}
