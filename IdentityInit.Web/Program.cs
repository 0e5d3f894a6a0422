using IdentityInit.Web;

if (args is ["worker", .. var rest])
{
    // A worker host: trains the queues it is configured for (IdentityInit:Queues) against ConnectionStrings:Postgres, no web server.
    var worker = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
    {
        Args = rest,
        ContentRootPath = AppContext.BaseDirectory
    });
    if (worker.Configuration.GetConnectionString("Postgres") is not { Length: > 0 })
    {
        Console.Error.WriteLine("error: ConnectionStrings:Postgres: a worker host shares its queues and runs with web nodes through " +
                                "PostgreSQL; set ConnectionStrings__Postgres (the embedded default trains inside the web app itself)");
        return 2;
    }
    worker.AddTrainingHost();
    worker.Build().Run();
    return 0;
}

// The app's own folder, not the working directory: appsettings.json (host filter, log levels) applies wherever it starts.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddIdentityInit();

var app = builder.Build();
app.MapIdentityInit();
app.Run();
return 0;

public partial class Program;
