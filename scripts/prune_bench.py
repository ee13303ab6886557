#!/usr/bin/env python3
"""Whole-process pruning benchmark (issue 19): `graft prune` as a user runs
it, beside Torch-Pruning's in-process prune, in one run on one machine.

For each model (torchvision, random weights, exported once with torch's
legacy exporter at 224x224 into --out):

* graft: `/usr/bin/time -v graft -q prune MODEL --ratio 0.5 --scope layer
  -o OUT` run --runs times; the median and the worst wall time, and the
  largest peak resident memory, beside the file's size. `graft inspect`'s
  peak memory too (every command that reads a model has a memory target).
* Torch-Pruning (one thread): the dependency graph, the magnitude pruner
  at a 0.5 ratio per layer and its step, timed in process with the model
  already in memory (a fresh copy each run); the median and the worst.

Usage (the venv of scripts/zoo.py: torch, torchvision, torch-pruning):

    GRAFT=target/release/graft python scripts/prune_bench.py --out /tmp/bench \
        [--runs 5] [--models resnet50 densenet121 vgg11_bn mobilenet_v2] \
        [--extra decoder.onnx ...]

`--extra` adds files (the 1.5 B decoder of `graft-onnx`'s `big_decoder`
example) timed with graft alone. Prints a markdown table.
"""
import argparse
import copy
import os
import pathlib
import re
import statistics
import subprocess
import sys
import time


def export(name, out):
    import torch
    import torchvision

    path = out / f"{name}.onnx"
    if path.exists():
        return path
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17)
    return path


def time_v(cmd):
    """Wall seconds and peak resident KB of one whole process."""
    r = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return secs, kb


def graft_runs(graft, path, out, runs):
    pruned = out / f"{path.stem}.pruned.onnx"
    times, peaks = [], []
    for _ in range(runs):
        s, kb = time_v([graft, "-q", "prune", str(path), "--ratio", "0.5", "--scope", "layer", "-o", str(pruned)])
        times.append(s)
        peaks.append(kb)
    _, inspect_kb = time_v([graft, "-q", "inspect", str(path)])
    return times, max(peaks), inspect_kb


def torch_pruning_runs(name, runs):
    import torch
    import torch_pruning as tp
    import torchvision

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    times = []
    for _ in range(runs):
        model = copy.deepcopy(base)
        t = time.perf_counter()
        ignored = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1000]
        pruner = tp.pruner.MagnitudePruner(
            model, x, importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=0.5, global_pruning=False, ignored_layers=ignored)
        pruner.step()
        times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--models", nargs="*", default=["resnet50", "densenet121", "vgg11_bn", "mobilenet_v2"])
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument("--no-torch", action="store_true", help="graft alone")
    args = ap.parse_args()
    graft = os.environ.get("GRAFT", "target/release/graft")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    files = [(name, export(name, out)) for name in args.models]
    files += [(pathlib.Path(p).stem, pathlib.Path(p)) for p in args.extra]
    for name, path in files:
        size = path.stat().st_size
        data = path.with_name(path.name + ".data")
        if data.exists():
            size += data.stat().st_size
        g, peak, inspect = graft_runs(graft, path, out, args.runs)
        tpr = None
        if not args.no_torch and name in args.models:
            tpr = torch_pruning_runs(name, args.runs)
        rows.append((name, size, g, peak, inspect, tpr))
        print(f"{name}: graft {statistics.median(g):.3f} s (worst {max(g):.3f}), peak {peak / 1024:.0f} MB, "
              f"inspect {inspect / 1024:.0f} MB" + (f"; TP {statistics.median(tpr):.3f} s" if tpr else ""),
              file=sys.stderr)
    print("| model (file) | graft prune, whole process: median (worst) | Torch-Pruning in process: median (worst) "
          "| graft prune peak memory | graft inspect peak memory |")
    print("|---|---:|---:|---:|---:|")
    for name, size, g, peak, inspect, tpr in rows:
        mb = size / 1e6
        tp_cell = f"{statistics.median(tpr):.3f} s ({max(tpr):.3f})" if tpr else "n/a"
        print(f"| {name} ({mb:.0f} MB) | {statistics.median(g):.3f} s ({max(g):.3f}) | {tp_cell} "
              f"| {peak / 1024:.0f} MB ({peak * 1024 / size:.2f}x file) "
              f"| {inspect / 1024:.0f} MB ({inspect * 1024 / size:.2f}x) |")


if __name__ == "__main__":
    main()
