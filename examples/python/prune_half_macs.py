#!/usr/bin/env python3
"""Prune a model to half its multiply-accumulates with a score computed in
NumPy, and print the table before and after (graft's Python package).

    pip install ./crates/graft-py
    python examples/python/prune_half_macs.py [MODEL.onnx] [-o OUT.onnx]

By default it takes the narrow ResNet-18 of the test fixtures. The score
of a neuron is computed here in NumPy from the model's own weights (the
L2 norm of each convolution filter, scaled per layer by its share of the
MACs, so that expensive layers give up more); any array with one finite
score per neuron of a vertex works the same way.
"""
import argparse
import pathlib

import numpy as np

import graft

ROOT = pathlib.Path(__file__).resolve().parents[2]


def table(m):
    rows = [(v["name"], v["op"], v["nout"], v["params"], v["macs"])
            for v in m.vertices if v["params"]]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'vertex':<{width}}  {'op':<8} {'nout':>5} {'params':>8} {'MACs':>10}"]
    lines += [f"{n:<{width}}  {op:<8} {k:>5} {p:>8} {mac:>10}" for n, op, k, p, mac in rows]
    c = m.cost()
    lines.append(f"total: {c['params']} parameters, {c['macs']} MACs per sample")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?",
                    default=ROOT / "crates/graft-onnx/tests/fixtures/resnet18w8.legacy.onnx")
    ap.add_argument("-o", "--output", default="half_macs.onnx")
    args = ap.parse_args()
    m = graft.load(args.model)
    print("before\n" + table(m))

    # The user's score, in NumPy: each filter's L2 norm, divided by its
    # layer's share of the MACs.
    total = m.cost()["macs"]
    scores = {}
    for v in m.vertices:
        if v["op"] == "conv2d":
            w = m.weights(v["name"])["weight"]
            norms = np.linalg.norm(w.reshape(w.shape[0], -1), axis=1).astype(np.float64)
            scores[v["name"]] = norms / max(v["macs"] / total, 1e-9)
    rng = np.random.default_rng(0)

    x = rng.standard_normal(m.input_shapes[0]).astype(np.float32)
    y_before = m(x)
    r = m.prune(macs=m.cost()["macs"] // 2, utility=scores)
    print(f"\npruned: MACs {r['macs'][0]} -> {r['macs'][1]}, "
          f"parameters {r['params'][0]} -> {r['params'][1]}")
    print("\nafter\n" + table(m))
    y_after = m(x)
    print(f"\noutputs {y_before.shape} -> {y_after.shape}, all finite: {bool(np.isfinite(y_after).all())}")
    m.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
