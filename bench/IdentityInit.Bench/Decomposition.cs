using System.Diagnostics;
using IdentityInit.Training;
using IdentityInit.Training.Data;
using IdentityInit.Training.Initialization;
using IdentityInit.Training.Models;
using IdentityInit.Training.Symmetry;
using static TorchSharp.torch;

/// <summary>
/// Where a training step's time goes (issue 12): the library floor (the same WRN step in TorchSharp with its stock SGD
/// and nothing else: compare it with bench/wrn_pytorch.py), the engine's loop with each toggleable extra on and off
/// (interleaved A B A B), and the per-call cost of each per-step extra measured on its own against the step it rides on.
/// </summary>
static class Decomposition
{
    public static void Run(ImageDataset data, ExperimentConfig wrn, int steps, int pairs, Func<ExperimentConfig, int, double> timeSteps)
    {
        const int warmup = 5;
        var engine = wrn with
        {
            MaxSteps = warmup + steps,
            MetricsEvery = 5,
            CorrelationEvery = 0,
            SpreadEvery = 1,
            Deterministic = false,
            TestLimit = 128
        };
        var arms = new (string Name, ExperimentConfig Config)[]
        {
            ("engine, default per-step probes (spread + first break every step, metrics + fingerprint every 5)", engine),
            ("  without the spread probe / first-break detection", engine with { SpreadEvery = int.MaxValue }),
            ("  deterministic kernels", engine with { Deterministic = true }),
        };
        var engineTimes = arms.Select(_ => new List<double>()).ToList();
        var floor = new List<double>();
        for (var pair = 0; pair < pairs; pair++)
        {
            floor.Add(Floor(data, wrn, warmup, steps));
            for (var a = 0; a < arms.Length; a++) engineTimes[a].Add(timeSteps(arms[a].Config, warmup));
        }
        double Ms(List<double> seconds) => seconds.Order().ElementAt(seconds.Count / 2) / steps * 1000;
        var stepMs = Ms(engineTimes[0]);
        Console.WriteLine($"threads={wrn.Threads}, WRN-{wrn.Depth}-{wrn.Widen}, batch {wrn.BatchSize}, {steps} timed steps, " +
            $"median of {pairs}");
        Console.WriteLine($"  library floor (TorchSharp, stock optim.SGD, no extras): {Ms(floor):F1} ms/step, " +
            $"{wrn.BatchSize * 1000 / Ms(floor):F1} img/s");
        for (var a = 0; a < arms.Length; a++)
            Console.WriteLine($"  {arms[a].Name}: {Ms(engineTimes[a]):F1} ms/step, {wrn.BatchSize * 1000 / Ms(engineTimes[a]):F1} img/s, " +
                $"ratio to default {Ms(engineTimes[a]) / stepMs:F3}");
        Console.WriteLine($"  engine default / floor (time): {stepMs / Ms(floor):F3}");

        // Each per-step extra alone, per call, on the same model and batch (200 calls after 20 warm-up).
        if (wrn.Threads > 0) set_num_threads(wrn.Threads);
        using var scope = NewDisposeScope();
        var config = wrn with { Init = "he-fanout" };
        using var model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
        Initializer.Apply(model, config);
        var layers = model.WeightLayers();
        var parameters = model.parameters().Select(p => (Tensor)p).ToList();
        var indices = arange(wrn.BatchSize);
        var x = Augment.Normalize(data.TrainImages.index_select(0, indices), data.Mean, data.Std);
        var loss = nn.functional.cross_entropy(model.call(x), data.TrainLabels.index_select(0, indices));
        loss.backward(retain_graph: true); // gradients for the optimizer steps below
        var engineSgd = new Sgd(parameters, 0.9, 5e-4, false);
        var stockSgd = optim.SGD(model.parameters(), 1e-9, momentum: 0.9, weight_decay: 5e-4);
        var extras = new (string Name, Action Call)[]
        {
            ("loss NaN/Inf check (isfinite(loss).item)", () => _ = isfinite(loss).item<bool>()),
            ("channel spread of every layer + first-break test (one host transfer)", () => _ = ChannelSpread.OfWeights(layers)),
            ("weight fingerprint (every metrics step)", () => _ = ChannelSpread.Fingerprint(parameters)),
            ("batch: index_select + normalise",
                () => { using var s = NewDisposeScope(); _ = Augment.Normalize(data.TrainImages.index_select(0, indices), data.Mean,
                    data.Std); }),
            ("a dispose scope (open and close)", () => { using var s = NewDisposeScope(); }),
            ("the engine's SGD step (checkpointable buffers, one op per tensor)", () => engineSgd.Step(1e-9)),
            ("TorchSharp's optim.SGD step, for comparison", () => stockSgd.step()),
        };
        foreach (var (name, call) in extras)
        {
            for (var i = 0; i < 20; i++) call();
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < 200; i++) call();
            var ms = clock.Elapsed.TotalMilliseconds / 200;
            Console.WriteLine($"  per call: {name}: {ms:F3} ms = {ms / stepMs * 100:F2} % of a default step");
        }
    }

    /// <summary>The bare step: batch, forward, loss, backward, TorchSharp's own SGD; what PyTorch's twin does.</summary>
    public static double Floor(ImageDataset data, ExperimentConfig wrn, int warmup, int steps)
    {
        if (wrn.Threads > 0) set_num_threads(wrn.Threads); // as the engine does at the start of a run
        using var scope = NewDisposeScope();
        var config = wrn with { Init = "he-fanout" };
        var model = ModelFactory.Create(config, data.Channels, data.Height, data.Width, data.Classes);
        Initializer.Apply(model, config);
        model.train();
        var optimizer = optim.SGD(model.parameters(), 0.03, momentum: 0.9, weight_decay: 5e-4);
        var order = randperm(data.TrainCount, generator: new Generator(1));
        var clock = new Stopwatch();
        for (var step = 0; step < warmup + steps; step++)
        {
            if (step == warmup) clock.Start();
            using var stepScope = NewDisposeScope();
            var start = step * wrn.BatchSize % (int)(data.TrainCount - wrn.BatchSize);
            var i = order[start..(start + wrn.BatchSize)];
            var x = Augment.Normalize(data.TrainImages.index_select(0, i), data.Mean, data.Std);
            var loss = nn.functional.cross_entropy(model.call(x), data.TrainLabels.index_select(0, i));
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            _ = loss.item<float>();
        }
        return clock.Elapsed.TotalSeconds;
    }
}
