"""The PyTorch twin of the engine's WRN (ConstNet layout, He fan-out init) for the throughput benchmark.

Usage: python3 wrn_pytorch.py --threads N --steps S --warmup W   (prints one line: pytorch threads=N img/s=X)
Same data path as the engine: Fashion-MNIST as one uint8 tensor, per-step index_select, normalise, SGD.
"""
import argparse, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


from replay_twin import WideResNet, idx  # the same model.py-shaped network as the replay


def he_init(model):
    """The throughput twin's init: He fan-out on every conv, classifier 0 (what the engine's he-fanout arm trains)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2.0 / k))
    model.fc.weight.data.zero_()
    model.fc.bias.data.zero_()
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--widen", type=int, default=2)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    images = idx(f"{a.data}/train-images-idx3-ubyte.gz").unsqueeze(1)
    labels = idx(f"{a.data}/train-labels-idx1-ubyte.gz").long()
    mean, std = images.double().div(255).mean().item(), images.double().div(255).std().item()
    model = he_init(WideResNet(a.depth, a.widen, 10, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    order = torch.randperm(images.shape[0])
    start = None
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            start = time.perf_counter()
        i = order[(step * 128) % 59904:(step * 128) % 59904 + 128]
        x = (images.index_select(0, i).float() / 255 - mean) / std
        loss = F.cross_entropy(model(x), labels.index_select(0, i))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
    elapsed = time.perf_counter() - start
    print(f"pytorch threads={a.threads} img/s={a.steps * 128 / elapsed:.1f}")


if __name__ == "__main__":
    main()
