using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace IdentityInit.Training.Models;

/// <summary>
/// The first paper version's toy model: flatten -> Linear(D, N) -> ReLU -> Linear(N, classes), where the N hidden
/// units hold only K unique features at init (unit j copies feature j mod K).
/// </summary>
internal sealed class ToyNet : ImageModel
{
    readonly Linear fc1, fc2;
    readonly int unique;

    public ToyNet(int inputs, int hidden, int unique, int classes) : base(nameof(ToyNet))
    {
        this.unique = unique;
        fc1 = Linear(inputs, hidden);
        fc2 = Linear(hidden, classes);
        RegisterComponents();
    }

    public override Tensor Forward(Tensor x, List<(string Layer, Tensor Output)>? taps)
    {
        x = functional.relu(fc1.call(x.flatten(1)));
        taps?.Add(("fc1", x));
        x = fc2.call(x);
        taps?.Add(("fc2", x));
        return x;
    }

    protected override int CopyPeriod => unique;

    protected override WeightRole RoleOf(string layer) => layer == "fc1" ? WeightRole.Stem : WeightRole.Classifier;
}
