using System.Text.RegularExpressions;

namespace IdentityInit.Web.Runs;

/// <summary>
/// Text from the engine as the lab shows it (run errors, logs, to owners and share viewers alike): libtorch's native
/// stack ("Exception raised from ... (most recent call first):" and its "frame #N" lines) cut off, and absolute server
/// paths shortened to their last part. The full text goes to the server's log.
/// </summary>
public static partial class ErrorText
{
    public static string ForDisplay(string text)
    {
        var lines = new List<string>();
        foreach (var line in text.Split('\n'))
        {
            var raised = line.IndexOf("Exception raised from ", StringComparison.Ordinal);
            if (raised >= 0)
            {
                if (line[..raised].Trim() is { Length: > 0 } before) lines.Add(before);
                continue; // the native stack's header; its frames follow
            }
            if (Frame().IsMatch(line)) continue;
            lines.Add(line.TrimEnd('\r'));
        }
        return AbsolutePath().Replace(string.Join('\n', lines).Trim(), m => "…/" + m.Groups["name"].Value);
    }

    [GeneratedRegex(@"^\s*frame #\d+:")]
    private static partial Regex Frame();

    // "/home/lab/data/x.bin" -> "…/x.bin": two or more segments from the root, not inside a word ("train/loss", "img/s").
    [GeneratedRegex(@"(?<![\w.~/-])(?:/[\w.@+-]+)+/(?<name>[\w.@+-]+)")]
    private static partial Regex AbsolutePath();
}
