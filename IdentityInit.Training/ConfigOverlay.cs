using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IdentityInit.Training;

/// <summary>
/// The one way a config is written, read and changed field by field: camelCase JSON (any case accepted on input), and
/// overrides as JSON values keyed by field name. The CLI's --set key=value and the API's "config" object both land here,
/// so they share type rules and messages.
/// </summary>
public static class ConfigOverlay
{
    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNameCaseInsensitive = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true,
        AllowDuplicateProperties = false,
    };

    static readonly Dictionary<string, PropertyInfo> Fields = typeof(ExperimentConfig)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite)
        .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>A field's name as users write it (camelCase), from its property name in any case; null when unknown.</summary>
    public static string? FieldName(string name) =>
        Fields.TryGetValue(name, out var p) ? JsonNamingPolicy.CamelCase.ConvertName(p.Name) : null;

    public static IEnumerable<string> FieldNames => Fields.Keys.Select(k => JsonNamingPolicy.CamelCase.ConvertName(k)).Order();

    public static string ToJson(ExperimentConfig config) => JsonSerializer.Serialize(config, Json);

    /// <summary>Reads a config written by <see cref="ToJson"/> (or any casing); an error names the problem.</summary>
    public static ExperimentConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<ExperimentConfig>(json, Json) ?? throw new ArgumentException($"{source}: empty config");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source}: not a valid config ({e.Message})");
        }
    }

    /// <summary>A --set value as JSON: strings stay text; other fields read it as a JSON literal (3, 1e-4, true, null).</summary>
    public static JsonNode? FromText(string field, string text)
    {
        if (Fields.TryGetValue(field, out var p) && p.PropertyType == typeof(string)) return text == "null" ? null : JsonValue.Create(text);
        try
        {
            return JsonNode.Parse(text);
        }
        catch (JsonException)
        {
            return JsonValue.Create(text); // reported as "expected a number, got "abc"" below
        }
    }

    /// <summary>
    /// Overlays field values on a config. Errors are keyed by the camelCase field name; with any error the result is null.
    /// </summary>
    public static ExperimentConfig? Apply(ExperimentConfig config, IEnumerable<KeyValuePair<string, JsonNode?>> overrides,
        List<ConfigError> errors)
    {
        var node = JsonSerializer.SerializeToNode(config, Json)!.AsObject();
        var before = errors.Count;
        foreach (var (key, value) in overrides)
        {
            if (!Fields.TryGetValue(key, out var property))
            {
                errors.Add(new ConfigError(ConfigValidation.Shown(key),
                    $"unknown field '{ConfigValidation.Shown(key)}'; fields: {string.Join(", ", FieldNames)}"));
                continue;
            }
            var name = JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            var type = property.PropertyType;
            try
            {
                var parsed = value is null ? null : value.Deserialize(type, Json);
                // null only where the field may be absent (initFile, preset, dataDir): a null device once reached the validator.
                if (parsed is null && (type.IsValueType ? Nullable.GetUnderlyingType(type) is null
                                                        : new System.Reflection.NullabilityInfoContext()
                                                            .Create(property).ReadState != System.Reflection.NullabilityState.Nullable))
                    throw new JsonException("null");
                if (parsed is double d && !double.IsFinite(d)) throw new JsonException("not finite");
                node[name] = JsonSerializer.SerializeToNode(parsed, type, Json);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
            {
                var expected = (Nullable.GetUnderlyingType(type) ?? type).Name switch
                {
                    "Int32" or "Int64" => "a whole number",
                    "Double" => "a finite number",
                    "Boolean" => "true or false",
                    _ => "a string",
                };
                errors.Add(new ConfigError(name, $"expected {expected}, got {ConfigValidation.Shown(value?.ToJsonString())}"));
            }
        }
        return errors.Count > before ? null : node.Deserialize<ExperimentConfig>(Json);
    }

    /// <summary>Applies "key=value" assignments (the CLI's --set); throws with every problem, each naming its field.</summary>
    public static ExperimentConfig ApplyAssignments(ExperimentConfig config, IEnumerable<string> assignments)
    {
        var errors = new List<ConfigError>();
        var pairs = new List<KeyValuePair<string, JsonNode?>>();
        foreach (var assignment in assignments)
        {
            var eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) errors.Add(new ConfigError("--set", $"'{ConfigValidation.Shown(assignment)}': expected key=value"));
            else pairs.Add(KeyValuePair.Create(assignment[..eq].Trim(), FromText(assignment[..eq].Trim(), assignment[(eq + 1)..].Trim())));
        }
        var result = Apply(config, pairs, errors);
        return errors.Count > 0 || result is null ? throw new InvalidConfigException(errors) : result;
    }

}
