using static TorchSharp.torch;

namespace IdentityInit.Training;

/// <summary>
/// torch.optim.SGD (dampening 0) written out, so its momentum buffers can be checkpointed exactly and the learning rate
/// is a plain argument: d = g + wd*p; buf = m*buf + d; p -= lr * (nesterov ? d + m*buf : buf).
/// </summary>
internal sealed class Sgd(IReadOnlyList<Tensor> parameters, double momentum, double weightDecay, bool nesterov) : IDisposable
{
    readonly Tensor[] buffers = parameters.Select(p => zeros_like(p).requires_grad_(false)).ToArray();

    public IReadOnlyList<Tensor> Buffers => buffers;

    public void Step(double learningRate)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        for (var i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (p.grad is not { } g) continue;
            var d = weightDecay != 0 ? g.add(p, weightDecay) : g;
            if (momentum != 0)
            {
                buffers[i].mul_(momentum).add_(d);
                d = nesterov ? d.add(buffers[i], momentum) : buffers[i];
            }
            p.add_(d, -learningRate);
        }
    }

    public void Dispose()
    {
        foreach (var b in buffers) b.Dispose();
    }
}

public static class LearningRate
{
    /// <summary>
    /// reference: lr x 0.2 each time epoch+1 reaches E-140, E-80, E-40 (the paper's code; meant for E >= 200);
    /// cosine: lr/2 (1 + cos(pi e/E)) per epoch; cosine-step: lr/2 (1 + cos(pi t/T)) per optimizer step t of T, so that
    /// short runs end at ~0 (and BatchNorm's running average then describes the final weights); constant: lr.
    /// </summary>
    public static double At(ExperimentConfig c, int epoch, long step = 0, long totalSteps = 1) => c.Schedule switch
    {
        "reference" => c.LearningRate * Math.Pow(0.2, new[] { c.Epochs - 140, c.Epochs - 80, c.Epochs - 40 }.Count(m => epoch + 1 >= m)),
        "cosine" => c.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * epoch / c.Epochs)),
        "cosine-step" => c.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / Math.Max(totalSteps, 1))),
        _ => c.LearningRate,
    };
}
