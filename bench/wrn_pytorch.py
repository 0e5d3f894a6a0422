"""The PyTorch twin of the engine's WRN (ConstNet layout, He fan-out init) for the throughput benchmark.

Usage: python3 wrn_pytorch.py --threads N --steps S --warmup W   (prints one line: pytorch threads=N img/s=X)
Same data path as the engine: Fashion-MNIST as one uint8 tensor, per-step index_select, normalise, SGD.
"""
import argparse, gzip, math, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.projects = cin != cout or stride != 1
        self.convShortcut = nn.Conv2d(cin, cout, 1, stride, bias=False) if self.projects else None

    def forward(self, x):
        o = F.relu(self.bn1(x))
        return (self.convShortcut(o) if self.projects else x) + self.conv1(o)


class ConstNet(nn.Module):
    def __init__(self, depth, widen, classes, cin):
        super().__init__()
        n = (depth - 4) // 3
        w = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        group = lambda a, b, s: nn.Sequential(*[Block(a if i == 0 else b, b, s if i == 0 else 1) for i in range(n)])
        self.block1, self.block2, self.block3 = group(w[0], w[1], 1), group(w[1], w[2], 2), group(w[2], w[3], 2)
        self.fc = nn.Linear(w[3], classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / k))
        self.fc.weight.data.zero_(); self.fc.bias.data.zero_()

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1))


def idx(path):
    raw = gzip.open(path).read()
    rank = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return torch.from_numpy(np.frombuffer(raw, np.uint8, offset=4 + 4 * rank).reshape(dims).copy())


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
    model = ConstNet(a.depth, a.widen, 10, 1)
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
