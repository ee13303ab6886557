#!/usr/bin/env python3
"""Model-coverage harness (issue 15): export torchvision's and timm's
classification models with both torch.onnx exporters and check, per model
and exporter, what graft does with them:

  export   torch.onnx.export succeeds and onnxruntime runs the file (its
           outputs are the reference);
  imports  `graft inspect MODEL --json` exits 0;
  runs     `graft run MODEL --input x.npy -o out.npz` matches onnxruntime,
           relative error max|a-b| / max|b| <= 1e-4 on every output;
  prunes   `graft prune MODEL --macs HALF` (half the MACs `inspect --json`
           reports), the written file passes
           onnx.checker.check_model(full_check=True), and onnxruntime runs
           it on the same input without error with unchanged output shapes;
  widens   `graft resize MODEL --vertex V --by 4 --relaxed` (4 neurons,
           or the nearest number that works: whole heads of each part of a
           fused attention projection) on the first conv2d,
           dense or linear_last (a dense layer on the last axis, as in
           channels-last blocks) vertex of size kind absorb that is not the
           last such layer, that no immutable vertex reads (its size is
           frozen: attention projections read by the head split) and whose
           new neurons can keep the function; the
           written file passes the full checker, and onnxruntime's
           output of it is within 1e-5 relative of its output of
           the original. New neurons keep the function when every value
           they reach before the next weighted layer treats neurons
           separately: the rule follows the vertex's outputs (the `inputs`
           of `graft inspect --json`) through vertices of size kind
           invariant or stack and skips the vertex when one of them
           normalises or reduces across the neurons (layer_norm,
           layer_norm_last, group_norm, softmax, or a reduce that removes
           the neuron axis): a new neuron
           would move their mean or sum (ConvNeXt's stem feeds a
           channels-first layer norm, and in torchvision's ConvNeXt every
           convolution's output reaches a layer norm through the residual
           stream: the first widened layer is a block's MLP). Weighted
           layers (absorb) end the walk: their new input columns are zero.

`imports` needs `export`; `runs`, `prunes` and `widens` need `imports`
(each is checked on its own: a failed `runs` does not hide what surgery
does). A cell whose prerequisite failed is "—".

Models are randomly initialised (`weights=None`, `pretrained=False`,
nothing is downloaded), seeded, in eval mode, at a small input size.
Exported models, inputs and outputs go to --out (default
~/.cache/graft-zoo, outside the repository); every step runs in a
subprocess with a timeout, so a model that hangs or crashes is a red cell,
not a stopped run. Each row's log is in OUT/NAME.EXPORTER.log.

torch, torchvision, timm, onnx, onnxscript and onnxruntime come from the
virtual environment of the fixture scripts (~/.cache/graft-onnx-venv or
$GRAFT_ONNX_VENV), installed there when missing.

  scripts/zoo.py                                   # the whole list, both exporters
  scripts/zoo.py --only resnet18 ghostnet_100 --exporter legacy -v
  scripts/zoo.py --markdown docs/zoo.md            # the table as Markdown
  scripts/zoo.py --only vit_b_16 swin_t --dynamic-batch 2 --out ~/.cache/graft-zoo-batch
                                                   # a symbolic batch, checked at batch 2
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import subprocess
import sys
import time

try:
    import numpy as np
    import onnx
    import onnxruntime as ort

    # The onnxruntime workers start without torch (seconds per call).
    if sys.argv[1:3] not in (["--worker", "ort"], ["--worker", "written"]):
        import timm
        import torch
        import torchvision
except ImportError:
    from pyenv_setup import rerun_in_venv

    rerun_in_venv(["torch", "torchvision", "timm", "onnx", "onnxscript", "onnxruntime", "numpy"])

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN_TOL = 1e-4
WIDEN_TOL = 1e-5

# (name, input side, batch, constructor keyword arguments). The smallest
# input each model takes, or close to it: 64x64 where the model allows.
TORCHVISION = [
    # AlexNet and VGG end in an adaptive average pool to 6x6 or 7x7, which
    # the legacy exporter writes only when it divides the feature map: 224
    # is the smallest input where it does.
    ("alexnet", 224, 1, {}),
    ("vgg11_bn", 224, 1, {}),
    ("resnet18", 64, 2, {}),
    ("resnet50", 64, 2, {}),
    ("resnext50_32x4d", 64, 2, {}),
    ("wide_resnet50_2", 64, 2, {}),
    ("squeezenet1_0", 64, 2, {}),
    ("squeezenet1_1", 64, 2, {}),
    ("densenet121", 64, 2, {}),
    ("googlenet", 64, 2, {}),
    # 75x75 is inception_v3's smallest input (its stride-2 stages).
    ("inception_v3", 75, 2, {}),
    ("mobilenet_v2", 64, 2, {}),
    ("mobilenet_v3_small", 64, 2, {}),
    ("mobilenet_v3_large", 64, 2, {}),
    ("mnasnet0_5", 64, 2, {}),
    ("shufflenet_v2_x0_5", 64, 2, {}),
    ("efficientnet_b0", 64, 2, {}),
    ("efficientnet_v2_s", 64, 2, {}),
    ("regnet_x_400mf", 64, 2, {}),
    ("regnet_y_400mf", 64, 2, {}),
    ("convnext_tiny", 64, 2, {}),
    # The position embeddings are sized for image_size; with random
    # weights a 64x64 image (16 patches) is the same architecture.
    ("vit_b_16", 64, 1, {"image_size": 64}),
    ("swin_t", 64, 1, {}),
    ("swin_v2_t", 64, 1, {}),
    # Window and grid partitions of 7 at 1/32 of the input: 224 is the
    # smallest size.
    ("maxvit_t", 224, 1, {}),
]

TIMM = [
    ("efficientnet_lite0", 64, 2),
    ("ghostnet_100", 64, 2),
    ("rexnet_100", 64, 2),
    ("cspdarknet53", 64, 2),
    ("repvgg_a0", 64, 2),
    ("hrnet_w18_small", 64, 2),
    ("convnext_atto", 64, 2),
    ("regnetz_b16", 64, 2),
    ("mobilevitv2_050", 64, 2),
    # A vision transformer from timm (issue 17): its patch grid is fixed
    # at 224.
    ("deit_tiny_patch16_224", 224, 1),
]


# The order of a run: the models graft already imports and the timm
# list first, the costliest exports last (a run stopped early still covers
# the most families).
ORDER = ["resnet18", "mobilenet_v2", "densenet121", "efficientnet_lite0", "ghostnet_100", "rexnet_100",
         "cspdarknet53", "repvgg_a0", "hrnet_w18_small", "convnext_atto", "regnetz_b16", "mobilevitv2_050",
         "squeezenet1_1", "googlenet", "inception_v3", "mobilenet_v3_small", "mnasnet0_5", "shufflenet_v2_x0_5",
         "efficientnet_b0", "regnet_x_400mf", "regnet_y_400mf", "resnet50", "resnext50_32x4d", "squeezenet1_0",
         "mobilenet_v3_large", "efficientnet_v2_s", "convnext_tiny", "alexnet", "swin_t", "vit_b_16", "swin_v2_t",
         "wide_resnet50_2", "vgg11_bn", "maxvit_t", "deit_tiny_patch16_224"]


def family_of(name):
    """The torchvision family a model belongs to (for the skipped list)."""
    for prefix in ["wide_resnet", "resnext", "resnet", "vgg", "densenet", "efficientnet_v2", "efficientnet_b",
                   "mnasnet", "shufflenet", "regnet_x", "regnet_y", "convnext", "vit", "swin_v2", "swin", "squeezenet",
                   "mobilenet_v3", "mobilenet_v2"]:
        if name.startswith(prefix):
            return prefix
    return name


def models(all_torchvision):
    """[(source, name, side, batch, kwargs)] and {skipped name: reason}."""
    chosen = [("torchvision", n, s, b, kw) for n, s, b, kw in TORCHVISION]
    skipped = {}
    listed = {n for _, n, *_ in chosen}
    for n in torchvision.models.list_models(module=torchvision.models):
        if n in listed:
            continue
        if all_torchvision:
            big = any(k in n for k in ["_l", "_h_", "128gf", "32gf", "16gf", "b6", "b7", "101", "152", "161",
                                       "201"])
            side = 224 if n.startswith(("maxvit", "vgg", "alexnet")) else 64
            kw = {"image_size": 64} if n.startswith("vit") else {}
            chosen.append(("torchvision", n, side, 1 if big or n.startswith(("vit", "swin")) else 2, kw))
        else:
            reps = [m for m in listed if family_of(m) == family_of(n)]
            skipped[n] = f"same family as {', '.join(sorted(reps))}" if reps else "not in the list"
    chosen += [("timm", n, s, b, {}) for n, s, b in TIMM]
    chosen.sort(key=lambda m: ORDER.index(m[1]) if m[1] in ORDER else len(ORDER))
    return chosen, skipped


# ---------------------------------------------------------------- workers
# Each runs in its own process (a timeout or a crash there is a red cell).


def build(source, name, kwargs):
    torch.manual_seed(0)
    if source == "torchvision":
        m = torchvision.models.get_model(name, weights=None, **kwargs)
    else:
        m = timm.create_model(name, pretrained=False, **kwargs)
    # A dense layer initialised to zero (torchvision's ViT head) makes every
    # output 0, and the comparisons with onnxruntime would hold for any
    # graph: such layers get seeded random weights.
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in m.modules():
            if isinstance(layer, torch.nn.Linear) and not layer.weight.any():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 0.02)
    return m.eval()


def ort_run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ys = sess.run(None, {sess.get_inputs()[0].name: x})
    return {o.name: y for o, y in zip(sess.get_outputs(), ys)}


def worker_export(source, name, exporters, out, side, batch, kwargs, dynamic=False):
    """Export NAME with each of EXPORTERS (comma-separated) to
    OUT/NAME.EXPORTER.onnx, in one process (torch starts once); the input
    goes to OUT/NAME.x.npy, onnxruntime's outputs to
    OUT/NAME.EXPORTER.ref.npz, and each exporter's status (ok, or the
    error's first line) to OUT/NAME.EXPORTER.export.json. With `dynamic`
    the input's batch axis is symbolic in both exporters."""
    out = pathlib.Path(out)
    key = [source, side, batch, kwargs] + (["symbolic batch"] if dynamic else [])
    model = build(source, name, kwargs)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, side, side, generator=g)
    np.save(out / f"{name}.x.npy", x.numpy().astype("<f4"))
    for exporter in exporters.split(","):
        t = time.time()
        path = out / f"{name}.{exporter}.onnx"
        try:
            # Not under torch.no_grad(): that sends nn.MultiheadAttention to
            # its fused kernel, which the legacy exporter cannot write.
            if exporter == "legacy":
                axes = {"input_names": ["input"], "dynamic_axes": {"input": {0: "batch"}}} if dynamic else {}
                torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, **axes)
            else:
                shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
                torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=shapes)
                # One self-contained file (the dynamo exporter may
                # write the weights beside it).
                onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
                data = path.with_name(path.name + ".data")
                if data.exists():
                    data.unlink()
            ys = ort_run(path, x.numpy())
            np.savez(out / f"{name}.{exporter}.ref.npz", **ys)
            status = {"ok": True, "detail": f"{time.time() - t:.0f} s"}
        except Exception as e:  # noqa: BLE001: the first line is the cell's message
            status = {"ok": False, "detail": f"{type(e).__name__}: {first_line(str(e))}"}
        status["key"] = key
        (out / f"{name}.{exporter}.export.json").write_text(json.dumps(status))


def worker_ort(model, x, out):
    """onnxruntime's outputs of MODEL on X, in the model's order, to OUT
    (.npz, keys o0, o1, ...)."""
    ys = ort_run(model, np.load(x))
    np.savez(out, **{f"o{i}": y for i, y in enumerate(ys.values())})


def worker_written(model, x, out):
    """A file graft wrote: onnx.checker.check_model(full_check=True), then
    onnxruntime's outputs as `worker_ort`."""
    onnx.checker.check_model(onnx.load(model), full_check=True)
    worker_ort(model, x, out)


def worker_main(argv):
    kind = argv[0]
    try:
        if kind == "export":
            source, name, exporter, out, side, batch, kwargs, dynamic = argv[1:]
            worker_export(source, name, exporter, out, int(side), int(batch), json.loads(kwargs),
                          dynamic == "1")
        elif kind == "ort":
            worker_ort(*argv[1:])
        elif kind == "written":
            worker_written(*argv[1:])
        else:
            raise SystemExit(f"unknown worker {kind}")
    except Exception as e:  # noqa: BLE001: the first line is the cell's message
        print(f"ZOO-ERROR: {type(e).__name__}: {first_line(str(e))}", file=sys.stderr)
        sys.exit(1)


# ------------------------------------------------------------------ steps


def first_line(text):
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("Traceback"):
            return line
    return text.strip()[:200] or "(no message)"


class Failed(Exception):
    pass


class Runner:
    def __init__(self, graft, out, timeout, log):
        self.graft = graft
        self.out = out
        self.timeout = timeout
        self.log = log

    def call(self, args, timeout=None, what=None):
        """Run a command; its stdout, or Failed with the error's first line
        (a worker's ZOO-ERROR line, graft's `error:` line, else the last
        line of stderr)."""
        timeout = timeout or self.timeout
        self.log.write(f"$ {' '.join(map(str, args))}\n")
        self.log.flush()
        t = time.time()
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        except subprocess.TimeoutExpired:
            raise Failed(f"timeout after {timeout} s") from None
        self.log.write(p.stdout[-4000:] + p.stderr[-20000:] + f"[exit {p.returncode}, {time.time() - t:.1f} s]\n")
        self.log.flush()
        if p.returncode != 0:
            lines = [line for line in p.stderr.splitlines() if line.strip()]
            msg = next((line.split("ZOO-ERROR: ", 1)[1] for line in lines if "ZOO-ERROR: " in line), None)
            if msg is None:
                msg = next((line for line in lines if line.startswith("error:")), None)
            if msg is None:
                msg = lines[-1] if lines else f"exit code {p.returncode}"
                if p.returncode < 0:
                    msg = f"killed by signal {-p.returncode}: {msg}"
            raise Failed(msg.strip())
        return p.stdout

    def worker(self, *args, timeout=None):
        return self.call([sys.executable, __file__, "--worker", *map(str, args)], timeout=timeout)

    def graft_cmd(self, *args, timeout=None):
        return self.call([self.graft, *map(str, args)], timeout=timeout)


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scale = np.abs(b).max() if b.size else 0.0
    return float(np.abs(a - b).max() / max(scale, np.finfo(np.float32).tiny)) if b.size else 0.0


def ordered(npz):
    with np.load(npz) as z:
        return [z[k] for k in z.files]


# Ops that mix the neurons of their input without a weight (the docstring's
# widening rule): a new neuron changes every output. A softmax along another
# axis than the neurons' is counted too (the inspect output does not say
# which axis); a reduce counts when it removes the neuron axis (size kind
# absorb).
ACROSS_NEURONS = {"layer_norm", "layer_norm_last", "group_norm", "softmax"}


def tied_readers(name, vertices):
    """The vertices that read vertex `name`'s neurons, directly or through
    invariant and stack vertices (each once, in walking order)."""
    readers = {}
    for v in vertices:
        for u in v.get("inputs", []):
            readers.setdefault(u, []).append(v)
    todo, seen, out = [name], {name}, []
    while todo:
        for v in readers.get(todo.pop(), []):
            if v["name"] in seen:
                continue
            out.append(v)
            if v["kind"] in ("invariant", "stack"):
                seen.add(v["name"])
                todo.append(v["name"])
    return out


def separable(name, vertices):
    """True when new neurons of vertex `name` reach no op in
    ACROSS_NEURONS before a weighted (absorb) layer."""
    return not any(v["op"] in ACROSS_NEURONS or v["op"] == "reduce" and v["kind"] == "absorb"
                   for v in tied_readers(name, vertices))


def pinned(name, vertices):
    """True when an immutable vertex reads vertex `name`, or a value tied
    to its neurons (through invariant and stack vertices, as a bias add):
    its size is frozen (an attention projection read by a head split graft
    keeps frozen: torchvision's fused in-projection)."""
    return any(v["kind"] == "immutable" for v in tied_readers(name, vertices))


def inner_vertex(vertices):
    """The first conv2d, dense or linear_last vertex of size kind absorb
    that is not the last such layer (widening it keeps the output's size),
    that no immutable vertex reads (`pinned`) and whose new neurons can keep
    the function (`separable`)."""
    weighted = ("conv2d", "dense", "linear_last")
    layers = [v for v in vertices if v["op"] in weighted and v["kind"] == "absorb"]
    for v in layers[:-1]:
        if not pinned(v["name"], vertices) and separable(v["name"], vertices):
            return v["name"]
    return None


def check(r, source, name, exporter, side, batch, kwargs, reexport, dynamic=False):
    """The row of one model and exporter: {step: (status, detail)}."""
    out = r.out
    row = {}
    path = out / f"{name}.{exporter}.onnx"
    ref = out / f"{name}.{exporter}.ref.npz"
    x = out / f"{name}.x.npy"
    status_file = out / f"{name}.{exporter}.export.json"
    key = [source, side, batch, kwargs] + (["symbolic batch"] if dynamic else [])

    def status():
        """The export's status from an earlier run or this one, if valid."""
        if not status_file.exists() or (reexport and (name, exporter) not in r.exported):
            return None
        st = json.loads(status_file.read_text())
        if st.get("key") != key or st.get("ok") and not (path.exists() and ref.exists() and x.exists()):
            return None
        return st

    cached = status()
    if cached is None:
        # Every exporter still to do for this model, in one process.
        todo = []
        for e in r.exporters:
            f = out / f"{name}.{e}.export.json"
            if e == exporter or not f.exists() or reexport and (name, e) not in r.exported:
                todo.append(e)
        for e in todo:
            for stale in (out / f"{name}.{e}.onnx", out / f"{name}.{e}.ref.npz", out / f"{name}.{e}.export.json"):
                if stale.exists():
                    stale.unlink()
        try:
            r.worker("export", source, name, ",".join(todo), out, side, batch, json.dumps(kwargs),
                     "1" if dynamic else "0", timeout=r.export_timeout)
            failure = None
        except Failed as e:
            failure = str(e)
        for e in todo:
            r.exported.add((name, e))
            f = out / f"{name}.{e}.export.json"
            if not f.exists():
                f.write_text(json.dumps({"ok": False, "detail": failure or "no status written", "key": key}))
        cached = status() or {"ok": False, "detail": failure or "the export wrote no model"}
    row["export"] = ("ok" if cached["ok"] else "fail", cached["detail"])
    if not cached["ok"] or r.export_only:
        return row
    want = ordered(ref)

    try:
        info = json.loads(r.graft_cmd("inspect", path, "--json"))
        row["imports"] = ("ok", f"{len(info['vertices'])} vertices")
    except Failed as e:
        row["imports"] = ("fail", str(e))
        return row

    g_out = out / f"{name}.{exporter}.graft.npz"
    try:
        r.graft_cmd("run", path, "--input", x, "-o", g_out, "--json")
        got = ordered(g_out)
        if len(got) != len(want):
            raise Failed(f"{len(got)} outputs, onnxruntime gives {len(want)}")
        errs = []
        for a, b in zip(got, want):
            if a.shape != b.shape:
                raise Failed(f"output shape {list(a.shape)}, onnxruntime's {list(b.shape)}")
            errs.append(rel_err(a, b))
        e = max(errs)
        row["runs"] = ("ok" if e <= RUN_TOL else "fail", f"relative {e:.1e}")
    except Failed as e:
        row["runs"] = ("fail", str(e))

    p_out = out / f"{name}.{exporter}.half.onnx"
    try:
        half = info["macs"] // 2
        rep = json.loads(r.graft_cmd("prune", path, "--macs", half, "-o", p_out, "--json"))
        r.worker("written", p_out, x, out / "pruned.ort.npz")
        got = ordered(out / "pruned.ort.npz")
        shapes = [list(a.shape) for a in got]
        if shapes != [list(b.shape) for b in want]:
            raise Failed(f"pruned output shapes {shapes}, before {[list(b.shape) for b in want]}")
        before, after = rep["macs"]
        if after > half:
            raise Failed(f"MACs {before:,} -> {after:,}, above the target {half:,}")
        row["prunes"] = ("ok", f"MACs {before:,} -> {after:,}")
    except Failed as e:
        row["prunes"] = ("fail", str(e))

    w_out = out / f"{name}.{exporter}.wide.onnx"
    v = inner_vertex(info["vertices"])
    if v is None:
        row["widens"] = ("fail", "no inner conv2d, dense or linear_last vertex of kind absorb that widens separably")
        return row
    try:
        # --relaxed: a fused projection of attention heads grows by whole
        # heads of each part (the nearest size that works), not by 4.
        rep = json.loads(r.graft_cmd("resize", path, "--vertex", v, "--by", 4, "--relaxed",
                                     "-o", w_out, "--json"))
        by = next((c["after"] - c["before"] for c in rep.get("changed", []) if c.get("vertex") == v), 4)
        r.worker("written", w_out, x, out / "wide.ort.npz")
        got = ordered(out / "wide.ort.npz")
        if [a.shape for a in got] != [b.shape for b in want]:
            raise Failed(f"widened output shapes {[list(a.shape) for a in got]}")
        e = max(rel_err(a, b) for a, b in zip(got, want))
        row["widens"] = ("ok" if e <= WIDEN_TOL else "fail", f"`{v}` +{by}, relative {e:.1e}")
    except Failed as e:
        row["widens"] = ("fail", f"`{v}`: {e}")
    return row


STEPS = ["export", "imports", "runs", "prunes", "widens"]
MARK = {"ok": "✅", "fail": "❌", None: "—"}


def short(msg, n=160):
    """A failure's first line, node lists of `unsupported ops` counted."""
    msg = re.sub(r"^error: ", "", msg)
    msg = re.sub(r"^reading model `[^`]*`: ", "", msg)
    m = re.search(r"unsupported ops: (.*)$", msg)
    if m:
        parts = []
        for op, nodes in re.findall(r"(\w+) \(([^)]*)\)", m.group(1)):
            k = len([s for s in nodes.split(", ") if s]) or 1
            parts.append(f"{op} ({k} node{'s' if k > 1 else ''})")
        msg = msg[:m.start()] + "unsupported ops: " + "; ".join(parts)
    return msg if len(msg) <= n else msg[:n - 1] + "…"


def unsupported(msg):
    m = re.search(r"unsupported ops: (.*)$", msg)
    return [op for op, _ in re.findall(r"(\w+) \(([^)]*)\)", m.group(1))] if m else []


def error_class(msg):
    """A failure message with the model-specific parts (names in quotes or
    backticks, paths, numbers) blanked, for counting failure classes."""
    msg = re.sub(r"^error: ", "", msg)
    msg = re.sub(r"reading model `[^`]*`: ", "", msg)
    msg = re.sub(r"`[^`]*`", "`…`", msg)
    msg = re.sub(r"'[^']*'", "'…'", msg)
    msg = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", msg)
    return msg[:140]


def render(results, planned, skipped, meta, verbose):
    rows = sorted(results.values(), key=lambda r: (ORDER.index(r["name"]) if r["name"] in ORDER else len(ORDER)
                                                   + r["order"], r["exporter"]))
    lines = [f"# Model coverage ({meta['date']})", "",
             f"`scripts/zoo.py` on {meta['machine']}; graft at commit {meta['commit']}; "
             f"torch {meta['torch']}, torchvision {meta['torchvision']}, timm {meta['timm']}, "
             f"onnx {meta['onnx']}, onnxruntime {meta['onnxruntime']}. Made with `{meta['command']}`"
             + (f" ({meta['elapsed']})" if meta.get("elapsed") else "") + ".", "",
             "Random weights (seeded, eval mode), small inputs (the `input` column: batch × side²). "
             "`export`: torch.onnx.export then onnxruntime runs the file; `imports`: `graft inspect --json`; "
             f"`runs`: `graft run` within {RUN_TOL:g} relative (max|a−b| / max|b|) of onnxruntime; "
             "`prunes`: `graft prune --macs` to half the MACs, onnxruntime runs the result with the same output "
             f"shapes; `widens`: `graft resize --by 4 --relaxed` on the first inner conv2d/dense/linear_last vertex that no immutable vertex reads and whose new neurons reach no normalisation or reduction across neurons before the next weighted layer, onnxruntime's "
             f"output within {WIDEN_TOL:g} relative of the original's. `runs`, `prunes` and `widens` each need "
             "only `imports`; — means a prerequisite failed.", ""]
    n = len(rows)
    counts = {s: sum(1 for r in rows if r["cells"].get(s, (None,))[0] == "ok") for s in STEPS}
    green = sum(1 for r in rows if all(r["cells"].get(s, (None,))[0] == "ok" for s in STEPS))
    lines.append(f"**Summary: {n} rows ({len({r['name'] for r in rows})} models × exporters); "
                 + ", ".join(f"{counts[s]} of {n} {s if s != 'export' else 'export'}" for s in STEPS)
                 + f"; {green} of {n} rows all green.**")
    lines += ["", "| model | source | input | exporter | " + " | ".join(STEPS) + " |",
              "|---|---|---|---|" + "---|" * len(STEPS)]
    for r in rows:
        cells = [MARK[r["cells"].get(s, (None,))[0]] for s in STEPS]
        if r["cells"].get("runs", (None, ""))[0]:
            cells[2] += f" {r['cells']['runs'][1].replace('relative ', '')}" if "relative" in r["cells"]["runs"][
                1] else ""
        lines.append(f"| {r['name']} | {r['source']} | {r['batch']}{' (symbolic)' if r.get('dynamic') else ''}×{r['side']}² | {r['exporter']} | "
                     + " | ".join(cells) + " |")
    # Unsupported ops, by op.
    by_op = {}
    for r in rows:
        msg = r["cells"].get("imports", (None, ""))
        if msg[0] == "fail":
            for op in unsupported(msg[1]):
                by_op.setdefault(op, []).append(f"{r['name']} ({r['exporter']})")
    if by_op:
        lines += ["", "## ONNX ops that block import", "", "| op | rows | models |", "|---|---|---|"]
        for op, ms in sorted(by_op.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            lines.append(f"| {op} | {len(ms)} | {', '.join(ms)} |")
    # Other failure classes, per step.
    classes = {}
    for r in rows:
        for s in STEPS:
            st, msg = r["cells"].get(s, (None, ""))
            if st == "fail" and not (s == "imports" and unsupported(msg)):
                key = (s, error_class(msg))
                classes.setdefault(key, []).append(f"{r['name']} ({r['exporter']})")
    if classes:
        lines += ["", "## Other failure classes", "", "| step | error (names and numbers blanked) | rows | models |",
                  "|---|---|---|---|"]
        for (s, c), ms in sorted(classes.items(), key=lambda kv: (STEPS.index(kv[0][0]), -len(kv[1]))):
            lines.append(f"| {s} | {c.replace('|', '/')} | {len(ms)} | {', '.join(ms)} |")
    lines += ["", "## Failures, first line of each error", "", "| model | exporter | step | error |",
              "|---|---|---|---|"]
    for r in rows:
        for s in STEPS:
            st, msg = r["cells"].get(s, (None, ""))
            if st == "fail":
                lines.append(f"| {r['name']} | {r['exporter']} | {s} | {short(msg).replace('|', '/')} |")
    if verbose:
        lines += ["", "## Every cell", ""]
        for r in rows:
            for s in STEPS:
                if s in r["cells"]:
                    st, msg = r["cells"][s]
                    lines.append(f"- {r['name']} {r['exporter']} {s}: {st}: {msg}")
    pending = [f"{m} ({e})" for m, e in planned if (m, e) not in results]
    if pending:
        lines += ["", "## Not reached in this run", "", ", ".join(pending)]
    if skipped:
        lines += ["", "## torchvision models not run", "",
                  "One model per family is run (the whole list with both exporters takes hours on 2 cores; "
                  "`scripts/zoo.py --all-torchvision` runs every one):", ""]
        by_reason = {}
        for n_, why in sorted(skipped.items()):
            by_reason.setdefault(why, []).append(n_)
        for why, ns in by_reason.items():
            lines.append(f"- {', '.join(ns)}: {why}")
    return "\n".join(lines) + "\n"


def console(results):
    rows = sorted(results.values(), key=lambda r: (r["order"], r["exporter"]))
    w = max([len(r["name"]) for r in rows] + [5])
    print(f"{'model':<{w}}  {'exporter':<8}  " + "  ".join(f"{s:<7}" for s in STEPS))
    for r in rows:
        cells = [{"ok": "ok", "fail": "FAIL", None: "-"}[r["cells"].get(s, (None,))[0]] for s in STEPS]
        print(f"{r['name']:<{w}}  {r['exporter']:<8}  " + "  ".join(f"{c:<7}" for c in cells))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these models")
    ap.add_argument("--exporter", choices=["legacy", "dynamo", "both"], default="both")
    ap.add_argument("--out", default="~/.cache/graft-zoo", help="exported models and outputs (outside the repo)")
    ap.add_argument("--graft", default="target/release/graft", help="the graft binary")
    ap.add_argument("--markdown", metavar="FILE", help="write the table (and failures) as Markdown")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per graft or onnxruntime step")
    ap.add_argument("--export-timeout", type=int, default=900, help="seconds per export")
    ap.add_argument("--reexport", action="store_true", help="export again even when OUT has the model")
    ap.add_argument("--dynamic-batch", type=int, default=0, metavar="N",
                    help="export with a symbolic batch axis (both exporters) and check at batch N")
    ap.add_argument("--all-torchvision", action="store_true", help="every torchvision classification model")
    ap.add_argument("--export-only", action="store_true",
                    help="only export (filling OUT for a later run; needs no graft binary)")
    ap.add_argument("--render", action="store_true",
                    help="run nothing: write the table of the last run (OUT/results.json)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failing cell's first error line")
    args = ap.parse_args()

    out = pathlib.Path(os.path.expanduser(args.out)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    graft = pathlib.Path(args.graft)
    graft = graft if graft.is_absolute() else (ROOT / graft)
    if not graft.exists() and not (args.export_only or args.render):
        sys.exit(f"no graft binary at {graft}: cargo build --release -p graft-cli, or give --graft")
    chosen, skipped = models(args.all_torchvision)
    if args.only:
        known = {m[1] for m in chosen}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            sys.exit(f"unknown models: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        chosen = [m for m in chosen if m[1] in args.only]
        skipped = {}
    exporters = ["legacy", "dynamo"] if args.exporter == "both" else [args.exporter]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core {platform.machine()} VM, no GPU (CPU execution)",
        "commit": commit, "command": " ".join(["scripts/zoo.py", *sys.argv[1:]]), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "timm": timm.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
    }
    results = {}
    planned = [(m[1], e) for m in chosen for e in exporters]
    exported = set()
    previous = {}
    if (out / "results.json").exists():
        saved = json.loads((out / "results.json").read_text())
        previous = {(v["name"], v["exporter"]): dict(v, meta=v.get("meta", saved["meta"])) for v in saved["rows"]}
    if args.render:
        saved = json.loads((out / "results.json").read_text())
        for v in saved["rows"]:
            if (v["name"], v["exporter"]) in planned:
                v["cells"] = {k: tuple(c) for k, c in v["cells"].items()}
                results[(v["name"], v["exporter"])] = v
        text = render(results, planned, skipped, saved["meta"], args.verbose)
        if args.markdown:
            pathlib.Path(args.markdown).write_text(text)
        else:
            print(text)
        return
    t0 = time.time()
    for order, (source, name, side, batch, kwargs) in enumerate(chosen):
        batch = args.dynamic_batch or batch
        for exporter in exporters:
            t = time.time()
            with open(out / f"{name}.{exporter}.log", "w") as log:
                r = Runner(str(graft), out, args.timeout, log)
                r.export_timeout = args.export_timeout
                r.export_only = args.export_only
                r.exporters = exporters
                r.exported = exported
                cells = check(r, source, name, exporter, side, batch, kwargs, args.reexport,
                              args.dynamic_batch > 0)
            results[(name, exporter)] = {"name": name, "source": source, "exporter": exporter, "side": side,
                                         "batch": batch, "order": order, "cells": cells,
                                         "dynamic": args.dynamic_batch > 0}
            marks = " ".join(f"{s}:{cells[s][0] if s in cells else '-'}" for s in STEPS)
            print(f"[{time.time() - t0:6.0f} s] {name} {exporter} ({time.time() - t:.0f} s): {marks}", flush=True)
            if args.verbose:
                for s in STEPS:
                    if s in cells and cells[s][0] == "fail":
                        print(f"    {s}: {short(cells[s][1], 300)}", flush=True)
            # Rows of earlier runs that this one did not redo are kept.
            merged = {**previous, **{k: dict(v, meta=meta) for k, v in results.items()}}
            (out / "results.json").write_text(json.dumps(
                {"meta": meta, "rows": [dict(v, cells={k: list(c) for k, c in v["cells"].items()})
                                        for v in merged.values()]}, indent=1))
            if args.markdown:
                pathlib.Path(args.markdown).write_text(render(results, planned, skipped, meta, args.verbose))
    meta["elapsed"] = f"{(time.time() - t0) / 60:.0f} minutes; exports already in OUT are reused"
    print()
    console(results)
    text = render(results, planned, skipped, meta, args.verbose)
    summary = next(line for line in text.splitlines() if line.startswith("**Summary"))
    print()
    print(summary.strip("*"))
    if args.markdown:
        pathlib.Path(args.markdown).write_text(text)
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
