using System.Globalization;
using System.Text;
using IdentityInit.Web.Data;
using IdentityInit.Web.Runs;
using ScottPlot;

namespace IdentityInit.Web.Exports;

/// <summary>Full-resolution metric exports (CSV, JSON) and server-rendered figures (PNG, SVG) for papers.</summary>
public static class Exporter
{
    /// <summary>The charts a figure can be made of: name -> (title, y label, series prefix, log y).</summary>
    public static readonly IReadOnlyDictionary<string, (string Title, string YLabel, string Prefix, bool LogY)> Charts =
        new Dictionary<string, (string, string, string, bool)>
        {
            ["loss"] = ("Training loss", "cross-entropy", Series.TrainLoss, false),
            ["test-accuracy"] = ("Test accuracy", "accuracy", Series.EpochTestAccuracy, false),
            ["train-accuracy"] = ("Training accuracy", "accuracy", Series.TrainAccuracy, false),
            ["lr"] = ("Learning rate", "lr", Series.LearningRate, false),
            ["wcorr-forward"] = ("Forward weight correlation", "-log|rho|", Series.WeightCorrelationForward, false),
            ["wcorr-backward"] = ("Backward weight correlation", "-log|rho|", Series.WeightCorrelationBackward, false),
            ["activation-correlation"] = ("Activation inter-channel correlation", "rho", Series.ActivationCorrelation, false),
            ["spread"] = ("Channel spread (weights)", "max |w_a - w_b|", Series.Spread, true),
            ["diversity"] = ("Diversity",
                "sum log sqrt(1 - rho_b^2) over layers with 2+ input channels (a 1-channel stem has no pair: left out)", Series.Diversity,
                false),
        };

    public static IResult Metrics(IReadOnlyList<PointDto> points, string format, Guid runId)
    {
        if (format == "json") return Results.Json(points);
        var csv = new StringBuilder("series,step,value\n");
        foreach (var p in points)
            csv.Append(Quote(p.Series)).Append(',').Append(p.Step.ToString(CultureInfo.InvariantCulture)).Append(',')
               .Append(p.Value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        return Results.File(Encoding.UTF8.GetBytes(csv.ToString()), "text/csv", $"run-{runId:N}-metrics.csv");
    }

    static string Quote(string s) => s.Contains(',') || s.Contains('"') ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;

    public static async Task<IResult> FigureAsync(RunQueries queries, IReadOnlyList<Guid> runIds, string chart, string extension)
    {
        if (!Charts.TryGetValue(chart, out var spec))
            return Results.ValidationProblem(new Dictionary<string, string[]>
            {
                ["chart"] = [$"'{chart}' is not one of " +
                $"{string.Join(", ", Charts.Keys)}"]
            });
        if (extension is not ("png" or "svg"))
            return Results.ValidationProblem(new Dictionary<string, string[]> { ["format"] = [$"'{extension}' is not png or svg"] });
        var runs = await queries.GetManyAsync(runIds);
        if (runs.Count != runIds.Count) return Results.NotFound();
        var plot = new Plot();
        plot.Title(spec.Title);
        plot.XLabel("step");
        plot.YLabel(spec.YLabel);
        foreach (var run in runs)
        {
            var points = await queries.PointsAsync(run.Id, seriesPrefix: spec.Prefix);
            // The step each layer's symmetry broke (its spread left exactly 0), marked on the spread figure as on the live chart.
            var breaks = chart == "spread"
                ? (await queries.PointsAsync(run.Id, seriesPrefix: Series.Break)).GroupBy(p => p.Series[Series.Break.Length..])
                    .ToDictionary(g => g.Key, g => g.Min(p => p.Step))
                : [];
            foreach (var series in points.GroupBy(p => p.Series))
            {
                // A log axis cannot show 0 (identical channels): those points are left out, not drawn at a floor decades below.
                var ordered = series.Where(p => double.IsFinite(Transform(chart, p.Value)) && (!spec.LogY || Transform(chart, p.Value) > 0))
                    .ToList();
                if (ordered.Count == 0) continue;
                var ys = ordered.Select(p => Transform(chart, p.Value)).ToArray();
                if (spec.LogY) ys = ys.Select(Math.Log10).ToArray();
                var line = plot.Add.ScatterLine(ordered.Select(p => (double)p.Step).ToArray(), ys);
                line.LegendText = runs.Count > 1 ? $"{run.Name}: {series.Key}" : series.Key;
                line.MarkerSize = ordered.Count < 50 ? 4 : 0;
                if (breaks.TryGetValue(series.Key[spec.Prefix.Length..], out var broke))
                {
                    var marker = plot.Add.VerticalLine(broke);
                    marker.Color = line.Color;
                    marker.LinePattern = LinePattern.Dashed;
                    marker.LineWidth = 1;
                }
            }
        }
        if (spec.LogY) plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = y => $"1e{y:0}" };
        plot.ShowLegend(Edge.Right);
        var name = $"{FileStem(string.Join("-vs-", runs.Select(r => r.Name)))}-{chart}.{extension}"; // not a dozen files called loss.png
        return extension == "png"
            ? Results.File(plot.GetImageBytes(1200, 700, ImageFormat.Png), "image/png", name)
            : Results.File(Encoding.UTF8.GetBytes(plot.GetSvgXml(1200, 700)), "image/svg+xml", name);
    }

    /// <summary>A download's file name stem from a run's or study's name: ASCII letters and digits, the rest '-', at most 100.</summary>
    public static string FileStem(string name)
    {
        var stem = string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '-'));
        return stem.Length <= 100 ? stem : stem[..100];
    }

    /// <summary>Correlation charts plot -log|rho| as the paper's code logs it.</summary>
    static double Transform(string chart, double value) =>
        chart.StartsWith("wcorr", StringComparison.Ordinal) ? -Math.Log(Math.Abs(value)) : value;

    public static void MapExportsApi(this IEndpointRouteBuilder app) =>
        app.MapGet("/api/runs/{id:guid}/figures/{chart}.{extension}", (Guid id, string chart, string extension, RunQueries queries) =>
            FigureAsync(queries, [id], chart, extension)).WithTags("exports");
}
