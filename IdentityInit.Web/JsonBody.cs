using System.Text.Json;
using IdentityInit.Training;

namespace IdentityInit.Web;

/// <summary>
/// A JSON request body as every endpoint reads it (bind it as a parameter: <c>(JsonBody&lt;CreateStudyRequest&gt; body, ...)</c>).
/// One reader, one set of refusals: a body that is not application/json answers 415; invalid JSON (with where), a key
/// given twice at any depth (System.Text.Json lets the last one win, or throws a 500 inside a JsonObject) and a value of
/// the wrong type answer 400 naming the field.
/// </summary>
public sealed class JsonBody<T> where T : class
{
    public T? Value { get; private init; }

    /// <summary>The problem response when the body cannot be used; null when <see cref="Value"/> is set.</summary>
    public IResult? Refusal { get; private init; }

    public static async ValueTask<JsonBody<T>?> BindAsync(HttpContext http)
    {
        var (value, refusal) = await JsonBody.ReadAsync<T>(http.Request);
        return new JsonBody<T> { Value = value, Refusal = refusal };
    }
}

public static class JsonBody
{
    /// <summary>How request bodies are read: web defaults (camelCase, case-insensitive, numbers only as numbers).</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static async Task<(T? Value, IResult? Refusal)> ReadAsync<T>(HttpRequest http) where T : class
    {
        static IResult Invalid(string field, string message) =>
            Results.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, title: "The request body is invalid");
        if (!http.HasJsonContentType())
            return (null, Results.Problem("send the body as application/json, not " +
                $"'{ConfigValidation.Shown(http.ContentType ?? "no content type")}'",
                title: "Unsupported media type", statusCode: StatusCodes.Status415UnsupportedMediaType));
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(http.Body, cancellationToken: http.HttpContext.RequestAborted);
        }
        catch (JsonException e)
        {
            return (null, Invalid("body",
                $"not valid JSON: {e.Message.Split(" Path:")[0]} (line {e.LineNumber + 1}, byte {e.BytePositionInLine})"));
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object) return (null, Invalid("body", "expected a JSON object"));
            if (Duplicate(document.RootElement, "") is { } duplicate)
                return (null, Invalid(duplicate.Path, $"the key '{ConfigValidation.Shown(duplicate.Key)}' appears more than once"));
            try
            {
                return (document.RootElement.Deserialize<T>(Options), null);
            }
            catch (JsonException e)
            {
                var field = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : "body";
                return (null, Invalid(ConfigValidation.Shown(field), "wrong type: " + e.Message.Split(" Path:")[0]));
            }
        }
    }

    /// <summary>The first key given twice in an object (case-insensitively, as fields bind), with its path.</summary>
    static (string Path, string Key)? Duplicate(JsonElement element, string path)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var property in element.EnumerateObject())
            {
                if (!seen.Add(property.Name)) return (path.Length == 0 ? property.Name : path, property.Name);
                if (Duplicate(property.Value, path.Length == 0 ? property.Name : $"{path}.{property.Name}") is { } inner) return inner;
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
                if (Duplicate(item, $"{path}[{i++}]") is { } inner) return inner;
        }
        return null;
    }
}
