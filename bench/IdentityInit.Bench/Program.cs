using System.Diagnostics;
using IdentityInit.Training;
using IdentityInit.Training.Data;

// Engine benchmarks; each prints the figure and, where it has a baseline, the ratio. See bench/README.md.
//   throughput --threads N --steps S --warmup W   img/s of WRN-16-2 on Fashion-MNIST, batch 128 (the engine's own loop)
//   overhead --steps S --pairs P                  default metric cadence vs none, interleaved A B A B; ratio of times
//   memory --steps S                              RSS through S steps; ratio of the last reading to the one at step 100
//   latency --steps S                             engine -> SignalR client latency of a metric point, p50/p95
//   viewers --viewers N --pairs P                 throughput with 0 vs N SignalR viewers, interleaved
//   ingest --pg CONNECTION --rows R               PostgreSQL ingest rows/s, binary COPY vs EF SaveChanges
//   relay --pg CONNECTION --steps S [--runs N]    child process -> worker node -> PostgreSQL -> web node -> SignalR, p50/p95
//                                                 (N - 1 synthetic runs stream beside the real one)
//   webcpu --pg CONNECTION --runs N --seconds T  CPU of a web node relaying N live runs a worker host trains
//   child --steps S --pairs P                     throughput of a run in a child process vs in this process, interleaved
//   floor --threads N --steps S --warmup W        img/s of the bare step in TorchSharp (stock SGD, no probes): the library floor
//   decompose --threads N --steps S --pairs P     where a step's time goes: library floor, engine arms, per-step extras
//   study --preset NAME [--seeds N] [--workers W] a CPU-scale study through the API: wall time to the last run's end, and its table;
//                                                 W > 1 trains W runs at once, each on one thread
//   study-compare-shots [--out docs]              a 2-arm x 2-seed study trained for real, its compare page with seed bands as PNGs
//   signal-shots [--out docs]                     a deterministic ConstNet and a He run trained for real, their Signal tabs as PNGs
var command = args.FirstOrDefault() ?? "throughput";
int Arg(string name, int fallback) => args.SkipWhile(a => a != name).Skip(1).Select(int.Parse).FirstOrDefault(fallback);
switch (command)
{
    case "latency": await WebBenchmarks.LatencyAsync(Arg("--steps", 600)); return 0;
    case "viewers": await WebBenchmarks.ViewersAsync(Arg("--viewers", 100), Arg("--pairs", 2)); return 0;
    case "ingest": await WebBenchmarks.IngestAsync(args.SkipWhile(a => a != "--pg").Skip(1).First(), Arg("--rows", 100_000)); return 0;
    case "relay":
        await WebBenchmarks.RelayAsync(args.SkipWhile(a => a != "--pg").Skip(1).First(), Arg("--steps", 600),
        Arg("--runs", 1)); return 0;
    case "webcpu":
        await WebBenchmarks.WebCpuAsync(args.SkipWhile(a => a != "--pg").Skip(1).First(), Arg("--runs", 10),
        Arg("--seconds", 30)); return 0;
    case "loading": await LoadingBenchmark.RunAsync(args.SkipWhile(a => a != "--pg").Skip(1).FirstOrDefault()); return 0;
    case "study":
        await IdentityInit.Bench.StudyBenchmark.RunAsync(args.SkipWhile(a => a != "--preset").Skip(1).FirstOrDefault()
            ?? "constnet-breakers",
            args.Contains("--seeds") ? Arg("--seeds", 3) : null, Arg("--workers", 1),
            [.. args.Select((a, i) => (a, i)).Where(t => t.a == "--set" && t.i + 1 < args.Length).Select(t => args[t.i + 1])]);
        return 0;
    case "child": await WebBenchmarks.ChildAsync(Arg("--steps", 300), Arg("--pairs", 2)); return 0;
    case "study-compare-shots":
        await IdentityInit.Bench.StudyCompareShots.RunAsync(args.SkipWhile(a => a != "--out").Skip(1)
        .FirstOrDefault() ?? "docs"); return 0;
    case "signal-shots":
        await IdentityInit.Bench.SignalShots.RunAsync(args.SkipWhile(a => a != "--out").Skip(1).FirstOrDefault()
        ?? "docs"); return 0;
}

TorchRuntime.Initialize();
using var data = new DatasetCatalog().Load("fashion-mnist");
var wrn = new ExperimentConfig
{
    Name = "bench", Dataset = "fashion-mnist", Depth = 16, Widen = 2, Init = "he-fanout", Epochs = 1000, Schedule = "constant",
    TestLimit = 1000, CheckpointEvery = 0, Threads = Arg("--threads", 2),
};

switch (command)
{
    case "throughput":
        {
            var (warmup, steps) = (Arg("--warmup", 5), Arg("--steps", 40));
            // Like for like with PyTorch's defaults: non-deterministic kernels allowed, the engine's default metric cadence.
            // --spread-every N and --deterministic 1 measure the engine's own per-step costs.
            var seconds = TimeSteps(wrn with
            {
                MaxSteps = warmup + steps,
                MetricsEvery = 5,
                CorrelationEvery = 0,
                SpreadEvery = Arg("--spread-every", 1),
                Deterministic = Arg("--deterministic", 0) == 1,
            }, warmup);
            Console.WriteLine($"torchsharp threads={wrn.Threads} img/s={steps * 128 / seconds:F1}");
            break;
        }
    case "floor":
        {
            var (warmup, steps) = (Arg("--warmup", 5), Arg("--steps", 40));
            Console.WriteLine($"floor threads={wrn.Threads} img/s={steps * 128 / Decomposition.Floor(data, wrn, warmup, steps):F1}");
            break;
        }
    case "decompose":
        Decomposition.Run(data, wrn, Arg("--steps", 30), Arg("--pairs", 2), TimeSteps);
        break;
    case "overhead":
        {
            var (steps, pairs) = (Arg("--steps", 400), Arg("--pairs", 2));
            var small = wrn with { Depth = 10, Widen = 1, MaxSteps = steps + 5 };
            var with = small; // the defaults: step metrics every 10, spread every step, correlations every 200
            var without = small with { MetricsEvery = int.MaxValue, SpreadEvery = int.MaxValue, CorrelationEvery = 0 };
            double a = 0, b = 0;
            for (var i = 0; i < pairs; i++)
            {
                a += TimeSteps(with, 5);
                b += TimeSteps(without, 5);
            }
            Console.WriteLine($"metrics overhead: with {a / pairs:F2} s, without {b / pairs:F2} s per {steps} steps, ratio {a / b:F3} " +
                "(goal <= 1.03)");
            break;
        }
    case "memory":
        {
            var steps = Arg("--steps", 2000);
            var readings = new List<(long Step, double Mb)>();
            long firstEpochEnd = 0;
            var config = wrn with
            {
                Depth = 10,
                Widen = 1,
                BatchSize = 64,
                MaxSteps = steps,
                MetricsEvery = 100,
                CorrelationEvery = 500,
                CheckpointEvery = 0
            };
            Trainer.Run(config, new Handler(e =>
            {
                if (e is StepMetrics m) readings.Add((m.Step, Process.GetCurrentProcess().WorkingSet64 / 1e6));
                if (e is EpochMetrics { Epoch: 0 } end) firstEpochEnd = end.Step;
            }), default, new RunOptions(Dataset: data));
            foreach (var (step, mb) in readings.Where((_, i) => i % 4 == 0 || i == readings.Count - 1))
                Console.WriteLine($"step {step,5}: RSS {mb:F0} MB");
            var first = readings.First(r => r.Step >= 100).Mb;
            Console.WriteLine($"memory: RSS at step 100 {first:F0} MB, at step {readings[^1].Step} {readings[^1].Mb:F0} MB, ratio " +
                $"{readings[^1].Mb / first:F3} (goal: flat, ~1.0)");
            // The first test-set evaluation sets the allocator's high-water mark (malloc trimming is tuned off on purpose).
            var warm = readings.First(r => r.Step > firstEpochEnd).Mb;
            Console.WriteLine($"memory after warm-up (first epoch and evaluation, step {firstEpochEnd}): {warm:F0} MB -> " +
                $"{readings[^1].Mb:F0} MB, ratio {readings[^1].Mb / warm:F3}");
            break;
        }
    default:
        Console.Error.WriteLine($"unknown benchmark '{command}'");
        return 2;
}
return 0;

// Seconds from the end of step `warmup` to the end of the last step (MaxSteps): the training loop with its per-step
// probes, not the evaluation and final snapshot after it (the PyTorch twin has none; they once read as 10 % of the loop).
double TimeSteps(ExperimentConfig config, int warmup)
{
    var clock = new Stopwatch();
    double? seconds = null;
    var summary = Trainer.Run(config with { MetricsEvery = Math.Min(config.MetricsEvery, warmup) }, new Handler(e =>
    {
        if (e is StepMetrics m && m.Step == warmup) clock.Restart();
        if (e is StepMetrics last && last.Step == config.MaxSteps) seconds = clock.Elapsed.TotalSeconds;
    }), default, new RunOptions(Dataset: data));
    if (summary.Status != RunStatus.Completed) throw new InvalidOperationException(summary.Error);
    return seconds ?? throw new InvalidOperationException($"no step metrics at step {config.MaxSteps}: make steps a multiple of {warmup}");
}

sealed class Handler(Action<RunEvent> handle) : IProgress<RunEvent>
{
    public void Report(RunEvent value) => handle(value);
}
