#!/usr/bin/env python3
"""Small Hugging Face transformers, randomly initialised from configs
(nothing is downloaded), exported with the dynamo exporter, with
onnxruntime's output: fixtures of graft-onnx's `tests/transformers.rs`
(issue 17).

Every model: hidden 64, 2 layers, 4 attention heads, MLP 128, vocabulary
1,000, 64 positions, eager attention, no cache, seed 0; input int64
`input_ids` [1, 16]; the output is the logits (language models) or the
last hidden state (BERT).

  gpt2    GPT2LMHeadModel: learned positions, LayerNorm, Gemm projections,
          fused QKV split in three, GELU as tanh arithmetic, the LM head
          tied to the token embedding
  llama   LlamaForCausalLM with grouped-query attention (2 KV heads):
          RMSNorm written out (Pow, ReduceMean, Sqrt, Reciprocal), rotary
          embeddings (Slice, Neg, Concat on the head dimension), repeat_kv
          (Unsqueeze, Expand, Reshape), SwiGLU, a causal mask constant
  qwen2   Qwen2ForCausalLM (2 KV heads): as llama, with q/k/v biases
  mixtral MixtralForCausalLM (2 KV heads, 4 experts, top 2): as llama,
          with each MLP a mixture of experts routed per token (router
          softmax, TopK, the chosen experts' weights gathered from stacked
          tables by GatherND, batched MatMul, weighted sum)
  bert    BertModel (input_ids only): word, position and token-type
          embeddings (the token types a GatherElements of constants),
          LayerNorm, GELU, a zero attention mask

For each NAME, writes to crates/graft-onnx/tests/fixtures/:
  tf_NAME.onnx           the model (one self-contained file)
  tf_NAME.input.bin      the ids (shape header + little-endian f32)
  tf_NAME.out.bin        onnxruntime's output for them

Then it runs graft (`cargo run -p graft-onnx --example
transformer_mutations`), which writes tf_llama and tf_gpt2 with a KV head
more (`.heads.graft.onnx`, function-preserving), with 30% of their heads'
and MLPs' neurons pruned (`.pruned.graft.onnx`), and read along the head
dimension with two query and key dimensions more in every head
(`.widedims.graft.onnx`, function-preserving) and with 30% of their head
dimensions pruned (`.dims.graft.onnx`), and tf_mixtral with a KV head more
and one fewer (`.heads.graft.onnx`, `.fewerheads.graft.onnx`), with one
expert of four fewer per block (`.experts.graft.onnx`), with 8 MLP neurons
more in every expert of its first block (`.widemlp.graft.onnx`,
function-preserving) and with 30% of its heads', experts' MLP and hidden
neurons pruned (`.pruned.graft.onnx`), and the vision transformers'
attention class fixtures vitattn.legacy and timmattn.dynamo with a head more
and one fewer (`.heads.graft.onnx`, `.fewerheads.graft.onnx`); each is
checked with
onnx.checker.check_model(full_check=True) and run in onnxruntime on the same
ids, its output written to `tf_NAME.KIND.graft.out.bin`.

transformers must be installed in the fixture venv (pip install
transformers). Run with that venv's python:

  /work/.venv-onnx/bin/python scripts/transformer_fixtures.py [NAME ...]

(NAME `none` exports no model and only rewrites graft's mutated files.)

Not part of the tests.
"""
import os
import pathlib
import sys
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tensor_files import read_tensor, write_tensor  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "crates" / "graft-onnx" / "tests" / "fixtures"
SEQ = 16
VOCAB = 1000
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=128,
    max_position_embeddings=64,
    use_cache=False,
)


class Plain(nn.Module):
    """The model's one tensor output (logits or last hidden state)."""

    def __init__(self, model, field):
        super().__init__()
        self.model = model
        self.field = field

    def forward(self, input_ids):
        return getattr(self.model(input_ids, return_dict=True), self.field)


def build(name):
    t = transformers
    if name == "gpt2":
        cfg = t.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                           n_positions=64, use_cache=False)
        m, field = t.GPT2LMHeadModel(cfg), "logits"
    elif name == "bert":
        cfg = t.BertConfig(**COMMON, type_vocab_size=2)
        m, field = t.BertModel(cfg, add_pooling_layer=False), "last_hidden_state"
    elif name in ("llama", "qwen2"):
        cls = {"llama": (t.LlamaConfig, t.LlamaForCausalLM),
               "qwen2": (t.Qwen2Config, t.Qwen2ForCausalLM)}[name]
        cfg = cls[0](**COMMON, num_key_value_heads=2)
        m, field = cls[1](cfg), "logits"
    elif name == "mixtral":
        # Experts as stacked tables, the top 2 of 4 gathered per token
        # (transformers' batched_mm experts: TopK, GatherND, batched
        # MatMul); the library default (grouped_mm) is a custom op the
        # dynamo exporter cannot translate.
        cfg = t.MixtralConfig(**COMMON, num_key_value_heads=2, num_local_experts=4,
                              num_experts_per_tok=2, experts_implementation="batched_mm")
        m, field = t.MixtralForCausalLM(cfg), "logits"
    else:
        raise ValueError(name)
    m.config._attn_implementation = "eager"
    return Plain(m.eval(), field).eval()


def main(only):
    OUT.mkdir(parents=True, exist_ok=True)
    for name in ["gpt2", "llama", "qwen2", "bert", "mixtral"]:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = build(name)
        ids = torch.randint(0, VOCAB, (1, SEQ), generator=torch.Generator().manual_seed(1))
        path = OUT / f"tf_{name}.onnx"
        torch.onnx.export(model, (ids,), str(path), dynamo=True,
                          input_names=["input_ids"], output_names=["output"])
        onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
        data = pathlib.Path(str(path) + ".data")
        if data.exists():
            data.unlink()
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"input_ids": ids.numpy()})
        with torch.no_grad():
            ref = model(ids).numpy()
        assert np.abs(y - ref).max() < 1e-4 * max(1.0, np.abs(ref).max()), name
        write_tensor(OUT / f"tf_{name}.input.bin", ids.numpy().astype(np.float32))
        write_tensor(OUT / f"tf_{name}.out.bin", y)
        ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
        print(f"{path.name}: {path.stat().st_size} bytes, output {y.shape}, ops {ops}")


def record(stem, feeds):
    """Check STEM.onnx with the full checker, run it in onnxruntime on
    `feeds` and write its output to STEM.out.bin."""
    path = stem.with_name(stem.name + ".onnx")
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, feeds)
    write_tensor(stem.with_name(stem.name + ".out.bin"), y)
    print(f"{path.name}: {path.stat().st_size} bytes, output {y.shape}")


def check_graft_mutations():
    import subprocess
    root = OUT.parent.parent.parent.parent
    subprocess.check_call(["cargo", "run", "--quiet", "-p", "graft-onnx", "--example",
                           "transformer_mutations"], cwd=root)
    for name, kinds in [("llama", ["heads", "pruned", "widedims", "dims"]),
                        ("gpt2", ["heads", "pruned", "widedims", "dims"]),
                        ("mixtral", ["heads", "fewerheads", "experts", "widemlp", "pruned"])]:
        ids = read_tensor(OUT / f"tf_{name}.input.bin").astype(np.int64)
        for kind in kinds:
            record(OUT / f"tf_{name}.{kind}.graft", {"input_ids": ids})
    # The vision transformers' attention (class fixtures from
    # scripts/class_fixtures.py): a head more and one fewer.
    for stem in ["vitattn.legacy", "timmattn.dynamo"]:
        x = read_tensor(OUT / f"{stem.split('.')[0]}.input.bin")
        for kind in ["heads", "fewerheads"]:
            record(OUT / f"{stem}.{kind}.graft", {"input": x})


if __name__ == "__main__":
    main(sys.argv[1:])
    check_graft_mutations()
