using IdentityInit.Tests.Infrastructure;
using System.Buffers.Binary;
using System.Text.Json;
using IdentityInit.Training;
using IdentityInit.Training.Cli;
using IdentityInit.Training.Models;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class WeightsTests
{
    static Task<(int Code, string Output, string Errors)> Cli(params string[] args) => CliTests.Cli(args);

    static async Task<string> TrainTiny(params string[] sets)
    {
        var dir = Tiny.TempDir();
        string[] args = ["train", "--preset", "constnet-he", "--set", "dataset=synthetic", "--set", "trainLimit=64", "--set",
            "testLimit=32",
            "--set", "batchSize=16", "--set", "depth=7", "--set", "widen=1", "--set", "probeSize=8", "--out", dir];
        var (code, output, errors) = await Cli([.. args, .. sets.SelectMany(s => new[] { "--set", s })]);
        Assert.True(code == 0, output + errors);
        return dir;
    }

    /// <summary>A reader written from the safetensors spec alone: u64 LE header size, JSON header, raw LE data.</summary>
    static Dictionary<string, (string Dtype, long[] Shape, byte[] Data)> ReadBySpec(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, n));
        return header.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToDictionary(p => p.Name, p =>
        {
            var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(o => o.GetInt64()).ToArray();
            return (p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                bytes[(8 + n + (int)offsets[0])..(8 + n + (int)offsets[1])]);
        });
    }

    [Fact]
    public async Task ExportWeightsWritesTheCheckpointInTheReferenceNamesAsSafetensors()
    {
        var run = await TrainTiny();
        var file = Path.Combine(run, "final.safetensors");

        var (code, output, _) = await Cli("export-weights", "--run", run, "--out", file);

        Assert.Equal(0, code);
        Assert.Contains("at step 4", output);
        var tensors = ReadBySpec(file);
        var config = ConfigOverlay.FromJson(File.ReadAllText(Path.Combine(run, "config.json")), "config.json");
        using var model = ModelFactory.Create(config, 3, 32, 32, 10);
        Checkpoint.LoadModel(Checkpoint.Latest(Path.Combine(run, "checkpoints"))!, model);
        foreach (var (name, value) in model.state_dict())
        {
            Assert.Equal(value.shape, tensors[name].Shape);
            Assert.Equal(value.contiguous().bytes.ToArray(), tensors[name].Data);
        }
        Assert.Equal("F32", tensors["block1.layer.0.conv.weight"].Dtype);
        Assert.Equal("I64", tensors["block1.layer.0.bn.num_batches_tracked"].Dtype);
        Assert.Equal([16, 3, 3, 3], tensors["conv1.weight"].Shape);
        Assert.Equal(BitConverter.GetBytes(1f), tensors["block2.layer.0.scale"].Data); // model.py's unused Fixup scale
        Assert.Equal([32, 16, 1, 1], tensors["block2.layer.0.conv_res.weight"].Shape);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task StepZeroIsTheInitializationAndAFileInitRestoresItBitwise()
    {
        var first = await TrainTiny();
        var init = Path.Combine(first, "init.safetensors");
        await Cli("export-weights", "--run", first, "--step", "0", "--out", init);

        var second = await TrainTiny("init=file", $"initFile={init}", "seed=99");

        var a = File.ReadAllBytes(Path.Combine(Checkpoint.Completed(Path.Combine(first, "checkpoints"))[0].Path, "model.bin"));
        var b = File.ReadAllBytes(Path.Combine(Checkpoint.Completed(Path.Combine(second, "checkpoints"))[0].Path, "model.bin"));
        Assert.Equal(a, b);
        Assert.Equal(0, Checkpoint.Completed(Path.Combine(first, "checkpoints"))[0].Step);
    }

    /// <summary>A file of a crafted header and 16 data bytes.</summary>
    static string Crafted(string header, int dataBytes = 16)
    {
        var json = System.Text.Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        var path = Path.Combine(Tiny.TempDir(), "crafted.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Theory]
    [InlineData("""[1, 2]""", "not a JSON object")]
    [InlineData("""{"w": 3}""", "is not an object of dtype, shape and data_offsets")]
    [InlineData("""{"w": {"dtype": 4, "shape": [4], "data_offsets": [0, 16]}}""", "unsupported dtype 4")]
    [InlineData("""{"w": {"dtype": "F32", "shape": "4", "data_offsets": [0, 16]}}""", "no shape of non-negative integers")]
    [InlineData("""{"w": {"dtype": "F32", "data_offsets": [0, 16]}}""", "no shape of non-negative integers")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}""", "no shape of non-negative integers")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 16]}}""", "byte size overflows")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [4], "data_offsets": [-8, 8]}}""", "no data_offsets [begin, end]")]
    [InlineData("""{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "w": """ +
                """{"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}""", "names a tensor twice")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "b": """ +
                """{"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}""", "tensors overlap or leave a hole")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}""", "cover 8 of the file's 16 data bytes")]
    [InlineData("""{"a": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}""",
        "do not fit its shape (32 bytes) or the file's 16 data bytes")]
    public void ACraftedHeaderIsRefusedNamingWhatIsWrongBeforeAnythingIsAllocated(string header, string message)
    {
        var path = Crafted(header);

        var error = Assert.Throws<InvalidDataException>(() => IdentityInit.Training.Weights.Safetensors.Read(path));

        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void AHeaderOverTheReferenceLimitIsRefusedUnread()
    {
        var path = Path.Combine(Tiny.TempDir(), "huge.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 200_000_000);
        File.WriteAllBytes(path, bytes);

        var error = Assert.Throws<InvalidDataException>(() => IdentityInit.Training.Weights.Safetensors.Read(path));

        Assert.Contains("a 200,000,000-byte header; at most 100,000,000", error.Message);
    }

    [Theory]
    [InlineData("--step|7", "--step: no checkpoint at step 7")]
    [InlineData("--step|x", "'x'")]
    public async Task ExportWeightsNamesAMissingStep(string extra, string message)
    {
        var run = await TrainTiny();

        var (code, _, errors) = await Cli(["export-weights", "--run", run, "--out", Path.Combine(run, "w.safetensors"),
            .. extra.Split('|')]);

        Assert.Equal(2, code);
        Assert.Contains(message, errors);
    }

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task AFileThatDoesNotFitTheModelFailsTheRunNamingTheTensors()
    {
        var run = await TrainTiny();
        var init = Path.Combine(run, "init.safetensors");
        await Cli("export-weights", "--run", run, "--step", "0", "--out", init);

        var (code, output, _) = await Cli("train", "--preset", "constnet-he", "--set", "dataset=synthetic", "--set", "depth=10",
            "--set", "init=file", "--set", $"initFile={init}", "--set", "maxSteps=1", "--out", Tiny.TempDir());

        Assert.Equal(1, code);
        Assert.Contains("missing block1.layer.1.bn.weight", output);
    }
}
