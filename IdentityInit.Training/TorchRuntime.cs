using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace IdentityInit.Training;

/// <summary>Process-wide torch set-up: allocator and OpenMP tuning, device parsing, determinism flags, versions.</summary>
public static partial class TorchRuntime
{
    /// <summary>
    /// Held by whatever draws from libtorch's global generator (manual_seed, PyTorch's default layer init, dropout, randn).
    /// The generator is process-wide: a web process estimating a config (or checking staged weights) beside a run trained
    /// in the same process (the CLI, the tests) would otherwise shift that run's dropout masks between its seed and its draw.
    /// </summary>
    public static readonly Lock GlobalRandom = new();

    static readonly Lock Gate = new();
    static bool initialized;

    /// <summary>Call before the first torch operation; idempotent.</summary>
    public static void Initialize()
    {
        lock (Gate)
        {
            if (initialized) return;
            initialized = true;
            if (!OperatingSystem.IsLinux()) return;
            // Measured on our VMs: libgomp spin-waiting with 2 threads sometimes stalls a step 5-8x; read once by libgomp.
            if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
            // Measured: glibc hands freed multi-MB tensors back to the OS and faults them in every step (3.8x on a loop).
            const int mTrimThreshold = -1, mMmapThreshold = -3;
            mallopt(mMmapThreshold, 1 << 30);
            mallopt(mTrimThreshold, 1 << 30);
        }
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);

    [LibraryImport("libc")]
    private static partial int mallopt(int param, int value);

    public static string? DeviceError(string device)
    {
        if (device == "cpu" || device == "cuda") return null;
        if (device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device[5..], out var index) && index >= 0)
            return null;
        return $"'{ConfigValidation.Shown(device)}' is not a device: use cpu, cuda or cuda:N";
    }

    /// <summary>Resolves a device name at run time, with a clear error when CUDA is asked for and absent.</summary>
    public static Device ResolveDevice(string device)
    {
        if (DeviceError(device) is { } error) throw new ArgumentException(error, nameof(device));
        if (device == "cpu") return CPU;
        Initialize();
        if (!cuda.is_available())
            throw new InvalidOperationException(
                $"Device '{device}' was requested but CUDA is not available: this build carries the CPU natives " +
                "(build with -p:TorchBackend=cuda on a machine with the CUDA package and an NVIDIA driver).");
        var index = device == "cuda" ? 0 : int.Parse(device[5..]);
        var count = cuda.device_count();
        if (index >= count)
            throw new InvalidOperationException($"Device '{device}' does not exist: {count} CUDA device(s) visible.");
        return new Device(TorchSharp.DeviceType.CUDA, index);
    }

    /// <summary>
    /// Sets the kernel flags a run trains under and returns them as libtorch reports them back. Deterministic kernels
    /// when asked; on CUDA cuDNN's benchmark mode on, as the reference's train.py sets it for every arm
    /// (<c>cudnn.benchmark = True</c>); TF32 off for convolutions and matmuls, since the paper's GPUs computed in
    /// full fp32 (libtorch allows TF32 in cuDNN by default).
    /// </summary>
    public static DeterminismFlags SetDeterministic(bool deterministic, bool cuda = false)
    {
        Initialize();
        _ = ones(1); // loads libtorch before the P/Invokes below
        var context = at_globalContext();
        at_setDeterministicAlgorithms(context, deterministic, false);
        // With deterministic algorithms libtorch also fills every new uninitialised tensor with NaN, a debugging aid
        // (torch.utils.deterministic.fill_uninitialized_memory) that changes no result of ours and cost 1.3x at 2 threads.
        at_setDeterministicFillUninitializedMemory(context, false);
        at_setDeterministicCuDNN(context, deterministic);
        at_setBenchmarkCuDNN(context, cuda);
        at_setAllowTF32CuDNN(context, false);
        at_setAllowTF32CuBLAS(context, false);
        return ReadDeterminism();
    }

    public static DeterminismFlags ReadDeterminism()
    {
        var context = at_globalContext();
        return new DeterminismFlags(
            at_deterministicAlgorithms(context), at_deterministicCuDNN(context), at_benchmarkCuDNN(context),
            at_allowTF32CuDNN(context, NoOperation), at_allowTF32CuBLAS(context), at_deterministicFillUninitializedMemory(context));
    }

    /// <summary>std::optional&lt;at::Float32Op&gt; disengaged (all bytes zero), passed in a register by the SysV ABI.</summary>
    const ulong NoOperation = 0;

    // TorchSharp does not expose these; libtorch_cpu exports at::Context's setters and getters (C++ ABI, `this` first).
    const string LibTorch = "libtorch_cpu.so";

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at13globalContextEv")]
    private static partial nint at_globalContext();

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context26setDeterministicAlgorithmsEbb")]
    private static partial void at_setDeterministicAlgorithms(nint context,
        [MarshalAs(UnmanagedType.U1)] bool value, [MarshalAs(UnmanagedType.U1)] bool warnOnly);

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context39setDeterministicFillUninitializedMemoryEb")]
    private static partial void at_setDeterministicFillUninitializedMemory(nint context, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context36deterministicFillUninitializedMemoryEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_deterministicFillUninitializedMemory(nint context);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context23deterministicAlgorithmsEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_deterministicAlgorithms(nint context);

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context21setDeterministicCuDNNEb")]
    private static partial void at_setDeterministicCuDNN(nint context, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context18deterministicCuDNNEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_deterministicCuDNN(nint context);

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context17setBenchmarkCuDNNEb")]
    private static partial void at_setBenchmarkCuDNN(nint context, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context14benchmarkCuDNNEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_benchmarkCuDNN(nint context);

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context17setAllowTF32CuDNNEb")]
    private static partial void at_setAllowTF32CuDNN(nint context, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context14allowTF32CuDNNESt8optionalINS_9Float32OpEE")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_allowTF32CuDNN(nint context, ulong operation);

    [LibraryImport(LibTorch, EntryPoint = "_ZN2at7Context18setAllowTF32CuBLASEb")]
    private static partial void at_setAllowTF32CuBLAS(nint context, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(LibTorch, EntryPoint = "_ZNK2at7Context15allowTF32CuBLASEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static partial bool at_allowTF32CuBLAS(nint context);

    public static string TorchSharpVersion =>
        typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString(3) ?? "unknown";

    public static string LibTorchVersion => __version__;
}

/// <summary>Kernel flags as libtorch read them back at the start of a run (TF32: whether cuDNN / cuBLAS may use it).</summary>
public sealed record DeterminismFlags(bool DeterministicAlgorithms, bool CudnnDeterministic, bool CudnnBenchmark, bool Tf32CuDnn = false,
    bool Tf32CuBlas = false,
    bool FillUninitializedMemory = false);
