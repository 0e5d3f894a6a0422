using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Models;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
public sealed class ConfigValidationTests
{
    public static TheoryData<string, string, string> InvalidConfigs => new()
    {
        { "Name=", "name", "must not be empty" },
        { "Architecture=resnet", "architecture", "'resnet' is not one of constnet, leakynet, toy" },
        { "Depth=8", "depth", "depth must be 3n + 4" },
        { "Depth=4", "depth", "(7, 10, 13, 16" },
        { "Widen=0", "widen", "widen factor must be an integer from 1 to 64" },
        { "Architecture=leakynet|LeakyInit=h_hhhh_hhhh_hhh", "leakyInit", "has 12 init letters; depth 16 needs 13" },
        { "Architecture=leakynet|LeakyInit=h_hhxh_hhhh_hhhh", "leakyInit", "character 5 ('x')" },
        { "Architecture=leakynet|LeakyAlpha=0", "leakyAlpha", "must be in (0, 1)" },
        { "Architecture=leakynet|Init=he-fanout", "init", "leave Init as 'const'" },
        { "Architecture=toy|ToyUnique=300", "toyUnique", "must be from 1 to ToyHidden (256)" },
        { "Architecture=toy|ToyHidden=0", "toyHidden", "must be at least 1" },
        { "Init=kaiming", "init", "'kaiming' is not one of const, he-fanout" },
        { "InitNoise=-1", "initNoise", "must be from 0 to 100" },
        { "Architecture=leakynet|InitNoise=0.1", "initNoise", "leakynet has none" },
        { "Dropout=1", "dropout", "must be in [0, 1)" },
        { "StemDropout=-0.1", "stemDropout", "must be in [0, 1)" },
        { "Architecture=toy|Dropout=0.1", "dropout", "the toy model has no branches or blocks" },
        { "Architecture=leakynet|StemDropout=0.1", "stemDropout", "stem dropout is a ConstNet option" },
        { "ClassifierNoise=1", "classifierNoise", "classifier noise is a LeakyNet option" },
        { "Architecture=leakynet|Depth=10", "leakyInit", "depth 10 needs 7" },
        { "RoundingJitter=-1", "roundingJitter", "must be from 0 to 1e6" },
        { "Dataset=svhn", "dataset", "'svhn' is not one of synthetic, mnist" },
        { "TrainLimit=-1", "trainLimit", "must be 0 (all) or positive" },
        { "TestLimit=-5", "testLimit", "must be 0 (all) or positive" },
        { "LearningRate=0", "learningRate", "must be in (0, 10]" },
        { "Momentum=1", "momentum", "must be in [0, 1)" },
        { "Momentum=0|Nesterov=true", "nesterov", "needs Momentum > 0" },
        { "WeightDecay=-0.1", "weightDecay", "must be in [0, 1)" },
        { "BatchSize=0", "batchSize", "must be from 1 to 65536" },
        { "Epochs=0", "epochs", "must be from 1 to 100000" },
        { "Schedule=linear", "schedule", "'linear' is not one of reference, constant, cosine" },
        { "MaxSteps=-1", "maxSteps", "must be 0 (no limit) or positive" },
        { "Seed=-3", "seed", "must not be negative" },
        { "Device=gpu", "device", "'gpu' is not a device: use cpu, cuda or cuda:N" },
        { "Device=cuda:x", "device", "use cpu, cuda or cuda:N" },
        { "Threads=-1", "threads", "must be 0 (library default) or a thread count" },
        { "MetricsEvery=0", "metricsEvery", "must be at least 1 step" },
        { "SpreadEvery=0", "spreadEvery", "must be at least 1 step" },
        { "CorrelationEvery=-1", "correlationEvery", "must be 0 (start and end only) or positive" },
        { "ProbeSize=1", "probeSize", "must be from 2 to 4096 images" },
        { "CheckpointEvery=-1", "checkpointEvery", "must be 0 (end only) or positive" },
        { "Name=" + new string('n', 201), "name", "at most 200 characters, got 201" },
        { "Preset=" + new string('p', 1_000_000), "preset", "(1,000,000 characters)' is not a preset" },
        { "LeakyInit=i_iiii_iiii_iiii", "leakyInit", "the init string is a LeakyNet option" },
        { "Architecture=leakynet|LeakyInit=" + new string('h', 3_000_000), "leakyInit", "at most 64 characters, got 3,000,000" },
        { "LeakyAlpha=0.2", "leakyAlpha", "the LeakyReLU slope is a LeakyNet option" },
        { "ToyUnique=2", "toyUnique", "unique features are a toy-model option" },
        { "Architecture=" + new string('a', 100_000), "architecture", "(100,000 characters)' is not one of constnet" },
    };

    [Fact]
    public void AMegabyteUnknownFieldOrValueComesBackAsAShortError()
    {
        var key = new string('k', 1_000_000);

        var error = Assert.Throws<InvalidConfigException>(() =>
            ConfigOverlay.ApplyAssignments(new ExperimentConfig(), [key + "=1", "depth=" + key]));

        Assert.All(error.Errors,
            e => Assert.True(e.Field.Length + e.Message.Length < 1000, $"{e.Field.Length} + {e.Message.Length} characters"));
        Assert.Contains(error.Errors,
            e => e.Message.StartsWith("unknown field 'kkkk", StringComparison.Ordinal) && e.Message.Contains("(1,000,000 characters)"));
        Assert.Contains(error.Errors, e => e.Field == "depth" && e.Message.Contains("expected a whole number"));
    }

    [Theory]
    [MemberData(nameof(InvalidConfigs))]
    public void EveryInvalidFieldHasItsOwnMessage(string assignments, string field, string message)
    {
        var config = ConfigOverlay.ApplyAssignments(new ExperimentConfig(), assignments.Split('|'));

        var errors = ConfigValidation.Validate(config);

        var error = Assert.Single(errors);
        Assert.Equal(field, error.Field);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void TheDefaultConfigAndEveryPresetAreValid()
    {
        Assert.Empty(ConfigValidation.Validate(new ExperimentConfig()));
        Assert.All(Presets.All, p => Assert.Empty(ConfigValidation.Validate(p.Config)));
    }

    [Fact]
    public void DefaultsAreTheReferenceSetup()
    {
        var c = new ExperimentConfig();

        Assert.Equal((0.03, 0.9, false, 5e-4, 128, 300, "reference"),
            (c.LearningRate, c.Momentum, c.Nesterov, c.WeightDecay, c.BatchSize, c.Epochs, c.Schedule));
        Assert.Equal((16, 10, "const"), (c.Depth, c.Widen, c.Init));
    }

    [Fact]
    public void AnInvalidConfigIsReportedAsAFailedRunWithEveryError()
    {
        var summary = Tiny.Run(Tiny.Config with { Depth = 9, BatchSize = 0 });

        Assert.Equal(RunStatus.Failed, summary.Status);
        Assert.Contains("depth: depth must be 3n + 4", summary.Error);
        Assert.Contains("batchSize: must be from 1 to 65536", summary.Error);
    }

    [Fact]
    public void LeakyNetInitErrorPointsAtTheBadCharacter()
    {
        var error = LeakyNet.InitStringError("1_iiz_", 16)!;

        Assert.Equal("'1_iiz_': character 5 ('z') is not h (random), i (identity), 1 (averaging), k (noisy identity) or a (noisy " +
            "averaging)\n  1_iiz_\n      ^", error);
    }

    [Fact]
    public void ConstNetBuildsForBothTwentyEightAndThirtyTwoPixelInputs()
    {
        using var net = new ConstNet(10, 2, 10, 1, batchNorm: true, dropout: 0, stemDropout: 0);

        Assert.Equal([2, 10], net.call(TorchSharp.torch.randn(2, 1, 28, 28)).shape);
        Assert.Equal([2, 10], net.call(TorchSharp.torch.randn(2, 1, 32, 32)).shape);
        Assert.Equal(["conv1", "block1.layer.0.conv", "block1.layer.0.conv_res", "block1.layer.1.conv", "block2.layer.0.conv",
            "block2.layer.0.conv_res",
                      "block2.layer.1.conv", "block3.layer.0.conv", "block3.layer.0.conv_res", "block3.layer.1.conv", "fc"],
                          net.WeightLayers().Select(l => l.Name));
    }

    [Fact]
    public void ConstructingConstNetWithABadDepthThrowsTheSameMessage()
    {
        var error = Assert.Throws<ArgumentException>(() => new ConstNet(11, 1, 10, 3, true, 0, 0));

        Assert.Contains("depth must be 3n + 4 with n >= 1 blocks per group", error.Message);
    }
}

[Collection(EngineCollection.Name)]
public sealed class ModelSizeTests
{
    public static TheoryData<string> Configs => new()
    {
        """{"architecture":"constnet","depth":7,"widen":1,"dataset":"synthetic"}""",
        """{"architecture":"constnet","depth":10,"widen":2,"batchNorm":false,"dataset":"cifar10"}""",
        """{"architecture":"constnet","depth":13,"widen":3,"dataset":"fashion-mnist"}""",
        """{"architecture":"leakynet","depth":7,"widen":1,"leakyInit":"h_hh_hh_hh","dataset":"cifar10"}""",
        """{"architecture":"leakynet","depth":10,"widen":2,"batchNorm":false,"leakyInit":"h_hhh_hhh_hhh","dataset":"synthetic"}""",
        """{"architecture":"toy","toyHidden":300,"toyUnique":3,"dataset":"mnist"}""",
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void TheSizeFromTheConfigIsTheBuiltModelsExactParameterCount(string json)
    {
        var config = ConfigOverlay.FromJson(json, "test");
        var (channels, height, width, classes, _) = IdentityInit.Training.Data.DatasetCatalog.Shape(config.Dataset);
        using var model = ModelFactory.Create(config, channels, height, width, classes);

        Assert.Equal(model.parameters().Sum(p => p.numel()), ModelSize.Of(config).Parameters);
    }

    [Fact]
    public void AnAbsurdConfigIsSizedWithoutBuildingOrOverflowing()
    {
        var size = ModelSize.Of(new ExperimentConfig { Depth = 1_000_000, Widen = 1000 });

        Assert.True(size.Parameters > 1e15 && double.IsFinite(size.TrainingBytes));
    }
}
