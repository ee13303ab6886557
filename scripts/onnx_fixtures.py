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
    venv = os.environ.get("GRAFT_ONNX_VENV", os.path.expanduser("~/.cache/graft-onnx-venv"))
    py = os.path.join(venv, "bin", "python")
    if os.path.abspath(sys.executable) == os.path.abspath(py):
        raise
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "torch", "onnx", "onnxscript", "onnxruntime", "numpy"])
    os.execv(py, [py] + sys.argv)

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates" / "graft-onnx" / "tests" / "fixtures"


def write_tensor(path, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    with open(path, "wb") as f:
        f.write(struct.pack("<I", a.ndim))
        f.write(struct.pack(f"<{a.ndim}I", *a.shape))
        f.write(a.astype("<f4").tobytes())


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


MODELS = {
    "mlp": (Mlp, (2, 6)),
    "rescnn": (ResCnn, (2, 3, 8, 8)),
}


def randomise_bn(m):
    g = torch.Generator().manual_seed(5)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
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
            if exporter == "legacy":
                torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                                  input_names=["input"], output_names=["output"])
            else:
                torch.onnx.export(model, (x,), str(path), dynamo=True,
                                  input_names=["input"], output_names=["output"])
                # One self-contained file (the dynamo exporter writes the
                # weights beside it).
                import onnx
                m = onnx.load(str(path))
                onnx.save(m, str(path), save_as_external_data=False)
                data = pathlib.Path(str(path) + ".data")
                if data.exists():
                    data.unlink()
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            write_tensor(OUT / f"{name}.{exporter}.out.bin", y)
            print(f"{path.name}: {path.stat().st_size} bytes, output {y.shape}")


if __name__ == "__main__":
    main()
