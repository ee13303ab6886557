#!/usr/bin/env python3
"""Export scikit-learn's digits data set (1,797 8x8 images, 10 classes) to
data/digits.bin, the file graft's tests read.

Format: the 8 bytes b"DIGITS1\\n", then the sample count as a little-endian
u32, then one record per sample: 64 pixel values (0..16, row-major) and the
label (0..9), one byte each.

Run once, with scikit-learn installed (outside the repository):
    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python scripts/export_digits.py
"""
import pathlib
import struct

from sklearn.datasets import load_digits

d = load_digits()
out = pathlib.Path(__file__).resolve().parent.parent / "data" / "digits.bin"
with open(out, "wb") as f:
    f.write(b"DIGITS1\n")
    f.write(struct.pack("<I", len(d.target)))
    for img, label in zip(d.data, d.target):
        f.write(bytes(int(v) for v in img))
        f.write(bytes([int(label)]))
print(f"wrote {out} ({len(d.target)} samples)")
