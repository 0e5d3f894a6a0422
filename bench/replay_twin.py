"""PyTorch twin of the engine's ConstNet for the BatchNorm replay (bench/replay.sh).

Built as model.py builds WideResNet (module names conv1, blockG.layer.i.{bn,conv,conv_res}, fc; the Fixup extras
scale/biases exist so the engine's export loads strictly), with one documented difference: model.py's NetworkBlock
runs its layers twice per forward (`out = self.layer(x); return self.layer(x)`), which updates every BatchNorm's
running statistics twice per training step; --double-forward reproduces that, the default runs them once like the engine.
Pooling is adaptive (model.py's avg_pool2d(8) needs 32x32 inputs; Fashion-MNIST is 28x28).

Loads the initial weights from the engine's safetensors export, trains on the dataset's stored order (shuffle off),
writes per-step losses and, at the end, compares every tensor with the engine's final export.
"""
import argparse, gzip, json, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """A reader written from the format's spec: u64 little-endian header size, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(raw[8 + n + begin:8 + n + end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return out


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, dropout):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv_res = nn.Conv2d(cin, cout, 1, stride, 0, bias=False) if cin != cout or stride != 1 else None
        self.scale = nn.Parameter(torch.ones(1))
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(1)) for _ in range(2)])
        self.dropout = dropout

    def forward(self, x):
        o = F.relu(self.bn(x))
        out = self.conv(o)
        if self.dropout > 0:
            out = F.dropout(out, self.dropout, self.training)
        return (x if self.conv_res is None else self.conv_res(o)) + out


class NetworkBlock(nn.Module):
    double_forward = False

    def __init__(self, n, cin, cout, stride, dropout):
        super().__init__()
        self.layer = nn.Sequential(*[BasicBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1, dropout) for i in range(n)])

    def forward(self, x):
        if self.double_forward:
            self.layer(x)
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth, widen, classes, cin, dropout=0.0):
        super().__init__()
        n = (depth - 4) // 3
        w = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(cin, 16, 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, w[0], w[1], 1, dropout)
        self.block2 = NetworkBlock(n, w[1], w[2], 2, dropout)
        self.block3 = NetworkBlock(n, w[2], w[3], 2, dropout)
        self.fc = nn.Linear(w[3], classes)

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
    p.add_argument("--init", required=True, help="engine export at step 0")
    p.add_argument("--final", help="engine export at the last step, to compare with")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--widen", type=int, default=2)
    p.add_argument("--steps", type=int, default=50, help="0: --epochs whole epochs")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--double-forward", action="store_true")
    p.add_argument("--losses", required=True, help="where to write one loss per line")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    NetworkBlock.double_forward = a.double_forward
    images = idx(f"{a.data}/train-images-idx3-ubyte.gz").unsqueeze(1)
    labels = idx(f"{a.data}/train-labels-idx1-ubyte.gz").long()
    test_images = idx(f"{a.data}/t10k-images-idx3-ubyte.gz").unsqueeze(1)
    test_labels = idx(f"{a.data}/t10k-labels-idx1-ubyte.gz").long()
    # The engine's constants for datasets without published ones: training-set mean and std of [0, 1] pixels, as float32.
    mean = np.float32(images.double().div(255).mean().item())
    std = np.float32(images.double().div(255).std().item())
    norm = lambda x: (x.float() / 255 - float(mean)) / float(std)

    model = WideResNet(a.depth, a.widen, 10, 1)
    model.load_state_dict(read_safetensors(a.init), strict=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
    steps_per_epoch = (images.shape[0] + 127) // 128
    total = a.steps if a.steps > 0 else a.epochs * steps_per_epoch
    losses, epoch_acc = [], []
    model.train()
    for step in range(total):
        b = step % steps_per_epoch
        x, y = norm(images[b * 128:(b + 1) * 128]), labels[b * 128:(b + 1) * 128]
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if b == steps_per_epoch - 1 or step == total - 1:
            model.eval()
            with torch.no_grad():
                correct = sum((model(norm(test_images[i:i + 500])).argmax(1) == test_labels[i:i + 500]).sum().item()
                              for i in range(0, test_images.shape[0], 500))
            epoch_acc.append(correct / test_images.shape[0])
            model.train()
    with open(a.losses, "w") as f:
        f.write("\n".join(repr(l) for l in losses) + "\n")
    result = {"steps": total, "test_accuracy": epoch_acc}
    if a.final:
        engine = read_safetensors(a.final)
        ours = model.state_dict()
        diffs = {}
        for name, t in ours.items():
            e = engine[name].to(t.dtype)
            scale = max(t.abs().max().item(), 1e-12)
            diffs[name] = (t - e).abs().max().item() / scale
        worst = lambda key: max((v, k) for k, v in diffs.items() if key(k))
        result["max_rel_diff_weights"] = worst(lambda k: k.endswith("weight") or k.endswith("bias"))
        result["max_rel_diff_running_mean"] = worst(lambda k: k.endswith("running_mean"))
        result["max_rel_diff_running_var"] = worst(lambda k: k.endswith("running_var"))
        result["num_batches_tracked"] = [int(ours[k].item()) for k in ours if k.endswith("num_batches_tracked")][:1] + \
                                        [int(engine[k].item()) for k in engine if k.endswith("num_batches_tracked")][:1]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
