#!/usr/bin/env python3
"""Run graft's exports of dynamic networks through onnxruntime and record
its outputs: the D7 fixtures of graft-onnx's tests.

The Rust example `dynamic_fixtures` writes the models and inputs to
crates/graft-onnx/tests/fixtures/ (see its header); this script then writes
  dynamic_net.if.hi.out.bin     the If export, batch control 0.7
  dynamic_net.if.lo.out.bin     the If export, batch control 0.3
  dynamic_net.where.out.bin     the Where export, per-sample controls
  gated.graft.out.bin, exits.graft.out.bin, moe.graft.out.bin
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
    venv = os.environ.get("GRAFT_ONNX_VENV", os.path.expanduser("~/.cache/graft-onnx-venv"))
    py = os.path.join(venv, "bin", "python")
    if os.path.abspath(sys.executable) == os.path.abspath(py):
        raise
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "-q", "onnxruntime", "numpy"])
    os.execv(py, [py] + sys.argv)

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates" / "graft-onnx" / "tests" / "fixtures"


def read_tensor(path):
    b = open(path, "rb").read()
    (rank,) = struct.unpack("<I", b[:4])
    dims = struct.unpack(f"<{rank}I", b[4:4 + 4 * rank])
    return np.frombuffer(b[4 + 4 * rank:], dtype="<f4").reshape(dims)


def write_tensor(path, a):
    a = np.ascontiguousarray(a, dtype=np.float32)
    with open(path, "wb") as f:
        f.write(struct.pack("<I", a.ndim))
        f.write(struct.pack(f"<{a.ndim}I", *a.shape))
        f.write(a.astype("<f4").tobytes())


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
    for name in ["gated", "exits", "moe"]:
        x = read_tensor(OUT / f"{name}.x.bin")
        y = run(f"{name}.graft.onnx", {"x": x})
        write_tensor(OUT / f"{name}.graft.out.bin", y)
        print(f"{name}.graft.onnx: onnxruntime output {y.shape}")


if __name__ == "__main__":
    main()
