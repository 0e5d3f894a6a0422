using IdentityInit.Training.Cli;

namespace IdentityInit.Training;

/// <summary>The engine's executable: the headless CLI, and the child process a worker trains each run in.</summary>
static class Program
{
    static Task<int> Main(string[] args) => Commands.RunAsync(args, Console.Out, Console.Error);
}
