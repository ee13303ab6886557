#!/usr/bin/env python3
"""`Model.run` from Python against the same forward from Rust (issue 20).

    (cd crates/graft-py && maturin develop --release)
    python crates/graft-py/bench/run_bench.py [RUNS]
    cargo run --release -p graft-onnx --example forward_bench -- \\
        crates/graft-onnx/tests/fixtures/resnet18w8.legacy.onnx \\
        crates/graft-onnx/tests/fixtures/resnet18w8.input.bin [RUNS]

Times `model(x)` on the narrow ResNet-18 fixture (NumPy in, NumPy out,
after 10 warm-up runs); prints the median and the worst.
"""
import pathlib
import struct
import sys
import time

import numpy as np

import graft

FIX = pathlib.Path(__file__).resolve().parents[2] / "graft-onnx" / "tests" / "fixtures"


def tensor(name):
    b = (FIX / name).read_bytes()
    rank = struct.unpack_from("<I", b, 0)[0]
    dims = struct.unpack_from(f"<{rank}I", b, 4)
    return np.frombuffer(b, dtype="<f4", offset=4 * (rank + 1)).reshape(dims).copy()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    m = graft.load(FIX / "resnet18w8.legacy.onnx")
    x = tensor("resnet18w8.input.bin")
    for _ in range(10):
        m(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        m(x)
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    print(f"Model.run from Python: median {times[runs // 2]:.1f} us, worst {times[-1]:.1f} us over {runs} runs")


if __name__ == "__main__":
    main()
