using IdentityInit.Training;

namespace IdentityInit.Tests.Training;

/// <summary>libtorch's kernel flags are process-wide: these tests run alone, never beside a training test.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class KernelFlagsCollection
{
    public const string Name = "kernel flags";
}

[Collection(KernelFlagsCollection.Name)]
public sealed class KernelFlagsTests
{
    [Fact]
    public void TheGpuArmTrainsLikeTheReferenceBenchmarkOnAndTf32OffAndSaysSo()
    {
        var gpu = TorchRuntime.SetDeterministic(deterministic: false, cuda: true);
        var cpu = TorchRuntime.SetDeterministic(deterministic: true, cuda: false);

        Assert.Equal(new DeterminismFlags(false, false, CudnnBenchmark: true, Tf32CuDnn: false, Tf32CuBlas: false), gpu);
        Assert.Equal(new DeterminismFlags(true, true, CudnnBenchmark: false, Tf32CuDnn: false, Tf32CuBlas: false), cpu);
        Assert.Equal(cpu, TorchRuntime.ReadDeterminism());
    }
}
