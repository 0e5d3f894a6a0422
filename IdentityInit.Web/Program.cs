using IdentityInit.Web;

if (args is ["worker", .. var rest])
{
    // A worker host: trains the queues it is configured for (IdentityInit:Queues) against ConnectionStrings:Postgres, no web server.
    var worker = Host.CreateApplicationBuilder(rest);
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

var builder = WebApplication.CreateBuilder(args);
builder.AddIdentityInit();

var app = builder.Build();
app.MapIdentityInit();
app.Run();
return 0;

public partial class Program;
