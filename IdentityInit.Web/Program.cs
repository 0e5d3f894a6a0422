using IdentityInit.Web;

if (args is ["worker", .. var rest])
{
    // A worker host: trains the queues it is configured for (IdentityInit:Queues) against ConnectionStrings:Postgres, no web server.
    var worker = Host.CreateApplicationBuilder(rest);
    worker.AddTrainingHost();
    worker.Build().Run();
    return;
}

var builder = WebApplication.CreateBuilder(args);
builder.AddIdentityInit();

var app = builder.Build();
app.MapIdentityInit();
app.Run();

public partial class Program;
