using System.Reflection;
using IdentityInit.Tests.Infrastructure;
using Microsoft.AspNetCore.Components;

namespace IdentityInit.Tests.Web;

/// <summary>
/// Pages and components bind read models (RunDto, StudyDto, ShareDto), never the EF entities: the stored shape can change
/// without touching a page, and a page cannot show what a read model leaves out (a shared run's owner, notes, machine).
/// </summary>
public sealed class LayeringTests
{
    const string DataNamespace = "IdentityInit.Web.Data";

    [Fact]
    public void NoComponentHoldsAStoredEntityInItsParametersOrState()
    {
        const BindingFlags members =
            BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        var components = typeof(IdentityInit.Web.Runs.RunDto).Assembly.GetTypes().Where(t => typeof(ComponentBase).IsAssignableFrom(t))
            .ToList();

        var offenders = components
            .SelectMany(t => t.GetFields(members).Select(f => (Component: t, f.Name, Type: f.FieldType))
                .Concat(t.GetProperties(members).Select(p => (Component: t, p.Name, Type: p.PropertyType))))
            .Where(m => Mentions(m.Type, DataNamespace))
            .Select(m => $"{m.Component.Name}.{m.Name}: {m.Type}")
            .ToList();

        Assert.True(components.Count > 30, $"found only {components.Count} components"); // the scan sees the pages
        Assert.Empty(offenders);
    }

    [Fact]
    public void NoRazorFileImportsTheDataNamespace()
    {
        var web = Path.Combine(Repository.Root, "IdentityInit.Web");

        var importing = Directory.EnumerateFiles(web, "*.razor", SearchOption.AllDirectories)
            .Where(file => File.ReadLines(file).Any(line => line.Contains(DataNamespace, StringComparison.Ordinal)))
            .Select(file => Path.GetRelativePath(web, file))
            .ToList();

        Assert.Empty(importing);
    }

    static bool Mentions(Type type, string ns) =>
        type.Namespace == ns
        || (type.HasElementType && Mentions(type.GetElementType()!, ns))
        || (type.IsGenericType && type.GetGenericArguments().Any(argument => Mentions(argument, ns)));
}
