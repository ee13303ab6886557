//! Writes the mutated transformer fixtures that
//! `scripts/transformer_fixtures.py` runs in onnxruntime (issue 17): the
//! tiny LLaMA and GPT-2 imported, mutated by graft and exported again.
//!
//! - `tf_NAME.heads.graft.onnx`: one KV head more in the first attention
//!   block, with its query heads (function-preserving);
//! - `tf_NAME.pruned.graft.onnx`: 30% of the heads' and MLPs' neurons
//!   pruned by magnitude (`graft prune --ratio 0.3 --only heads,mlp`);
//! - read along the head dimension (`Reading::HeadDims`):
//!   `tf_NAME.widedims.graft.onnx`, two query and key dimensions more in
//!   every head of the first block (function-preserving), and
//!   `tf_NAME.dims.graft.onnx`, 30% of the head dimensions pruned by
//!   magnitude (`graft prune --ratio 0.3 --only head-dims`);
//! - `tf_mixtral.heads.graft.onnx` and `tf_mixtral.fewerheads.graft.onnx`:
//!   the tiny Mixtral with a KV head more and one fewer in its first
//!   attention block (its experts stay as they are), and
//!   `tf_mixtral.experts.graft.onnx`: one expert of four fewer in each
//!   block by magnitude, with its router row and its rows in every expert
//!   table (`graft prune --ratio 0.25 --only experts`);
//!   `tf_mixtral.widemlp.graft.onnx`: 8 MLP neurons more in every expert
//!   of the first block (gate and up rows, zero down columns:
//!   function-preserving), and `tf_mixtral.pruned.graft.onnx`: 30% of the
//!   heads', experts' MLP and hidden neurons pruned by magnitude (`graft
//!   prune --ratio 0.3 --only heads,mlp,hidden`);
//! - the vision transformers' attention (class fixtures
//!   `vitattn.legacy.onnx`, torchvision's fused in-projection, and
//!   `timmattn.dynamo.onnx`, timm's): `NAME.EXPORTER.heads.graft.onnx`
//!   with a head more (function-preserving) and
//!   `NAME.EXPORTER.fewerheads.graft.onnx` with one fewer.
//!
//! Run: `cargo run -p graft-onnx --example transformer_mutations`.

use std::path::Path;

use graft_nn::Model;
use graft_onnx::{export, import_reading, mutations, OnnxError, Reading};

/// Import `tf_NAME.onnx` read as `reading`, apply `mutate`, and write
/// `tf_NAME.KIND.graft.onnx` beside it.
fn write(
    dir: &Path,
    name: &str,
    kind: &str,
    reading: Reading,
    mutate: impl FnOnce(&mut Model) -> Result<(), OnnxError>,
) -> Result<(), OnnxError> {
    write_stem(dir, &format!("tf_{name}"), kind, reading, mutate)
}

/// Import `STEM.onnx` read as `reading`, apply `mutate`, and write
/// `STEM.KIND.graft.onnx` beside it.
fn write_stem(
    dir: &Path,
    stem: &str,
    kind: &str,
    reading: Reading,
    mutate: impl FnOnce(&mut Model) -> Result<(), OnnxError>,
) -> Result<(), OnnxError> {
    let imp = import_reading(&dir.join(format!("{stem}.onnx")), reading)?;
    let mut m = imp.model;
    mutate(&mut m)?;
    export(
        &m,
        &imp.interface,
        &dir.join(format!("{stem}.{kind}.graft.onnx")),
    )
}

fn main() -> Result<(), OnnxError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let shapes = [vec![16]];
    for name in ["llama", "gpt2"] {
        write(&dir, name, "heads", Reading::Heads, mutations::add_kv_head)?;
        write(&dir, name, "pruned", Reading::Heads, |m| {
            mutations::prune_heads_and_mlp(m, &shapes)
        })?;
        write(&dir, name, "widedims", Reading::HeadDims, |m| {
            let fold = mutations::query_fold(m)?;
            mutations::widen(m, &fold, 2)
        })?;
        write(&dir, name, "dims", Reading::HeadDims, |m| {
            mutations::prune_head_dims(m, &shapes)
        })?;
    }
    // Mixtral: a KV head more and one fewer (its experts as they are), and
    // one expert fewer per block.
    for (kind, by) in [("heads", 1), ("fewerheads", -1)] {
        write(&dir, "mixtral", kind, Reading::Heads, |m| {
            let kv = mutations::kv_head_split(m)?;
            mutations::widen(m, &kv, by)
        })?;
    }
    write(&dir, "mixtral", "experts", Reading::Heads, |m| {
        mutations::prune_experts(m, &shapes)
    })?;
    write(&dir, "mixtral", "widemlp", Reading::Heads, |m| {
        let up = mutations::expert_projection(m)?;
        mutations::widen(m, &up, 16)
    })?;
    write(&dir, "mixtral", "pruned", Reading::Heads, |m| {
        mutations::prune_heads_mlp_and_hidden(m, &shapes)
    })?;
    // Vision transformers' fused in-projections: a head more, one fewer.
    for stem in ["vitattn.legacy", "timmattn.dynamo"] {
        for (kind, by) in [("heads", 1), ("fewerheads", -1)] {
            write_stem(&dir, stem, kind, Reading::Heads, |m| {
                let split = mutations::first_head_split(m)?;
                mutations::widen(m, &split, by)
            })?;
        }
    }
    println!(
        "wrote the mutated transformer fixtures to {}",
        dir.display()
    );
    Ok(())
}
