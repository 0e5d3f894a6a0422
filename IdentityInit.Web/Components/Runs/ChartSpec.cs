using SeriesNames = IdentityInit.Web.Runs.Series;
using IdentityInit.Web.Runs;

namespace IdentityInit.Web.Components.Runs;

/// <summary>
/// One chart of the run page: which stored series it draws (by name prefix), and how. Per-layer charts label each
/// series by its layer; "break/" series are drawn as markers (the step a layer's spread first left 0).
/// </summary>
public sealed record ChartSpec(string Key, string Title, string YLabel, string[] Prefixes, bool LogY = false, string Transform = "none",
    bool Correlation = false, string[]? MarkerPrefixes = null, double Min = double.NegativeInfinity, double Max = double.PositiveInfinity,
    bool OnActivations = false)
{
    // Min and Max bound what the quantity can be: a seed band (a t-interval over few seeds) is clipped to them.
    public static readonly IReadOnlyList<ChartSpec> All =
    [
        new("loss", "Loss", "cross-entropy",
            [SeriesNames.TrainLoss, SeriesNames.EpochTrainLoss, SeriesNames.EpochTestLoss, SeriesNames.EpochPreciseTestLoss],
            Min: 0),
        new("accuracy", "Accuracy", "accuracy", [SeriesNames.TrainAccuracy, SeriesNames.EpochTrainAccuracy, SeriesNames.EpochTestAccuracy,
            SeriesNames.EpochPreciseTestAccuracy], Min: 0, Max: 1),
        new("wcorr-fwd", "Forward weight correlation per layer", "-log|rho|", [SeriesNames.WeightCorrelationForward], Transform: "neglog",
            Correlation: true, Min: -1, Max: 1),
        new("wcorr-bwd", "Backward weight correlation per layer", "-log|rho|", [SeriesNames.WeightCorrelationBackward], Transform: "neglog",
            Correlation: true, Min: -1, Max: 1),
        new("spread", "Channel spread per layer (markers: symmetry broke)", "max |w_a - w_b|", [SeriesNames.Spread], LogY: true,
            MarkerPrefixes: [SeriesNames.Break], Min: 0),
        new("acorr", "Activation inter-channel correlation (probe batch)", "rho", [SeriesNames.ActivationCorrelation], Correlation: true,
            Min: -1, Max: 1, OnActivations: true),
        new("aspread", "Activation spread (probe batch)", "max |a_c - a_d|", [SeriesNames.ActivationSpread], LogY: true, Min: 0,
            OnActivations: true),
        new("dead", "Dead channels (0 on every probe input: no gradient revives them)", "channels", [SeriesNames.Dead], Min: 0,
            OnActivations: true),
        new("signal-fwd", "Forward signal: mean squared activation (probe batch, eval mode)", "E[a^2]", [SeriesNames.SignalForward],
            LogY: true, Min: 0, OnActivations: true),
        new("signal-bwd", "Backward signal: mean squared loss gradient per activation", "E[(dL/da)^2]", [SeriesNames.SignalBackward],
            LogY: true, Min: 0, OnActivations: true),
        new("signal-gain", "Block Jacobian gain: |J^T u|^2 / |u|^2 from the previous layer (mean of 2 random u)", "gain",
            [SeriesNames.SignalGain], LogY: true, Min: 0, OnActivations: true),
        new("signal-wgrad", "Weight gradient: mean squared dL/dW (probe batch)", "E[(dL/dW)^2]", [SeriesNames.WeightGradient], LogY: true,
            Min: 0),
        new("diversity", "Diversity: sum over layers of log sqrt(1 - rho_b^2) (layers with 2+ input channels)", "diversity",
            [SeriesNames.Diversity], Max: 0),
        new("lr", "Learning rate", "lr", [SeriesNames.LearningRate], Min: 0),
        new("throughput", "Throughput", "img/s", [SeriesNames.Throughput], Min: 0),
    ];

    /// <summary>The bounds of a stored series' quantity (its chart's), for clipping seed bands.</summary>
    public static (double Min, double Max) BoundsOf(string series) =>
        All.FirstOrDefault(s => s.Label(series) is not null) is { } spec ? (spec.Min, spec.Max)
            : (double.NegativeInfinity, double.PositiveInfinity);

    /// <summary>The y axis label under a transform: a correlation chart toggled to raw values plots rho.</summary>
    public string YLabelFor(string transform) =>
        Correlation && transform == "none" ? "rho" : Correlation && transform == "neglog" ? "-log|rho|" : YLabel;

    /// <summary>The chart label of a stored series, or null when this chart does not draw it.</summary>
    public string? Label(string series)
    {
        foreach (var band in new[] { " lo", " hi" })
            if (series.EndsWith(band, StringComparison.Ordinal))
                return Label(series[..^band.Length]) is { } inner ? inner + band : null;
        foreach (var prefix in MarkerPrefixes ?? [])
            if (series.StartsWith(prefix, StringComparison.Ordinal)) return "\u25B2 " + series[prefix.Length..];
        foreach (var prefix in Prefixes)
            if (prefix.EndsWith('/') ? series.StartsWith(prefix, StringComparison.Ordinal) : series == prefix)
                return prefix.EndsWith('/') ? series[prefix.Length..] : series.Replace('/', ' ').Replace('_', ' ');
        return null;
    }

    /// <summary>The stored series this chart draws are these names, or under these "folder/" prefixes.</summary>
    public IReadOnlyList<string> SeriesPrefixes => [.. Prefixes, .. MarkerPrefixes ?? []];

    /// <summary>Whether this chart draws one series per layer (and so gets the layer picker).</summary>
    public bool PerLayer => Prefixes.All(p => p.EndsWith('/'));

    /// <summary>
    /// This chart's series as columns, ready for iiCharts.add: [label, xs, ys] with ys as float32 (what a chart can show;
    /// half the bytes of a double) and non-finite values as null, a gap. Points without an x (no wall time yet) are left out.
    /// </summary>
    public List<object[]> Columns(IEnumerable<SeriesData> series, string? runLabel, Func<long, double?> x)
    {
        var result = new List<object[]>();
        foreach (var s in series)
        {
            if (Label(s.Series) is not { } label) continue;
            var xs = new List<double>(s.Steps.Length);
            var ys = new List<float?>(s.Steps.Length);
            for (var i = 0; i < s.Steps.Length; i++)
            {
                if (x(s.Steps[i]) is not { } xi) continue;
                xs.Add(Math.Round(xi, 6));
                ys.Add(double.IsFinite(s.Values[i]) && Math.Abs(s.Values[i]) <= float.MaxValue ? (float)s.Values[i] : null);
            }
            // A break marker keeps its mark in front ("\u25B2 run · layer"): it is drawn on its line "run · layer".
            var name = runLabel is null ? label : label.StartsWith('\u25B2') ? $"\u25B2 {runLabel} · {label[2..]}"
                : $"{runLabel} · {label}";
            if (xs.Count > 0) result.Add([name, xs, ys]);
        }
        return result;
    }

    /// <summary>Live points as series (in arrival order per series).</summary>
    public static IEnumerable<SeriesData> Group(IEnumerable<PointDto> points) =>
        points.GroupBy(p => p.Series).Select(g => new SeriesData(g.Key, [.. g.Select(p => p.Step)], [.. g.Select(p => p.Value)]));
}
