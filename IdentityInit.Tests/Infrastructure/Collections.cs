namespace IdentityInit.Tests.Infrastructure;

// Test classes run two at a time (xunit.runner.json); each class is its own collection unless it names one of these.

/// <summary>
/// Classes that build models or train in the test process. libtorch's generator (manual_seed, PyTorch's default layer
/// init, dropout) and its thread count are process-wide: two of them side by side would draw from one another's
/// sequence and break the bitwise comparisons, so they take turns.
/// </summary>
[CollectionDefinition(Name)]
public sealed class EngineCollection
{
    public const string Name = "engine in the test process";
}

/// <summary>
/// Classes that stop the database, kill processes or time recoveries: they run alone, after the parallel classes, so
/// that what they measure is the fault they cause and not a neighbour's load.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultCollection
{
    public const string Name = "faults, alone";
}
