#!/usr/bin/env python3
"""Build small seeded PyTorch models, export them to ONNX and record
onnxruntime's output on a seeded input: the fixtures of graft-onnx's tests.

For each model NAME and exporter (legacy: torch.onnx.export(dynamo=False),
opset 17; dynamo: the default exporter), writes to
crates/graft-onnx/tests/fixtures/:
  NAME.EXPORTER.onnx      the model
  NAME.input.bin          the input (shape header + little-endian f32)
  NAME.EXPORTER.out.bin   onnxruntime's output for it

Tensor files: u32 rank, u32 dims..., then f32 values, all little-endian.

torch, onnx, onnxscript and onnxruntime are installed with pip into a
virtual environment outside the repository when they are missing
(~/.cache/graft-onnx-venv or $GRAFT_ONNX_VENV). Not part of the tests.

`onnx_fixtures.py cli` redoes only the last step: `graft prune` halves the
narrow ResNet-18's MACs and onnxruntime runs the result.
"""
import os
import pathlib
import struct
import subprocess
import sys

try:
    import numpy as np
    import onnxruntime as ort
    import torch
    import torch.nn as nn
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["torch", "onnx", "onnxscript", "onnxruntime", "numpy"])

from tensor_files import read_tensor, write_tensor  # noqa: E402
from torch_export import export  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates" / "graft-onnx" / "tests" / "fixtures"


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 4))

    def forward(self, x):
        return self.net(x)


class ResCnn(nn.Module):
    """Conv + BN + ReLU, a residual add, a concatenation, pooling, a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 4, 1)
        self.c = nn.Conv2d(8, 4, 3, padding=1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        h = torch.relu(self.bn(self.stem(x)))
        h = torch.relu(h + self.a(h))
        h = torch.cat([self.b(h), self.c(h)], 1)
        h = nn.functional.max_pool2d(h, 2)
        h = h.mean((2, 3))
        return self.head(h)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3, project 1x1, with
    batch norm and ReLU6, and the residual add."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.block = nn.Sequential(
            nn.Conv2d(8, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU6(),
            nn.Conv2d(48, 48, 3, padding=1, groups=48, bias=False), nn.BatchNorm2d(48), nn.ReLU6(),
            nn.Conv2d(48, 8, 1, bias=False), nn.BatchNorm2d(8),
        )
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = self.stem(x)
        h = h + self.block(h)
        return self.head(nn.functional.adaptive_avg_pool2d(h, 1).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = torch.relu(self.b1(self.c1(x)))
        h = self.b2(self.c2(h))
        return torch.relu(h + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout at width 8 (8-16-32-64 channels)."""

    def __init__(self, w=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, w, 7, 2, 3, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                                  nn.MaxPool2d(2, 2))
        blocks, cin = [], w
        for i, c in enumerate([w, 2 * w, 4 * w, 8 * w]):
            for j in range(2):
                blocks.append(BasicBlock(cin, c, 2 if i > 0 and j == 0 else 1))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(8 * w, 10)

    def forward(self, x):
        h = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


class DenseBlock(nn.Module):
    """A DenseNet block of three BN-ReLU-conv layers, growth 4."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(8 + 4 * i), nn.ReLU(), nn.Conv2d(8 + 4 * i, 4, 3, padding=1))
            for i in range(3)
        )
        self.head = nn.Linear(20, 3)

    def forward(self, x):
        feats = [self.stem(x)]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        h = torch.cat(feats, 1)
        return self.head(h.mean((2, 3)))


class Seq(nn.Module):
    """A recurrent layer over [N, T, F] (batch first), its last output, a
    linear head."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = getattr(nn, cell)(3, 6, batch_first=True)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.fc(y[:, -1, :])


MODELS = {
    "mlp": (Mlp, (2, 6)),
    "rescnn": (ResCnn, (2, 3, 8, 8)),
    "invres": (InvertedResidual, (2, 3, 8, 8)),
    "resnet18w8": (ResNet18, (1, 3, 32, 32)),
    "denseblock": (DenseBlock, (2, 3, 6, 6)),
    "lstm": (lambda: Seq("LSTM"), (2, 5, 3)),
    "gru": (lambda: Seq("GRU"), (2, 5, 3)),
}


def randomise_bn(m):
    g = torch.Generator().manual_seed(5)
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            with torch.no_grad():
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.weight.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (cls, shape) in MODELS.items():
        torch.manual_seed(0)
        model = cls().eval()
        randomise_bn(model)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        write_tensor(OUT / f"{name}.input.bin", x.numpy())
        for exporter in ["legacy", "dynamo"]:
            path = OUT / f"{name}.{exporter}.onnx"
            export(model, x, path, exporter)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            write_tensor(OUT / f"{name}.{exporter}.out.bin", y)
            print(f"{path.name}: {path.stat().st_size} bytes, output {y.shape}")


def mutated():
    """graft imports, mutates and exports the narrow ResNet-18 (the Rust
    example); onnxruntime runs what graft wrote, and its outputs become
    fixtures too."""
    root = pathlib.Path(__file__).resolve().parent.parent
    subprocess.check_call(["cargo", "run", "--quiet", "-p", "graft-onnx", "--example", "mutated_fixtures"],
                          cwd=root)
    x = read_tensor(OUT / "resnet18w8.input.bin")
    for kind in ["grown", "pruned"]:
        path = OUT / f"resnet18w8.{kind}.graft.onnx"
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
        write_tensor(OUT / f"resnet18w8.{kind}.graft.out.bin", y)
        print(f"{path.name}: onnxruntime output {y.shape}")


def cli_pruned():
    """`graft prune` (the command-line tool) cuts the narrow ResNet-18 to
    half its multiply-accumulates; onnxruntime runs what it wrote. The
    table graft printed and onnxruntime's output are committed."""
    root = pathlib.Path(__file__).resolve().parent.parent
    src = OUT / "resnet18w8.legacy.onnx"
    dst = OUT / "resnet18w8.half.cli.onnx"
    # 842,368 MACs per sample at 3x32x32 (graft inspect); half of it.
    table = subprocess.check_output(
        ["cargo", "run", "--quiet", "--release", "-p", "graft-cli", "--", "prune", str(src),
         "--macs", "421184", "-o", str(dst)], cwd=root, text=True)
    x = read_tensor(OUT / "resnet18w8.input.bin")
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    assert y.shape == (x.shape[0], 10), y.shape
    assert np.isfinite(y).all()
    write_tensor(OUT / "resnet18w8.half.cli.out.bin", y)
    log = (f"$ graft prune resnet18w8.legacy.onnx --macs 421184 -o resnet18w8.half.cli.onnx\n{table}\n"
           f"onnxruntime {ort.__version__}: ran resnet18w8.half.cli.onnx on resnet18w8.input.bin, "
           f"output {list(y.shape)}, all finite\n")
    (OUT / "resnet18w8.half.cli.txt").write_text(log.replace(str(OUT) + "/", ""))
    print(log)


if __name__ == "__main__":
    # `onnx_fixtures.py cli` redoes only the command-line pruning fixture.
    if sys.argv[1:] == ["cli"]:
        cli_pruned()
    else:
        main()
        mutated()
        cli_pruned()
