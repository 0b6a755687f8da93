#!/usr/bin/python3
"""Trains tandem's Fashion-MNIST models: a small edge CNN with two early exits and a ResNet-style
cloud CNN, exports both to ONNX and writes their manifest.

Why these two models: they are the demo and experiment pair for edge-cloud collaboration. The edge
model is cheap (about 2 M multiply-adds) and has BranchyNet-style early exits, so the edge can stop
early on easy images; the cloud model costs about six times more (12.8 M) and is more accurate, so
sending the edge's unsure images to it pays. Both take `input` [N,1,28,28] float32 = pixels/255 and
normalise inside the graph (Sub/Div), so every caller feeds raw pixels/255 and nothing outside the
file needs to know the dataset's mean and standard deviation. Outputs are logits, never softmax:
tandem applies (temperature-scaled) softmax itself where it needs probabilities.

Edge training uses BranchyNet's joint loss: a weighted sum of the cross-entropy of every exit,
trained together, so the shared trunk learns features good for the early exits too. The weights
favour the final exit (0.5, 0.7, 1.0) so that the early exits do not cost final accuracy.

Training is short (a one-cycle AdamW schedule, 2 epochs for the edge, 3 for the cloud) because
the machine it ran on was shared and loaded; more epochs give a point or so more accuracy.

Reproducibility: seeded (torch and the shuffling generator), a fixed thread count. CPU training in
PyTorch is deterministic for these ops at a fixed thread count; torch.use_deterministic_algorithms
is not set because it switches MaxPool's backward to a path measured 2-3x slower here.
On one machine reruns give the same bytes; across CPUs/BLAS builds float rounding may differ, so the
manifest records the sha256 of the committed files and the accuracies PyTorch measured for them.
The committed ONNX files are what tandem tests against; this script only reproduces them.

Three parts, each seeded on its own so that running them in one process or as separate processes
gives the same models: `edge` and `cloud` train, export and write <model>.train.json (accuracies,
timing) under --work; `manifest` hashes the ONNX files and writes manifest.json. With no --part all
three run in turn. One thread per process (torch.set_num_threads(1)): on the loaded 2-core machine
two OpenMP threads measured 2-4x more CPU per epoch (barrier spinning), so the fast way to use both
cores is the two training parts as two processes (what produced the committed files):

  /usr/bin/python3 tools/train_fashion_mnist.py --part edge &
  /usr/bin/python3 tools/train_fashion_mnist.py --part cloud; wait
  /usr/bin/python3 tools/train_fashion_mnist.py --part manifest

Options: [--out models/fashion-mnist] [--work /tmp/tdm-fmnist-train] [--seed 0] [--threads 1]
  [--edge-epochs N] [--cloud-epochs N] [--data /usr/share/datasets/fashion-mnist]
The work folder keeps PyTorch's test-set logits (<model>_<output>.npy) for cross-checking tandem.
"""
import argparse
import gzip
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set pixel mean / std (of pixels/255)
EXIT_WEIGHTS = (0.5, 0.7, 1.0)
LR = 4e-3


def load_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(data_dir, split):
    x = load_idx(os.path.join(data_dir, f"{split}-images-idx3-ubyte.gz"))
    y = load_idx(os.path.join(data_dir, f"{split}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


class Normalize(nn.Module):
    def forward(self, x):
        return (x - MEAN) / STD


def conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class EdgeNet(nn.Module):
    """conv16-pool | exit1 | conv32-pool | exit2 | conv64-pool-fc128-fc10."""

    def __init__(self):
        super().__init__()
        self.norm = Normalize()
        self.block1 = nn.Sequential(conv_bn(1, 16), nn.MaxPool2d(2))  # 16x14x14
        self.block2 = nn.Sequential(conv_bn(16, 32), nn.MaxPool2d(2))  # 32x7x7
        self.block3 = nn.Sequential(conv_bn(32, 64), nn.MaxPool2d(2))  # 64x3x3
        self.exit1 = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
        self.exit2 = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 3 * 3, 128), nn.ReLU(inplace=True),
                                  nn.Dropout(0.2), nn.Linear(128, 10))

    def forward(self, x):
        t1 = self.block1(self.norm(x))
        t2 = self.block2(t1)
        return self.exit1(t1), self.exit2(t2), self.head(self.block3(t2))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class CloudNet(nn.Module):
    """ResNet-style: stem conv24 @28x28, residual blocks 48 @14x14 and 96 @7x7, GAP, fc10."""

    def __init__(self, w=24):
        super().__init__()
        self.norm = Normalize()
        self.stem = conv_bn(1, w)
        self.layer1 = BasicBlock(w, 2 * w, 2)
        self.layer2 = BasicBlock(2 * w, 4 * w, 2)
        self.fc = nn.Linear(4 * w, 10)

    def forward(self, x):
        y = self.layer2(self.layer1(self.stem(self.norm(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


def train(model, xs, ys, epochs, lr, weights, gen, bs=256, log=""):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * ((xs.shape[0] + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for ep in range(epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(xs.shape[0], generator=gen)
        total = 0.0
        for i in range(0, xs.shape[0], bs):
            idx = perm[i:i + bs]
            xb, yb = xs[idx], ys[idx]
            outs = model(xb)
            if not isinstance(outs, tuple):
                outs = (outs,)
            loss = sum(w * F.cross_entropy(o, yb) for w, o in zip(weights, outs))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * xb.shape[0]
        print(f"{log} epoch {ep + 1}/{epochs} loss {total / xs.shape[0]:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)


@torch.no_grad()
def predict(model, xs, bs=1000):
    model.eval()
    outs = []
    for i in range(0, xs.shape[0], bs):
        o = model(xs[i:i + bs])
        outs.append(o if isinstance(o, tuple) else (o,))
    return [torch.cat([o[k] for o in outs]) for k in range(len(outs[0]))]


def macs(model):
    """Multiply-adds of one image, counted over Conv2d and Linear layers with forward hooks."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in hs:
        h.remove()
    return total[0]


def export(model, path, outputs):
    model.eval()
    axes = {"input": {0: "N"}}
    axes.update({o: {0: "N"} for o in outputs})
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), path, opset_version=13, input_names=["input"],
                      output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def branch_sources(path, scopes):
    """For each exit scope, the graph tensor its branch starts from: the input of the scope's nodes
    that no node of the scope produces (and that is not a weight)."""
    import onnx
    g = onnx.load(path).graph
    inits = {i.name for i in g.initializer}
    res = {}
    for sc in scopes:
        nodes = [n for n in g.node if n.name.startswith(f"/{sc}/")]
        made = {o for n in nodes for o in n.output}
        ext = [i for n in nodes for i in n.input if i not in made and i not in inits and i]
        res[sc] = ext[0] if len(set(ext)) == 1 else None
    return res


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


PART_SEED = {"edge": 1, "cloud": 2}


def train_part(a, part):
    """Trains one model, exports it to ONNX and writes its training record to the work folder."""
    torch.manual_seed(a.seed * 100 + PART_SEED[part])
    gen = torch.Generator().manual_seed(a.seed * 100 + PART_SEED[part])
    t_start = time.time()
    xtr, ytr = load_split(a.data, "train")
    xte, yte = load_split(a.data, "t10k")
    if part == "edge":
        model, outs, epochs, weights = EdgeNet(), ["exit1", "exit2", "logits"], a.edge_epochs, EXIT_WEIGHTS
    else:
        model, outs, epochs, weights = CloudNet(), ["logits"], a.cloud_epochs, (1.0,)
    train(model, xtr, ytr, epochs, LR, weights, gen, log=part)
    seconds = time.time() - t_start
    path = os.path.join(a.out, f"{part}.onnx")
    export(model, path, outs)
    preds = predict(model, xte)
    for o, p in zip(outs, preds):  # test-set logits, for the manifest and for cross-checking tandem
        np.save(os.path.join(a.work, f"{part}_{o}.npy"), p.numpy())
    rec = {"epochs": epochs, "seconds": round(seconds), "outputs": outs,
           "params": sum(p.numel() for p in model.parameters()), "macs": macs(model)}
    with open(os.path.join(a.work, f"{part}.train.json"), "w") as f:
        json.dump(rec, f, indent=2)
    correct = {o: int((p.argmax(1) == yte).sum()) for o, p in zip(outs, preds)}
    print(part, json.dumps(rec), "test correct:", correct, flush=True)


def write_manifest(a):
    recs = {}
    for part in ("edge", "cloud"):
        with open(os.path.join(a.work, f"{part}.train.json")) as f:
            recs[part] = json.load(f)
    edge_path = os.path.join(a.out, "edge.onnx")
    cloud_path = os.path.join(a.out, "cloud.onnx")
    src = branch_sources(edge_path, ["exit1", "exit2", "head"])
    inp = {"name": "input", "shape": ["N", 1, 28, 28], "dtype": "float32",
           "normalisation": f"pixels/255 in [0,1]; the graph itself subtracts {MEAN} and divides by {STD}"}
    # Correct answers per output from the saved logits: all 10000 test images, and the first
    # 1000 (what the sanitizer build of the integration test checks, to stay fast).
    _, yte = load_split(a.data, "t10k")
    yte = yte.numpy()
    for part in ("edge", "cloud"):
        full, first = {}, {}
        for o in recs[part]["outputs"]:
            pred = np.load(os.path.join(a.work, f"{part}_{o}.npy")).argmax(1)
            full[o] = int((pred == yte).sum())
            first[o] = int((pred[:1000] == yte[:1000]).sum())
        recs[part]["pytorch_test_correct"] = full
        recs[part]["pytorch_test_accuracy"] = {k: v / len(yte) for k, v in full.items()}
        recs[part]["pytorch_first1000_correct"] = first
    keep = ("params", "macs", "pytorch_test_correct", "pytorch_test_accuracy",
            "pytorch_first1000_correct")
    manifest = {
        "dataset": "fashion-mnist (Debian dataset-fashion-mnist, t10k = 10000 test images)",
        "recipe": "/usr/bin/python3 tools/train_fashion_mnist.py (see its docstring and tools/README.md)",
        "training": {"seed": a.seed, "edge_epochs": recs["edge"]["epochs"],
                     "cloud_epochs": recs["cloud"]["epochs"],
                     "optimizer": f"AdamW max lr {LR} one-cycle, weight decay 5e-4, batch 256",
                     "edge_loss": f"BranchyNet joint loss, exit weights {list(EXIT_WEIGHTS)}",
                     "torch": torch.__version__, "threads_per_process": a.threads,
                     "seconds": {"edge": recs["edge"]["seconds"], "cloud": recs["cloud"]["seconds"]}},
        "models": {
            "edge": dict({
                "file": "edge.onnx", "sha256": sha256(edge_path), "size": os.path.getsize(edge_path),
                "input": inp, "outputs": recs["edge"]["outputs"], "opset": 13,
                "architecture": "conv16-bn-relu-maxpool | exit1 | conv32-bn-relu-maxpool | exit2 | "
                                "conv64-bn-relu-maxpool-fc128-relu-fc10",
                "exits": [
                    {"output": "exit1", "order": 1, "branch_from": src["exit1"],
                     "after": "block1 (conv16-bn-relu-maxpool, 16x14x14)",
                     "head": "maxpool 2 + fc 784->10"},
                    {"output": "exit2", "order": 2, "branch_from": src["exit2"],
                     "after": "block2 (conv32-bn-relu-maxpool, 32x7x7)", "head": "fc 1568->10"},
                    {"output": "logits", "order": 3, "branch_from": src["head"],
                     "after": "block3 (conv64-bn-relu-maxpool, 64x3x3), final exit",
                     "head": "fc 576->128-relu-fc 10"}]},
                **{k: recs["edge"][k] for k in keep}),
            "cloud": dict({
                "file": "cloud.onnx", "sha256": sha256(cloud_path), "size": os.path.getsize(cloud_path),
                "input": inp, "outputs": ["logits"], "opset": 13,
                "architecture": "stem conv24-bn-relu @28x28; BasicBlock 24->48 stride 2 @14x14; "
                                "BasicBlock 48->96 stride 2 @7x7 (1x1 conv shortcuts); global "
                                "average pool; fc 96->10"},
                **{k: recs["cloud"][k] for k in keep}),
        },
    }
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps({m: manifest["models"][m]["pytorch_test_correct"] for m in ("edge", "cloud")}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "fashion-mnist"))
    ap.add_argument("--work", default="/tmp/tdm-fmnist-train")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--part", choices=["edge", "cloud", "manifest"], default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--edge-epochs", type=int, default=2)
    ap.add_argument("--cloud-epochs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    os.makedirs(a.work, exist_ok=True)
    for part in ([a.part] if a.part else ["edge", "cloud", "manifest"]):
        if part == "manifest":
            write_manifest(a)
        else:
            train_part(a, part)
    return 0


if __name__ == "__main__":
    sys.exit(main())
