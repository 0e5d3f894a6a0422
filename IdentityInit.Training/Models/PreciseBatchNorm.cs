using TorchSharp.Modules;
using static TorchSharp.torch;

namespace IdentityInit.Training.Models;

/// <summary>
/// "Precise BN": replaces every BatchNorm's running statistics by their plain average over a fixed set of training
/// batches, recomputed with the current weights. The exponential average (momentum 0.1) mostly reflects the last ~10
/// batches, taken while the weights were still moving; the replay (bench/replay.sh) shows how much that costs.
/// Training is not touched: in train mode BatchNorm normalises with batch statistics, never the running ones.
/// </summary>
internal static class PreciseBatchNorm
{
    /// <summary>Every BatchNorm's running statistics as they are now, put back when the result is disposed.</summary>
    public static IDisposable Keep(nn.Module model)
    {
        var buffers = model.modules().OfType<BatchNorm2d>().Where(bn => bn.running_mean is not null)
            .SelectMany(bn => new[] { bn.running_mean!, bn.running_var!, bn.num_batches_tracked! })
            .Select(b => (Buffer: b, Copy: b.detach().clone())).ToList();
        return new Restore(buffers);
    }

    sealed class Restore(List<(Tensor Buffer, Tensor Copy)> buffers) : IDisposable
    {
        public void Dispose()
        {
            using (no_grad())
                foreach (var (buffer, copy) in buffers)
                {
                    buffer.copy_(copy);
                    copy.Dispose();
                }
            buffers.Clear();
        }
    }

    /// <summary>
    /// Runs <paramref name="batches"/> through the model in train mode without gradients; returns false without BatchNorm.
    /// </summary>
    public static bool Recompute(nn.Module<Tensor, Tensor> model, IEnumerable<Tensor> batches)
    {
        var norms = model.modules().OfType<BatchNorm2d>().ToList();
        if (norms.Count == 0) return false;
        var saved = norms.Select(bn => (bn.momentum, Tracked: bn.num_batches_tracked!.clone())).ToList();
        var wasTraining = model.training;
        using (no_grad())
        {
            foreach (var bn in norms)
            {
                bn.reset_running_stats();
                bn.momentum = null; // cumulative average over the batches
            }
            model.train();
            foreach (var batch in batches)
            {
                using var scope = NewDisposeScope();
                model.call(batch);
            }
            for (var i = 0; i < norms.Count; i++)
            {
                norms[i].momentum = saved[i].momentum;
                norms[i].num_batches_tracked!.copy_(saved[i].Tracked); // the count of training steps, as before
                saved[i].Tracked.Dispose();
            }
        }
        model.train(wasTraining);
        return true;
    }
}
