namespace IdentityInit.Web.Components;

/// <summary>One way to show a moment on every page: the server's local time as yyyy-MM-dd HH:mm (sorts as it reads).</summary>
public static class Dates
{
    public static string Show(DateTime utc) =>
        utc.ToLocalTime().ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture);

    public static string Show(DateTime? utc, string none = "") => utc is { } at ? Show(at) : none;
}
