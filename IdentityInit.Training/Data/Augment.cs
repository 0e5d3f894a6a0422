using static TorchSharp.torch;

namespace IdentityInit.Training.Data;

/// <summary>The reference code's input pipeline on whole batches: normalise, reflect-pad 4, random crop, horizontal flip.</summary>
public static class Augment
{
    public static Tensor Normalize(Tensor images, float[] mean, float[] std)
    {
        var m = tensor(mean, device: images.device).reshape(1, -1, 1, 1);
        var s = tensor(std, device: images.device).reshape(1, -1, 1, 1);
        return (images.to(float32) / 255 - m) / s;
    }

    /// <summary>Per image: a crop of the reflect-padded batch at a random offset in [0, 2*pad], and a flip with p = 0.5.</summary>
    public static Tensor CropAndFlip(Tensor x, Generator generator, int pad = 4)
    {
        var (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        var padded = nn.functional.pad(x, [pad, pad, pad, pad], TorchSharp.PaddingModes.Reflect);
        var dy = randint(0, 2 * pad + 1, [b], generator: generator).to(x.device);
        var dx = randint(0, 2 * pad + 1, [b], generator: generator).to(x.device);
        var flip = rand([b], generator: generator).to(x.device) < 0.5;
        var rows = (dy.unsqueeze(1) + arange(h, device: x.device)).reshape(b, 1, h, 1).expand(b, c, h, w + 2 * pad);
        var cropped = padded.gather(2, rows);
        var columns = arange(w, device: x.device).unsqueeze(0).expand(b, w);
        columns = where(flip.unsqueeze(1), w - 1 - columns, columns) + dx.unsqueeze(1);
        return cropped.gather(3, columns.reshape(b, 1, 1, w).expand(b, c, h, w));
    }
}
