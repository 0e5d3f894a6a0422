namespace IdentityInit.Training.Models;

public static class ModelFactory
{
    /// <summary>Builds the configured architecture with its constructor defaults; call the initializer next.</summary>
    public static ImageModel Create(ExperimentConfig c, int inChannels, int height, int width, int classes) =>
        c.Architecture switch
        {
            Architectures.ConstNet => new ConstNet(c.Depth, c.Widen, classes, inChannels, c.BatchNorm, c.Dropout, c.StemDropout),
            Architectures.LeakyNet => new LeakyNet(c.Depth, c.Widen, classes, inChannels, c.LeakyAlpha, c.BatchNorm, c.Dropout),
            Architectures.Toy => new ToyNet(inChannels * height * width, c.ToyHidden, c.ToyUnique, classes),
            _ => throw new ArgumentException($"unknown architecture '{c.Architecture}'", nameof(c)),
        };
}
