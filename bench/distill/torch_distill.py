#!/usr/bin/python3
"""PyTorch side of the distillation benchmark (issue 3, part 10).

Same teacher (examples/fashion-mnist/cnn.onnx), same initial student
(examples/fashion-mnist/student_mlp.onnx), same loss as docs/DISTILLATION.md
(hard CE mean over the batch; soft = T^2 * mean over the batch of KL(p || q)),
Adam lr 1e-3, batch 64 (last partial batch dropped, like kdcc), scale 1/255,
one thread. Two variants: the teacher run in every step ("loop") or its logits
computed once before training ("cached"; that one-off pass is timed apart and
not counted in samples/s, as kdcc does not count its own cache pass).

Prints one line per epoch and a final JSON line (prefix "RESULT ").
Run with Debian's python: /usr/bin/python3 bench/distill/torch_distill.py --variant loop
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def inits(path):
    m = onnx.load(path)
    return {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer}


class Teacher(nn.Module):
    """examples/fashion-mnist/make_model.py's Net, in inference form."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x + y, 2)
        x = F.relu(self.conv3(x))
        return self.fc(x.reshape(x.size(0), -1))


class Student(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.reshape(x.size(0), -1))))


def load(module, path):
    w = inits(path)
    sd = module.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        assert k in w and tuple(w[k].shape) == tuple(sd[k].shape), f"{path}: no initializer matches {k}"
        sd[k] = w[k]
    module.load_state_dict(sd)
    return module


def distill_loss(z, t, y, T, alpha):
    """docs/DISTILLATION.md: (1-alpha)*CE + alpha*T^2*mean_b KL(p_b || q_b)."""
    hard = F.cross_entropy(z, y)                       # mean over the batch
    logq = F.log_softmax(z / T, dim=1)
    logp = F.log_softmax(t / T, dim=1)
    soft = (logp.exp() * (logp - logq)).sum(1).mean() * (T * T)
    return (1 - alpha) * hard + alpha * soft


def blas_libs():
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in p or "mkl" in p.lower():
                libs.add(os.path.realpath(p))
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", choices=["loop", "cached"], required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("-T", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    scale = 0.00392156862745098
    xtr = torch.from_numpy(idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) * np.float32(scale)).unsqueeze(1)
    ytr = torch.from_numpy(idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) * np.float32(scale)).unsqueeze(1)
    yte = idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if a.limit > 0:
        xtr, ytr = xtr[:a.limit].contiguous(), ytr[:a.limit].contiguous()
    N, B = len(xtr), a.batch

    teacher = load(Teacher(), os.path.join(ROOT, "examples/fashion-mnist/cnn.onnx")).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = load(Student(), os.path.join(ROOT, "examples/fashion-mnist/student_mlp.onnx"))
    opt = torch.optim.Adam(student.parameters(), lr=a.lr)

    def evaluate(net):
        with torch.no_grad():
            return float((torch.cat([net(xte[i:i + 1000]) for i in range(0, len(xte), 1000)]).argmax(1).numpy() == yte).mean())

    tacc = evaluate(teacher)
    cache_s = 0.0
    tlog = None
    if a.variant == "cached":
        t0 = time.perf_counter()
        with torch.no_grad():
            tlog = torch.cat([teacher(xtr[i:i + 256]) for i in range(0, N, 256)])
        cache_s = time.perf_counter() - t0

    spe = N // B
    sps, vacc = [], None
    for ep in range(a.epochs):
        perm = torch.randperm(N)
        t0 = time.perf_counter()
        lsum = 0.0
        for bi in range(spe):
            b = perm[bi * B:(bi + 1) * B]
            xb, yb = xtr[b], ytr[b]
            if tlog is None:
                with torch.no_grad():
                    tb = teacher(xb)
            else:
                tb = tlog[b]
            opt.zero_grad(set_to_none=True)
            loss = distill_loss(student(xb), tb, yb, a.T, a.alpha)
            loss.backward()
            opt.step()
            lsum += loss.item()
        dt = time.perf_counter() - t0
        sps.append(spe * B / dt)
        vacc = evaluate(student)
        print(f"epoch {ep + 1}/{a.epochs}  loss {lsum / spe:.4f}  val acc {100 * vacc:.2f}%  {sps[-1]:.0f} samples/s  {dt:.1f}s", flush=True)
    res = {"tool": "pytorch", "variant": a.variant, "epochs": a.epochs, "samples": N, "val_acc": vacc,
           "samples_per_s": sps, "teacher_val_acc": tacc, "teacher_cache_s": cache_s,
           "threads": torch.get_num_threads(), "torch": torch.__version__, "blas": blas_libs()}
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
