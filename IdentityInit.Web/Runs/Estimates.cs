using IdentityInit.Training;

namespace IdentityInit.Web.Runs;

/// <summary>Estimates for the new-run form, one at a time (they time real training steps on this machine).</summary>
public sealed class Estimates
{
    readonly SemaphoreSlim gate = new(1, 1);

    public async Task<Estimate> OfAsync(ExperimentConfig config, CancellationToken cancellationToken = default)
    {
        await gate.WaitAsync(cancellationToken);
        try
        {
            // Torch work on a dedicated thread: dispose scopes and grad mode are per thread.
            return await Task.Factory.StartNew(() => Estimator.Of(config), cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        finally
        {
            gate.Release();
        }
    }
}
