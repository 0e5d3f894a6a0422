using System.Globalization;

namespace IdentityInit.Web.Studies;

/// <summary>What a study's numbers say of a claim: decided only where the whole 95 % interval lies on one side.</summary>
public enum Verdict { Holds, Fails, Inconclusive }

/// <summary>
/// A claim of the paper beside what a study measured, its verdict and the reason for it (the interval, the threshold, n).
/// </summary>
public sealed record Claim(string Paper, string Measured, Verdict Verdict, string Reason)
{
    public static Claim Pending(string paper, string needs) => new(paper, needs, Verdict.Inconclusive, needs);
}

/// <summary>
/// The verdict rules, pure. A claim holds only when its interval lies wholly on the claimed side of the threshold, fails
/// only when it lies wholly on the other side, and is inconclusive otherwise, and always with one seed (no interval).
/// Equivalence ("within k points") holds only when the interval lies inside ±k, as an equivalence test does.
/// </summary>
public static class Verdicts
{
    static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    static string Interval(double low, double high) => string.Create(Invariant, $"[{low:0.0}, {high:0.0}]");

    /// <summary>The claim "the difference is below <paramref name="threshold"/>" (points).</summary>
    public static (Verdict, string) Below(Difference gap, double threshold)
    {
        var t = threshold.ToString("0.##", Invariant);
        if (gap.HalfWidth is null) return (Verdict.Inconclusive, $"one seed in an arm ({gap.Seeds}): no interval to judge by");
        var (low, high) = (gap.Low, gap.High);
        return high < threshold ? (Verdict.Holds, $"the whole 95 % interval {Interval(low, high)} lies below {t} ({gap.Seeds})")
            : low >= threshold ? (Verdict.Fails, $"the whole 95 % interval {Interval(low, high)} lies at or above {t} ({gap.Seeds})")
            : (Verdict.Inconclusive, $"the 95 % interval {Interval(low, high)} straddles {t} ({gap.Seeds}): more seeds would decide");
    }

    /// <summary>The claim "the difference is above <paramref name="threshold"/>" (points).</summary>
    public static (Verdict, string) Above(Difference gap, double threshold)
    {
        var t = threshold.ToString("0.##", Invariant);
        if (gap.HalfWidth is null) return (Verdict.Inconclusive, $"one seed in an arm ({gap.Seeds}): no interval to judge by");
        var (low, high) = (gap.Low, gap.High);
        return low > threshold ? (Verdict.Holds, $"the whole 95 % interval {Interval(low, high)} lies above {t} ({gap.Seeds})")
            : high <= threshold ? (Verdict.Fails, $"the whole 95 % interval {Interval(low, high)} lies at or below {t} ({gap.Seeds})")
            : (Verdict.Inconclusive, $"the 95 % interval {Interval(low, high)} straddles {t} ({gap.Seeds}): more seeds would decide");
    }

    /// <summary>The claim "the difference lies within ±<paramref name="margin"/>" (points), judged as equivalence.</summary>
    public static (Verdict, string) Within(Difference gap, double margin)
    {
        var m = margin.ToString("0.##", Invariant);
        if (gap.HalfWidth is null) return (Verdict.Inconclusive, $"one seed in an arm ({gap.Seeds}): no interval to judge by");
        var (low, high) = (gap.Low, gap.High);
        return low > -margin && high < margin
            ? (Verdict.Holds, $"the whole 95 % interval {Interval(low, high)} lies inside ±{m} ({gap.Seeds})")
            : high <= -margin || low >= margin
                ? (Verdict.Fails, $"the whole 95 % interval {Interval(low, high)} lies outside ±{m} ({gap.Seeds})")
            : (Verdict.Inconclusive, $"the 95 % interval {Interval(low, high)} reaches past ±{m} ({gap.Seeds}): more seeds would decide");
    }

    /// <summary>The claim "the rank correlation is negative" (<paramref name="negative"/>) or positive, from its 95 % interval.</summary>
    public static (Verdict, string) Sign(RankCorrelation? rho, bool negative)
    {
        if (rho is null) return (Verdict.Inconclusive, "needs 4 or more seeds over 3 or more settings");
        var side = negative ? "below 0" : "above 0";
        var interval = string.Create(Invariant, $"[{rho.Low:0.00}, {rho.High:0.00}]");
        var holds = negative ? rho.High < 0 : rho.Low > 0;
        var fails = negative ? rho.Low >= 0 : rho.High <= 0;
        return holds ? (Verdict.Holds, $"the whole 95 % interval {interval} lies {side} (n = {rho.N} seeds)")
            : fails ? (Verdict.Fails, $"the whole 95 % interval {interval} lies on the other side of 0 (n = {rho.N} seeds)")
            : (Verdict.Inconclusive, $"the 95 % interval {interval} contains 0 (n = {rho.N} seeds): more seeds would decide");
    }

    /// <summary>
    /// "A beats every other arm": holds when every difference's interval lies above 0, fails when any lies wholly below 0
    /// (an intersection-union test: no multiplicity correction is needed for "all").
    /// </summary>
    public static (Verdict, string) AboveAll(IReadOnlyList<(string Arm, Difference Gap)> gaps)
    {
        if (gaps.Count == 0) return (Verdict.Inconclusive, "needs finished seeds of both sides");
        if (gaps.FirstOrDefault(g => g.Gap.HalfWidth is null) is { Arm: not null } single)
            return (Verdict.Inconclusive, $"one seed in an arm ({single.Arm}: {single.Gap.Seeds}): no interval to judge by");
        string Of((string Arm, Difference Gap) g) => $"{g.Arm}: {Interval(g.Gap.Low, g.Gap.High)} ({g.Gap.Seeds})";
        var closest = gaps.MinBy(g => g.Gap.Low);
        return gaps.FirstOrDefault(g => g.Gap.High <= 0) is { Arm: not null } ahead
                ? (Verdict.Fails, $"the other arm is ahead, the whole 95 % interval of the difference at or below 0 ({Of(ahead)})")
            : closest.Gap.Low > 0 ? (Verdict.Holds, $"every difference's 95 % interval lies above 0; the closest is {Of(closest)}")
            : (Verdict.Inconclusive, $"the 95 % interval against {Of(closest)} contains 0: more seeds would decide");
    }
}

/// <summary>
/// The difference of two arms' means in accuracy points with Welch's 95 % interval (each arm's own variance; degrees
/// of freedom by Welch-Satterthwaite, Student's exact quantile); no interval when either arm has one seed.
/// </summary>
public sealed record Difference(double Mean, double? HalfWidth, int NA, int NB)
{
    public static Difference? Of(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count == 0 || b.Count == 0) return null;
        var mean = (a.Average() - b.Average()) * 100;
        if (a.Count < 2 || b.Count < 2) return new Difference(mean, null, a.Count, b.Count);
        double Var(IReadOnlyList<double> v) { var m = v.Average(); return v.Sum(x => (x - m) * (x - m)) / (v.Count - 1); }
        var (va, vb) = (Var(a) / a.Count, Var(b) / b.Count);
        if (va + vb == 0) return new Difference(mean, 0, a.Count, b.Count);
        var dof = (va + vb) * (va + vb) / (va * va / (a.Count - 1) + vb * vb / (b.Count - 1));
        return new Difference(mean, Estimate.T975Real(dof) * Math.Sqrt(va + vb) * 100, a.Count, b.Count);
    }

    public double Low => Mean - (HalfWidth ?? 0);
    public double High => Mean + (HalfWidth ?? 0);
    public string Seeds => $"n = {NA} and {NB}";

    public string Format() => $"{Mean.ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture)}" +
                              $"{(HalfWidth is { } h ? " ± " + h.ToString("F1", CultureInfo.InvariantCulture) : "")}";
}

/// <summary>
/// Spearman's rank correlation over seeds (each seed one point: its setting and its result) with a 95 % interval from
/// Fisher's z with Bonett and Wright's standard error sqrt((1 + rho²/2) / (n - 3)); needs n ≥ 4 and 3 distinct settings.
/// </summary>
public sealed record RankCorrelation(double Rho, double Low, double High, int N)
{
    public static RankCorrelation? Of(IReadOnlyList<(double X, double Y)> points)
    {
        var n = points.Count;
        if (n < 4 || points.Select(p => p.X).Distinct().Count() < 3) return null;
        var rho = MathNet.Numerics.Statistics.Correlation.Spearman(points.Select(p => p.X), points.Select(p => p.Y));
        if (double.IsNaN(rho)) return null; // every result equal: no ranking
        var z = Math.Atanh(Math.Clamp(rho, -0.999999, 0.999999));
        var se = Math.Sqrt((1 + rho * rho / 2) / (n - 3));
        var q = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 0.975);
        return new RankCorrelation(rho, Math.Tanh(z - q * se), Math.Tanh(z + q * se), n);
    }

    public string Format() => string.Create(CultureInfo.InvariantCulture, $"{Rho:0.00} [{Low:0.00}, {High:0.00}]");
}
