using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace IdentityInit.Training.Cli;

/// <summary>Collects a run's events and writes them as CSV tables and one JSON document.</summary>
internal sealed class RunFiles(string directory)
{
    static readonly JsonSerializerOptions Json = new(EngineJson.Options) { WriteIndented = true }; // the engine's format, for people

    readonly List<StepMetrics> steps = [];
    readonly List<EpochMetrics> epochs = [];
    readonly List<CorrelationSnapshot> snapshots = [];
    readonly List<SymmetryBroken> breaks = [];
    readonly List<LogLine> log = [];

    public string Directory { get; } = directory;

    public void Add(RunEvent e)
    {
        switch (e)
        {
            case StepMetrics s: steps.Add(s); break;
            case EpochMetrics m: epochs.Add(m); break;
            case CorrelationSnapshot c: snapshots.Add(c); break;
            case SymmetryBroken b: breaks.Add(b); break;
            case LogLine l: log.Add(l); break;
        }
    }

    public void Write(ExperimentConfig config, RunSummary summary)
    {
        System.IO.Directory.CreateDirectory(Directory);
        File.WriteAllText(Path.Combine(Directory, "config.json"), ConfigOverlay.ToJson(config));
        Csv("steps.csv", "step,epoch,loss,accuracy,learning_rate,images_per_second,step_ms",
            steps.Select(s => Row(s.Step, s.Epoch, s.Loss, s.Accuracy, s.LearningRate, s.ImagesPerSecond, s.StepMilliseconds)));
        if (epochs.Any(m => m.PreciseTestAccuracy is not null)) // precise BN on: its figures beside the running statistics'
            Csv("epochs.csv", "epoch,step,train_loss,train_accuracy,test_loss,test_accuracy,best_test_accuracy," +
                              "precise_bn_test_loss,precise_bn_test_accuracy",
                epochs.Select(m => Row(m.Epoch, m.Step, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.BestTestAccuracy,
                    m.PreciseTestLoss ?? double.NaN, m.PreciseTestAccuracy ?? double.NaN)));
        else
            Csv("epochs.csv", "epoch,step,train_loss,train_accuracy,test_loss,test_accuracy,best_test_accuracy",
                epochs.Select(m => Row(m.Epoch, m.Step, m.TrainLoss, m.TrainAccuracy, m.TestLoss, m.TestAccuracy, m.BestTestAccuracy)));
        Csv("weight_correlation.csv", "step,layer,forward,backward,kernel,forward_neglog,backward_neglog,kernel_neglog,spread",
            snapshots.SelectMany(c => c.Weights.Select(w => Row(c.Step, w.Layer, w.Forward, w.Backward, w.Kernel,
                w.ForwardNegLog, w.BackwardNegLog, w.KernelNegLog, w.Spread))));
        Csv("activation_correlation.csv", "step,layer,correlation,spread,dead_channels",
            snapshots.SelectMany(c => c.Activations.Select(a => Row(c.Step, a.Layer, a.Correlation, a.Spread, a.Dead))));
        Csv("diversity.csv", "step,diversity", snapshots.Select(c => Row(c.Step, c.Diversity)));
        Csv("symmetry.csv", "layer,broke_at_step,final_spread",
            summary.Symmetry.Select(l => Row(l.Layer, l.BrokeAtStep?.ToString(CultureInfo.InvariantCulture) ?? "", l.Spread)));
        var document = new { config, summary, steps, epochs, breaks, log, correlations = snapshots };
        File.WriteAllText(Path.Combine(Directory, "run.json"), JsonSerializer.Serialize(document, Json));
    }

    void Csv(string name, string header, IEnumerable<string> rows)
    {
        var text = new StringBuilder(header).Append('\n');
        foreach (var row in rows) text.Append(row).Append('\n');
        File.WriteAllText(Path.Combine(Directory, name), text.ToString());
    }

    static string Row(params object[] values) => string.Join(',', values.Select(v => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString(),
    }));
}
