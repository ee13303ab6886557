#!/usr/bin/env python3
"""Manual check (not part of the tests; the models are too big to ship):
export torchvision's ResNet-18, MobileNetV2 and DenseNet-121 (random
weights, eval mode) with both torch.onnx exporters, run them in
onnxruntime, and compare with graft's import
(`cargo run --release -p graft-onnx --example compare`).

Uses the same virtual environment as scripts/onnx_fixtures.py (installed
outside the repository on first run, with torchvision added)."""
import os
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    import torchvision
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["torch", "torchvision", "onnx", "onnxscript", "onnxruntime", "numpy"])


from tensor_files import write_tensor as write  # noqa: E402


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    out = pathlib.Path(tempfile.mkdtemp(prefix="graft-tv-"))
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    write(out / "input.bin", x.numpy())
    for name in ["resnet18", "mobilenet_v2", "densenet121"]:
        model = getattr(torchvision.models, name)(weights=None).eval()
        for exporter in ["legacy", "dynamo"]:
            path = out / f"{name}.{exporter}.onnx"
            if exporter == "legacy":
                torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17)
            else:
                torch.onnx.export(model, (x,), str(path), dynamo=True)
                onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            (y,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
            write(out / f"{name}.{exporter}.out.bin", y)
            subprocess.check_call(["cargo", "run", "--quiet", "--release", "-p", "graft-onnx", "--example",
                                   "compare", "--", str(path), str(out / "input.bin"),
                                   str(out / f"{name}.{exporter}.out.bin")], cwd=root)


if __name__ == "__main__":
    main()
