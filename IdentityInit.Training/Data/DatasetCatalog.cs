using System.Formats.Tar;
using System.IO.Compression;
using static TorchSharp.torch;

namespace IdentityInit.Training.Data;

/// <summary>A file the catalog can fetch: its name in the dataset folder, where it lives, and its published MD5.</summary>
internal sealed record RemoteFile(string Name, Uri Url, string Md5);

/// <summary>What the catalog knows about a dataset, and where it found it (null when it is not on this machine).</summary>
public sealed record DatasetInfo(string Name, string Description, string? FoundAt, bool Downloadable);

/// <summary>
/// Finds a dataset in the data directory (IDENTITYINIT_DATA, else ~/.local/share/identityinit/datasets) or, for
/// Fashion-MNIST, in Debian's /usr/share/datasets/fashion-mnist; otherwise downloads it from its official location
/// (or <paramref name="mirror"/>, which replaces the host) with a progress callback and an MD5 check.
/// </summary>
public sealed class DatasetCatalog(string? dataDir = null, Uri? mirror = null, HttpClient? http = null)
{
    public static IReadOnlyList<string> Names { get; } =
        ["synthetic", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet32"];

    // Published constants of the reference code; other datasets use their own training-set statistics.
    static readonly float[] CifarMean = [125.3f / 255, 123.0f / 255, 113.9f / 255];
    static readonly float[] CifarStd = [63.0f / 255, 62.1f / 255, 66.7f / 255];
    static readonly string[] IdxFiles =
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];

    static readonly Dictionary<string, RemoteFile[]> Sources = new()
    {
        ["mnist"] = Remote("https://ossci-datasets.s3.amazonaws.com/mnist/", IdxFiles,
            ["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"]),
        ["fashion-mnist"] = Remote("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", IdxFiles,
            ["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"]),
        ["cifar10"] = Remote("https://www.cs.toronto.edu/~kriz/", ["cifar-10-binary.tar.gz"], ["c32a1d4ab5d03f1284b67883e8d87530"]),
        ["cifar100"] = Remote("https://www.cs.toronto.edu/~kriz/", ["cifar-100-binary.tar.gz"], ["03b5dce01913d631647c71ecec9e9cb8"]),
    };

    static readonly Dictionary<string, string> Descriptions = new()
    {
        ["synthetic"] = "10 classes, 3x32x32, generated in-process (5000 train / 1000 test)",
        ["mnist"] = "10 classes, 1x28x28, 60000 / 10000",
        ["fashion-mnist"] = "10 classes, 1x28x28, 60000 / 10000 (Debian: dataset-fashion-mnist)",
        ["cifar10"] = "10 classes, 3x32x32, 50000 / 10000 (binary version)",
        ["cifar100"] = "100 classes, 3x32x32, 50000 / 10000 (binary version, fine labels)",
        ["imagenet32"] = "1000 classes, 3x32x32, 1281167 / 50000 (npz; needs an image-net.org login: place the files yourself)",
    };

    /// <summary>Channels, height, width, classes and training-set size of a dataset, without loading it.</summary>
    public static (int Channels, int Height, int Width, int Classes, long TrainCount) Shape(string name) => name switch
    {
        "synthetic" => (3, 32, 32, 10, 5000),
        "mnist" or "fashion-mnist" => (1, 28, 28, 10, 60000),
        "cifar10" => (3, 32, 32, 10, 50000),
        "cifar100" => (3, 32, 32, 100, 50000),
        "imagenet32" => (3, 32, 32, 1000, 1281167),
        _ => throw new ArgumentException($"unknown dataset '{name}'", nameof(name)),
    };

    public string DataDir { get; } = dataDir ?? Environment.GetEnvironmentVariable("IDENTITYINIT_DATA")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "identityinit", "datasets");

    public static string DebianFashionMnist { get; set; } = "/usr/share/datasets/fashion-mnist";

    static RemoteFile[] Remote(string baseUrl, string[] names, string[] md5s) =>
        names.Select((n, i) => new RemoteFile(n, new Uri(new Uri(baseUrl), n), md5s[i])).ToArray();

    public static bool Downloadable(string name) => Sources.ContainsKey(name);

    public IReadOnlyList<DatasetInfo> List() =>
        Names.Select(n => new DatasetInfo(n, Descriptions[n], n == "synthetic" ? "(generated)" : Find(n), Sources.ContainsKey(n)))
            .ToList();

    /// <summary>The folder holding the dataset's files, or null when it is not on this machine.</summary>
    public string? Find(string name)
    {
        var own = Path.Combine(DataDir, name);
        if (IsComplete(name, own)) return own;
        if (name == "fashion-mnist" && IsComplete(name, DebianFashionMnist)) return DebianFashionMnist;
        return null;
    }

    static bool IsComplete(string name, string folder) => name switch
    {
        "mnist" or "fashion-mnist" => IdxFiles.All(f => File.Exists(Path.Combine(folder, f))),
        "cifar10" => File.Exists(Path.Combine(folder, "cifar-10-batches-bin", "test_batch.bin")),
        "cifar100" => File.Exists(Path.Combine(folder, "cifar-100-binary", "test.bin")),
        "imagenet32" => File.Exists(Path.Combine(folder, "val_data.npz")),
        _ => false,
    };

    /// <summary>Loads a dataset, downloading it first when it is missing and downloadable.</summary>
    internal async Task<ImageDataset> LoadAsync(string name, IProgress<DownloadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        if (name == "synthetic") return Synthetic.Create();
        if (!Names.Contains(name)) throw new ArgumentException($"unknown dataset '{name}': use one of {string.Join(", ", Names)}");
        var folder = Find(name);
        if (folder is null)
        {
            if (!Sources.ContainsKey(name)) throw new DatasetMissingException(Missing(name, null));
            try
            {
                folder = await DownloadAsync(name, progress, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException
                && !cancellationToken.IsCancellationRequested)
            {
                throw new DatasetMissingException(Missing(name,
                    $"downloading it from {(mirror ?? new Uri(Sources[name][0].Url, "/"))} failed ({e.Message})"));
            }
        }
        return Load(name, folder);
    }

    internal ImageDataset Load(string name) => name == "synthetic" ? Synthetic.Create()
        : Load(name, Find(name) ?? throw new DatasetMissingException(Missing(name, null)));

    /// <summary>Where a dataset was looked for, what was tried, and every way to provide it.</summary>
    public string Missing(string name, string? tried)
    {
        var places = new List<string> { Path.Combine(DataDir, name) };
        if (name == "fashion-mnist") places.Add(DebianFashionMnist);
        var ways = new List<string>();
        if (name == "fashion-mnist") ways.Add("install Debian's package: apt-get install dataset-fashion-mnist");
        ways.Add(name switch
        {
            "mnist" or "fashion-mnist" => $"put {string.Join(", ", IdxFiles)} into {places[0]}",
            "cifar10" => $"unpack cifar-10-binary.tar.gz into {places[0]} (giving cifar-10-batches-bin/)",
            "cifar100" => $"unpack cifar-100-binary.tar.gz into {places[0]} (giving cifar-100-binary/)",
            _ => "download Imagenet32_train_npz.zip and Imagenet32_val_npz.zip from image-net.org (login needed) and unzip " +
                $"both into {places[0]}",
        });
        if (Sources.ContainsKey(name))
            ways.Add($"on a machine with internet access run `IdentityInit.Training datasets --download {name} --data-dir DIR` and copy " +
                $"DIR/{name} here");
        ways.Add("or point IDENTITYINIT_DATA (the web app: IdentityInit:DatasetDir) at a folder that holds it");
        return $"dataset '{name}' is not on this machine: looked in {string.Join(" and ", places)}" +
               (tried is null ? (Sources.ContainsKey(name) ? "" : "; it cannot be downloaded automatically") : "; " + tried) +
               ". To provide it: " + string.Join("; ", ways) + ".";
    }

    async Task<string> DownloadAsync(string name, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var folder = Path.Combine(DataDir, name);
        var files = Sources[name];
        var downloader = new Downloader(http ?? SharedHttp.Value);
        foreach (var file in files)
        {
            var url = mirror is null ? file.Url : new Uri(mirror, file.Url.AbsolutePath.TrimStart('/'));
            var target = Path.Combine(folder, file.Name);
            if (!File.Exists(target) || Downloader.Md5(target) != file.Md5)
                await downloader.DownloadAsync(url, target, file.Md5, progress, cancellationToken);
            if (file.Name.EndsWith(".tar.gz", StringComparison.Ordinal)) ExtractTarGz(target, folder);
        }
        return IsComplete(name, folder) ? folder
            : throw new DatasetFormatException(folder, $"download of '{name}' finished but the expected files are missing");
    }

    static readonly Lazy<HttpClient> SharedHttp = new(() => new HttpClient { Timeout = TimeSpan.FromHours(2) });

    static void ExtractTarGz(string archive, string folder)
    {
        try
        {
            using var gzip = new GZipStream(File.OpenRead(archive), CompressionMode.Decompress);
            TarFile.ExtractToDirectory(gzip, folder, overwriteFiles: true);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or FormatException)
        {
            throw new DatasetFormatException(archive, $"corrupt or truncated archive ({e.Message})");
        }
    }

    static ImageDataset Load(string name, string folder)
    {
        switch (name)
        {
            case "mnist" or "fashion-mnist":
                {
                    var (trainImages, trainLabels) = ReadIdxPair(folder, "train");
                    var (testImages, testLabels) = ReadIdxPair(folder, "t10k");
                    var (mean, std) = ImageDataset.Statistics(trainImages);
                    return new ImageDataset(name, trainImages, trainLabels, testImages, testLabels, 10, mean, std);
                }
            case "cifar10":
                {
                    var dir = Path.Combine(folder, "cifar-10-batches-bin");
                    var (trainLabels, trainImages) = Cifar.Read(
                        Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")), cifar100: false);
                    var (testLabels, testImages) = Cifar.Read([Path.Combine(dir, "test_batch.bin")], cifar100: false);
                    return new ImageDataset(name, trainImages, trainLabels, testImages, testLabels, 10, CifarMean, CifarStd);
                }
            case "cifar100":
                {
                    var dir = Path.Combine(folder, "cifar-100-binary");
                    var (trainLabels, trainImages) = Cifar.Read([Path.Combine(dir, "train.bin")], cifar100: true);
                    var (testLabels, testImages) = Cifar.Read([Path.Combine(dir, "test.bin")], cifar100: true);
                    return new ImageDataset(name, trainImages, trainLabels, testImages, testLabels, 100, CifarMean, CifarStd);
                }
            case "imagenet32":
                {
                    var trainFiles = Directory.GetFiles(folder, "train_data_batch_*.npz").Order().ToArray();
                    var (trainImages, trainLabels) = ReadNpz(trainFiles);
                    var (testImages, testLabels) = ReadNpz([Path.Combine(folder, "val_data.npz")]);
                    var (mean, std) = ImageDataset.Statistics(trainImages[..(int)Math.Min(50000, trainImages.shape[0])]);
                    return new ImageDataset(name, trainImages, trainLabels, testImages, testLabels, 1000, mean, std);
                }
            default:
                throw new ArgumentException($"unknown dataset '{name}'", nameof(name));
        }
    }

    static (Tensor Images, Tensor Labels) ReadIdxPair(string folder, string prefix)
    {
        var imagesPath = Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz");
        var labelsPath = Path.Combine(folder, $"{prefix}-labels-idx1-ubyte.gz");
        var (dims, pixels) = Idx.Read(imagesPath);
        var (labelDims, labels) = Idx.Read(labelsPath);
        if (dims.Length != 3) throw new DatasetFormatException(imagesPath, $"expected N x H x W images, found {dims.Length} dimensions");
        if (labelDims.Length != 1 || labelDims[0] != dims[0])
            throw new DatasetFormatException(labelsPath, $"holds {labelDims[0]} labels for {dims[0]} images");
        return (tensor(pixels).reshape(dims[0], 1, dims[1], dims[2]), tensor(labels).to(int64));
    }

    /// <summary>Downsampled ImageNet npz files: data uint8 [N, 3072] (3x32x32, channel-major), labels 1..1000.</summary>
    static (Tensor Images, Tensor Labels) ReadNpz(string[] paths)
    {
        var images = new List<Tensor>();
        var labels = new List<Tensor>();
        foreach (var path in paths)
        {
            var arrays = Npy.ReadNpz(path);
            if (!arrays.TryGetValue("data", out var data) || !arrays.TryGetValue("labels", out var label))
                throw new DatasetFormatException(path, "expected arrays 'data' and 'labels'");
            if (data.Shape.Length != 2 || data.Shape[1] != 3072 || label.Values.Length != data.Shape[0])
                throw new DatasetFormatException(path,
                    $"expected data [N, 3072] and N labels, found [{string.Join(", ", data.Shape)}] and {label.Values.Length}");
            images.Add(tensor(data.Bytes).reshape(-1, 3, 32, 32));
            labels.Add(tensor(label.Values) - 1);
        }
        return (cat(images, 0), cat(labels, 0));
    }
}
