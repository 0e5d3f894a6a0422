namespace IdentityInit.Web.Studies;

/// <summary>
/// A mean over seeds with its 95 % confidence half-width, mean ± t(0.975, n - 1)·s/√n with s the sample standard
/// deviation and t Student's exact quantile (MathNet); no half-width from one seed.
/// </summary>
public sealed record Estimate(double Mean, double? HalfWidth, int N)
{
    public static double T975(int degreesOfFreedom) => T975Real(degreesOfFreedom);

    /// <summary>Student's t 0.975 quantile, also for Welch's non-integer degrees of freedom.</summary>
    public static double T975Real(double degreesOfFreedom) => MathNet.Numerics.Distributions.StudentT.InvCDF(0, 1, degreesOfFreedom, 0.975);

    public static Estimate? Of(IReadOnlyCollection<double> values)
    {
        var finite = values.Where(double.IsFinite).ToList();
        var n = finite.Count;
        if (n == 0) return null;
        var mean = finite.Average();
        if (n == 1) return new Estimate(mean, null, 1);
        var sd = Math.Sqrt(finite.Sum(v => (v - mean) * (v - mean)) / (n - 1));
        return new Estimate(mean, T975(n - 1) * sd / Math.Sqrt(n), n);
    }

    public double Low => Mean - (HalfWidth ?? 0);
    public double High => Mean + (HalfWidth ?? 0);

    /// <summary>"81.2 ± 0.4" in percent (accuracies), or as the number is.</summary>
    public string Format(bool percent, int digits = 1) =>
        $"{Show(Mean, percent, digits)}{(HalfWidth is { } h ? " ± " + Show(h, percent, digits) : "")}";

    static string Show(double value, bool percent, int digits) =>
        (percent ? value * 100 : value).ToString("F" + digits, System.Globalization.CultureInfo.InvariantCulture);
}
