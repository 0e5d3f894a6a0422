using IdentityInit.Web;

var builder = WebApplication.CreateBuilder(args);
builder.AddIdentityInit();

var app = builder.Build();
app.MapIdentityInit();
app.Run();

public partial class Program;
