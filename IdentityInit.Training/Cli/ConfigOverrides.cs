using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace IdentityInit.Training.Cli;

/// <summary>Builds a config from a preset, a JSON file and key=value overrides (keys are property names, any case).</summary>
public static class ConfigOverrides
{
    static readonly JsonSerializerOptions Json = new() { PropertyNameCaseInsensitive = true, WriteIndented = true };

    public static ExperimentConfig FromFile(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--config: file '{path}' not found");
        try
        {
            return JsonSerializer.Deserialize<ExperimentConfig>(File.ReadAllText(path), Json)
                   ?? throw new ArgumentException($"--config: '{path}' is empty");
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"--config: '{path}' is not a valid config ({e.Message})");
        }
    }

    public static string ToJson(ExperimentConfig config) => JsonSerializer.Serialize(config, Json);

    public static ExperimentConfig Apply(ExperimentConfig config, IEnumerable<string> assignments)
    {
        var node = JsonSerializer.SerializeToNode(config)!.AsObject();
        var properties = typeof(ExperimentConfig).GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var assignment in assignments)
        {
            var eq = assignment.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new ArgumentException($"--set '{assignment}': expected key=value");
            var (key, value) = (assignment[..eq].Trim(), assignment[(eq + 1)..].Trim());
            if (!properties.TryGetValue(key, out var property))
                throw new ArgumentException($"--set: unknown key '{key}'; valid keys: {string.Join(", ", properties.Keys.Order())}");
            node[property.Name] = Parse(property, value);
        }
        return node.Deserialize<ExperimentConfig>()!;
    }

    static JsonNode? Parse(PropertyInfo property, string value)
    {
        var type = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        if (value is "null" && (property.PropertyType != type || !type.IsValueType)) return null;
        bool ok;
        JsonNode? node;
        if (type == typeof(string)) return JsonValue.Create(value);
        if (type == typeof(bool)) { ok = bool.TryParse(value, out var b); node = JsonValue.Create(b); }
        else if (type == typeof(int)) { ok = int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i); node = JsonValue.Create(i); }
        else if (type == typeof(long)) { ok = long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l); node = JsonValue.Create(l); }
        else { ok = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d); node = JsonValue.Create(d); }
        return ok ? node : throw new ArgumentException($"--set {property.Name}={value}: not a valid {type.Name.ToLowerInvariant()}");
    }
}
