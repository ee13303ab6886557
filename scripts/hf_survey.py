"""Survey: which ONNX constructs stop graft from importing small Hugging Face
transformers (issue "Transformers end to end").

Builds tiny randomly initialised models from configs (nothing is downloaded
from the model hub): BertModel (input_ids only, and input_ids +
attention_mask + token_type_ids), GPT2LMHeadModel, LlamaForCausalLM (GQA),
Qwen2ForCausalLM (GQA) and MixtralForCausalLM (4 experts, top-2, GQA;
three experts kernels: library default, batched_mm, eager).
Hidden 64, 2 layers, 4 heads, intermediate 128, vocab 1000, 64 positions,
input int64 input_ids [1, 16], use_cache=False, eager attention, seed 0.

For every model it
  * exports with the dynamo exporter (torch.onnx.export(..., dynamo=True)),
    re-saved as one self-contained file, and with the legacy exporter
    (dynamo=False, opset 17), recording failures;
  * runs each file in onnxruntime and compares with PyTorch;
  * runs `graft inspect` on the raw file and on an onnxscript-optimised
    (constant-folded) copy and records the first error;
  * prints an op-type histogram, the refused node's inputs (initializer /
    Constant / graph input / computed, with shapes) and attributes;
  * prints the op chain of layer 0's attention: every node on a path from
    the q (and k, v) projection to the output projection.

Files go to /work/hf-cache (outside the repository); a JSON summary to
/work/hf-cache/survey.json.

Run with the ONNX venv's python (transformers must be installed there):

    /work/.venv-onnx/bin/python scripts/hf_survey.py            # all models
    /work/.venv-onnx/bin/python scripts/hf_survey.py llama gpt2  # a subset
    /work/.venv-onnx/bin/python scripts/hf_survey.py --summary   # compact report

It also "peels": after each graft refusal the refused node is cut out
(its output becomes a graph input) and graft is run again, so every
obstacle is listed; when the peeled model imports, `graft run` on it is
compared with onnxruntime on the original (files *.peeled.onnx).

Environment: GRAFT (path of the graft CLI, default /work/graft-bin-a3a81ce),
HF_SURVEY_OUT (output folder, default /work/hf-cache).
"""

import collections
import json
import os
import re
import subprocess
import sys
import traceback
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

warnings.filterwarnings("ignore")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import transformers  # noqa: E402

GRAFT = os.environ.get("GRAFT", "/work/graft-bin-a3a81ce")
OUT = os.environ.get("HF_SURVEY_OUT", "/work/hf-cache")
SEQ = 16

# The fixture script's small configs (hidden 64, 2 layers, 4 heads, MLP 128,
# vocabulary 1,000, 64 positions, no cache).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_fixtures import COMMON  # noqa: E402


class Wrap(nn.Module):
    """Returns one plain tensor (logits or last_hidden_state)."""

    def __init__(self, model, field):
        super().__init__()
        self.model = model
        self.field = field

    def forward(self, *args):
        return getattr(self.model(*args, return_dict=True), self.field)


def build(name):
    """(wrapped model, example inputs, input names, attention scope names)."""
    t = transformers
    ids = torch.randint(0, 1000, (1, SEQ), dtype=torch.int64)
    if name.startswith("bert"):
        cfg = t.BertConfig(**COMMON, type_vocab_size=2)
        m, field = t.BertModel(cfg, add_pooling_layer=False), "last_hidden_state"
        scopes = ("encoder.layer.0.attention.self.query",
                  "encoder.layer.0.attention.self.key",
                  "encoder.layer.0.attention.self.value",
                  "encoder.layer.0.attention.output.dense")
        if name == "bert_mask":
            mask = torch.ones(1, SEQ, dtype=torch.int64)
            mask[0, -3:] = 0
            tt = torch.zeros(1, SEQ, dtype=torch.int64)
            args, names = (ids, mask, tt), ["input_ids", "attention_mask", "token_type_ids"]
        else:
            args, names = (ids,), ["input_ids"]
    elif name == "gpt2":
        cfg = t.GPT2Config(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                           n_positions=64, use_cache=False)
        m, field = t.GPT2LMHeadModel(cfg), "logits"
        scopes = ("transformer.h.0.attn.c_attn", None, None, "transformer.h.0.attn.c_proj")
        args, names = (ids,), ["input_ids"]
    else:
        kw = dict(COMMON, num_key_value_heads=2)
        if name == "llama":
            cfg, cls = t.LlamaConfig(**kw), t.LlamaForCausalLM
        elif name == "qwen2":
            cfg, cls = t.Qwen2Config(**kw), t.Qwen2ForCausalLM
        elif name.startswith("mixtral"):
            # transformers 5 picks the experts kernel from experts_implementation:
            # "mixtral" = library default (grouped_mm: a custom op the dynamo
            # exporter cannot translate), "mixtral_batched" = batched_mm
            # (gather the top-k experts' weights per token, batched MatMul),
            # "mixtral_eager" = the python loop over hit experts (nonzero/where).
            impl = {"mixtral": None, "mixtral_batched": "batched_mm",
                    "mixtral_eager": "eager"}[name]
            extra = {"experts_implementation": impl} if impl else {}
            cfg = t.MixtralConfig(**kw, num_local_experts=4, num_experts_per_tok=2, **extra)
            cls = t.MixtralForCausalLM
        else:
            raise ValueError(name)
        m, field = cls(cfg), "logits"
        p = "model.layers.0.self_attn."
        scopes = (p + "q_proj", p + "k_proj", p + "v_proj", p + "o_proj")
        args, names = (ids,), ["input_ids"]
    try:
        cfg._attn_implementation = "eager"
    except Exception:  # noqa: BLE001
        pass
    m.config._attn_implementation = "eager"
    return Wrap(m.eval(), field).eval(), args, names, scopes


def graft_inspect(path):
    try:
        r = subprocess.run([GRAFT, "inspect", path], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "out": ""}
    text = (r.stdout + r.stderr).strip()
    return {"rc": r.returncode, "out": text if r.returncode else text.splitlines()[-1:]}


def ort_check(path, args, names, ref):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {i.name: a.numpy() for i, a in zip(sess.get_inputs(), args)}
    out = sess.run(None, feeds)[0]
    return {"ok": True, "shape": list(out.shape),
            "max_abs_diff": float(np.abs(out - ref).max()),
            "inputs": [i.name for i in sess.get_inputs()]}


def kind_of(model):
    """name -> 'init' | 'const' | 'input' | producer op type."""
    k = {i.name: "init" for i in model.graph.initializer}
    k.update({i.name: "input" for i in model.graph.input})
    for n in model.graph.node:
        for o in n.output:
            k[o] = "const" if n.op_type == "Constant" else n.op_type
    return k


def shapes_of(model):
    try:
        inf = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001
        inf = model
    s = {}
    for v in list(inf.graph.value_info) + list(inf.graph.input) + list(inf.graph.output):
        tt = v.type.tensor_type
        if tt.HasField("shape"):
            s[v.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                         for d in tt.shape.dim]
    for i in model.graph.initializer:
        s[i.name] = list(i.dims)
    return s


def const_value(model, name):
    for i in model.graph.initializer:
        if i.name == name:
            a = onnx.numpy_helper.to_array(i)
            return a.tolist() if a.size <= 8 else f"<{a.dtype} {list(a.shape)}>"
    for n in model.graph.node:
        if n.op_type == "Constant" and name in n.output:
            for at in n.attribute:
                if at.name == "value":
                    a = onnx.numpy_helper.to_array(at.t)
                    return a.tolist() if a.size <= 8 else f"<{a.dtype} {list(a.shape)}>"
    return None


def describe_node(model, node_name, op):
    kinds, shapes = kind_of(model), shapes_of(model)
    for n in model.graph.node:
        if (node_name and n.name == node_name) or (not node_name and n.op_type == op):
            ins = []
            for i in n.input:
                v = const_value(model, i)
                ins.append(f"{i}: {kinds.get(i, '?')} {shapes.get(i, '?')}"
                           + (f" = {v}" if v is not None else ""))
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()
                     if not isinstance(v, onnx.TensorProto)}
            outs = [f"{o}: {shapes.get(o, '?')}" for o in n.output]
            return {"node": n.name, "op": n.op_type, "inputs": ins, "attrs": attrs, "outputs": outs}
    return None


def scope_of(n):
    for p in n.metadata_props:
        if p.key in ("namespace", "pkg.torch.onnx.name_scopes"):
            return p.value
    return ""


def find_linear(model, scope):
    """The MatMul/Gemm implementing the linear named `scope` (layer 0)."""
    if scope is None:
        return None
    leaf = scope.split(".")[-1]
    init = {i.name for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type in ("MatMul", "Gemm") and any(i.startswith(scope + ".") for i in n.input):
            return n
    # weight passed through a Transpose first, or scope only in metadata
    prod = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:
        if n.op_type not in ("MatMul", "Gemm"):
            continue
        for i in n.input:
            p = prod.get(i)
            if p is not None and p.op_type == "Transpose" and any(
                    x.startswith(scope + ".") for x in p.input if x in init):
                return n
        s = scope_of(n)
        if s and (scope in s or (leaf in s and scope.replace(".", "_") in s.replace(".", "_"))):
            return n
    key = scope.replace(".", "").replace("/", "")
    for n in model.graph.node:  # legacy names like /model/model/layers.0/self_attn/q_proj/MatMul
        if n.op_type in ("MatMul", "Gemm") and key in n.name.replace(".", "").replace("/", ""):
            return n
    for n in model.graph.node:  # metadata names like "...layers.0.self_attn.q_proj: Linear"
        if n.op_type in ("MatMul", "Gemm", "Add") and scope in scope_of(n):
            return n
    return None


def chain(model, start, end):
    """Nodes on some path start -> end, in graph order (start, end included)."""
    nodes = list(model.graph.node)
    cons = collections.defaultdict(list)
    prod = {}
    for idx, n in enumerate(nodes):
        for i in n.input:
            cons[i].append(idx)
        for o in n.output:
            prod[o] = idx
    si, ei = nodes.index(start), nodes.index(end)
    fwd, stack = {si}, [si]
    while stack:
        for o in nodes[stack.pop()].output:
            for c in cons[o]:
                if c not in fwd:
                    fwd.add(c)
                    stack.append(c)
    bwd, stack = {ei}, [ei]
    while stack:
        for i in nodes[stack.pop()].input:
            p = prod.get(i)
            if p is not None and p not in bwd:
                bwd.add(p)
                stack.append(p)
    shapes = shapes_of(model)
    kinds = kind_of(model)
    out = []
    for idx in sorted(fwd & bwd):
        n = nodes[idx]
        side = []
        for i in n.input:
            p = prod.get(i)
            if p is None or p not in fwd:
                v = const_value(model, i)
                side.append(f"{kinds.get(i, '?')}{'=' + str(v) if v is not None else ''}")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute
                 if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.INTS,
                               onnx.AttributeProto.FLOAT, onnx.AttributeProto.STRING)}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}
        out.append(f"{n.op_type}{attrs if attrs else ''} -> {shapes.get(n.output[0], '?')}"
                   + (f"   side: {side}" if side else ""))
    return out


def analyse(model, scopes):
    res = {"ops": dict(collections.Counter(n.op_type for n in model.graph.node).most_common()),
           "domains": sorted({n.domain for n in model.graph.node if n.domain}),
           "functions": [f.name for f in model.functions],
           "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import}}
    q, k, v, o = (find_linear(model, s) for s in scopes)
    res["linears_found"] = {s: (n.name if n is not None else None) for s, n in zip(scopes, (q, k, v, o)) if s}
    if q is not None and o is not None:
        res["chain_q"] = chain(model, q, o)
        if k is not None:
            res["chain_k"] = chain(model, k, o)
        if v is not None:
            res["chain_v"] = chain(model, v, o)
    return res


def self_contained(path):
    m = onnx.load(path, load_external_data=True)
    onnx.save(m, path, save_as_external_data=False)
    data = path + ".data"
    if os.path.exists(data):
        os.remove(data)
    return onnx.load(path)


def optimised(path):
    import onnxscript
    from onnxscript import optimizer

    out = path.replace(".onnx", ".opt.onnx")
    m = onnx.load(path)
    try:
        m2 = optimizer.optimize(m)
    except Exception:  # noqa: BLE001
        ir = onnxscript.ir.serde.deserialize_model(m)
        optimizer.optimize(ir)
        m2 = onnxscript.ir.serde.serialize_model(ir)
    onnx.save(m2, out)
    return out, m2


def peel(path, max_steps=40):
    """All of graft's refusals, not only the first: after each refusal the
    refused node(s) are cut out and graft is run again.

    A cut output becomes a graph input. graft puts a graph input's neurons
    on axis 1, so a float rank-3 output [N, T, C] (token features, neurons
    last) is fed as an input [N, C, T] followed by Transpose(0, 2, 1): the
    value downstream then has its neurons on the last axis as it would
    have had behind the cut node (otherwise every later MatMul and
    LayerNormalization is refused for the wrong reason). Approximate all
    the same: what is constant downstream can change."""
    m = onnx.load(path)
    try:
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception:  # noqa: BLE001
        pass
    types = {v.name: v.type for v in list(m.graph.value_info) + list(m.graph.output)}
    tmp = path.replace(".onnx", ".peel.onnx")
    errors = []

    def cut(node):
        new_nodes = []
        for o in node.output:
            if not o or o not in types:
                continue
            t = types[o].tensor_type
            dims = [d.dim_value for d in t.shape.dim]
            vi = onnx.ValueInfoProto()
            if t.elem_type == onnx.TensorProto.FLOAT and len(dims) == 3 and all(dims):
                vi.name = o + "__ncl"
                vi.type.CopyFrom(onnx.helper.make_tensor_type_proto(
                    onnx.TensorProto.FLOAT, [dims[0], dims[2], dims[1]]))
                new_nodes.append(onnx.helper.make_node(
                    "Transpose", [vi.name], [o], name=o + "__to_nlc", perm=[0, 2, 1]))
            else:
                vi.name = o
                vi.type.CopyFrom(types[o])
            m.graph.input.append(vi)
        idx = list(m.graph.node).index(node)
        m.graph.node.remove(node)
        for k, nn_ in enumerate(new_nodes):
            m.graph.node.insert(idx + k, nn_)

    for _ in range(max_steps):
        used = {i for n in m.graph.node for i in n.input}
        for vi in [vi for vi in m.graph.input if vi.name not in used]:
            m.graph.input.remove(vi)
        onnx.save(m, tmp)
        g = graft_inspect(tmp)
        if g["rc"] == 0:
            errors.append("IMPORTS (after the cuts above)")
            done = path.replace(".onnx", ".peeled.onnx")
            onnx.save(m, done)
            errors.append(graft_run_check(path, done))
            break
        msg = g["out"] if isinstance(g["out"], str) else str(g["out"])
        msg = msg.replace(tmp, "FILE").replace("error: reading model `FILE`: ", "")
        by_name = {n.name: n for n in m.graph.node}
        hit = re.search(r"node `([^`]*)` \(([^)]*)\)", msg)
        if hit and hit.group(1) in by_name:
            node = by_name[hit.group(1)]
            desc = describe_node(m, node.name, node.op_type)
            errors.append({"error": msg, "inputs": desc["inputs"] if desc else None,
                           "attrs": desc["attrs"] if desc else None})
            cut(node)
            continue
        if msg.startswith("unsupported ops:"):
            names = [x.strip() for grp in re.findall(r"\(([^)]*)\)", msg) for x in grp.split(",")]
            nodes = [by_name[x] for x in names if x in by_name]
            if nodes:
                descs = {}
                for n in nodes:  # one description per op type
                    descs.setdefault(n.op_type, describe_node(m, n.name, n.op_type))
                errors.append({"error": msg, "nodes": descs})
                for n in nodes:
                    cut(n)
                continue
        errors.append(msg)
        break
    os.remove(tmp)
    return errors


def graft_run_check(orig_path, peeled_path):
    """Run the peeled model in graft (`graft run`) on the values the
    original model computes (onnxruntime, with the cut values exposed as
    extra outputs) and compare graft's output with onnxruntime's."""
    orig = onnx.load(orig_path)
    peeled = onnx.load(peeled_path)
    orig_inputs = [i.name for i in orig.graph.input]
    want = [i.name for i in peeled.graph.input]
    base = {w[:-len("__ncl")] if w.endswith("__ncl") else w for w in want}
    extra = [b for b in base if b not in orig_inputs]
    types = {v.name: v for v in onnx.shape_inference.infer_shapes(orig).graph.value_info}
    for b in extra:
        orig.graph.output.append(types[b])
    sess = ort.InferenceSession(orig.SerializeToString(), providers=["CPUExecutionProvider"])
    torch.manual_seed(1)
    feeds = {}
    for i in sess.get_inputs():
        feeds[i.name] = np.random.randint(0, 2 if "mask" in i.name or "type" in i.name else 1000,
                                          (1, SEQ)).astype(np.int64)
    names = [o.name for o in sess.get_outputs()]
    vals = dict(zip(names, sess.run(None, feeds)))
    vals.update(feeds)
    files = []
    for k, w in enumerate(want):
        if w.endswith("__ncl"):
            a = np.ascontiguousarray(vals[w[:-5]].transpose(0, 2, 1))
        else:
            a = vals[w]
        f = peeled_path + f".in{k}.npy"
        np.save(f, a.astype(np.float32))
        files.append(f)
    out = peeled_path + ".out.npz"
    cmd = [GRAFT, "run", peeled_path] + sum((["--input", f] for f in files), []) + ["-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    for f in files:
        os.remove(f)
    if r.returncode:
        return "graft run FAILED: " + (r.stdout + r.stderr).strip()[:500]
    got = np.load(out)
    g = got[got.files[0]]
    ref = vals[names[0]]
    if g.shape != ref.shape:
        return f"graft run: shape {list(g.shape)} vs onnxruntime {list(ref.shape)}"
    return (f"graft run on the peeled model vs onnxruntime on the original: "
            f"max |diff| {float(np.abs(g - ref).max()):.3g} (max |ref| {float(np.abs(ref).max()):.3g})")


class WithMask(nn.Module):
    """Legacy-exporter workaround: pass an all-ones attention_mask so that
    transformers skips find_packed_sequence_indices (torch.diff)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return getattr(self.inner.model(ids, attention_mask=torch.ones_like(ids), return_dict=True),
                       self.inner.field)


def survey_file(d, path, m, args, names, ref, scopes):
    """Into record `d`: onnxruntime against PyTorch, graft's first error,
    the graph analysis, the refused node and every refusal (peeling)."""
    try:
        d["ort"] = ort_check(path, args, names, ref)
    except Exception as e:  # noqa: BLE001
        d["ort"] = {"ok": False, "error": str(e)[:600]}
    d["graft"] = graft_inspect(path)
    d.update(analyse(m, scopes))
    d["refused"] = refused_detail(m, d["graft"])
    d["all_refusals"] = peel(path)


def survey(name):
    torch.manual_seed(0)
    model, args, names, scopes = build(name)
    with torch.no_grad():
        ref = model(*args).numpy()
    rec = {"model": name, "torch_out": list(ref.shape)}

    # dynamo exporter
    path = os.path.join(OUT, f"{name}.dynamo.onnx")
    try:
        torch.onnx.export(model, args, path, dynamo=True, input_names=names,
                          output_names=["out"], verbose=False)
        m = self_contained(path)
        rec["dynamo"] = {"export": "ok", "nodes": len(m.graph.node)}
    except Exception as e:  # noqa: BLE001
        rec["dynamo"] = {"export": f"FAILED: {type(e).__name__}: {str(e)[:600]}"}
        traceback.print_exc()
        m = None
    if m is not None:
        d = rec["dynamo"]
        survey_file(d, path, m, args, names, ref, scopes)
        try:
            opath, om = optimised(path)
            g = graft_inspect(opath)
            d["optimised"] = {"ops": dict(collections.Counter(n.op_type for n in om.graph.node).most_common()),
                              "graft": g, "refused": refused_detail(om, g)}
            try:
                d["optimised"]["ort"] = ort_check(opath, args, names, ref)
            except Exception as e:  # noqa: BLE001
                d["optimised"]["ort"] = {"ok": False, "error": str(e)[:300]}
        except Exception as e:  # noqa: BLE001
            d["optimised"] = {"error": f"{type(e).__name__}: {str(e)[:400]}"}

    # legacy exporter
    path = os.path.join(OUT, f"{name}.legacy.onnx")
    try:
        torch.onnx.export(model, args, path, dynamo=False, opset_version=17,
                          input_names=names, output_names=["out"])
        m = onnx.load(path)
        rec["legacy"] = {"export": "ok"}
    except Exception as e:  # noqa: BLE001
        rec["legacy"] = {"export": f"FAILED: {type(e).__name__}: {str(e)[:600]}"}
        m = None
        if len(args) == 1 and not name.startswith("bert"):
            try:
                torch.onnx.export(WithMask(model), args, path, dynamo=False, opset_version=17,
                                  input_names=names, output_names=["out"])
                m = onnx.load(path)
                rec["legacy"]["retry_with_ones_attention_mask"] = "ok"
            except Exception as e2:  # noqa: BLE001
                rec["legacy"]["retry_with_ones_attention_mask"] = (
                    f"FAILED: {type(e2).__name__}: {str(e2)[:600]}")
    if m is not None:
        d = rec["legacy"]
        d["nodes"] = len(m.graph.node)
        survey_file(d, path, m, args, names, ref, scopes)
    return rec


def refused_detail(model, g):
    """Parse graft's error for node name / op and describe that node."""
    if g.get("rc") in (0, None) or not isinstance(g.get("out"), str):
        return None
    import re

    text = g["out"]
    names = re.findall(r"['`\"]([^'`\"]+)['`\"]", text)
    node_names = {n.name for n in model.graph.node}
    ops = {n.op_type for n in model.graph.node}
    node = next((x for x in names if x in node_names), None)
    op = next((x for x in names if x in ops), None)
    if node is None and op is None:
        for word in re.findall(r"[A-Za-z_][\w./:]*", text):
            if word in node_names:
                node = word
                break
            if word in ops and word[0].isupper() and op is None:
                op = word
    if node is None and op is None:
        return None
    return describe_node(model, node, op)


def short_chain(c):
    out = []
    for line in c:
        op = line.split(" ")[0].split("{")[0]
        side = re.search(r"side: (.*)", line)
        out.append(op + ("(" + side.group(1).replace("'", "")[:50] + ")" if side else ""))
    return " > ".join(out)


def print_summary(path):
    """Compact report of a finished survey.json."""
    with open(path) as f:
        summary = json.load(f)
    for name, r in summary.items():
        print("#####", name)
        for ex in ("dynamo", "legacy"):
            d = r.get(ex)
            if not d:
                print(" ", ex, r.get("error"))
                continue
            print("--", ex, "export:", d["export"][:200].replace("\n", " "),
                  "| retry with ones mask:", d.get("retry_with_ones_attention_mask", "-")[:200])
            if "ort" in d:
                print("   onnxruntime ok:", d["ort"].get("ok"), "max|diff| vs torch:",
                      d["ort"].get("max_abs_diff"), d["ort"].get("error", "")[:200])
            if "ops" not in d:
                continue
            print("   ops:", ", ".join(f"{k} {v}" for k, v in d["ops"].items()))
            print("   graft:", d["graft"]["out"])
            for e in d["all_refusals"]:
                if isinstance(e, dict) and "nodes" in e:
                    print("   *", e["error"][:300])
                    for k, v in e["nodes"].items():
                        print("       ", k, v["inputs"], v["attrs"], v["outputs"])
                elif isinstance(e, dict):
                    print("   *", e["error"], "| in:", e["inputs"], "| attrs:", e["attrs"])
                else:
                    print("   *", e)
            if "optimised" in d:
                o = d["optimised"]
                print("   onnxscript-optimised graft:", o.get("graft", {}).get("out"), o.get("error", ""))
            for k in ("chain_q", "chain_k", "chain_v"):
                if k in d:
                    print(f"   {k}:", short_chain(d[k]))


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["--summary"]:
        print_summary(os.path.join(OUT, "survey.json"))
        return
    which = sys.argv[1:] or ["bert", "bert_mask", "gpt2", "llama", "qwen2",
                                    "mixtral", "mixtral_batched", "mixtral_eager"]
    summary_path = os.path.join(OUT, "survey.json")
    summary = {}
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            summary = json.load(f)
    for name in which:
        print(f"=== {name}", flush=True)
        try:
            summary[name] = survey(name)
        except Exception as e:  # noqa: BLE001
            traceback.print_exc()
            summary[name] = {"model": name, "error": f"{type(e).__name__}: {e}"}
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1, default=str)
        print(json.dumps(summary[name], indent=1, default=str)[:20000], flush=True)
    print("summary:", summary_path)


if __name__ == "__main__":
    main()
