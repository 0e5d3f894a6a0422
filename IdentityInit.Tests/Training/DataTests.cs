using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using IdentityInit.Training.Data;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class DataTests
{
    static byte[] Pixels(int count, int seed) => Enumerable.Range(0, count).Select(i => (byte)((i * 31 + seed) % 256)).ToArray();

    static void WriteIdxDataset(string folder, int train, int test)
    {
        Directory.CreateDirectory(folder);
        Idx.Write(Path.Combine(folder, "train-images-idx3-ubyte.gz"), [train, 28, 28], Pixels(train * 784, 1), gzip: true);
        Idx.Write(Path.Combine(folder, "train-labels-idx1-ubyte.gz"), [train],
            Enumerable.Range(0, train).Select(i => (byte)(i % 10)).ToArray(), gzip: true);
        Idx.Write(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"), [test, 28, 28], Pixels(test * 784, 2), gzip: true);
        Idx.Write(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"), [test],
            Enumerable.Range(0, test).Select(i => (byte)(9 - i % 10)).ToArray(), gzip: true);
    }

    [Fact]
    public void TheSyntheticSetIsBitwiseItsDefinition()
    {
        // Prototypes (4x4 uniform noise upsampled to 32x32) plus 0.35 Gaussian noise, clamped and rounded to bytes, each
        // split drawn in turn from one generator: written out plainly here, against the in-place version the engine uses.
        var generator = new Generator(20200707);
        var prototypes = nn.functional.interpolate(rand([10, 3, 4, 4], generator: generator), [32, 32], mode: InterpolationMode.Bilinear,
            align_corners: false);
        (Tensor Images, Tensor Labels) Split(int n)
        {
            var labels = (arange(n) % 10).index_select(0, randperm(n, generator: generator));
            var images = prototypes.index_select(0, labels) + 0.35 * randn([n, 3, 32, 32], generator: generator);
            return ((images.clamp(0, 1) * 255).round().to(uint8), labels);
        }
        var (trainImages, trainLabels) = Split(5000);
        var (testImages, testLabels) = Split(1000);

        using var synthetic = new DatasetCatalog().Load("synthetic");

        static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.dtype == b.dtype && a.eq(b).all().item<bool>();
        Assert.True(Same(synthetic.TrainImages, trainImages));
        Assert.True(Same(synthetic.TrainLabels, trainLabels));
        Assert.True(Same(synthetic.TestImages, testImages));
        Assert.True(Same(synthetic.TestLabels, testLabels));
    }

    [Fact]
    [Trait("Speed", "Slow")] // ~9 s (the float64 reference over Fashion-MNIST): left out of ./test.sh --fast
    public void ChannelStatisticsAreBitwiseTheFloat64OnesWithoutAFloat64CopyOfTheImages()
    {
        // Normalisation constants feed every run: the integer sums that replaced a float64 copy of the whole training set
        // (376 MB for Fashion-MNIST, on every run's start) must give the same float32 mean and std to the bit.
        static (float[] Mean, float[] Std) Reference(Tensor images)
        {
            using var scope = NewDisposeScope();
            var x = images.to(float64).div(255).transpose(0, 1).flatten(1);
            return (x.mean([1]).to(float32).data<float>().ToArray(), x.std(1).to(float32).data<float>().ToArray());
        }
        var catalog = new DatasetCatalog();
        using var synthetic = catalog.Load("synthetic");
        List<Tensor> sets = [synthetic.TrainImages, synthetic.TestImages];
        var generator = new Generator(7);
        foreach (var shape in new long[][] { [1, 1, 1, 2], [3, 3, 5, 7], [2500, 3, 8, 8], [1030, 1, 28, 28] })
            sets.Add(randint(0, 256, shape, uint8, generator: generator));
        sets.Add(full([5, 2, 3, 3], 255, uint8)); // every pixel the same: std exactly 0
        // the Debian package, where installed
        using var fashion = catalog.Find("fashion-mnist") is null ? null : catalog.Load("fashion-mnist");
        if (fashion is not null) sets.Add(fashion.TrainImages);

        foreach (var images in sets)
        {
            var (mean, std) = ImageDataset.Statistics(images);
            var (referenceMean, referenceStd) = Reference(images);
            Assert.Equal(referenceMean, mean);
            Assert.Equal(referenceStd, std);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void IdxReadsBackWhatWasWritten(bool gzip)
    {
        var path = Path.Combine(Tiny.TempDir(), "images.idx");
        var pixels = Pixels(3 * 4 * 5, 0);
        Idx.Write(path, [3, 4, 5], pixels, gzip);

        var (dims, data) = Idx.Read(path);

        Assert.Equal([3, 4, 5], dims);
        Assert.Equal(pixels, data);
    }

    [Fact]
    public void TruncatedIdxFileNamesTheFileAndTheShortfall()
    {
        var path = Path.Combine(Tiny.TempDir(), "train-images-idx3-ubyte");
        Idx.Write(path, [10, 28, 28], Pixels(10 * 784, 0), gzip: false);
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..5000]);

        var error = Assert.Throws<DatasetFormatException>(() => Idx.Read(path));

        Assert.Equal(path, error.Path);
        Assert.Contains("truncated", error.Message);
        Assert.Contains("7840", error.Message);
    }

    [Fact]
    public void CorruptGzipNamesTheFile()
    {
        var path = Path.Combine(Tiny.TempDir(), "labels.gz");
        File.WriteAllBytes(path, [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6]);

        var error = Assert.Throws<DatasetFormatException>(() => Idx.Read(path));

        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void CatalogLoadsFashionMnistFromTheDataDirectoryAsTensors()
    {
        var dataDir = Tiny.TempDir();
        WriteIdxDataset(Path.Combine(dataDir, "fashion-mnist"), train: 20, test: 10);

        using var data = new DatasetCatalog(dataDir).Load("fashion-mnist");

        Assert.Equal([20, 1, 28, 28], data.TrainImages.shape);
        Assert.Equal(ScalarType.Byte, data.TrainImages.dtype);
        Assert.Equal(Pixels(784, 1), data.TrainImages[0].flatten().data<byte>().ToArray());
        Assert.Equal([0L, 1, 2], data.TrainLabels[..3].data<long>().ToArray());
        Assert.Equal(9, data.TestLabels[0].item<long>());
        Assert.Equal(10, data.Classes);
    }

    [Fact]
    public void CatalogFindsDebiansFashionMnistWhenTheDataDirectoryLacksIt()
    {
        var debian = Tiny.TempDir();
        WriteIdxDataset(debian, train: 10, test: 10);
        var previous = DatasetCatalog.DebianFashionMnist;
        try
        {
            DatasetCatalog.DebianFashionMnist = debian;

            var found = new DatasetCatalog(Tiny.TempDir()).Find("fashion-mnist");

            Assert.Equal(debian, found);
        }
        finally
        {
            DatasetCatalog.DebianFashionMnist = previous;
        }
    }

    [Fact]
    public void CifarBinaryRecordsSplitIntoLabelsAndChannelMajorImages()
    {
        var dataDir = Tiny.TempDir();
        var dir = Path.Combine(dataDir, "cifar10", "cifar-10-batches-bin");
        Directory.CreateDirectory(dir);
        byte[] Record(byte label, int seed) => [label, .. Pixels(3072, seed)];
        for (var i = 1; i <= 5; i++) File.WriteAllBytes(Path.Combine(dir, $"data_batch_{i}.bin"),
            [.. Record((byte)i, i), .. Record(7, 10 + i)]);
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), Record(3, 99));

        using var data = new DatasetCatalog(dataDir).Load("cifar10");

        Assert.Equal([10, 3, 32, 32], data.TrainImages.shape);
        Assert.Equal([1L, 7, 2, 7, 3, 7, 4, 7, 5, 7], data.TrainLabels.data<long>().ToArray());
        Assert.Equal(Pixels(3072, 99), data.TestImages[0].flatten().data<byte>().ToArray());
        Assert.Equal(125.3f / 255, data.Mean[0]);
    }

    [Fact]
    public void Cifar100UsesTheFineLabel()
    {
        var path = Path.Combine(Tiny.TempDir(), "train.bin");
        File.WriteAllBytes(path, [4, 42, .. Pixels(3072, 0), 5, 17, .. Pixels(3072, 1)]);

        var (labels, images) = Cifar.Read([path], cifar100: true);

        Assert.Equal([42L, 17], labels.data<long>().ToArray());
        Assert.Equal(Pixels(3072, 1), images[1].flatten().data<byte>().ToArray());
    }

    [Fact]
    public void TruncatedCifarFileNamesTheFile()
    {
        var path = Path.Combine(Tiny.TempDir(), "data_batch_1.bin");
        File.WriteAllBytes(path, new byte[3073 + 100]);

        var error = Assert.Throws<DatasetFormatException>(() => Cifar.Read([path], cifar100: false));

        Assert.Equal(path, error.Path);
        Assert.Contains("3073-byte records", error.Message);
    }

    [Fact]
    public void ImageNet32NpzFilesLoadWithZeroBasedLabels()
    {
        var dir = Path.Combine(Tiny.TempDir(), "imagenet32");
        Directory.CreateDirectory(dir);
        void Npz(string name, int n, int seed)
        {
            using var zip = ZipFile.Open(Path.Combine(dir, name), ZipArchiveMode.Create);
            using (var s = zip.CreateEntry("data.npy").Open()) s.Write(Npy.Write([n, 3072], Pixels(n * 3072, seed), null));
            using (var s = zip.CreateEntry("labels.npy")
                .Open()) s.Write(Npy.Write([n], null, Enumerable.Range(1, n).Select(i => (long)i * 100).ToArray()));
        }
        Npz("train_data_batch_1.npz", 3, 1);
        Npz("train_data_batch_2.npz", 2, 2);
        Npz("val_data.npz", 2, 3);

        using var data = new DatasetCatalog(Path.GetDirectoryName(dir)).Load("imagenet32");

        Assert.Equal([5, 3, 32, 32], data.TrainImages.shape);
        Assert.Equal([99L, 199, 299, 99, 199], data.TrainLabels.data<long>().ToArray());
        Assert.Equal(1000, data.Classes);
        Assert.Equal(Pixels(3072, 3)[..10], data.TestImages[0].flatten()[..10].data<byte>().ToArray());
    }

    [Fact]
    public void SyntheticDataIsTheSameEveryTimeAndCoversEveryClass()
    {
        using var a = Synthetic.Create(train: 100, test: 20);
        using var b = Synthetic.Create(train: 100, test: 20);

        Assert.True(a.TrainImages.eq(b.TrainImages).all().item<bool>());
        Assert.Equal([100, 3, 32, 32], a.TrainImages.shape);
        Assert.Equal(10, a.TrainLabels.bincount(null, 0).count_nonzero().item<long>());
    }

    [Fact]
    public void SyntheticDataIsLearnableByTheEngine()
    {
        var summary = Tiny.Run(Tiny.Config with { Init = "he-fanout", Epochs = 3, TestLimit = 128 });

        Assert.Equal(RunStatus.Completed, summary.Status);
        Assert.True(summary.FinalTestAccuracy > 0.5, $"test accuracy {summary.FinalTestAccuracy} after 3 epochs (chance: 0.1)");
    }

    [Fact]
    public void NormalizeUsesPerChannelMeanAndStd()
    {
        var images = tensor(new byte[] { 0, 255, 51, 102 }).reshape(1, 2, 1, 2);

        var x = Augment.Normalize(images, [0.5f, 0.2f], [0.5f, 0.1f]);

        Assert.Equal([-1f, 1f, 0f, 2f], x.flatten().data<float>().ToArray().Select(v => MathF.Round(v, 5)));
    }

    [Fact]
    public void CropAndFlipGivesEachImageACropOfItsReflectPaddingPossiblyFlipped()
    {
        var x = randn(6, 2, 8, 8, generator: new Generator(1));

        var y = Augment.CropAndFlip(x, new Generator(5));

        var padded = nn.functional.pad(x, [4, 4, 4, 4], TorchSharp.PaddingModes.Reflect);
        var flipsSeen = 0;
        for (var i = 0; i < 6; i++)
        {
            var matches = from dy in Enumerable.Range(0, 9)
                          from dx in Enumerable.Range(0, 9)
                          from flip in new[] { false, true }
                          let crop = padded[i, .., dy..(dy + 8), dx..(dx + 8)]
                          where (flip ? crop.flip(2) : crop).eq(y[i]).all().item<bool>()
                          select flip;
            var match = matches.ToList();
            Assert.NotEmpty(match);
            if (match[0]) flipsSeen++;
        }
        Assert.InRange(flipsSeen, 1, 5);
    }

    [Fact]
    public async Task DownloaderStreamsWithProgressAndChecksTheMd5()
    {
        var payload = Pixels(300_000, 4);
        using var server = new LocalServer(_ => payload);
        var target = Path.Combine(Tiny.TempDir(), "sub", "file.gz");
        var reports = new List<DownloadProgress>();

        await new Downloader(new HttpClient()).DownloadAsync(new Uri(server.Url, "file.gz"), target,
            Convert.ToHexStringLower(MD5.HashData(payload)), new SyncProgress<DownloadProgress>(reports.Add), default);

        Assert.Equal(payload, File.ReadAllBytes(target));
        Assert.True(reports.Count > 1);
        Assert.Equal(payload.Length, reports[^1].Bytes);
        Assert.Equal(payload.Length, reports[^1].Total);
    }

    [Fact]
    public async Task CatalogDownloadFromAMirrorRejectsAFileWhoseChecksumDiffersAndLeavesNothingBehind()
    {
        using var server = new LocalServer(path => path.EndsWith(".gz", StringComparison.Ordinal) ? Pixels(1000, 0) : null);
        var dataDir = Tiny.TempDir();
        var catalog = new DatasetCatalog(dataDir, server.Url, new HttpClient());

        var error = await Assert.ThrowsAsync<DatasetFormatException>(() => catalog.LoadAsync("mnist"));

        Assert.Contains("checksum mismatch", error.Message);
        Assert.Contains("f68b3c2dcbeaaa9fbdd348bbdeb94873", error.Message);
        Assert.Contains("/mnist/train-images-idx3-ubyte.gz", server.Requests);
        Assert.Empty(Directory.GetFiles(dataDir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task MissingFileOnTheServerIsAnHttpErrorNamingTheUrl()
    {
        using var server = new LocalServer(_ => null);

        var error = await Assert.ThrowsAsync<HttpRequestException>(() =>
            new Downloader(new HttpClient())
                .DownloadAsync(new Uri(server.Url, "missing.gz"), Path.Combine(Tiny.TempDir(), "x"), "00", null, default));

        Assert.Contains("missing.gz", error.Message);
        Assert.Contains("404", error.Message);
    }

    [Fact]
    public void ImageNet32CannotBeDownloadedAndSaysWhatToDo()
    {
        var error = Assert.Throws<DatasetMissingException>(() => new DatasetCatalog(Tiny.TempDir()).Load("imagenet32"));

        Assert.Contains("image-net.org (login needed)", error.Message);
    }

    sealed class SyncProgress<T>(Action<T> handler) : IProgress<T>
    {
        public void Report(T value) => handler(value);
    }

    /// <summary>An HTTP server on 127.0.0.1 serving what <paramref name="content"/> returns for a path (null: 404).</summary>
    sealed class LocalServer : IDisposable
    {
        readonly HttpListener listener = new();
        public Uri Url { get; }
        public List<string> Requests { get; } = [];

        public LocalServer(Func<string, byte[]?> content)
        {
            var port = FreePort();
            Url = new Uri($"http://127.0.0.1:{port}/");
            listener.Prefixes.Add(Url.ToString());
            listener.Start();
            _ = Task.Run(async () =>
            {
                while (listener.IsListening)
                {
                    HttpListenerContext context;
                    try { context = await listener.GetContextAsync(); }
                    catch (Exception) { return; }
                    var path = context.Request.Url!.AbsolutePath;
                    lock (Requests) Requests.Add(path);
                    var body = content(path);
                    context.Response.StatusCode = body is null ? 404 : 200;
                    if (body is not null)
                    {
                        context.Response.ContentLength64 = body.Length;
                        await context.Response.OutputStream.WriteAsync(body);
                    }
                    context.Response.Close();
                }
            });
        }

        static int FreePort()
        {
            var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            l.Start();
            var port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        public void Dispose() => listener.Close();
    }

    [Fact]
    public async Task AFailedDownloadSaysWhereItLookedWhatItTriedAndTheWaysToProvideTheDataset()
    {
        var dir = Tiny.TempDir();
        var catalog = new DatasetCatalog(dir, new Uri("http://127.0.0.1:9/")); // the discard port: connection refused

        var error = await Assert.ThrowsAsync<DatasetMissingException>(() => catalog.LoadAsync("mnist"));

        Assert.Contains($"dataset 'mnist' is not on this machine: looked in {Path.Combine(dir, "mnist")}", error.Message);
        Assert.Contains("downloading it from http://127.0.0.1:9/ failed", error.Message);
        Assert.Contains("datasets --download mnist", error.Message);
        Assert.Contains("IDENTITYINIT_DATA", error.Message);
    }
}
