#!/usr/bin/python3
"""Train the small CNN the demo ships, on Fashion-MNIST, and export it to ONNX.

Run with Debian's python3 (python3-torch, python3-onnx, dataset-fashion-mnist):
    /usr/bin/python3 examples/fashion-mnist/make_model.py

Writes examples/fashion-mnist/cnn.onnx and a conformance-style test folder
tests/models/models/fashion-cnn/ (model.onnx, test_data_set_0/{input,output}_0.pb)
whose reference outputs come from PyTorch, so that kdcc's emitted C is checked
against an independent implementation. The network has what real exports have:
Conv + BatchNorm + ReLU, a residual Add, pooling, Flatten and Gemm, and the
Shape/Gather/Concat/Reshape chains PyTorch writes for a flatten by view().
"""
import gzip
import os
import struct
import sys

import numpy as np
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


class Net(nn.Module):
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
        x = F.max_pool2d(x + y, 2)              # residual Add, then 28 -> 14
        x = F.relu(self.conv3(x))               # 14 -> 7
        x = x.view(x.size(0), -1)               # exported as Shape/Gather/Concat/Reshape
        return self.fc(x)


def tensor_pb(arr, path):
    from onnx import numpy_helper
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr).SerializeToString())


def main():
    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(2)
    xtr = idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    ytr = idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    yte = idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    xtr = torch.from_numpy(xtr).unsqueeze(1)
    xte_t = torch.from_numpy(xte).unsqueeze(1)
    ytr = torch.from_numpy(ytr)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    epochs = int(os.environ.get("EPOCHS", "2"))
    cache = os.environ.get("WEIGHTS_CACHE", "/tmp/kdcc-fashion-cnn.pt")
    if os.path.exists(cache):      # re-export without training again
        net.load_state_dict(torch.load(cache))
        epochs = 0
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            b = perm[i:i + 128]
            opt.zero_grad()
            loss = F.cross_entropy(net(xtr[b]), ytr[b])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            acc = (net(xte_t).argmax(1).numpy() == yte).mean()
        print(f"epoch {ep + 1}: loss {loss.item():.3f}, test accuracy {acc * 100:.2f}%", file=sys.stderr)

    if epochs:
        torch.save(net.state_dict(), cache)
    net.eval()
    with torch.no_grad():
        acc = (net(xte_t).argmax(1).numpy() == yte).mean()
    print(f"test accuracy {acc * 100:.2f}%", file=sys.stderr)
    x = xte_t[:1]
    out = os.path.join(HERE, "cnn.onnx")
    torch.onnx.export(net, x, out, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "N"}, "logits": {0: "N"}}, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,  # model.eval(): BatchNormalization stays, in inference form
                      do_constant_folding=False)   # keep BatchNormalization and the shape chain: kdcc folds them
    tdir = os.path.join(ROOT, "tests", "models", "models", "fashion-cnn")
    os.makedirs(os.path.join(tdir, "test_data_set_0"), exist_ok=True)
    os.makedirs(os.path.join(tdir, "test_data_set_1"), exist_ok=True)
    with open(out, "rb") as f:
        blob = f.read()
    with open(os.path.join(tdir, "model.onnx"), "wb") as f:
        f.write(blob)
    with torch.no_grad():
        for k, sl in enumerate([slice(0, 1), slice(1, 2)]):
            xi = xte_t[sl].numpy().copy()
            yi = net(xte_t[sl]).numpy().copy()
            tensor_pb(xi, os.path.join(tdir, f"test_data_set_{k}", "input_0.pb"))
            tensor_pb(yi, os.path.join(tdir, f"test_data_set_{k}", "output_0.pb"))
    print(f"wrote {out} and {tdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
