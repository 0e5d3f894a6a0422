namespace IdentityInit.Web.Components;

/// <summary>Who is looking: the owner, or a collaborator holding only a share link. Owner pages check it.</summary>
public sealed record Viewer(bool IsOwner);
