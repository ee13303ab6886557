#!/usr/bin/env python3
"""A LLaMA-shaped decoder of about 1.5 B parameters as ONNX with external
data, for issue 19's scale benchmark (not a test fixture: 6.3 GB, written
outside the repository).

transformers' LlamaForCausalLM, random initialisation (nothing is
downloaded): hidden 2048, 32 layers, 32 query heads and 8 KV heads (head
size 64), MLP 5632, vocabulary 32000, untied output projection: 1.574 B
parameters, float32. Exported by torch's dynamo exporter, which writes the
weights to `model.onnx.data` beside the model (ONNX external data) as it
does for every model above 2 GB; the input is `input_ids` [1, 16].

Usage (the venv of scripts/zoo.py):

    python scripts/big_decoder.py --out /work/bench/llama1p5b
    /usr/bin/time -v graft -q prune /work/bench/llama1p5b/model.onnx \\
        --ratio 0.5 --scope layer --only heads,mlp -o /work/bench/llama1p5b/half.onnx

With --check, onnxruntime runs the exported model once (about 7 GB more).
"""
import argparse
import pathlib
import time

import torch
import transformers


class Logits(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return self.model(input_ids, return_dict=True).logits


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=32000, hidden_size=2048, intermediate_size=5632,
        num_hidden_layers=args.layers, num_attention_heads=32, num_key_value_heads=8,
        max_position_embeddings=256, tie_word_embeddings=False, use_cache=False)
    t = time.time()
    with torch.no_grad():
        model = transformers.LlamaForCausalLM(cfg).eval()
    model.config._attn_implementation = "eager"
    n = sum(p.numel() for p in model.parameters())
    print(f"built {n / 1e9:.3f} B parameters in {time.time() - t:.0f} s")
    ids = torch.randint(0, cfg.vocab_size, (1, 16), generator=torch.Generator().manual_seed(1))
    path = out / "model.onnx"
    t = time.time()
    torch.onnx.export(Logits(model).eval(), (ids,), str(path), dynamo=True, external_data=True,
                      input_names=["input_ids"], output_names=["logits"])
    data = pathlib.Path(str(path) + ".data")
    print(f"exported in {time.time() - t:.0f} s: {path.stat().st_size} bytes + "
          f"{data.stat().st_size if data.exists() else 0} bytes of external data")
    if args.check:
        import onnxruntime as ort
        del model
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"input_ids": ids.numpy()})
        print(f"onnxruntime ran it: logits {y.shape}")


if __name__ == "__main__":
    main()
