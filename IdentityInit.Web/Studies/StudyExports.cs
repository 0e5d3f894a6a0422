using System.Globalization;
using System.Text;
using ScottPlot;

namespace IdentityInit.Web.Studies;

/// <summary>A study's results table as CSV, Markdown and LaTeX, and its figures (PNG, SVG): one table, three spellings.</summary>
public static class StudyExports
{
    /// <summary>The figures of the paper's kind a study has: accuracy and correlation always, the sweep when its arms have an x.</summary>
    public static IReadOnlyList<string> Figures(StudyResults results) =>
        results.SweepAxis is null ? ["accuracy", "correlation"] : ["accuracy", "correlation", "sweep", "sweep-break", "sweep-correlation"];

    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    /// <summary>
    /// The table's columns: header, and each arm's cell as text (accuracies in %, ± the 95 % half-width). The precise-BN
    /// column is there when some arm measured it (its runs' learning rate did not decay to 0 per step).
    /// </summary>
    public static IReadOnlyList<(string Header, Func<ArmResult, string> Cell)> Columns(StudyResults results) =>
        results.Arms.Any(a => a.PreciseFinalAccuracy is not null) ? [.. Fixed[..3], Precise, .. Fixed[3..]] : Fixed;

    static readonly (string Header, Func<ArmResult, string> Cell) Precise = ("final test acc, precise BN (%)",
        a => a.PreciseFinalAccuracy?.Format(true) ?? "");

    static readonly (string Header, Func<ArmResult, string> Cell)[] Fixed =
    [
        ("arm", a => a.Arm),
        ("n", a => $"{a.Completed}/{a.Seeds}"),
        ("final test acc (%)", a => a.FinalAccuracy?.Format(true) ?? (a.Latest is { } l ? $"({l * 100:F1} at epoch {a.LatestEpoch})" : "")),
        ("best test acc (%)", a => a.BestAccuracy?.Format(true) ?? ""),
        ("layers broken (%)", a => a.BrokenFraction is { } f ? (f * 100).ToString("F0", Invariant) : ""),
        ("median first break (step)", a => a.MedianBreakStep is { } m ? m.ToString("0.#", Invariant) : ""),
        ("final weight corr", a => a.FinalWeightCorrelation is { } c ? c.ToString("F3", Invariant) : ""),
        ("epochs to 50 %", a =>
            a.EpochsToHalf is { } e ? $"{e.Format(false)} ({a.ReachedHalf}/{a.Completed})" : a.Completed > 0 ? $"never (0/{a.Completed})"
            : ""),
    ];

    public static string Csv(StudyResults results)
    {
        var csv = new StringBuilder("arm,seeds,completed,final_acc_mean,final_acc_ci95,best_acc_mean,best_acc_ci95," +
                                    "layers_broken_fraction,median_first_break_step,final_weight_corr,epochs_to_half_mean," +
                                    "epochs_to_half_ci95,reached_half,precise_bn_final_acc_mean,precise_bn_final_acc_ci95\n");
        string N(double? v) => v?.ToString("R", Invariant) ?? "";
        foreach (var a in results.Arms)
            csv.Append(string.Join(',', Quote(a.Arm), a.Seeds, a.Completed, N(a.FinalAccuracy?.Mean), N(a.FinalAccuracy?.HalfWidth),
                N(a.BestAccuracy?.Mean), N(a.BestAccuracy?.HalfWidth), N(a.BrokenFraction), N(a.MedianBreakStep),
                    N(a.FinalWeightCorrelation),
                N(a.EpochsToHalf?.Mean), N(a.EpochsToHalf?.HalfWidth), a.ReachedHalf, N(a.PreciseFinalAccuracy?.Mean),
                N(a.PreciseFinalAccuracy?.HalfWidth))).Append('\n');
        return csv.ToString();
    }

    /// <summary>
    /// A text cell: a leading = + - @ (or tab, CR) would be run as a formula by a spreadsheet, so it gets a leading
    /// apostrophe (OWASP's advice); commas, quotes and line breaks are quoted.
    /// </summary>
    static string Quote(string s)
    {
        if (s.Length > 0 && s[0] is '=' or '+' or '-' or '@' or '\t' or '\r') s = "'" + s;
        return s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"") + "\"" : s;
    }

    /// <summary>A Markdown table cell: no raw HTML, no cell break, one line.</summary>
    static string Md(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("|", "\\|")
        .Replace("\r", " ").Replace("\n", " ");

    /// <summary>A LaTeX table cell: every character TeX treats specially, escaped once (text mode).</summary>
    static string Tex(string s) => string.Concat(s.Select(ch => ch switch
    {
        '\\' => "\\textbackslash{}",
        '&' => "\\&",
        '%' => "\\%",
        '_' => "\\_",
        '#' => "\\#",
        '$' => "\\$",
        '{' => "\\{",
        '}' => "\\}",
        '^' => "\\textasciicircum{}",
        '~' => "\\textasciitilde{}",
        '±' => "$\\pm$",
        '≥' => "$\\geq$",
        '\n' or '\r' => " ",
        _ => ch.ToString(),
    }));

    /// <param name="caveat">what the study's scale cannot show (StudyPresets.CaveatOf), after the claims</param>
    public static string Markdown(StudyResults results, string? caveat = null)
    {
        var columns = Columns(results);
        var md = new StringBuilder("| " + string.Join(" | ", columns.Select(c => c.Header)) + " |\n");
        md.Append("| " + string.Join(" | ", columns.Select(_ => "---")) + " |\n");
        foreach (var a in results.Arms) md.Append("| " + string.Join(" | ", columns.Select(c => Md(c.Cell(a)))) + " |\n");
        if (results.Claims.Count > 0)
        {
            md.Append("\n| claim (paper) | measured | verdict | why |\n| --- | --- | --- | --- |\n");
            foreach (var c in results.Claims) md.Append($"| {Md(c.Paper)} | {Md(c.Measured)} | {Verdict(c)} | {Md(c.Reason)} |\n");
        }
        if (caveat is not null) md.Append($"\n> **At this scale:** {Md(caveat)}\n");
        return md.ToString();
    }

    public static string Verdict(Claim claim) => claim.Verdict switch
    {
        Studies.Verdict.Holds => "holds",
        Studies.Verdict.Fails => "fails",
        _ => "inconclusive",
    };

    /// <summary>The claims as CSV: the paper's wording, the measurement, the verdict and its reason (interval, threshold, n).</summary>
    public static string ClaimsCsv(StudyResults results)
    {
        var csv = new StringBuilder("claim,measured,verdict,reason\n");
        foreach (var c in results.Claims) csv.Append(string.Join(',', Quote(c.Paper), Quote(c.Measured), Verdict(c), Quote(c.Reason)))
            .Append('\n');
        return csv.ToString();
    }

    public static string Latex(StudyResults results, string? caveat = null)
    {
        var columns = Columns(results);
        var tex = new StringBuilder("\\begin{tabular}{l" + new string('r', columns.Count - 1) + "}\n\\hline\n");
        tex.Append(string.Join(" & ", columns.Select(c => Tex(c.Header)))).Append(" \\\\\n\\hline\n");
        foreach (var a in results.Arms) tex.Append(string.Join(" & ", columns.Select(c => Tex(c.Cell(a))))).Append(" \\\\\n");
        tex.Append("\\hline\n\\end{tabular}\n");
        if (results.Claims.Count == 0) return tex.ToString();
        tex.Append("\n\\begin{tabular}{p{5cm}p{4cm}lp{5cm}}\n\\hline\nclaim (paper) & measured & verdict & why \\\\\n\\hline\n");
        foreach (var c in results.Claims) tex.Append($"{Tex(c.Paper)} & {Tex(c.Measured)} & {Verdict(c)} & {Tex(c.Reason)} \\\\\n");
        tex.Append("\\hline\n\\end{tabular}\n");
        if (caveat is not null) tex.Append($"\n\\noindent\\textit{{At this scale:}} {Tex(caveat)}\n");
        return tex.ToString();
    }

    public static byte[] Figure(StudyResults results, string figure, string format, out string contentType)
    {
        var plot = new Plot();
        switch (figure)
        {
            case "accuracy":
                plot.Title("Test accuracy per epoch (mean and 95 % band over seeds)");
                plot.XLabel("epoch");
                plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
                plot.YLabel("test accuracy");
                foreach (var curve in results.Accuracy) Band(plot, curve);
                break;
            case "correlation":
                plot.Title("Forward weight correlation, mean over layers (mean and 95 % band over seeds)");
                plot.XLabel("step");
                plot.YLabel("rho");
                foreach (var curve in results.Correlation) Band(plot, curve);
                break;
            case "sweep":
                Sweep(plot, results, "Final test accuracy", "final test accuracy", a => a.FinalAccuracy);
                break;
            case "sweep-break":
                Sweep(plot, results, "Step symmetry broke (per seed: median over layers)", "step", a => a.BreakStep);
                break;
            default:
                Sweep(plot, results, "Final weight correlation (mean over layers)", "rho", a => a.Correlation);
                break;
        }
        plot.ShowLegend(Edge.Right);
        contentType = format == "png" ? "image/png" : "image/svg+xml";
        return format == "png" ? plot.GetImageBytes(1100, 600, ImageFormat.Png) : Encoding.UTF8.GetBytes(plot.GetSvgXml(1100, 600));
    }

    /// <summary>
    /// A quantity against the swept field, mean and 95 % interval per value. Log x when the values are positive and span
    /// two decades or more (log2 for the toy's unique features); a value of 0 on a log axis, and every arm without a
    /// value (a baseline such as He), is drawn as a horizontal band across the plot.
    /// </summary>
    static void Sweep(Plot plot, StudyResults results, string title, string yLabel, Func<ArmResult, Estimate?> of)
    {
        var swept = results.Arms.Where(a => a.X is not null).ToList();
        var positive = swept.Where(a => a.X > 0).Select(a => a.X!.Value).ToList();
        var log2 = results.SweepAxis?.StartsWith("unique", StringComparison.Ordinal) == true; // K = 1 .. 256
        var logX = positive.Count > 1 && (log2 || positive.Max() / positive.Min() >= 100);
        double Xof(double x) => !logX ? x : log2 ? Math.Log2(x) : Math.Log10(x);
        plot.Title($"{title} against {results.SweepAxis} (mean and 95 % interval over seeds)");
        plot.XLabel(logX ? $"{results.SweepAxis} (log scale)" : results.SweepAxis ?? "");
        if (logX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            IntegerTicksOnly = true, // whole decades (powers of 2 for K)
            LabelFormatter = x => log2 ? Math.Pow(2, x).ToString("0.##", Invariant) : $"1e{x.ToString("0.#", Invariant)}",
        };
        plot.YLabel(yLabel);
        foreach (var line in swept.Where(a => of(a) is not null && (!logX || a.X > 0)).GroupBy(a => a.Line ?? ""))
        {
            var points = line.OrderBy(a => a.X).ToList();
            var xs = points.Select(a => Xof(a.X!.Value)).ToArray();
            var scatter = plot.Add.ScatterLine(xs, points.Select(a => of(a)!.Mean).ToArray());
            scatter.LegendText = line.Key;
            scatter.MarkerSize = 6;
            plot.Add.ErrorBar(xs, points.Select(a => of(a)!.Mean).ToArray(),
                points.Select(a => of(a)!.HalfWidth ?? 0).ToArray()).Color = scatter.Color;
        }
        if (positive.Count == 0) return;
        var (left, right) = (Xof(positive.Min()), Xof(positive.Max()));
        foreach (var baseline in results.Arms.Where(a => (a.X is null || logX && a.X <= 0) && of(a) is not null))
        {
            var e = of(baseline)!;
            var mean = plot.Add.ScatterLine(new[] { left, right }, new[] { e.Mean, e.Mean });
            mean.LegendText = $"{baseline.Arm} (n={e.N})";
            mean.LinePattern = LinePattern.Dashed;
            mean.MarkerSize = 0;
            if (e.HalfWidth is not { } half) continue;
            var fill = plot.Add.FillY(new[] { left, right }, new[] { e.Mean - half, e.Mean - half },
                new[] { e.Mean + half, e.Mean + half });
            fill.FillStyle.Color = mean.Color.WithAlpha(0.15);
            fill.LineStyle.Width = 0;
        }
    }

    static void Band(Plot plot, Curve curve)
    {
        var line = plot.Add.ScatterLine(curve.X, curve.Mean);
        line.LegendText = curve.Label;
        line.MarkerSize = curve.X.Length < 30 ? 5 : 0;
        if (curve.Low.Zip(curve.High).All(p => p.First == p.Second)) return; // one seed: no band
        var fill = plot.Add.FillY(curve.X, curve.Low, curve.High);
        fill.FillStyle.Color = line.Color.WithAlpha(0.2);
        fill.LineStyle.Width = 0;
    }
}
