namespace IdentityInit.Tests.Infrastructure;

public static class Repository
{
    /// <summary>The checkout the tests were built from: the folder above the test binaries that holds IdentityInit.sln.</summary>
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "IdentityInit.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException($"no IdentityInit.sln above {AppContext.BaseDirectory}");
        }
    }
}
