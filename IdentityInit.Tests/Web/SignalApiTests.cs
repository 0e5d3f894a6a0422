using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using IdentityInit.Tests.Infrastructure;

namespace IdentityInit.Tests.Web;

/// <summary>Signal propagation and diversity at initialization, without training, through POST /api/signal.</summary>
public sealed class SignalApiTests : IAsyncLifetime
{
    readonly LabFactory lab = new();
    HttpClient http = null!;

    public Task InitializeAsync()
    {
        http = lab.CreateClient();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await lab.DisposeAsync();

    static object Request(object? config = null, params string[] inits) => new
    {
        preset = "constnet-deterministic", config = config ?? new { dataset = "synthetic", depth = 10, probeSize = 16 }, inits,
    };

    [Fact]
    [Trait("Speed", "Slow")] // over ~5 s: left out of ./test.sh --fast
    public async Task ThreeInitsAreMeasuredAtInitConstNetPropagatesWithIdenticalChannelsHeWithDiverseOnes()
    {
        var response = await http.PostAsJsonAsync("/api/signal", Request(null, "const", "he-fanin", "xavier", "he-fanin*0.5"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var results = (await response.Content.ReadFromJsonAsync<JsonElement>(Api.Json)).EnumerateArray().ToList();
        Assert.Equal(["const", "he-fanin", "xavier", "he-fanin*0.5"], results.Select(r => r.GetProperty("init").GetString()));
        JsonElement Snapshot(string init) => results.Single(r => r.GetProperty("init").GetString() == init).GetProperty("snapshot");
        var constNet = Snapshot("const");
        var he = Snapshot("he-fanin");
        var input = constNet.GetProperty("inputSignal").GetDouble();
        foreach (var snapshot in new[] { constNet, he })
        {
            var hidden = snapshot.GetProperty("signals").EnumerateArray().Where(l => l.GetProperty("layer").GetString() != "fc").ToList();
            Assert.Equal(7, hidden.Count); // conv1 and 3 groups of 2 blocks (depth 10 = 3 x 2 + 4)
            // propagates: neither vanishes nor explodes
            Assert.All(hidden, l => Assert.InRange(l.GetProperty("forward").GetDouble() / input, 1e-3, 1e3));
        }
        // ConstNet: every channel identical in every layer; He: not.
        Assert.All(constNet.GetProperty("activations").EnumerateArray(),
            a => Assert.Equal(1.0, a.GetProperty("correlation").GetDouble(), 6));
        Assert.All(he.GetProperty("activations").EnumerateArray(), a => Assert.True(a.GetProperty("correlation").GetDouble() < 0.99));
        Assert.All(constNet.GetProperty("weights").EnumerateArray().Where(w => w.GetProperty("layer").GetString() != "fc"),
            w => Assert.Equal(0, w.GetProperty("spread").GetDouble()));
        // A bad scale: the same He weights times 0.5. The stem's output is half, so its mean square a quarter, exactly;
        // every later layer carries less than He's (the residual shortcuts keep it from vanishing geometrically).
        double Forward(JsonElement snapshot, int i) => snapshot.GetProperty("signals")[i].GetProperty("forward").GetDouble();
        var half = Snapshot("he-fanin*0.5");
        Assert.Equal(0.25, Forward(half, 0) / Forward(he, 0), 5);
        for (var i = 1; i < 7; i++) Assert.True(Forward(half, i) < Forward(he, i),
            $"layer {i}: {Forward(half, i)} vs He's {Forward(he, i)}");
    }

    [Fact]
    public async Task BadRequestsAreRefusedNamingTheFieldAndAViewerMayNotMeasure()
    {
        var unknown = await http.PostAsJsonAsync("/api/signal", Request(null, "const", "bogus", "he-fanin*0"));
        var depth = await http.PostAsJsonAsync("/api/signal", Request(new { dataset = "synthetic", depth = 8 }, "const"));
        var none = await http.PostAsJsonAsync("/api/signal", Request(null));
        var huge = await http.PostAsJsonAsync("/api/signal", Request(new { dataset = "synthetic", depth = 100, widen = 64 }, "const"));
        var viewer = lab.CreateClient();
        viewer.DefaultRequestHeaders.Authorization = new("Bearer",
            await lab.TokenForAsync("grace", IdentityInit.Web.Accounts.LabRoles.Viewer));
        var refused = await viewer.PostAsJsonAsync("/api/signal", Request(null, "const"));

        async Task<string> Errors(HttpResponseMessage r) =>
            (await r.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("errors").ToString();
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        var unknownErrors = await Errors(unknown);
        Assert.Contains("inits[1]", unknownErrors);
        Assert.Contains("'bogus' is not one of", unknownErrors);
        Assert.Contains("inits[2]", unknownErrors);
        Assert.Contains("'0' is not a scale above 0", unknownErrors);
        Assert.Equal(HttpStatusCode.BadRequest, depth.StatusCode);
        Assert.Contains("config.depth", await Errors(depth));
        Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);
        Assert.Contains("give 1 to 8 inits", await Errors(none));
        Assert.Equal(HttpStatusCode.BadRequest, huge.StatusCode); // refused before anything is built, with the estimate
        Assert.Contains("parameters", await Errors(huge));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }
}
