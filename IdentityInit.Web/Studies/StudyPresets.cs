using System.Text.Json.Nodes;
using IdentityInit.Training;

namespace IdentityInit.Web.Studies;

/// <summary>
/// One arm of a study: a run preset (its CPU or paper version by the study's scale) with config overrides. X and Line
/// place it on a sweep figure (LeakyNet: averaging layers; toy: unique features), when the study has one.
/// </summary>
public sealed record StudyArm(string Label, string? Preset = null, JsonObject? Config = null, double? X = null, string? Line = null);

/// <summary>The paper's experiments as one click each: which claim each tests, its arms, and how the claim is judged.</summary>
public sealed record StudyPreset(
    string Name, string Title, string Claim, IReadOnlyList<StudyArm> Arms, JsonObject CpuConfig, int Seeds, string? SweepAxis,
    Func<IReadOnlyList<ArmResult>, IReadOnlyList<Claim>> Judge);

/// <summary>A claim of the paper beside what a study measured; Holds is null until the arms it needs have finished seeds.</summary>
public sealed record Claim(string Paper, string Measured, bool? Holds);

public static class StudyPresets
{
    /// <summary>"Within k points of He": the margin the ConstNet claim is judged by (accuracy points).</summary>
    public const double K = 2.0;

    public static IReadOnlyList<StudyPreset> All { get; } =
    [
        new("constnet-breakers", "ConstNet: is feature diversity necessary?",
            "Section 4: a ConstNet (every channel identical at init) that nothing breaks stays symmetric and trains poorly; " +
            "with any symmetry breaker (GPU non-determinism, dropout 0.01, tiny init noise) it trains to about He's accuracy.",
            [
                new("deterministic", "constnet-deterministic"),
                new("GPU non-determinism", "constnet-nondeterministic"),
                new("dropout 0.01, deterministic", "constnet-deterministic-dropout"),
                new("dropout 0.01, non-deterministic", "constnet-nondeterministic-dropout"),
                new("init noise 1e-6", "constnet-init-noise"),
                new("He (random init)", "constnet-he"),
            ],
            // CPU scale: 8,000 Fashion-MNIST images, 4 epochs at batch 64 (500 steps). 75 steps (3,200 images, 3 epochs at
            // 128) left every ConstNet arm at 19 %: symmetry broke within 2 steps, but the features had no time to part.
            Cpu, 3, null, JudgeConstNet),
        new("leakynet-strings", "LeakyNet: averaging layers pull channels together",
            "Section 5 (remodel.py): LeakyNet init strings with more averaging ('1') layers train to lower accuracy; the " +
            "random (He) string trains best.",
            [.. Presets.LeakyInits.Select(init => new StudyArm(init, "leakynet-" + init, X: init.Count(c => c == '1'), Line: init[0] == 'h' ? "He" : "structured"))],
            Cpu, 3, "averaging ('1') layers", JudgeLeakyNet),
        new("toy-unique-features", "Toy model: how many unique features are needed?",
            "Section 3: without a breaker a one-hidden-layer net's accuracy grows with its number of unique features K; " +
            "with noise, even K = 2 trains like a fully diverse layer.",
            [
                .. Presets.ToyUniques.Select(k => new StudyArm($"K={k}, no noise", $"toy-k{k}",
                    new JsonObject { ["roundingJitter"] = 0, ["deterministic"] = true }, k, "no noise")),
                .. Presets.ToyUniques.Select(k => new StudyArm($"K={k}, noise", $"toy-k{k}", null, k, "noise")),
            ],
            [], 3, "unique features K", JudgeToy),
    ];

    static JsonObject Cpu => new() { ["trainLimit"] = 8000, ["testLimit"] = 2000, ["epochs"] = 4, ["batchSize"] = 64 };

    public static StudyPreset? Find(string name) => All.FirstOrDefault(p => p.Name == name);

    static ArmResult? Arm(IReadOnlyList<ArmResult> arms, string label) => arms.FirstOrDefault(a => a.Arm == label);

    static IReadOnlyList<Claim> JudgeConstNet(IReadOnlyList<ArmResult> arms)
    {
        var claims = new List<Claim>();
        var deterministic = Arm(arms, "deterministic");
        claims.Add(new Claim("A deterministic ConstNet keeps every channel identical: no layer's symmetry breaks",
            deterministic?.BrokenFraction is { } f ? $"{f * 100:F0} % of layers broke (n={deterministic.FinalAccuracy?.N ?? 0})" : "no finished seed yet",
            deterministic?.BrokenFraction is { } g ? g == 0 : null));
        var he = Arm(arms, "He (random init)");
        if (deterministic is not null && he is not null)
        {
            var gap = Difference.Of(deterministic.Finals, he.Finals);
            claims.Add(new Claim($"Without a breaker it trains far below He (more than {K:F0} points)",
                gap is null ? "needs finished seeds of both arms" : $"{gap.Format()} points vs He", gap is null ? null : gap.Mean < -K));
        }
        foreach (var arm in arms.Where(a => a.Arm is not ("deterministic" or "He (random init)")))
        {
            var gap = he is null ? null : Difference.Of(arm.Finals, he.Finals);
            claims.Add(new Claim($"With {arm.Arm} it trains to within {K:F0} points of He",
                gap is null ? "needs finished seeds of both arms" : $"{gap.Format()} points vs He", gap is null ? null : gap.Mean >= -K));
        }
        return claims;
    }

    static IReadOnlyList<Claim> JudgeLeakyNet(IReadOnlyList<ArmResult> arms)
    {
        var structured = arms.Where(a => a.Line == "structured" && a.FinalAccuracy is not null).ToList();
        var rho = Spearman(structured.Select(a => a.X ?? 0).ToList(), structured.Select(a => a.FinalAccuracy!.Mean).ToList());
        var he = arms.FirstOrDefault(a => a.Line == "He");
        var best = structured.MaxBy(a => a.FinalAccuracy!.Mean);
        return
        [
            new("More averaging ('1') layers, lower accuracy",
                rho is null ? "needs 3 structured strings with finished seeds" : $"Spearman rho(averaging layers, final accuracy) = {rho:F2} over {structured.Count} strings",
                rho is null ? null : rho < 0),
            new("The random (He) string trains best",
                he?.FinalAccuracy is null || best is null ? "needs finished seeds" : $"He {he.FinalAccuracy.Format(true)} % vs best structured ({best.Arm}) {best.FinalAccuracy!.Format(true)} %",
                he?.FinalAccuracy is null || best is null ? null : he.FinalAccuracy.Mean > best.FinalAccuracy!.Mean),
        ];
    }

    static IReadOnlyList<Claim> JudgeToy(IReadOnlyList<ArmResult> arms)
    {
        var quiet = arms.Where(a => a.Line == "no noise" && a.FinalAccuracy is not null).ToList();
        var rho = Spearman(quiet.Select(a => a.X ?? 0).ToList(), quiet.Select(a => a.FinalAccuracy!.Mean).ToList());
        var noisy = arms.Where(a => a.Line == "noise" && a.FinalAccuracy is not null).ToList();
        var two = noisy.FirstOrDefault(a => a.X == 2);
        var widest = noisy.MaxBy(a => a.X);
        var gap = two is null || widest is null || widest == two ? null : Difference.Of(two.Finals, widest.Finals);
        return
        [
            new("Without noise, accuracy grows with the number of unique features",
                rho is null ? "needs 3 no-noise arms with finished seeds" : $"Spearman rho(K, final accuracy) = {rho:F2} over {quiet.Count} arms",
                rho is null ? null : rho > 0),
            new($"With noise, K = 2 trains to within {K:F0} points of the widest K",
                gap is null ? "needs finished seeds of K = 2 and the widest K with noise" : $"{gap.Format()} points vs K={widest!.X}",
                gap is null ? null : gap.Mean >= -K),
        ];
    }

    /// <summary>Spearman's rank correlation (average ranks for ties); null below 3 points.</summary>
    public static double? Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y) =>
        x.Count < 3 ? null : MathNet.Numerics.Statistics.Correlation.Spearman(x, y);
}

/// <summary>
/// The difference of two arms' means in accuracy points with Welch's 95 % interval (each arm's own variance; degrees
/// of freedom by Welch-Satterthwaite, Student's exact quantile); no interval when either arm has one seed.
/// </summary>
public sealed record Difference(double Mean, double? HalfWidth)
{
    public static Difference? Of(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count == 0 || b.Count == 0) return null;
        var mean = (a.Average() - b.Average()) * 100;
        if (a.Count < 2 || b.Count < 2) return new Difference(mean, null);
        double Var(IReadOnlyList<double> v) { var m = v.Average(); return v.Sum(x => (x - m) * (x - m)) / (v.Count - 1); }
        var (va, vb) = (Var(a) / a.Count, Var(b) / b.Count);
        if (va + vb == 0) return new Difference(mean, 0);
        var dof = (va + vb) * (va + vb) / (va * va / (a.Count - 1) + vb * vb / (b.Count - 1));
        return new Difference(mean, Estimate.T975Real(dof) * Math.Sqrt(va + vb) * 100);
    }

    public string Format() => $"{Mean:+0.0;-0.0;0.0}{(HalfWidth is { } h ? $" ± {h:F1}" : "")}";
}
