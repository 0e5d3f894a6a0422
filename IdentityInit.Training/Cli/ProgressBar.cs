namespace IdentityInit.Training.Cli;

/// <summary>One-line progress with ETA on a terminal; a line per 5% when output is redirected.</summary>
public sealed class ProgressBar(TextWriter output, bool interactive)
{
    long start, total;
    DateTime startedAt = DateTime.UtcNow;
    int lastBucket = -1;
    string tail = "";

    public void Start(long startStep, long totalSteps)
    {
        (start, total, startedAt) = (startStep, totalSteps, DateTime.UtcNow);
    }

    public void Update(long step, string status)
    {
        tail = status;
        var fraction = total == 0 ? 1 : (double)step / total;
        var elapsed = DateTime.UtcNow - startedAt;
        var done = step - start;
        var eta = done > 0 ? TimeSpan.FromSeconds(elapsed.TotalSeconds / done * (total - step)) : (TimeSpan?)null;
        var filled = (int)(fraction * 30);
        var line = $"[{new string('#', filled)}{new string('.', 30 - filled)}] {fraction,4:P0} step {step}/{total} {tail} " +
                   $"ETA {(eta is { } e ? e.ToString(@"hh\:mm\:ss") : "--:--:--")}";
        if (interactive)
        {
            output.Write("\r" + line.PadRight(Console.IsOutputRedirected ? 0 : Math.Max(0, Console.WindowWidth - 1)));
            return;
        }
        var bucket = (int)(fraction * 20);
        if (bucket == lastBucket) return;
        lastBucket = bucket;
        output.WriteLine(line);
    }

    public void Message(string text)
    {
        if (interactive) output.Write("\r" + new string(' ', Math.Max(0, Console.WindowWidth - 1)) + "\r");
        output.WriteLine(text);
    }

    public void Finish()
    {
        if (interactive) output.WriteLine();
    }
}
