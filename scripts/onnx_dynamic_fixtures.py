#!/usr/bin/env python3
"""Run graft's exports of dynamic networks through onnxruntime and record
its outputs: the D7 fixtures of graft-onnx's tests.

The Rust example `dynamic_fixtures` writes the models and inputs to
crates/graft-onnx/tests/fixtures/ (see its header); this script then writes
  dynamic_net.if.hi.out.bin     the If export, batch control 0.7
  dynamic_net.if.lo.out.bin     the If export, batch control 0.3
  dynamic_net.where.out.bin     the Where export, per-sample controls
  gated.graft.out.bin, exits.graft.out.bin, entropy_exits.graft.out.bin,
  moe.graft.out.bin, switch.graft.out.bin, argmax.graft.out.bin
Tensor files: u32 rank, u32 dims..., then f32 values, little-endian.

Needs numpy and onnxruntime; when they are missing they are installed with
pip into a virtual environment outside the repository
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
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["onnxruntime", "numpy"])

ROOT = pathlib.Path(__file__).resolve().parent.parent
from tensor_files import read_tensor, write_tensor  # noqa: E402

OUT = ROOT / "crates" / "graft-onnx" / "tests" / "fixtures"


def run(model, feeds):
    sess = ort.InferenceSession(str(OUT / model), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, feeds)
    return y


def main():
    subprocess.check_call(["cargo", "run", "--quiet", "-p", "graft-onnx", "--example", "dynamic_fixtures"],
                          cwd=ROOT)
    x = read_tensor(OUT / "dynamic_net.x.bin")
    for tag, c in [("hi", 0.7), ("lo", 0.3)]:
        y = run("dynamic_net.if.graft.onnx", {"x": x, "control": np.array([[c]], dtype=np.float32)})
        write_tensor(OUT / f"dynamic_net.if.{tag}.out.bin", y)
    c = read_tensor(OUT / "dynamic_net.control.bin")
    write_tensor(OUT / "dynamic_net.where.out.bin", run("dynamic_net.where.graft.onnx", {"x": x, "control": c}))
    for name in ["gated", "exits", "entropy_exits", "moe"]:
        x = read_tensor(OUT / f"{name}.x.bin")
        y = run(f"{name}.graft.onnx", {"x": x})
        write_tensor(OUT / f"{name}.graft.out.bin", y)
        print(f"{name}.graft.onnx: onnxruntime output {y.shape}")
    x = read_tensor(OUT / "switch.x.bin")
    for name in ["switch", "argmax"]:
        c = read_tensor(OUT / f"{name}.control.bin")
        y = run(f"{name}.graft.onnx", {"x": x, "control": c})
        write_tensor(OUT / f"{name}.graft.out.bin", y)
        print(f"{name}.graft.onnx: onnxruntime output {y.shape}")


if __name__ == "__main__":
    main()
