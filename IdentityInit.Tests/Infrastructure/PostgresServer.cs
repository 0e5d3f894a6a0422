using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace IdentityInit.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server for the test run, started from Debian's installed binaries on a temp directory and a free
/// port (as the postgres user when running as root); each test class gets its own database.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    readonly string root = Path.Combine(Path.GetTempPath(), "identityinit-pg-" + Guid.NewGuid().ToString("N")[..8]);
    string bin = "";
    int port;

    public async Task InitializeAsync()
    {
        var versions = Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Order().ToList() : [];
        if (versions.Count == 0) throw new InvalidOperationException("PostgreSQL server binaries not found under /usr/lib/postgresql " +
            "(apt-get install postgresql)");
        bin = Path.Combine(versions[^1], "bin");
        port = FreePort();
        Directory.CreateDirectory(root);
        var asRoot = Environment.UserName == "root";
        if (asRoot) Run("chown", $"postgres:postgres {root}");
        await RunAsPostgres("initdb", $"-D {root}/data -U postgres -A trust --no-sync -E UTF8", asRoot);
        await StartAsync();
    }

    /// <summary>Starts the server (again, after <see cref="StopAsync"/>) on its port.</summary>
    public Task StartAsync() => RunAsPostgres("pg_ctl",
        $"-D {root}/data -l {root}/log -w -t 60 -o \"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c " +
            "synchronous_commit=off -c full_page_writes=off -c max_connections=200\" start",
        Environment.UserName == "root");

    /// <summary>Stops the server as an operator would (pg_ctl -m fast): the database outage a user meets.</summary>
    public Task StopAsync() => RunAsPostgres("pg_ctl", $"-D {root}/data -m fast -w stop", Environment.UserName == "root");

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={port};Username=postgres;Database={database};Pooling=true;Maximum Pool Size=50";

    /// <summary>A fresh, empty database.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
        await command.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await RunAsPostgres("pg_ctl", $"-D {root}/data -m immediate -w stop", Environment.UserName == "root");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    async Task RunAsPostgres(string tool, string args, bool asRoot)
    {
        var (file, arguments) = asRoot ? ("runuser", $"-u postgres -- {bin}/{tool} {args}") : ($"{bin}/{tool}", args);
        await Task.Run(() => Run(file, arguments));
    }

    static void Run(string file, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(file, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed ({process.ExitCode}): " +
            $"{output.Result}{error.Result}");
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>One server for the classes that share it; they stop workers and kill hosts, so they run alone like the fault classes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
