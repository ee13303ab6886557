"""Tensor files of the fixture scripts: u32 rank, u32 dims..., then f32
values, all little-endian (graft's tests read them with `read_tensor`)."""
import struct

import numpy as np


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
