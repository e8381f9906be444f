"""Export the benchmark's PyTorch models to ONNX (bench/models/*.onnx).

    /usr/bin/python3 bench/make_models.py      (Debian's python3-torch)

Six small networks of the kind kdcc targets, with random (untrained) weights
from fixed seeds, exported at opset 13 with a static batch of 1:

  mlp           784-64-10 multilayer perceptron (MNIST-sized)
  lenet5        LeNet-5 on 1x32x32 (ReLU and max pooling, the modern variant)
  resnet8       MLPerf Tiny image classification ResNet-8, 3x32x32, 10 classes
  dscnn         MLPerf Tiny keyword spotting DS-CNN, 1x49x10 MFCC, 12 classes
  mobilenet025  MobileNetV1 x0.25 at 3x96x96, 2 classes (MLPerf Tiny visual wake words)
  autoencoder   MLPerf Tiny anomaly detection fully-connected autoencoder, 640 inputs

BatchNorm layers are kept as BatchNormalization nodes (exported in inference
mode with TrainingMode.PRESERVE, so they are not folded into the convolutions)
and get random running statistics so that they are not identities.

Also writes overhead.onnx (one float plus a constant: used to measure ONNX
Runtime's per-call cost through its Node binding) and macs.tsv (MACs per model,
computed by macs.py from the exported files).
"""
import os
import sys

import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
sys.path.insert(0, HERE)
import macs  # noqa: E402


def conv_bn_relu(cin, cout, k, stride=1, pad=0, groups=1, relu6=False):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6() if relu6 else nn.ReLU(),
    )


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ResBlock(nn.Module):
    """MLPerf Tiny ResNet-8 block: conv-BN-ReLU-conv-BN, 1x1 conv shortcut when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None if (cin == cout and stride == 1) else nn.Conv2d(cin, cout, 1, stride=stride)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.short is None else self.short(x)
        return self.relu(y + s)


class ResNet8(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn_relu(3, 16, 3, pad=1)
        self.blocks = nn.Sequential(ResBlock(16, 16, 1), ResBlock(16, 32, 2), ResBlock(32, 64, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)  # the reference's 8x8 average pool over the 8x8 map
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        y = self.pool(self.blocks(self.stem(x)))
        return torch.softmax(self.fc(torch.flatten(y, 1)), dim=1)


class DSCNN(nn.Module):
    """MLPerf Tiny KWS DS-CNN: 10x4 stride-2 conv, four depthwise-separable blocks of 64, average pool.
    (The reference pads 'same' asymmetrically; symmetric padding (5, 1) gives the same 25x5 map.)"""

    def __init__(self):
        super().__init__()
        layers = [conv_bn_relu(1, 64, (10, 4), stride=2, pad=(5, 1))]
        for _ in range(4):
            layers.append(conv_bn_relu(64, 64, 3, pad=1, groups=64))
            layers.append(conv_bn_relu(64, 64, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # the reference's 25x5 average pool over the 25x5 map
        self.fc = nn.Linear(64, 12)

    def forward(self, x):
        y = self.pool(self.features(x))
        return torch.softmax(self.fc(torch.flatten(y, 1)), dim=1)


class MobileNetV1(nn.Module):
    """MobileNetV1 with width multiplier alpha; ReLU6 as in the reference (exported as Clip)."""

    def __init__(self, alpha=0.25, classes=2):
        super().__init__()
        c = lambda n: int(n * alpha)  # noqa: E731
        cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers = [conv_bn_relu(3, c(32), 3, stride=2, pad=1, relu6=True)]
        cin = c(32)
        for cout, s in cfg:
            layers.append(conv_bn_relu(cin, cin, 3, stride=s, pad=1, groups=cin, relu6=True))
            layers.append(conv_bn_relu(cin, c(cout), 1, relu6=True))
            cin = c(cout)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # the reference's 3x3 average pool over the 3x3 map
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        y = self.pool(self.features(x))
        return torch.softmax(self.fc(torch.flatten(y, 1)), dim=1)


class AutoEncoder(nn.Module):
    """MLPerf Tiny anomaly detection: 640-128-128-128-128-8-128-128-128-128-640, Dense-BN-ReLU."""

    def __init__(self):
        super().__init__()
        dims = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        layers.append(nn.Linear(128, 640))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


MODELS = [
    ("mlp", MLP, (1, 784)),
    ("lenet5", LeNet5, (1, 1, 32, 32)),
    ("resnet8", ResNet8, (1, 3, 32, 32)),
    ("dscnn", DSCNN, (1, 1, 49, 10)),
    ("mobilenet025", MobileNetV1, (1, 3, 96, 96)),
    ("autoencoder", AutoEncoder, (1, 640)),
]


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(1.0 + 0.2 * torch.rand(n, generator=gen))


def export(name, cls, shape, seed):
    torch.manual_seed(seed)
    model = cls()
    randomise_bn(model, torch.Generator().manual_seed(seed + 1000))
    model.eval()
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed + 2000))
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(
        model, x, path, opset_version=13, input_names=["input"], output_names=["output"],
        do_constant_folding=True, training=torch.onnx.TrainingMode.PRESERVE,
    )
    m = onnx.load(path)
    onnx.checker.check_model(m)
    # deterministic bytes: no producer version noise beyond what torch writes
    m.producer_name = "kdcc bench/make_models.py (torch %s)" % torch.__version__
    onnx.save(m, path)
    return path


def export_overhead():
    """y = x + 1 on one float: the smallest model ONNX Runtime can run."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    g = helper.make_graph(
        [helper.make_node("Add", ["input", "one"], ["output"])], "overhead",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1])], [one],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="kdcc bench/make_models.py")
    m.ir_version = 7
    onnx.checker.check_model(m)
    path = os.path.join(OUT, "overhead.onnx")
    onnx.save(m, path)


def main():
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for i, (name, cls, shape) in enumerate(MODELS):
        path = export(name, cls, shape, seed=1 + i)
        n, unknown, _ = macs.model_macs(path)
        if unknown:
            sys.exit("make_models.py: %s: shapes unknown for %s" % (name, unknown))
        ops = {}
        for node in onnx.load(path).graph.node:
            ops[node.op_type] = ops.get(node.op_type, 0) + 1
        rows.append((name, n))
        print("%-13s %8d bytes %11d MACs  %s" % (name, os.path.getsize(path), n,
                                                   " ".join("%s*%d" % kv for kv in sorted(ops.items()))))
    export_overhead()
    with open(os.path.join(OUT, "macs.tsv"), "w") as f:
        f.write("model\tmacs\n")
        for name, n in rows:
            f.write("%s\t%d\n" % (name, n))


if __name__ == "__main__":
    main()
