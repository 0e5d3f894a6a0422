using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using IdentityInit.Tests.Infrastructure;
using IdentityInit.Training;
using IdentityInit.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace IdentityInit.Tests.Web;

/// <summary>
/// Malformed input, generated (CsCheck), for the three readers a request reaches: the run request and its config overlay
/// (POST /api/runs), the study request (POST /api/studies) and the safetensors header (POST /api/weights). Each case is a
/// valid request bent by 1-4 mutations: a field set to a hostile value, an unknown or another reader's field, a key given
/// twice, nesting, a cut or a stray byte. Whatever the case, the answer is never a 5xx, never longer than 16 KB, and a
/// refusal stores nothing. CI runs a short seeded sample; IDENTITYINIT_CORPUS_CASES=100000 runs it long (by hand).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class CorpusTests : IAsyncLifetime
{
    static readonly long Cases = long.TryParse(Environment.GetEnvironmentVariable("IDENTITYINIT_CORPUS_CASES"), out var n) ? n : 120;
    // CsCheck's seed: the same cases on every CI run; a failure prints the seed that reproduces it (CsCheck_Seed=...).
    static readonly string Seed = Environment.GetEnvironmentVariable("CsCheck_Seed") ?? "0N0XIzNsQ0O2";
    const int MaxResponse = 16 * 1024;

    readonly LabFactory lab = new();
    HttpClient http = null!;

    public Task InitializeAsync()
    {
        http = lab.CreateClient();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await lab.DisposeAsync();

    static readonly string[] Hostile =
    [
        "null", "true", "-1", "0", "1e308", "-1e308", "1.5", "2147483648", "9223372036854775807", "18446744073709551616", "\"\"",
        JsonSerializer.Serialize(new string('x', 5000)), "\"constnet-he\"", "\"/etc/passwd\"", "\"imports/../../../etc/passwd\"",
            "\"\\u0000\"",
        "\"=cmd|' /C calc'!A0\"", "\"a\\nb\"", "[]", "{}", "[1,2,3]", "{\"a\":{\"b\":{\"c\":[]}}}", "\"NaN\"", "\"Infinity\"", "-0",
        "\"constnet\"", "\"leakynet\"", "\"toy\"", "\"h_hh_hh_hh\"", "\"cuda:7\"", "\"dropout\"", "[null]", "[\"x\"]",
            "{\"depth\":10,\"depth\":16}",
        new string('[', 80) + new string(']', 80),
    ];

    static readonly string[] Keys =
    [
        "preset", "name", "config", "tags", "sweep", "seeds", "arms", "vary", "scale", "label", "field", "values", "device", "Name",
        .. typeof(ExperimentConfig).GetProperties().Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)),
    ];

    /// <summary>Mutation codes: each int picks a kind (its low 3 bits) and where and what (the rest).</summary>
    static readonly Gen<int[]> Codes = Gen.Int[0, int.MaxValue].Array[1, 4];

    /// <summary>Applies the codes to a valid JSON body: tree mutations first, then text mutations of the serialized body.</summary>
    static string Mutate(string valid, int[] codes)
    {
        var root = JsonNode.Parse(valid)!;
        var text = (string?)null;
        foreach (var code in codes)
        {
            var (kind, arg) = (code & 7, code >> 3);
            var objects = Objects(root).ToList();
            var target = objects[arg % objects.Count];
            var keys = target.Select(kv => kv.Key).ToList();
            string Value(int i) => Hostile[i % Hostile.Length];
            // In the tree, what a tree can hold (a key twice and 80-deep nesting go in as text, below).
            JsonNode? Node(int i) => TextOnly(Value(i)) ? JsonValue.Create(Value(i)) : JsonNode.Parse(Value(i));
            switch (kind)
            {
                case 0 when keys.Count > 0: target[keys[arg % keys.Count]] = Node(arg / 7); break;
                case 1: target[Keys[arg % Keys.Length]] = Node(arg / 11); break;
                case 2 when keys.Count > 0: target.Remove(keys[arg % keys.Count]); break;
                case 3 when keys.Count > 0:
                    target[keys[arg % keys.Count]] = new JsonArray(Node(arg),
                    new JsonObject { ["x"] = Node(arg / 3) }); break;
                default: break;
            }
            if (kind >= 4) text = (text ?? root.ToJsonString()) switch
            {
                // a key twice
                var t when kind == 4 =>
                    t.Insert(t.IndexOf('{') + 1, $"\"{Keys[arg % Keys.Length]}\":{Value(arg)},\"{Keys[arg % Keys.Length]}\":1,"),
                var t when kind == 5 => t[..(arg % Math.Max(1, t.Length))], // cut short
                var t when kind == 6 => t.Insert(arg % Math.Max(1, t.Length), ((char)(arg % 0x3000)).ToString()), // a stray character
                _ => Value(arg), // not the request at all
            };
        }
        return text ?? root.ToJsonString();
    }

    static bool TextOnly(string value) => value.StartsWith("[[", StringComparison.Ordinal) || value.Contains("\"depth\":10,");

    static IEnumerable<JsonObject> Objects(JsonNode? node) => node switch
    {
        JsonObject o => new[] { o }.Concat(o.SelectMany(kv => Objects(kv.Value))),
        JsonArray a => a.SelectMany(Objects),
        _ => [],
    };

    async Task<(int Runs, int Studies)> CountAsync()
    {
        await using var context = lab.Services.GetRequiredService<AppDb>().Create();
        return (await context.Runs.CountAsync(), await context.Studies.CountAsync());
    }

    /// <summary>Sends one body; asserts the reply's status and size, and that a refusal stored nothing. Returns what was created.</summary>
    async Task<JsonElement?> SendAsync(string path, HttpContent content, string body)
    {
        var before = await CountAsync();
        using var response = await http.PostAsync(path, content);
        var reply = await response.Content.ReadAsStringAsync();
        var status = (int)response.StatusCode;
        Assert.True(status < 500,
            $"{path} answered {status} to {body[..Math.Min(body.Length, 600)]}: {reply[..Math.Min(reply.Length, 1500)]}");
        Assert.True(reply.Length <= MaxResponse, $"{path} answered {reply.Length:N0} characters to {ConfigValidation.Shown(body)}");
        if (status >= 400) Assert.Equal(before, await CountAsync());
        return response.IsSuccessStatusCode ? JsonDocument.Parse(reply).RootElement.Clone() : null;
    }

    [Fact]
    public async Task MalformedRunRequestsAreRefusedCleanly()
    {
        var valid = JsonSerializer.Serialize(new
        {
            preset = "constnet-he", name = "corpus", tags = new[] { "a" },
            config = Api.TinyConfig(1)
        });
        await Codes.SampleAsync(async codes =>
        {
            var body = Mutate(valid, codes);
            if (await SendAsync("/api/runs", new StringContent(body, Encoding.UTF8, "application/json"), body) is { } created)
                foreach (var run in created.EnumerateArray()) await http.PostAsync($"/api/runs/{run.GetProperty("id").GetGuid()}/cancel",
                    null);
        }, seed: Seed, iter: Cases, threads: 1);
    }

    [Fact]
    public async Task MalformedStudyRequestsAreRefusedCleanly()
    {
        var arm = new { label = "a", preset = "constnet-he", config = Api.TinyConfig(1) };
        string[] valid =
        [
            JsonSerializer.Serialize(new { name = "corpus", seeds = 1, arms = new[] { arm } }),
            JsonSerializer.Serialize(new { name = "corpus", seeds = 1, config = Api.TinyConfig(1),
                vary = new { field = "dropout", values = new[] { 0.0, 0.1 }, preset = "constnet-deterministic" } }),
        ];
        await Gen.Select(Gen.Int[0, valid.Length - 1], Codes).SampleAsync(async (which, codes) =>
        {
            var body = Mutate(valid[which], codes);
            if (await SendAsync("/api/studies", new StringContent(body, Encoding.UTF8, "application/json"), body) is { } created)
                await http.PostAsync($"/api/studies/{created.GetProperty("summary").GetProperty("id").GetGuid()}/cancel", null);
        }, seed: Seed, iter: Cases, threads: 1);
    }

    [Fact]
    public async Task MalformedSafetensorsHeadersAreRefusedCleanly()
    {
        var options = lab.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<IdentityInit.Web.LabOptions>>().Value;
        var imports = Path.Combine(options.CheckpointRoot, "imports");
        int Staged() => Directory.Exists(imports) ? Directory.GetFiles(imports).Length : 0;
        const string valid = """{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"__metadata__":{"format":"pt"}}""";
        // The header's length as written (sometimes a lie), the header, then the data.
        await Gen.Select(Codes, Gen.Int[0, 5], Gen.Int[0, 64]).SampleAsync(async (codes, lengthLie, dataBytes) =>
        {
            var header = Encoding.UTF8.GetBytes(Mutate(valid, codes));
            var length = lengthLie switch
            {
                0 => header.Length + 1,
                1 => header.Length - 1,
                2 => long.MaxValue,
                3 => 0,
                _ => header.Length
            };
            var file = BitConverter.GetBytes((long)length).Concat(header).Concat(new byte[dataBytes]).ToArray();
            var before = Staged();
            var form = new MultipartFormDataContent { { new ByteArrayContent(file), "file", "w.safetensors" } };
            if (await SendAsync("/api/weights", form, Encoding.UTF8.GetString(header)) is null) Assert.Equal(before, Staged());
        }, seed: Seed, iter: Cases, threads: 1);
    }
}
