using IdentityInit.Training;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

public sealed class InitializerTests
{
    static ImageModel Build(ExperimentConfig config, int inChannels = 3, int size = 32, int classes = 10)
    {
        var model = ModelFactory.Create(config, inChannels, size, size, classes);
        Initializer.Apply(model, config);
        return model;
    }

    static ExperimentConfig Net => Tiny.Config with { Depth = 10 };

    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static Dictionary<string, Tensor> Parameters(ImageModel model) =>
        model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    [Fact]
    public void ConstInitSetsStemCentreTapToOneOverInputChannelsAndZeroElsewhere()
    {
        var stem = Parameters(Build(Net))["conv1.weight"];

        var centre = stem[.., .., 1, 1];
        var rest = stem.clone();
        rest[.., .., 1, 1] = zeros(16, 3);

        Assert.True(centre.eq(1f / 3).all().item<bool>());
        Assert.Equal(0, rest.abs().max().item<float>());
    }

    [Fact]
    public void ConstInitZeroesEveryBlockConvAndTheClassifier()
    {
        var p = Parameters(Build(Net with { Depth = 10, Widen = 2 }));

        var blockConvs = p.Where(kv => kv.Key.EndsWith(".conv.weight", StringComparison.Ordinal) && kv.Key.StartsWith("block", StringComparison.Ordinal)).ToList();

        Assert.Equal(6, blockConvs.Count);
        Assert.All(blockConvs, kv => Assert.Equal(0, kv.Value.abs().max().item<float>()));
        Assert.Equal(0, p["fc.weight"].abs().max().item<float>());
        Assert.Equal(0, p["fc.bias"].abs().max().item<float>());
    }

    [Fact]
    public void ConstInitShortcutsAverageTheInputChannels()
    {
        var p = Parameters(Build(Net with { Widen = 2 }));

        Assert.Equal([32, 16, 1, 1], p["block1.layer.0.conv_res.weight"].shape);
        Assert.True(p["block1.layer.0.conv_res.weight"].eq(1f / 16).all().item<bool>());
        Assert.True(p["block2.layer.0.conv_res.weight"].eq(1f / 32).all().item<bool>());
        Assert.True(p["block3.layer.0.conv_res.weight"].eq(1f / 64).all().item<bool>());
    }

    [Fact]
    public void BatchNormStartsAtGammaOneBetaZero()
    {
        var p = Parameters(Build(Net with { Init = "he-fanout" }));

        Assert.True(p["block1.layer.0.bn.weight"].eq(1).all().item<bool>());
        Assert.True(p["block2.layer.1.bn.bias"].eq(0).all().item<bool>());
    }

    [Fact]
    public void ConstNetLogitsAreZeroAndLossIsLnClassesAtInit()
    {
        var model = Build(Net with { Init = "const" });
        var x = randn(8, 3, 32, 32);

        var logits = model.call(x);
        var loss = nn.functional.cross_entropy(logits, zeros(8, dtype: int64));

        Assert.Equal(0, logits.abs().max().item<float>());
        Assert.Equal(Math.Log(10), loss.item<float>(), 6);
    }

    [Fact]
    public void HeFanOutIsTheReferenceVarnetWithTheReluGainOnBlockConvsOnly()
    {
        var p = Parameters(Build(Net with { Init = "he-fanout", Widen = 8, Seed = 3 }));

        var w = p["block3.layer.1.conv.weight"]; // 512 x 512 x 3 x 3

        Assert.Equal(Math.Sqrt(2.0 / (9 * 512)), w.std().item<float>(), 0.0005);
        Assert.Equal(Math.Sqrt(1.0 / 512), p["block3.layer.0.conv_res.weight"].std().item<float>(), 0.001);
        Assert.Equal(Math.Sqrt(1.0 / (9 * 16)), p["conv1.weight"].std().item<float>(), 0.005);
        Assert.Equal(0, p["fc.weight"].abs().max().item<float>());
    }

    [Theory]
    [InlineData("he-fanin", 2.0 / (9 * 256))]
    [InlineData("xavier", 2.0 / (9 * (256 + 512)))]
    public void RandomSchemesHaveTheirVariance(string scheme, double variance)
    {
        var p = Parameters(Build(Net with { Init = scheme, Widen = 8 }));

        var w = p["block3.layer.0.conv.weight"]; // 512 x 256 x 3 x 3

        Assert.Equal(Math.Sqrt(variance), w.std().item<float>(), 0.0005);
    }

    [Fact]
    public void OrthogonalGivesOrthonormalRowsOfTheFlattenedKernel()
    {
        var p = Parameters(Build(Net with { Init = "orthogonal", Widen = 2 }));

        var w = p["block2.layer.1.conv.weight"].flatten(1); // 64 x 576: rows orthonormal
        var gram = w.matmul(w.t());

        Assert.True(gram.allclose(eye(64), atol: 1e-5));
    }

    [Fact]
    public void DeltaOrthogonalHasAnOrthogonalCentreTapAndZeroOtherTaps()
    {
        var p = Parameters(Build(Net with { Init = "delta-orthogonal", Widen = 2 }));

        var w = p["block2.layer.0.conv.weight"]; // 64 x 32: columns orthonormal
        var centre = w[.., .., 1, 1];
        var others = w.clone();
        others[.., .., 1, 1] = zeros(64, 32);

        Assert.True(centre.t().matmul(centre).allclose(eye(32), atol: 1e-5));
        Assert.Equal(0, others.abs().max().item<float>());
    }

    [Fact]
    public void InitNoiseAddsScaledHeVarianceToBlockConvsOnly()
    {
        const double s = 0.25;
        var p = Parameters(Build(Net with { InitNoise = s, Widen = 8 }));

        var block = p["block3.layer.1.conv.weight"];

        Assert.Equal(Math.Sqrt(s * 2 / (9 * 512)), block.std().item<float>(), 0.0005);
        Assert.True(p["conv1.weight"][.., .., 1, 1].eq(1f / 3).all().item<bool>());
        Assert.True(p["block3.layer.0.conv_res.weight"].eq(1f / 256).all().item<bool>());
        Assert.Equal(0, p["fc.weight"].abs().max().item<float>());
    }

    [Fact]
    public void SameSeedGivesIdenticalWeightsAndAnotherSeedDoesNot()
    {
        var config = Net with { Init = "he-fanout" };

        var a = Parameters(Build(config))["block2.layer.1.conv.weight"];
        var b = Parameters(Build(config))["block2.layer.1.conv.weight"];
        var c = Parameters(Build(config with { Seed = 2 }))["block2.layer.1.conv.weight"];

        Assert.True(Same(a, b));
        Assert.False(Same(a, c));
    }

    [Fact]
    public void LeakyNetLettersSetIdentityAveragingAndRandomLayersWithTheOddPhase()
    {
        var config = Net with { Architecture = "leakynet", LeakyInit = "1_ih1h_iiii_iiii", Widen = 2, LeakyAlpha = 0.01 };
        var p = Parameters(Build(config));

        var stem = p["convs.0.weight"];           // '1', even: 1/C_in
        var identity = p["convs.1.weight"];       // 'i', odd: out d copies in d mod 16, times -1/alpha
        var random = p["convs.2.weight"];         // 'h', even: var sqrt(2)(1+alpha)/fan_in
        var averaging = p["convs.3.weight"];      // '1', odd: 1/C_in times -1/alpha

        Assert.True(stem[.., .., 1, 1].eq(1f / 3).all().item<bool>());
        Assert.Equal(-100f, identity[17, 1, 1, 1].item<float>());
        Assert.Equal(0f, identity[17, 2, 1, 1].item<float>());
        Assert.Equal(-100f * 32, identity.sum().item<float>(), 2);
        Assert.Equal(Math.Sqrt(Math.Sqrt(2) * 1.01 / (32 * 9)), random.std().item<float>(), 0.01);
        Assert.True(averaging[.., .., 1, 1].allclose(full(32, 32, -100f / 32)));
        Assert.Equal(0, p["biases.0"].item<float>());
    }

    [Fact]
    public void LeakyNetIsLinearAtInitThroughEveryPairOfLayers()
    {
        var config = Net with { Architecture = "leakynet", LeakyInit = "i_iiii_iiii_iiii" };
        var model = Build(config, inChannels: 3);
        model.eval();
        var (x1, x2) = (randn(2, 3, 32, 32), randn(2, 3, 32, 32));

        Tensor PairOutput(Tensor x)
        {
            var taps = new List<(string Layer, Tensor Output)>();
            model.Forward(x, taps);
            return taps.Single(t => t.Layer == "convs.11").Output;
        }

        var sum = PairOutput(x1 + x2);
        var separately = PairOutput(x1) + PairOutput(x2);
        var negated = PairOutput(-x1);

        Assert.True(sum.allclose(separately, rtol: 1e-4, atol: 1e-4));
        Assert.True(negated.allclose(-PairOutput(x1), rtol: 1e-4, atol: 1e-4));
        Assert.True(PairOutput(x1).abs().max().item<float>() > 0.1);
    }

    [Fact]
    public void ToyNetHoldsKUniqueFeaturesCopiedAcrossTheHiddenUnits()
    {
        var p = Parameters(Build(Net with { Architecture = "toy", ToyHidden = 12, ToyUnique = 4 }, inChannels: 1, size: 28));

        var w = p["fc1.weight"];

        Assert.Equal([12, 784], w.shape);
        Assert.True(Same(w[5], w[1]) && Same(w[9], w[1]));
        Assert.False(Same(w[1], w[2]));
        Assert.Equal(4, Enumerable.Range(0, 12).Count(i => Enumerable.Range(0, i).All(j => !Same(w[i], w[j]))));
        Assert.Equal(0, p["fc2.weight"].abs().max().item<float>());
    }
}
