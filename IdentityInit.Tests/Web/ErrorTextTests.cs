using IdentityInit.Web.Runs;
using static TorchSharp.torch;

namespace IdentityInit.Tests.Web;

public sealed class ErrorTextTests
{
    [Fact]
    public void ALibtorchErrorLosesItsNativeStackAndServerPathsButKeepsWhatWentWrong()
    {
        IdentityInit.Training.TorchRuntime.Initialize();
        var error = Assert.ThrowsAny<Exception>(() => ones(2).view(3)); // a real libtorch error, with its C++ stack

        var shown = ErrorText.ForDisplay($"epoch 3: {error.Message}\nwhile reading /srv/lab/checkpoints/0f3a/step-000000016/model.bin");

        Assert.Contains("Exception raised from", error.Message); // what libtorch sends: the test is not vacuous
        Assert.Contains("shape '[3]' is invalid for input of size 2", shown);
        Assert.DoesNotContain("Exception raised from", shown);
        Assert.DoesNotContain("frame #", shown);
        Assert.EndsWith("while reading …/model.bin", shown);
        Assert.Equal("loss 2.3 at train/loss, 800 img/s", ErrorText.ForDisplay("loss 2.3 at train/loss, 800 img/s"));
    }
}
