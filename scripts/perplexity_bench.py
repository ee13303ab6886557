#!/usr/bin/env python3
"""Perplexity after pruning a small language model: graft against
Torch-Pruning (issue 17).

Corpus: the Python standard library's own source, read offline (every .py
file under sysconfig's `stdlib` directory, site-packages excluded), sorted by
path and read as bytes; byte-level tokens (vocabulary 256). Files are split
by their index in that order: i % 20 == 0 held-out test, i % 20 == 10
calibration, the rest training, so the three sets share no file.

Model: LlamaForCausalLM, random init then trained here on CPU (nothing is
downloaded): vocabulary 256, hidden 128, 4 layers, 4 attention heads of 32
(plain MHA, 4 KV heads), SwiGLU MLP 352, untied LM head, eager attention,
sequence length T (default 128). AdamW, batch 32 random windows of the
training split, warmup then cosine decay, fixed seed.

Then, with no fine-tuning for anyone:
  * baseline perplexity on the held-out windows (evenly spaced,
    non-overlapping windows of T tokens: exp of the mean next-token NLL),
    in torch and in onnxruntime on the exported ONNX (they must agree);
  * graft: `graft prune base.onnx --params N --only heads,mlp` with
    `--utility activation --data calib.txt` and with `--utility magnitude`,
    each at the default global scope and with `--scope layer`, N = 75% and
    50% of graft's own parameter count of base.onnx (graft counts every
    initializer and constant the vertices hold, so the count includes the
    causal masks, rotary tables and norm scalars, a fixed 131,090 here,
    besides the trainable weights); perplexity of each pruned file in
    onnxruntime. `--utility taylor --data calib.txt` is tried too and
    recorded as an error when graft refuses it;
  * Torch-Pruning (MetaPruner, whole heads with prune_num_heads=True and
    prune_head_dims=False, the MLP width; the hidden size is never pruned:
    embedding, LM head, o_proj and down_proj are ignored layers) with
    GroupMagnitudeImportance(p=2) and GroupTaylorImportance (gradients of
    the next-token loss on the same calibration windows), both with
    per-layer (global_pruning=False, as Torch-Pruning's LLM example) and
    global ranking. The head ratio is the share of prunable parameters the
    budget removes (Torch-Pruning's LLM example uses one ratio for heads and
    channels); the MLP ratio is then binary-searched to the largest model
    within the same budget N (counted as graft counts: torch parameters
    plus the constant offset, checked with `graft inspect` on the export).
    Perplexity in torch, and in onnxruntime on the exported model;
  * two checks: the surgery check finds graft's kept heads and channels by
    matching each pruned file's weights to the trained model's rows and
    cuts the same ones in torch (its perplexity must equal onnxruntime's on
    graft's file); the selection check keeps graft's per-layer sizes but
    chooses the heads and channels in torch by Wanda's score on the layer
    that reads them (‖X_j‖·Σ_o|W[o, j]| on o_proj's and down_proj's input),
    to tell the sizes graft picks from the neurons it keeps.

graft reads at most 64 windows of T tokens from the start of its --data
file, so calib.txt is exactly 64 windows of T bytes drawn evenly from the
calibration split, and Torch-Pruning's Taylor gradients use the same 64
windows.

Writes to --out (default /work/ppl-out, outside the repository): model.pt,
base.onnx, calib.txt, the pruned models, results.json, results.md and
section.md (a BENCHMARKS.md section). Deterministic given --seed,
--train-steps (default 800, about 4 minutes on 2 idle cores) and
--threads (with --train-seconds instead, the step count is set from the
speed of the first 20 steps; the count used is printed and recorded, and
the command in results.md repeats it). --reuse-model skips training when
OUT/model.pt was trained with the same settings. Needs the graft binary (--graft, default
target/release/graft) and, in the Python used, torch, transformers,
torch-pruning, onnx, onnxscript and onnxruntime. Run with the ONNX venv's
python:

    cargo build --release -p graft-cli
    /work/.venv-onnx/bin/python scripts/perplexity_bench.py [--graft PATH]

Not part of the tests.
"""
import argparse
import copy
import io
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import sysconfig
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_pruning as tp  # noqa: E402
import transformers  # noqa: E402
from torch import nn  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCAB = 256
HIDDEN = 128
LAYERS = 4
HEADS = 4
HEAD_DIM = HIDDEN // HEADS
MLP = 352
CALIB_WINDOWS = 64  # graft's text calibration reads at most 64 windows
TARGETS = (0.25, 0.50)


# --------------------------------------------------------------------------
# Corpus


def corpus(seq, n_test):
    """(train bytes, calibration windows [64, T], test windows [n, T], info)."""
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        (p for p in stdlib.rglob("*.py")
         if "site-packages" not in p.relative_to(stdlib).parts
         and "__pycache__" not in p.relative_to(stdlib).parts and p.is_file()),
        key=lambda p: p.relative_to(stdlib).as_posix())
    split = {"train": [], "calib": [], "test": []}
    for i, p in enumerate(files):
        key = "test" if i % 20 == 0 else "calib" if i % 20 == 10 else "train"
        split[key].append(p.read_bytes())
    streams = {k: np.frombuffer(b"".join(v), dtype=np.uint8) for k, v in split.items()}

    def spaced(stream, n):
        # n non-overlapping windows at evenly spaced offsets over the stream
        assert len(stream) >= n * seq, (len(stream), n, seq)
        step = (len(stream) - seq) // max(n - 1, 1)
        return np.stack([stream[k * step:k * step + seq] for k in range(n)]).astype(np.int64)

    calib = spaced(streams["calib"], CALIB_WINDOWS)
    test = spaced(streams["test"], n_test)
    info = {
        "stdlib": str(stdlib),
        "python": platform.python_version(),
        "files": {k: len(v) for k, v in split.items()},
        "bytes": {k: int(len(v)) for k, v in streams.items()},
        "calib_windows": CALIB_WINDOWS,
        "test_windows": n_test,
        "test_tokens_scored": n_test * (seq - 1),
    }
    return streams["train"], calib, test, info


# --------------------------------------------------------------------------
# Model, training, perplexity


class Plain(nn.Module):
    """The logits only, for the exporter: input int64 input_ids [1, T]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids, return_dict=True).logits


def build(seq):
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=HEADS, intermediate_size=MLP,
        max_position_embeddings=seq, use_cache=False, tie_word_embeddings=False)
    m = transformers.LlamaForCausalLM(cfg)
    m.config._attn_implementation = "eager"
    return m


def window_nll(logits, ids):
    """Summed next-token NLL of a batch of windows."""
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                           ids[:, 1:].reshape(-1), reduction="sum")


def train(model, stream, seq, seed, steps, seconds, batch, lr):
    """AdamW on random windows; returns (steps, seconds, losses, median step seconds)."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 50
    probe = 20  # steps timed to size the run when --train-steps is not given
    total = steps
    losses, times = [], []
    model.train()
    t0 = time.perf_counter()
    step = 0
    while total is None or step < total:
        if total is None and step == probe:
            per = (time.perf_counter() - t0) / probe
            total = max(warmup + 1, int(seconds / per))
            print(f"  {per * 1000:.0f} ms a step: {total} steps "
                  f"(--train-steps {total} reproduces this run)", flush=True)
        if step < warmup:
            f = (step + 1) / warmup
        else:
            n = max((total or 10**9) - warmup, 1)
            f = 0.1 + 0.45 * (1 + math.cos(math.pi * min(step - warmup, n) / n))
        for g in opt.param_groups:
            g["lr"] = lr * f
        ts = time.perf_counter()
        starts = rng.integers(0, len(stream) - seq, size=batch)
        ids = torch.from_numpy(np.stack([stream[s:s + seq] for s in starts]).astype(np.int64))
        loss = window_nll(model(ids).logits, ids) / (batch * (seq - 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - ts)
        step += 1
        if step % 100 == 0 or step == total:
            print(f"  step {step}/{total}: loss {np.mean(losses[-50:]):.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    model.eval()
    return step, time.perf_counter() - t0, losses, float(np.median(times))


@torch.no_grad()
def ppl_torch(model, windows, batch=32):
    model.eval()
    total = 0.0
    for i in range(0, len(windows), batch):
        ids = torch.from_numpy(windows[i:i + batch])
        total += window_nll(model(ids).logits.double(), ids).item()
    return math.exp(total / (len(windows) * (windows.shape[1] - 1)))


def ppl_onnx(path, windows):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    total = 0.0
    for w in windows:
        (logits,) = sess.run(None, {name: w[None, :]})
        z = logits[0, :-1].astype(np.float64)
        z = z - z.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
        total -= logp[np.arange(len(w) - 1), w[1:]].sum()
    return math.exp(total / (len(windows) * (windows.shape[1] - 1)))


def export(model, seq, path):
    """Dynamo export as in transformer_fixtures.py, one self-contained file."""
    ids = torch.zeros((1, seq), dtype=torch.int64)
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        torch.onnx.export(Plain(model).eval(), (ids,), str(path), dynamo=True,
                          input_names=["input_ids"], output_names=["logits"])
    onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
    data = pathlib.Path(str(path) + ".data")
    if data.exists():
        data.unlink()


def torch_params(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------
# graft


def run_graft(cmd):
    """(returncode, stdout, stderr) of a graft command, echoed."""
    print("  $ " + " ".join(map(str, cmd)), flush=True)
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"  graft failed ({r.returncode}): {r.stderr.strip()}", flush=True)
    return r.returncode, r.stdout, r.stderr


def graft_inspect(graft, path):
    """(graft's parameter count, heads per layer, MLP width per layer)."""
    rc, out, err = run_graft([graft, "inspect", "--json", path])
    if rc != 0:
        raise RuntimeError(f"graft inspect {path}: {err.strip()}")
    doc = json.loads(out)
    # a head merge is a regroup without head_width: its input is the heads
    heads = [v["nin"][0] for v in doc["vertices"]
             if v["op"] == "regroup" and "head_width" not in v]
    mlp = [v["nin"][0] for v in doc["vertices"] if v["op"] == "activation"]
    return doc["params"], heads, mlp


def kept_rows(pruned, original):
    """Indices of `original`'s rows (out, in) that the columns of `pruned`
    (in, kept: a MatMul weight) are, exactly; None if one is not found."""
    idx = []
    for col in pruned.T:
        d = np.abs(original - col[None, :]).max(1)
        i = int(d.argmin())
        if d[i] != 0:
            return None
        idx.append(i)
    return idx


def cut(lin, rows=None, cols=None):
    """A bias-free copy of `lin` keeping output rows `rows` and input
    columns `cols` (all when None)."""
    w = lin.weight.data
    w = w[rows] if rows is not None else w
    w = w[:, cols] if cols is not None else w
    new = nn.Linear(w.shape[1], w.shape[0], bias=False)
    new.weight.data = w.clone()
    return new


def graft_as_torch(path, trained):
    """The trained torch model cut down to the heads and MLP channels graft
    kept in `path` (found by matching graft's weights to the originals):
    checks that graft's file is exactly the original with those removed."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    m = copy.deepcopy(trained).eval()

    for li, layer in enumerate(m.model.layers):
        a, mlp = layer.self_attn, layer.mlp
        # graft keeps the importer's vertex names: node_linear_{7L + k}
        name = lambda k: f"node_linear_{7 * li + k}" if 7 * li + k else "node_linear"  # noqa: E731
        q, k, v, g, u = (kept_rows(inits[f"{name(j)}.weight"], lin.weight.detach().numpy())
                         for j, lin in ((0, a.q_proj), (1, a.k_proj), (2, a.v_proj),
                                        (4, mlp.gate_proj), (5, mlp.up_proj)))
        if None in (q, k, v, g, u) or not (q == k == v) or g != u:
            return None
        a.q_proj, a.k_proj, a.v_proj = cut(a.q_proj, q), cut(a.k_proj, k), cut(a.v_proj, v)
        a.o_proj = cut(a.o_proj, cols=q)
        mlp.gate_proj, mlp.up_proj = cut(mlp.gate_proj, g), cut(mlp.up_proj, u)
        mlp.down_proj = cut(mlp.down_proj, cols=g)
    return m


def consumer_choice(trained, calib, heads, mlp):
    """Selection check (torch, not graft): the trained model cut to `heads`
    heads and `mlp` MLP channels per layer, keeping those of highest
    consumer-side activation score, Wanda's on the layer that reads them:
    ‖X_j‖ · Σ_o |W[o, j]| over o_proj's input (summed per head) and
    down_proj's input, X from the calibration windows."""
    m = copy.deepcopy(trained).eval()
    norms, hooks = {}, []
    for li, layer in enumerate(m.model.layers):
        for key, lin in (("o", layer.self_attn.o_proj), ("d", layer.mlp.down_proj)):
            hooks.append(lin.register_forward_pre_hook(
                lambda mod, a, k=(key, li): norms.__setitem__(
                    k, a[0].detach().double().reshape(-1, a[0].shape[-1]).norm(dim=0))))
    with torch.no_grad():
        m(torch.from_numpy(calib))
    for h in hooks:
        h.remove()

    for li, layer in enumerate(m.model.layers):
        a, f = layer.self_attn, layer.mlp
        hs = (a.o_proj.weight.detach().double().abs().sum(0) * norms[("o", li)])
        hk = sorted(torch.topk(hs.view(HEADS, HEAD_DIM).sum(1), heads[li]).indices.tolist())
        cs = f.down_proj.weight.detach().double().abs().sum(0) * norms[("d", li)]
        ck = sorted(torch.topk(cs, mlp[li]).indices.tolist())
        rows = [i for h in hk for i in range(h * HEAD_DIM, (h + 1) * HEAD_DIM)]
        a.q_proj, a.k_proj, a.v_proj = cut(a.q_proj, rows), cut(a.k_proj, rows), cut(a.v_proj, rows)
        a.o_proj = cut(a.o_proj, cols=rows)
        f.gate_proj, f.up_proj, f.down_proj = cut(f.gate_proj, ck), cut(f.up_proj, ck), cut(f.down_proj, cols=ck)
    return m


# --------------------------------------------------------------------------
# Torch-Pruning


def calib_grads(model, calib):
    """Gradients of the mean next-token loss on the calibration windows."""
    m = copy.deepcopy(model).eval()
    ids = torch.from_numpy(calib)
    (window_nll(m(ids).logits, ids) / (ids.shape[0] * (ids.shape[1] - 1))).backward()
    return {n: p.grad.detach().clone() for n, p in m.named_parameters()}


def tp_prune(trained, importance, global_pruning, head_ratio, mlp_ratio, grads):
    """A pruned copy of `trained`: whole heads and MLP channels only.
    `grads` (for Taylor): calib_grads of `trained`, set on the copy."""
    m = copy.deepcopy(trained).eval()
    if importance == "taylor":
        for n, p in m.named_parameters():
            p.grad = grads[n].clone()
        imp = tp.importance.GroupTaylorImportance()
    else:
        imp = tp.importance.GroupMagnitudeImportance(p=2)
    num_heads, ignored = {}, [m.model.embed_tokens, m.lm_head]
    for layer in m.model.layers:
        a = layer.self_attn
        num_heads.update({a.q_proj: HEADS, a.k_proj: HEADS, a.v_proj: HEADS})
        ignored += [a.o_proj, layer.mlp.down_proj]  # never the hidden size
    pruner = tp.pruner.MetaPruner(
        m, example_inputs=torch.zeros((1, 8), dtype=torch.int64),
        importance=imp, global_pruning=global_pruning, pruning_ratio=mlp_ratio,
        ignored_layers=ignored, num_heads=num_heads, prune_num_heads=True,
        prune_head_dims=False, head_pruning_ratio=head_ratio)
    pruner.step()
    del pruner
    m.zero_grad(set_to_none=True)
    # as Torch-Pruning's examples/LLMs/prune_llm.py: sizes after pruning
    # (transformers 5's LlamaAttention reshapes with -1 heads and keeps
    # num_key_value_groups = 1 for MHA; these are for the record)
    for layer in m.model.layers:
        a, mlp = layer.self_attn, layer.mlp
        assert a.q_proj.out_features == a.k_proj.out_features == a.v_proj.out_features
        assert a.q_proj.out_features % HEAD_DIM == 0 and a.o_proj.in_features == a.q_proj.out_features
        assert a.o_proj.out_features == HIDDEN and mlp.down_proj.out_features == HIDDEN
        assert a.q_proj.in_features == HIDDEN and mlp.gate_proj.in_features == HIDDEN
        assert layer.input_layernorm.weight.numel() == HIDDEN
        a.num_heads = a.q_proj.out_features // HEAD_DIM
        a.num_key_value_heads = a.num_heads
        mlp.intermediate_size = mlp.gate_proj.out_features
    assert m.model.embed_tokens.weight.shape == (VOCAB, HIDDEN)
    assert m.lm_head.weight.shape == (VOCAB, HIDDEN)
    return m


def tp_shape(m):
    return ([l.self_attn.q_proj.out_features // HEAD_DIM for l in m.model.layers],
            [l.mlp.gate_proj.out_features for l in m.model.layers])


def tp_to_budget(trained, importance, global_pruning, head_ratio, budget, offset, grads):
    """Binary search of the MLP ratio: the largest model within `budget`
    (graft's count: torch parameters + offset). Returns (model, mlp_ratio, trials)."""
    lo, hi = 0.0, 0.99
    best = tp_prune(trained, importance, global_pruning, head_ratio, hi, grads)
    if torch_params(best) + offset > budget:
        return best, hi, 1
    trials = 1
    for _ in range(16):
        mid = (lo + hi) / 2
        m = tp_prune(trained, importance, global_pruning, head_ratio, mid, grads)
        trials += 1
        if torch_params(m) + offset <= budget:
            hi, best = mid, m
        else:
            lo = mid
    return best, hi, trials


# --------------------------------------------------------------------------
# Report


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
        mem = f"{mem / 2**20:.0f} GiB"
    except OSError:
        mem = "unknown memory"
    gpu = "GPU visible to torch" if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {mem}, {gpu}"


def fmt_list(xs):
    return "/".join(map(str, xs)) if xs else "n/a"


def ordered(res):
    """The runs, each target's rows together, in the order they ran."""
    return [r for t in TARGETS for r in res["runs"] if r["target"] == t]


def table(res):
    base = res["baseline"]
    lines = [
        "| method | target | parameters (graft count) | kept | trainable | heads per layer "
        "| MLP width per layer | held-out perplexity |",
        "|---|---|---|---|---|---|---|---|",
        f"| unpruned | - | {base['params_graft']:,} | 100% | {base['params_torch']:,} | "
        f"{fmt_list([HEADS] * LAYERS)} | {fmt_list([MLP] * LAYERS)} | "
        f"{base['ppl_torch']:.3f} |",
    ]
    for r in ordered(res):
        if r.get("error"):
            lines.append(f"| {r['method']} | {int(r['target'] * 100)}% fewer | refused by graft "
                         f"(below) | | | | | |")
            continue
        extra = f" (ORT {r['ppl_onnx']:.3f})" if r["method"].startswith("TP") else ""
        lines.append(
            f"| {r['method']} | {int(r['target'] * 100)}% fewer | "
            f"{base['params_graft']:,} → {r['params_graft']:,} | "
            f"{100 * r['params_graft'] / base['params_graft']:.1f}% | {r['params_torch']:,} | "
            f"{fmt_list(r['heads'])} | {fmt_list(r['mlp'])} | {r['ppl']:.3f}{extra} |")
    return "\n".join(lines)


def check_table(res):
    checks = res.get("selection_check") or []
    if not checks:
        return []
    return [
        "| sizes per layer of | target | graft's choice | consumer-side choice |",
        "|---|---|---|---|",
    ] + [f"| {c['method']} | {int(c['target'] * 100)}% fewer | {c['ppl_graft']:.3f} | "
         f"{c['ppl_consumer']:.3f} |" for c in checks]


def reading(res):
    """Paragraphs stating what the numbers say (no adjectives chosen by hand)."""
    out = []
    base = res["baseline"]["ppl_torch"]
    for t in TARGETS:
        runs = [r for r in res["runs"] if r["target"] == t and not r.get("error")]
        graft = [r for r in runs if r["method"].startswith("graft")]
        tpr = [r for r in runs if r["method"].startswith("TP")]
        if not graft or not tpr:
            continue
        g = min(graft, key=lambda r: r["ppl"])
        beats = [r["method"] for r in tpr if r["ppl"] > g["ppl"]]
        loses = [r["method"] for r in tpr if r["ppl"] <= g["ppl"]]
        b = min(tpr, key=lambda r: r["ppl"])
        s = (f"At {int(t * 100)}% fewer parameters graft's best is {g['method']}, "
             f"{g['ppl']:.2f} (unpruned {base:.2f}); Torch-Pruning's best is {b['method']}, "
             f"{b['ppl']:.2f}.")
        s += (f" graft's best is better than {', '.join(beats)}" if beats else
              " graft's best is better than no Torch-Pruning variant")
        s += (f" and worse than {', '.join(loses)}." if loses else ".")
        out.append(s)
    fails = [r for r in res["runs"] if r.get("error")]
    best = {}
    for t in TARGETS:
        ok = [r for r in res["runs"] if r["target"] == t and not r.get("error")]
        g = min((r for r in ok if r["method"].startswith("graft")), key=lambda r: r["ppl"],
                default=None)
        b = min((r for r in ok if r["method"].startswith("TP")), key=lambda r: r["ppl"],
                default=None)
        if g and b:
            best[t] = (g, b)
    if best:
        lost = [t for t, (g, b) in best.items() if g["ppl"] > b["ppl"]]
        if not lost:
            out.insert(0, "graft's best selection matches or beats every Torch-Pruning variant "
                          "at every target here.")
        else:
            out.insert(0, "graft does not match Torch-Pruning here: its best selection is worse "
                          "than Torch-Pruning's best at " + " and ".join(
                              f"{int(t * 100)}% fewer parameters ({best[t][0]['method']} "
                              f"{best[t][0]['ppl']:.2f} against {best[t][1]['method']} "
                              f"{best[t][1]['ppl']:.2f})" for t in lost) + ".")
    checks = res.get("selection_check") or []
    if checks:
        better = sum(c["ppl_consumer"] < c["ppl_graft"] for c in checks)
        lo = min(c["ppl_consumer"] / c["ppl_graft"] for c in checks)
        hi = max(c["ppl_consumer"] / c["ppl_graft"] for c in checks)
        s = (f"Selection check (below): keeping, in torch, the same number of heads and channels "
             f"in every layer as each graft file but choosing them by a consumer-side score "
             f"gives lower perplexity on {better} of {len(checks)} of graft's allocations, "
             f"{lo:.2f} to {hi:.2f} times graft's.")
        if better == len(checks):
            s += (" So the per-layer sizes graft's planner picks are not what costs it; which "
                  "neurons it keeps is. graft's `magnitude` and `activation` utilities value a "
                  "head or an MLP channel by the weights it owns in the layers that produce it "
                  "(a head's q/k/v rows, a channel's gate/up rows); `activation` weights them by "
                  "the norms of those layers' input, the same normed hidden state for every "
                  "neuron of the layer. Neither looks at what the neuron sends on (its o_proj or "
                  "down_proj columns) or at its own activation, which a Wanda-style structured "
                  "score sees, as do Torch-Pruning's group importance (it sums the coupled "
                  "o_proj/down_proj slices) and its Taylor importance (it weighs them by the "
                  "loss gradient). Scoring heads and MLP channels at the layer that reads them "
                  "is the suggested fix.")
        out.append(s)
    if fails:
        out.append("graft's loss-aware `--utility taylor` refuses a text file as `--data` for a "
                   "language model (the error is below), so there is no graft Taylor row.")
    diffs = [abs(r["ppl"] / r["ppl_torch_same_neurons"] - 1) for r in res["runs"]
             if r.get("ppl_torch_same_neurons")]
    if diffs:
        out.append(
            f"Surgery check: every graft file's weights are exact rows and columns of the "
            f"trained model's, and cutting the same heads and channels in torch gives the "
            f"perplexity onnxruntime gives on graft's file (largest relative difference "
            f"{max(diffs):.1e}): the differences come from which neurons are chosen, not from "
            f"the surgery.")
    pairs = {}
    for r in res["runs"]:
        if not r.get("error"):
            pairs.setdefault((r["method"].split(" (")[0], r["target"]), []).append(r["ppl"])
    spread = max((max(v) / min(v) for v in pairs.values() if len(v) > 1), default=1.0)
    out.append(
        f"Caveats: one model, one seed, no fine-tuning. Without fine-tuning, perplexity at "
        f"these sizes moves a lot with a few neurons (the per-layer and global variants of one "
        f"method differ by up to {spread:.1f}x here), so read the ordering more than the "
        f"ratios.")
    return out


def short(cmd, res):
    """A command as BENCHMARKS.md shows it: file names relative to --out, `graft`."""
    return cmd.replace(res["env"]["graft"], "graft").replace(res["out"] + "/", "")


def write_reports(res, out):
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    env, c, base, tr = res["env"], res["corpus"], res["baseline"], res["train"]
    tbl = table(res)
    secs = lambda u: [r["seconds"] for r in res["runs"]  # noqa: E731
                      if r["method"].startswith(f"graft {u}") and not r.get("error")]
    results_md = [
        f"Machine: {env['machine']}. torch {env['torch']} (CPU, {env['threads']} threads), "
        f"transformers {env['transformers']}, torch-pruning {env['torch_pruning']}, "
        f"onnxruntime {env['onnxruntime']}, onnx {env['onnx']}, Python {env['python']}; "
        f"graft: {env['graft']}.",
        "",
        f"Baseline perplexity on the held-out windows: torch {base['ppl_torch']:.4f}, "
        f"onnxruntime {base['ppl_onnx']:.4f} (uniform over bytes: 256). Training: {tr['steps']} "
        f"steps of batch {tr['batch']} in {tr['seconds']:.0f} s (median step "
        f"{tr.get('median_step_s', float('nan')) * 1000:.0f} ms), final loss "
        f"{tr['final_loss']:.3f} nats/byte. Whole run: {res['total_seconds']:.0f} s.",
        "",
        "```sh",
        res["command"],
        "```",
        "",
        tbl,
        "",
    ] + check_table(res) + [""] + reading(res)
    (out / "results.md").write_text("\n".join(results_md) + "\n")
    sec = [
        "## Perplexity after pruning a small language model (issue 17)",
        "",
        "How much of a trained language model's quality survives structured pruning of whole",
        "attention heads and MLP channels, without fine-tuning: graft against Torch-Pruning at",
        "the same parameter budget.",
        "",
        "```sh",
        "cargo build --release -p graft-cli",
        res["command_repo"],
        "```",
        "",
        f"Machine: {env['machine']}. torch {env['torch']} (CPU, {env['threads']} threads), "
        f"transformers {env['transformers']}, torch-pruning {env['torch_pruning']}, "
        f"onnxruntime {env['onnxruntime']}. The whole run took {res['total_seconds']:.0f} s.",
        "",
        f"- Corpus: the .py files of Python {c['python']}'s standard library (site-packages "
        f"excluded), sorted by path, as bytes (vocabulary 256); file i goes to the held-out "
        f"set when i % 20 == 0 ({c['files']['test']} files, {c['bytes']['test']:,} bytes), to "
        f"calibration when i % 20 == 10 ({c['files']['calib']} files), else to training "
        f"({c['files']['train']} files, {c['bytes']['train']:,} bytes).",
        f"- Model: LlamaForCausalLM, hidden {HIDDEN}, {LAYERS} layers, {HEADS} heads of "
        f"{HEAD_DIM} (MHA), SwiGLU MLP {MLP}, untied LM head, sequence length {res['seq']}; "
        f"{base['params_torch']:,} trainable parameters. Trained from random init by the "
        f"script: AdamW, {tr['steps']} steps of {tr['batch']} windows, {tr['seconds']:.0f} s "
        f"(median step {tr.get('median_step_s', float('nan')) * 1000:.0f} ms), final training "
        f"loss {tr['final_loss']:.3f} nats/byte (uniform: 5.545).",
        f"- Perplexity: exp of the mean next-token NLL over {c['test_windows']} evenly spaced, "
        f"non-overlapping held-out windows ({c['test_tokens_scored']:,} scored tokens). "
        f"Unpruned: {base['ppl_torch']:.3f} in torch, {base['ppl_onnx']:.3f} in onnxruntime on "
        f"the exported file.",
        f"- Parameters are graft's count (`graft inspect --json`, `graft prune --json`): every "
        f"initializer and constant a vertex holds, so it includes {res['const_offset']:,} "
        f"constants (causal masks, rotary tables, norm scalars) that no pruning changes; "
        f"\"trainable\" is torch's count. Budget N = 75% and 50% of {base['params_graft']:,}.",
        f"- graft: `graft prune base.onnx -o OUT.onnx --params N --only heads,mlp` with "
        f"`--utility activation --data calib.txt` (Wanda-style Σ|W|·‖X‖ on the 64 windows of "
        f"calib.txt) or `--utility magnitude`, global scope (the default) or `--scope layer`; "
        f"perplexity of the written file in onnxruntime. `prune` took "
        f"{min(secs('activation'), default=0):.1f} to {max(secs('activation'), default=0):.1f} s "
        f"with activation (calibration pass included), "
        f"{max(secs('magnitude'), default=0):.1f} s or less with magnitude.",
        "- Torch-Pruning: MetaPruner, whole heads (`prune_num_heads=True`, "
        "`prune_head_dims=False`) and the MLP width, the hidden size kept (embedding, "
        "o_proj, down_proj, lm_head ignored); GroupMagnitudeImportance(p=2) or "
        "GroupTaylorImportance on the next-token loss of the same 64 windows; per-layer "
        "(`global_pruning=False`, as its LLM example) or global. Head ratio = the share of "
        "prunable parameters the budget removes (the LLM example uses one ratio for heads and "
        "channels); the MLP ratio is binary-searched to the largest model within N. "
        "Perplexity in torch (onnxruntime on its export in brackets).",
        "- No fine-tuning after pruning for anyone.",
        "",
        tbl,
        "",
    ] + [p + "\n" for p in reading(res)]
    if check_table(res):
        sec += [
            "Selection check (torch, not graft): the same heads and MLP widths per layer as "
            "each graft file, the neurons kept chosen by Wanda's score on the layer that reads "
            "them, ‖X_j‖·Σ_o|W[o, j]| on o_proj's input (summed per head) and down_proj's input, "
            "X from the same 64 calibration windows:",
            "",
        ] + check_table(res) + [""]
    if res["errors"]:
        sec += ["graft errors:", ""] + [
            f"- `{short(e['command'], res)}`: "
            f"{short(e['error'].splitlines()[-1], res).replace('`', chr(39))}"
            for e in res["errors"]] + [""]
    (out / "section.md").write_text("\n".join(sec).rstrip() + "\n")
    return tbl

# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/work/ppl-out", help="output folder (default /work/ppl-out)")
    ap.add_argument("--graft", default=str(ROOT / "target" / "release" / "graft"),
                    help="the graft binary (default target/release/graft)")
    ap.add_argument("--train-steps", type=int, default=800,
                    help="training steps (default 800: about 4 minutes on 2 idle cores)")
    ap.add_argument("--train-seconds", type=float, default=None,
                    help="instead of --train-steps: as many steps as the speed of the first "
                         "20 fills in this many seconds (the count is recorded)")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--test-windows", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse-model", action="store_true",
                    help="load OUT/model.pt (and its training record) instead of training")
    args = ap.parse_args()

    t_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    graft = pathlib.Path(args.graft)
    if not graft.exists():
        sys.exit(f"no graft binary at {graft} (cargo build --release -p graft-cli, or --graft PATH)")
    seq = args.seq_len

    env = {
        "machine": machine(), "threads": args.threads, "python": platform.python_version(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "torch_pruning": tp.__version__, "onnxruntime": ort.__version__, "onnx": onnx.__version__,
        "graft": str(graft),
    }
    print(f"machine: {env['machine']}")

    train_stream, calib, test, cinfo = corpus(seq, args.test_windows)
    print(f"corpus: {cinfo['files']} files, {cinfo['bytes']} bytes")
    calib_path = out / "calib.txt"
    calib_path.write_bytes(calib.astype(np.uint8).tobytes())

    # ---- model
    torch.manual_seed(args.seed)
    model = build(seq)
    record = out / "train.json"
    wanted = {"seq": seq, "batch": args.batch, "lr": args.lr, "seed": args.seed}
    tinfo = json.loads(record.read_text()) if record.exists() else {}
    if (args.reuse_model and (out / "model.pt").exists()
            and all(tinfo.get(k) == v for k, v in wanted.items())
            and (args.train_seconds or tinfo.get("steps") == args.train_steps)):
        model.load_state_dict(torch.load(out / "model.pt"))
        print(f"reused {out / 'model.pt'} ({tinfo['steps']} steps)")
    else:
        print(f"training ({torch_params(model):,} parameters, seq {seq}, batch {args.batch})")
        steps, secs, losses, median_step = train(model, train_stream, seq, args.seed,
                                    None if args.train_seconds else args.train_steps,
                                    args.train_seconds, args.batch, args.lr)
        tinfo = dict(wanted, steps=steps, seconds=secs, final_loss=float(np.mean(losses[-50:])),
                     first_loss=losses[0], median_step_s=median_step)
        torch.save(model.state_dict(), out / "model.pt")
        record.write_text(json.dumps(tinfo, indent=2) + "\n")
    model.eval()
    # the command that reproduces this run exactly, and as BENCHMARKS.md gives it
    opts = [f"--train-steps {tinfo['steps']}"]
    for flag, val, default in (("--seq-len", seq, 128), ("--seed", args.seed, 0),
                               ("--batch", args.batch, 32), ("--lr", args.lr, 3e-3),
                               ("--test-windows", args.test_windows, 512),
                               ("--threads", args.threads, 2)):
        if val != default:
            opts.append(f"{flag} {val}")
    py = "/work/.venv-onnx/bin/python scripts/perplexity_bench.py"
    cmd_repo = " ".join([py] + opts)
    cmd = " ".join([py, f"--out {out}", f"--graft {graft}"] + opts)

    # ---- baseline
    base_onnx = out / "base.onnx"
    export(model, seq, base_onnx)
    ppl_t = ppl_torch(model, test)
    ppl_o = ppl_onnx(base_onnx, test)
    print(f"baseline perplexity: torch {ppl_t:.4f}, onnxruntime {ppl_o:.4f}")
    assert abs(ppl_t / ppl_o - 1) < 1e-3, (ppl_t, ppl_o)
    p_graft, heads0, mlp0 = graft_inspect(graft, base_onnx)
    p_torch = torch_params(model)
    offset = p_graft - p_torch
    print(f"parameters: graft {p_graft:,}, torch {p_torch:,} (constants {offset:,}); "
          f"heads {heads0}, MLP {mlp0}")
    prunable = LAYERS * (HEADS * 4 * HIDDEN * HEAD_DIM + MLP * 3 * HIDDEN)

    res = {
        "command": cmd, "command_repo": cmd_repo, "out": str(out), "env": env, "seq": seq, "corpus": cinfo, "train": tinfo,
        "baseline": {"ppl_torch": ppl_t, "ppl_onnx": ppl_o, "params_graft": p_graft,
                     "params_torch": p_torch},
        "const_offset": offset, "prunable_params": prunable, "runs": [], "errors": [],
    }

    # ---- graft
    for t in TARGETS:
        budget = int(p_graft * (1 - t))
        # taylor: graft's loss-aware utility (the next-token loss on the
        # same calibration text)
        for utility, scope in (("activation", "global"), ("magnitude", "global"),
                               ("activation", "layer"), ("magnitude", "layer"),
                               ("taylor", "global")):
            path = out / f"graft_{utility}_{scope}_{int(t * 100)}.onnx"
            c = [graft, "prune", base_onnx, "-o", path, "--params", budget,
                 "--only", "heads,mlp", "--utility", utility, "--json"]
            if scope != "global":
                c += ["--scope", scope]
            if utility in ("activation", "taylor"):
                c += ["--data", calib_path]
            t0 = time.perf_counter()
            rc, so, se = run_graft(c)
            secs = time.perf_counter() - t0
            label = "global" if scope == "global" else "per-layer"
            run = {"method": f"graft {utility} ({label})", "target": t, "budget": budget,
                   "command": " ".join(map(str, c)), "seconds": secs}
            if rc != 0:
                run["error"] = se.strip()
                res["errors"].append({"command": run["command"], "error": se.strip()})
                res["runs"].append(run)
                continue
            rep = json.loads(so)
            try:
                run["ppl"] = ppl_onnx(path, test)
            except Exception as e:  # onnxruntime refusing graft's output
                run["error"] = f"onnxruntime: {e}"
                res["errors"].append({"command": run["command"], "error": run["error"]})
                res["runs"].append(run)
                continue
            run["ppl_onnx"] = run["ppl"]
            pg, heads, mlp = graft_inspect(graft, path)
            assert pg == rep["params"][1], (pg, rep)
            run.update(params_graft=rep["params"][1], params_torch=rep["params"][1] - offset,
                       heads=heads, mlp=mlp, macs=rep["macs"], neurons=rep["neurons"])
            same = graft_as_torch(path, model)
            run["ppl_torch_same_neurons"] = None if same is None else ppl_torch(same, test)
            if same is None:
                res["errors"].append({"command": run["command"], "error":
                                      "surgery check: graft's weights are not rows of the originals"})
            print(f"  {run['method']} {int(t * 100)}%: {run['params_graft']:,} params, "
                  f"heads {heads}, MLP {mlp}, ppl {run['ppl']:.3f} (same neurons cut in torch: "
                  f"{run['ppl_torch_same_neurons']}; {secs:.1f} s)", flush=True)
            res["runs"].append(run)

    # ---- Torch-Pruning
    grads = calib_grads(model, calib)
    for t in TARGETS:
        budget = int(p_graft * (1 - t))
        head_ratio = (p_graft - budget) / prunable
        for importance in ("magnitude", "taylor"):
            for global_pruning in (False, True):
                name = f"TP {importance} ({'global' if global_pruning else 'per-layer'})"
                t0 = time.perf_counter()
                m, mlp_ratio, trials = tp_to_budget(model, importance, global_pruning,
                                                    head_ratio, budget, offset, grads)
                secs = time.perf_counter() - t0
                heads, mlp = tp_shape(m)
                ppl = ppl_torch(m, test)
                path = out / f"tp_{importance}_{'global' if global_pruning else 'layer'}_{int(t * 100)}.onnx"
                export(m, seq, path)
                pg, gh, gm = graft_inspect(graft, path)
                assert pg == torch_params(m) + offset, (pg, torch_params(m), offset)
                ppl_o = ppl_onnx(path, test)
                run = {"method": name, "target": t, "budget": budget, "head_ratio": head_ratio,
                       "mlp_ratio": mlp_ratio, "trials": trials, "seconds": secs,
                       "params_graft": pg, "params_torch": torch_params(m), "heads": heads,
                       "mlp": mlp, "ppl": ppl, "ppl_onnx": ppl_o}
                print(f"  {name} {int(t * 100)}%: {pg:,} params (head ratio {head_ratio:.3f}, "
                      f"MLP ratio {mlp_ratio:.4f}), heads {heads}, MLP {mlp}, ppl {ppl:.3f} "
                      f"(ORT {ppl_o:.3f}; {trials} trials, {secs:.1f} s)", flush=True)
                res["runs"].append(run)

    # ---- selection check: graft's per-layer sizes, neurons chosen in torch
    res["selection_check"] = []
    for r in res["runs"]:
        if r["method"].startswith("graft") and not r.get("error") and len(r["heads"]) == LAYERS \
                and len(r["mlp"]) == LAYERS:
            ppl = ppl_torch(consumer_choice(model, calib, r["heads"], r["mlp"]), test)
            res["selection_check"].append({"method": r["method"], "target": r["target"],
                                           "heads": r["heads"], "mlp": r["mlp"],
                                           "ppl_graft": r["ppl"], "ppl_consumer": ppl})
            print(f"  sizes of {r['method']} {int(r['target'] * 100)}%, consumer-side choice: "
                  f"ppl {ppl:.3f} (graft's choice {r['ppl']:.3f})", flush=True)

    res["total_seconds"] = time.perf_counter() - t_start
    tbl = write_reports(res, out)
    print()
    print(tbl)
    print()
    for s in reading(res):
        print(s)
    for e in res["errors"]:
        print(f"graft error: {e['command']}: {e['error']}")
    print(f"\nwrote {out}/results.md, results.json, section.md ({res['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
