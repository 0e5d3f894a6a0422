using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Models;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Training;

[Collection(EngineCollection.Name)]
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
    public void InitScaleMultipliesEveryWeightButTheClassifiersAndNothingElse()
    {
        var he = Parameters(Build(Net with { Init = "he-fanin" }));
        var half = Parameters(Build(Net with { Init = "he-fanin", InitScale = 0.5 }));

        foreach (var (name, value) in he)
        {
            var scaled = name.EndsWith(".weight", StringComparison.Ordinal) && value.dim() is 2 or 4
                && !name.StartsWith("fc", StringComparison.Ordinal);
            // times 0.5 is exact
            Assert.True(Same(scaled ? value * 0.5 : value, half[name]), $"{name}: {(scaled ? "not halved" : "changed")}");
        }
        Assert.Null(Initializer.Variant("he-fanin*0.5", out _) is { } v && v == ("he-fanin", 0.5) ? null : "parsed wrong");
        Assert.Null(Initializer.Variant("he-fanin*-1", out var problem));
        Assert.Contains("not a scale", problem);
        Assert.Null(Initializer.Variant("file", out _)); // a file is not measured at init
    }

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

        var blockConvs = p.Where(kv =>
            kv.Key.EndsWith(".conv.weight", StringComparison.Ordinal) && kv.Key.StartsWith("block", StringComparison.Ordinal)).ToList();

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
    public void LeakyNetHasRemodelPysModulesInItsOrder()
    {
        using var model = new LeakyNet(10, 1, 10, 3, 0.01, batchNorm: true, dropout: 0);

        var names = model.named_parameters().Select(p => p.name).ToList();

        Assert.Equal(["conv1.weight", "block1.layer.0.bn.weight", "block1.layer.0.bn.bias", "block1.layer.0.conv.weight",
            "block1.layer.0.biases.0", "block1.layer.0.biases.1"], names.Take(6));
        Assert.Contains("block3.layer.1.bn.running_var", model.state_dict().Keys); // every block owns a BN, as in remodel.py
        Assert.Equal(6, names.Count(n => n.EndsWith(".conv.weight", StringComparison.Ordinal))); // 3n blocks, n = 2
        Assert.Equal(["fc.weight", "fc.bias"], names.TakeLast(2));
        Assert.Equal(["conv1", "block1.layer.0", "block1.layer.1", "block2.layer.0", "block2.layer.1", "block3.layer.0", "block3.layer.1",
            "fc"],
            Taps(model, randn(1, 3, 32, 32)).Select(t => t.Layer));
    }

    static List<(string Layer, Tensor Output)> Taps(ImageModel model, Tensor x)
    {
        var taps = new List<(string Layer, Tensor Output)>();
        model.Forward(x, taps);
        return taps;
    }

    [Fact]
    public void LeakyNetBlocksActivateThenNormaliseOnlyWhenOdd()
    {
        var config = Net with { Architecture = "leakynet", Depth = 16, LeakyInit = "h_hhhh_hhhh_hhhh", Widen = 1 };
        var model = Build(config);
        model.train();

        var taps = Taps(model, randn([16, 3, 32, 32], generator: new Generator(5)));

        var odd = taps.Single(t => t.Layer == "block1.layer.1").Output;  // BN after LeakyReLU: per channel mean 0, var 1
        var even = taps.Single(t => t.Layer == "block1.layer.2").Output; // LeakyReLU last: negatives shrunk by alpha
        Assert.True(odd.mean([0, 2, 3]).abs().max().item<float>() < 1e-4);
        Assert.True(odd.lt(0).any().item<bool>() && odd.min().item<float>() < -0.5);
        var negatives = even.masked_select(even.lt(0));
        Assert.True(negatives.numel() > 0 && negatives.min().item<float>() > -0.2); // alpha 0.01 keeps them small
    }

    [Fact]
    public void LeakyNetLettersFollowRemodelPyWithThePhaseOnTheConstantPartOnly()
    {
        var config = Net with { Architecture = "leakynet", Depth = 16, LeakyInit = "1_ih1h_ikaa_iiii", Widen = 2, LeakyAlpha = 0.01 };
        var p = Parameters(Build(config));
        var gain = Math.Sqrt(2) * 1.01;

        var stem = p["conv1.weight"];                       // '1', phase +1: 1/C_in
        var identity = p["block1.layer.0.conv.weight"];     // block 0 'i', phase +1: out d copies in d mod 16
        var randomOdd = p["block1.layer.1.conv.weight"];    // block 1 'h', phase -1: random, never scaled
        var averaging = p["block1.layer.2.conv.weight"];    // block 2 '1', phase +1
        var randomEven = p["block1.layer.3.conv.weight"];   // block 3 'h'
        var identityOdd = p["block2.layer.1.conv.weight"];  // block 5 'k', phase -1: noisy identity, 0.99 x -1/alpha
        var averagingOdd = p["block2.layer.3.conv.weight"]; // block 7 'a', phase -1: noisy averaging

        Assert.True(stem[.., .., 1, 1].eq(1f / 3).all().item<bool>());
        Assert.Equal(1f, identity[17, 1, 1, 1].item<float>());
        Assert.Equal(0f, identity[17, 2, 1, 1].item<float>());
        Assert.Equal(32f, identity.sum().item<float>(), 3);
        Assert.Equal(Math.Sqrt(gain / (32 * 9)), randomOdd.std().item<float>(), 0.01);
        Assert.Equal(0, randomOdd.mean().item<float>(), 0.01); // not scaled by -1/alpha
        Assert.True(averaging[.., .., 1, 1].allclose(full(32, 32, 1f / 32)));
        Assert.Equal(Math.Sqrt(gain / (32 * 9)), randomEven.std().item<float>(), 0.01);
        Assert.Equal(-99f, identityOdd[3, 3, 1, 1].item<float>(), 0.5);
        Assert.Equal(Math.Sqrt(gain * 0.01 / (64 * 9)), identityOdd[.., .., 0, 0].std().item<float>(), 0.002);
        Assert.Equal(-99f / 64, averagingOdd[5, 7, 1, 1].item<float>(), 0.05);
        Assert.Equal(0, p["block1.layer.0.biases.0"].item<float>());
        Assert.Equal(0, p["fc.weight"].abs().max().item<float>());
    }

    [Fact]
    public void LeakyNetClassifierNoiseHasVarianceSOver144()
    {
        var p = Parameters(Build(Net with { Architecture = "leakynet", Depth = 16, Widen = 8, ClassifierNoise = 1 }));

        Assert.Equal(Math.Sqrt(1.0 / 144), p["fc.weight"].std().item<float>(), 0.004);
        Assert.Equal(0, p["fc.bias"].abs().max().item<float>());
    }

    [Fact]
    public void AnAllIdentityLeakyNetIsLinearAtInit()
    {
        var config = Net with { Architecture = "leakynet", Depth = 16, LeakyInit = "i_iiii_iiii_iiii", BatchNorm = false };
        var model = Build(config, inChannels: 3);
        model.eval();
        var (x1, x2) = (randn(2, 3, 32, 32), randn(2, 3, 32, 32));

        Tensor Output(Tensor x) => Taps(model, x).Single(t => t.Layer == "block3.layer.3").Output;

        Assert.True(Output(x1 + x2).allclose(Output(x1) + Output(x2), rtol: 1e-4, atol: 1e-4));
        Assert.True(Output(-x1).allclose(-Output(x1), rtol: 1e-4, atol: 1e-4));
        Assert.True(Output(x1).abs().max().item<float>() > 0.1);
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
