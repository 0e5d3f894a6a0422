using IdentityInit.Training;
using IdentityInit.Training.Data;

namespace IdentityInit.Tests.Training;

/// <summary>Small configs and data for torch tests: CI has 2 cores.</summary>
internal static class Tiny
{
    static readonly Lazy<ImageDataset> SyntheticData = new(() => Synthetic.Create(train: 512, test: 128));

    public static ImageDataset Data => SyntheticData.Value;

    public static ExperimentConfig Config => new()
    {
        Name = "tiny", Dataset = "synthetic", Depth = 7, Widen = 1, BatchSize = 16, Epochs = 1, Schedule = "constant",
        TrainLimit = 512, TestLimit = 64, MetricsEvery = 5, CorrelationEvery = 0, CheckpointEvery = 0, ProbeSize = 16,
    };

    public static RunSummary Run(ExperimentConfig config, Action<RunEvent>? onEvent = null, string? checkpoints = null,
        bool resume = false, CancellationToken cancellationToken = default) =>
        Trainer.Run(config, new Recorder(onEvent ?? (_ => { })), cancellationToken,
            new RunOptions(checkpoints, resume, Dataset: Data));

    public static List<RunEvent> Events(ExperimentConfig config, string? checkpoints = null, bool resume = false,
        Func<RunEvent, bool>? cancelWhen = null)
    {
        var events = new List<RunEvent>();
        using var cancel = new CancellationTokenSource();
        Run(config, e =>
        {
            events.Add(e);
            if (cancelWhen?.Invoke(e) == true) cancel.Cancel();
        }, checkpoints, resume, cancel.Token);
        return events;
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "identityinit-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    sealed class Recorder(Action<RunEvent> onEvent) : IProgress<RunEvent>
    {
        public void Report(RunEvent value) => onEvent(value);
    }
}
