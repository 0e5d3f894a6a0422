using Hangfire;
using Hangfire.Dashboard;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using IdentityInit.Training;
using IdentityInit.Web.Accounts;
using IdentityInit.Web.Components;
using IdentityInit.Web.Data;
using IdentityInit.Web.Exports;
using IdentityInit.Web.Runs;
using IdentityInit.Web.Sharing;
using IdentityInit.Web.Signal;
using IdentityInit.Web.Studies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.EntityFrameworkCore;
using MudBlazor.Services;

namespace IdentityInit.Web;

/// <summary>The app's wiring, one place: services in <see cref="AddIdentityInit"/>, endpoints in <see cref="MapIdentityInit"/>.</summary>
public static class Hosting
{
    /// <summary>
    /// A run can train for days: the sliding timeout keeps a live worker's job its own; a dead worker's job is fetched by
    /// another after RequeueAfterSeconds and resumes from its checkpoint.
    /// </summary>
    static PostgreSqlStorageOptions PostgresJobs(LabOptions options) => new()
    {
        UseSlidingInvisibilityTimeout = true, InvisibilityTimeout = TimeSpan.FromSeconds(options.RequeueAfterSeconds),
        PrepareSchemaIfNecessary = true, QueuePollInterval = TimeSpan.FromSeconds(1),
    };

    public static WebApplicationBuilder AddIdentityInit(this WebApplicationBuilder builder)
    {
        TorchRuntime.Initialize(); // allocator and OpenMP settings must precede the first torch call (estimates run here)
        // SQLite's "async" calls run synchronously on pool threads, and a run page asks for its 15 cards at once: with the
        // pool's minimum of one thread per core, requests queued for new threads (~850 ms to the first card on 2 cores).
        ThreadPool.GetMinThreads(out var workerThreads, out var ioThreads);
        ThreadPool.SetMinThreads(Math.Max(workerThreads, 32), ioThreads);
        // Serves MudBlazor's _content/ from the build output in every environment (published output has them in wwwroot).
        builder.WebHost.UseStaticWebAssets();
        var options = builder.AddTrainingHost();
        var services = builder.Services;
        services.AddSignalR(o => o.EnableDetailedErrors = builder.Environment.IsDevelopment()).AddJsonProtocol(o =>
        {
            o.PayloadSerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
            o.PayloadSerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        });
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals;
            o.SerializerOptions.Converters.Add(new System.Text.Json.Serialization.JsonStringEnumConverter());
        });
        if (builder.Configuration.GetConnectionString("Postgres") is { Length: > 0 })
        {
            services.AddHostedService<LiveRelay>();
            services.AddHostedService<RevocationListener>();
        }
        services.AddLabAccounts();
        services.AddHostedService<FirstAdmin>();
        // Cookie and antiforgery keys in the store: every web node reads the others' cookies, and restarts keep sessions.
        services.AddDataProtection().SetApplicationName("IdentityInit").PersistKeysToDbContext<AppDbContext>();
        services.AddSingleton<Access>();
        services.AddSingleton<ShareService>();
        services.AddSingleton<Revocations>();
        services.AddSingleton<Estimates>();
        services.AddSingleton<StudyService>();
        services.AddSingleton<SignalService>();
        services.AddHttpContextAccessor();
        services.AddProblemDetails();
        // API answers are JSON: a run page's chart history compresses ~4x. Only JSON, and only over plain HTTP (the
        // framework's default: compressing secrets beside reflected input over TLS is the BREACH attack).
        services.AddResponseCompression(o => o.MimeTypes = ["application/json", "application/problem+json"]);
        services.AddOpenApi();
        services.AddRazorComponents().AddInteractiveServerComponents();
        // Messages at the bottom left: at the top right they covered a run's action buttons.
        services.AddMudServices(c => c.SnackbarConfiguration.PositionClass = MudBlazor.Defaults.Classes.Position.BottomLeft);
        return builder;
    }

    /// <summary>
    /// What trains runs, with or without a web server (<c>IdentityInit.Web worker</c>): the store, Hangfire's storage and a
    /// server per configured queue, the stream that persists what runs report, and recovery of runs left behind.
    /// </summary>
    public static LabOptions AddTrainingHost(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        var section = builder.Configuration.GetSection("IdentityInit");
        services.Configure<LabOptions>(section);
        var options = section.Get<LabOptions>() ?? new LabOptions();
        var postgres = builder.Configuration.GetConnectionString("Postgres");

        var sqlitePath = Path.Combine(options.DataDir, "identityinit.db");
        services.AddDbContextFactory<AppDbContext, StoreContextFactory>(o => StoreContextFactory.Configure(o, postgres, sqlitePath));
        services.AddSingleton(sp => new AppDb(sp.GetRequiredService<IDbContextFactory<AppDbContext>>(), postgres, sqlitePath));
        services.AddHostedService<DatabaseMigrator>(); // first: hosted services start in order
        // The storage and the job activator are this app's own singletons, not Hangfire's process-wide JobStorage.Current
        // and JobActivator.Current: AddHangfire registers those only when none is, and several apps in one process (the
        // test suite runs them side by side) would otherwise enqueue into and activate jobs from whichever started last.
        services.AddSingleton<JobStorage>(_ => postgres is { Length: > 0 } && PostgresJobs(options) is var jobs
            ? new PostgreSqlStorage(new NpgsqlConnectionFactory(postgres, jobs), jobs)
            : new InMemoryStorage(new InMemoryStorageOptions { MaxExpirationTime = TimeSpan.FromDays(7) }));
        services.AddSingleton<JobActivator>(sp =>
            new Hangfire.AspNetCore.AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));
        services.AddHangfire((sp, c) => c.SetDataCompatibilityLevel(CompatibilityLevel.Version_180).UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings().UseStorage(sp.GetRequiredService<JobStorage>()));
        foreach (var queue in options.QueueList)
            services.AddHangfireServer(o =>
            {
                o.ServerName = $"{TrainingJob.WorkerName}:{queue}";
                o.Queues = [queue];
                o.WorkerCount = options.Workers.GetValueOrDefault(queue, 1);
                o.SchedulePollingInterval = TimeSpan.FromSeconds(1);
                o.HeartbeatInterval = TimeSpan.FromSeconds(5); // the workers page calls a host alive within 3 heartbeats
                o.ServerTimeout = TimeSpan.FromSeconds(30);
                o.ServerCheckInterval = TimeSpan.FromSeconds(15);
            });
        services.AddSignalRCore(); // RunStream's hub context; a worker host has no clients, web nodes relay from the database
        services.AddSingleton<RunStream>();
        services.AddHostedService(sp => sp.GetRequiredService<RunStream>());
        services.AddSingleton<RunCancellation>();
        services.AddSingleton<Workers>();
        services.AddSingleton<WeightImports>(); // RunService checks a run's initFile against the staged weights
        services.AddSingleton<ChartCards>();
        services.AddSingleton<RunQueries>(); // RunService reads runs through it, on web nodes and worker hosts alike
        services.AddSingleton<RunService>();
        services.AddHostedService<RunRecovery>();
        return options;
    }

    public static WebApplication MapIdentityInit(this WebApplication app)
    {
        if (!app.Environment.IsDevelopment())
        {
            app.UseExceptionHandler("/error", createScopeForErrors: true);
            // An API caller gets a problem body it can read, not the error page's HTML.
            app.UseWhen(http => http.Request.Path.StartsWithSegments("/api"), api => api.UseExceptionHandler(new ExceptionHandlerOptions
            {
                ExceptionHandler = http =>
                    Results.Problem(title: "The lab failed on this request", statusCode: StatusCodes.Status500InternalServerError,
                    detail: "An unexpected error; the server's log has the details.").ExecuteAsync(http),
            }));
        }
        app.UseStatusCodePages();
        app.UseResponseCompression();
        app.Use(DatabaseOutage);
        app.Use(SecurityHeaders);
        app.Use(SameOriginWrites);
        app.UseAuthentication();
        app.UseAuthorization(); // default-deny (SignIn): what is open says AllowAnonymous below
        app.UseAntiforgery();
        app.MapStaticAssets().AllowAnonymous();
        app.MapOpenApi();
        app.MapHub<RunsHub>("/hubs/runs").AllowAnonymous(); // share links watch live too: the hub checks every join
        app.MapRunsApi();
        app.MapSharingApi();
        app.MapExportsApi();
        app.MapAccountsApi();
        app.MapStudiesApi();
        app.MapSignalApi();
        var options = app.Services.GetRequiredService<IOptions<LabOptions>>().Value;
        app.UseHangfireDashboard("/jobs", new DashboardOptions
        {
            Authorization = [new DashboardGate(options.DashboardAllowRemote)],
            DisplayStorageConnectionString = false,
        });
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode()
            .Add(endpoint =>
            {
                // The circuit's own endpoints serve share pages' anonymous viewers too; each page checks its viewer, and the
                // pages' HTTP endpoints are default-deny unless the page says [AllowAnonymous].
                if (endpoint is RouteEndpointBuilder { RoutePattern.RawText: { } route }
                    && route.TrimStart('/').StartsWith("_", StringComparison.Ordinal))
                    endpoint.Metadata.Add(new Microsoft.AspNetCore.Authorization.AllowAnonymousAttribute());
            });
        return app;
    }

    /// <summary>
    /// A request that meets a database outage (a transient connection failure, before anything was sent) answers 503 with
    /// Retry-After and a problem body, not 500, and not a sign-in redirect because a token or share could not be looked up.
    /// </summary>
    static async Task DatabaseOutage(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (AppDb.IsOutage(e) && !context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.Headers.RetryAfter = "5";
            await Results.Problem(title: "The database is unavailable", statusCode: StatusCodes.Status503ServiceUnavailable,
                detail: "The lab's database did not answer; nothing was changed. Retry in a few seconds.").ExecuteAsync(context);
        }
    }

    /// <summary>
    /// What a web app ships with: no MIME sniffing, no referrer (share tokens live in URLs), no framing, and a content
    /// policy that allows only this site's scripts (MudBlazor needs inline styles; SignalR needs WebSockets).
    /// </summary>
    static Task SecurityHeaders(HttpContext http, Func<Task> next)
    {
        http.Response.OnStarting(() => // last word: replaces what components or antiforgery set on the way (X-Frame-Options)
        {
            var headers = http.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            headers.XFrameOptions = "DENY";
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' " +
                "data: blob:; " +
                                            "font-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri " +
                                                "'self'; form-action 'self'";
            return Task.CompletedTask;
        });
        return next();
    }

    /// <summary>
    /// A write to the API, and any connection to the live hub, from another site's page is refused: a browser sends the
    /// lab's cookie along with a cross-site form post or WebSocket, and its Origin header says where the page came from.
    /// Scripts and the CLI send no Origin and pass; an Origin given twice, empty or "null" is refused, not skipped.
    /// </summary>
    static async Task SameOriginWrites(HttpContext http, Func<Task> next)
    {
        var request = http.Request;
        var write = !(HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method));
        var guarded = request.Path.StartsWithSegments("/hubs") || (write && request.Path.StartsWithSegments("/api"));
        var origins = request.Headers.Origin;
        if (guarded && origins.Count > 0 && !(origins is [{ Length: > 0 } origin] && Uri.TryCreate(origin, UriKind.Absolute, out var from)
                                             && string.Equals(from.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)))
        {
            http.Response.StatusCode = StatusCodes.Status403Forbidden;
            await http.Response.WriteAsJsonAsync(new
            {
                title = "cross-origin request refused",
                detail = $"a page from {IdentityInit.Training.ConfigValidation.Shown(string.Join(", ", origins.ToArray()))} may not " +
                    "change or stream this lab",
            });
            return;
        }
        await next();
    }

    /// <summary>Hangfire's dashboard can delete and requeue jobs: admins only, and from this machine unless allowed.</summary>
    sealed class DashboardGate(bool allowRemote) : IDashboardAuthorizationFilter
    {
        public bool Authorize(DashboardContext context)
        {
            var http = context.GetHttpContext();
            var local = http.Connection.RemoteIpAddress is { } ip
                && (System.Net.IPAddress.IsLoopback(ip) || ip.Equals(http.Connection.LocalIpAddress));
            return (allowRemote || local) && Caller.From(http.User).IsAdmin;
        }
    }

    sealed class DatabaseMigrator(AppDb db, ILogger<DatabaseMigrator> logger) : IHostedService
    {
        public async Task StartAsync(CancellationToken cancellationToken)
        {
            await db.MigrateAsync(cancellationToken);
            logger.LogInformation("store: {Store}", db.Description);
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
