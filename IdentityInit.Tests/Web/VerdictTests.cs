using IdentityInit.Web.Studies;

namespace IdentityInit.Tests.Web;

/// <summary>The verdict rules with hand-made seed values: each claim of each study preset holds, fails and is inconclusive.</summary>
public sealed class VerdictTests
{
    // Student's t 0.975 quantile for 4 degrees of freedom (Welch's dof for two arms of 3 seeds with equal variances).
    const double T975For4 = 2.7764451051977987;

    static ArmResult Arm(string label, double[] finals, double? x = null, string? line = null, double? broken = 0) =>
        new(label, x, line, finals.Length, finals.Length, 0, 0, 0, Estimate.Of(finals), null, finals.Length > 0 ? broken : null, null, null,
            null, 0, null, null, finals);

    static readonly double[] He = [0.818, 0.820, 0.822];
    static readonly double[] Tight = [0.819, 0.820, 0.821];
    static readonly double[] Wide = [0.70, 0.80, 0.90];

    static IReadOnlyList<Claim> ConstNet(double[] deterministic, double[] breaker, double? broken = 0) =>
        StudyPresets.Find("constnet-breakers")!.Judge(
            [Arm("deterministic", deterministic, broken: broken), Arm("dropout 0.01, deterministic", breaker),
                Arm("He (random init)", He)]);

    [Fact]
    public void WelchsIntervalOfTwoArmsEqualsTheHandComputation()
    {
        var gap = Difference.Of([0.80, 0.82, 0.84], [0.30, 0.32, 0.34])!;

        Assert.Equal(50, gap.Mean, 9);
        Assert.Equal(T975For4 * Math.Sqrt(2 * 0.0004 / 3) * 100, gap.HalfWidth!.Value, 9); // equal variances: dof = 4 exactly
    }

    [Theory]
    [InlineData(0.0, "Holds")]
    [InlineData(0.25, "Fails")]
    public void ChannelIdentityIsAnExactCountSoOneSeedDecidesIt(double broken, string verdict)
    {
        var claim = ConstNet([0.30], Tight, broken)[0];

        Assert.Equal(Enum.Parse<Verdict>(verdict), claim.Verdict);
        Assert.Contains("exact", claim.Reason);
    }

    [Fact]
    public void ChannelIdentityIsInconclusiveUntilASeedFinishes() =>
        Assert.Equal(Verdict.Inconclusive, ConstNet([], Tight)[0].Verdict);

    [Theory]
    [InlineData(new[] { 0.30, 0.31, 0.32 }, "Holds", "lies below -2")]
    [InlineData(new[] { 0.83, 0.84, 0.85 }, "Fails", "at or above -2")]
    [InlineData(new[] { 0.70, 0.80, 0.90 }, "Inconclusive", "straddles -2")] // mean 2 points below He, interval about ±25
    [InlineData(new[] { 0.30 }, "Inconclusive", "one seed")] // -52 points, but one seed has no interval
    public void FarBelowHeHoldsOnlyWhenTheWholeIntervalLiesBelowTheMargin(double[] deterministic, string verdict, string reason)
    {
        var claim = ConstNet(deterministic, Tight)[1];

        Assert.StartsWith("Without a breaker it trains far below He", claim.Paper);
        Assert.Equal(Enum.Parse<Verdict>(verdict), claim.Verdict);
        Assert.Contains(reason, claim.Reason);
    }

    [Theory]
    [InlineData(new[] { 0.819, 0.820, 0.821 }, "Holds", "inside ±2")]
    [InlineData(new[] { 0.50, 0.51, 0.52 }, "Fails", "outside ±2")]
    [InlineData(new[] { 0.87, 0.88, 0.89 }, "Fails", "outside ±2")] // 6 points better than He is not "within 2 points"
    [InlineData(new[] { 0.70, 0.80, 0.90 }, "Inconclusive", "reaches past ±2")] // mean -2, yet the interval spans ±25
    [InlineData(new[] { 0.81, 0.82, 0.83 }, "Inconclusive", "reaches past ±2")] // mean 0: the mean alone said "holds"
    public void WithinTwoPointsOfHeIsJudgedAsEquivalence(double[] breaker, string verdict, string reason)
    {
        var claim = ConstNet([0.30, 0.31, 0.32], breaker)[3];

        Assert.Equal("With dropout 0.01, deterministic it trains to within 2 points of He", claim.Paper);
        Assert.Equal(Enum.Parse<Verdict>(verdict), claim.Verdict);
        Assert.Contains(reason, claim.Reason);
        Assert.Contains("n = 3 and 3", claim.Measured);
    }

    [Theory]
    [InlineData(new[] { 0.819, 0.820, 0.821 }, "Holds", "lies above 2")]
    [InlineData(new[] { 0.29, 0.30, 0.31 }, "Fails", "at or below 2")] // a point below the unbroken arm, interval up to +1.3
    [InlineData(new[] { 0.25, 0.33, 0.41 }, "Inconclusive", "straddles 2")]
    public void ABreakerLiftsConstNetAboveItsUnbrokenSelfOnlyByAWholeInterval(double[] breaker, string verdict, string reason)
    {
        var claim = ConstNet([0.30, 0.31, 0.32], breaker)[2];

        Assert.Equal("With dropout 0.01, deterministic it trains far above the unbroken ConstNet (more than 2 points)", claim.Paper);
        Assert.Equal(Enum.Parse<Verdict>(verdict), claim.Verdict);
        Assert.Contains(reason, claim.Reason);
        Assert.Contains("vs deterministic", claim.Measured);
    }

    static IReadOnlyList<Claim> LeakyNet(double[] he, params (double Ones, double[] Finals)[] strings) =>
        StudyPresets.Find("leakynet-strings")!.Judge(
            [Arm("h_hhhh_hhhh_hhhh", he, 0, "He"), .. strings.Select(s => Arm($"{s.Ones} ones", s.Finals, s.Ones, "structured"))]);

    static readonly (double, double[])[] Falling = [(1, [0.80, 0.81, 0.82]), (5, [0.70, 0.71, 0.72]), (9, [0.60, 0.61, 0.62]),
        (13, [0.50, 0.51, 0.52])];
    static readonly (double, double[])[] Rising = [(1, [0.50, 0.51, 0.52]), (5, [0.60, 0.61, 0.62]), (9, [0.70, 0.71, 0.72]),
        (13, [0.80, 0.81, 0.82])];
    static readonly (double, double[])[] Flat = [(1, [0.60, 0.70, 0.80]), (5, [0.80, 0.70, 0.60]), (9, [0.65, 0.75, 0.70]),
        (13, [0.72, 0.62, 0.68])];

    [Fact]
    public void MoreAveragingLayersLowerAccuracyIsARankCorrelationWithAnInterval()
    {
        var falling = LeakyNet(He, Falling)[0];
        var rising = LeakyNet(He, Rising)[0];
        var flat = LeakyNet(He, Flat)[0];
        var few = LeakyNet(He, [(1, [0.8]), (5, [0.7]), (9, [0.6])])[0];

        Assert.Equal((Verdict.Holds, Verdict.Fails, Verdict.Inconclusive, Verdict.Inconclusive),
            (falling.Verdict, rising.Verdict, flat.Verdict, few.Verdict));
        Assert.Contains("over 12 seeds", falling.Measured);
        Assert.Contains("contains 0", flat.Reason);
        Assert.Contains("needs 4 or more", few.Reason); // 3 seeds: no interval
    }

    [Fact]
    public void FisherIntervalOfSpearmansRhoEqualsTheHandComputation()
    {
        var rho = RankCorrelation.Of([(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.9), (5, 0.8)])!; // ranks of y: 1 3 2 5 4, sum d^2 = 4

        var expected = 1 - 6.0 * 4 / (5 * 24);
        var z = Math.Atanh(expected);
        var se = Math.Sqrt((1 + expected * expected / 2) / 2);
        Assert.Equal(expected, rho.Rho, 12);
        Assert.Equal(Math.Tanh(z - 1.959963984540054 * se), rho.Low, 9);
        Assert.Equal(Math.Tanh(z + 1.959963984540054 * se), rho.High, 9);
    }

    [Fact]
    public void TheRandomStringTrainsBestOnlyWhenItIsAheadOfEveryStringByItsInterval()
    {
        var ahead = LeakyNet([0.90, 0.91, 0.92], Falling)[1];
        var behind = LeakyNet([0.40, 0.41, 0.42], Falling)[1];
        var level = LeakyNet([0.75, 0.85, 0.95], Falling)[1];

        Assert.Equal(Verdict.Holds, ahead.Verdict);
        Assert.Contains("closest is 1 ones", ahead.Reason);
        Assert.Equal(Verdict.Fails, behind.Verdict);
        Assert.Equal(Verdict.Inconclusive, level.Verdict); // mean 85 beats 81, but the interval is wide
    }

    static IReadOnlyList<Claim> Toy((double K, double[] Finals)[] quiet, double[] twoWithNoise, double[] widestWithNoise) =>
        StudyPresets.Find("toy-unique-features")!.Judge(
            [.. quiet.Select(q => Arm($"K={q.K}, no noise", q.Finals, q.K, "no noise")),
             Arm("K=2, noise", twoWithNoise, 2, "noise"), Arm("K=256, noise", widestWithNoise, 256, "noise")]);

    [Fact]
    public void TheToyClaimsHoldFailAndStayInconclusiveByTheirIntervals()
    {
        (double, double[])[] growing = [(1, [0.10, 0.11, 0.10]), (2, [0.30, 0.31, 0.32]), (16, [0.60, 0.62, 0.61]),
            (256, [0.80, 0.81, 0.82])];
        (double, double[])[] shrinking = [.. growing.Select((g, i) => (g.Item1, growing[^(i + 1)].Item2))];

        var holds = Toy(growing, Tight, He);
        var fails = Toy(shrinking, [0.50, 0.51, 0.52], He);
        var open = Toy([(1, [0.1]), (2, [0.3])], Wide, He);

        Assert.Equal((Verdict.Holds, Verdict.Holds), (holds[0].Verdict, holds[1].Verdict));
        Assert.Equal((Verdict.Fails, Verdict.Fails), (fails[0].Verdict, fails[1].Verdict));
        Assert.Equal((Verdict.Inconclusive, Verdict.Inconclusive), (open[0].Verdict, open[1].Verdict));
        Assert.Contains("vs K=256, noise", holds[1].Measured);
    }
}
