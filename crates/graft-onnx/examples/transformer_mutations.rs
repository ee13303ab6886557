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
//!   table (`graft prune --ratio 0.25 --only experts`).
//!
//! Run: `cargo run -p graft-onnx --example transformer_mutations`.

use std::path::PathBuf;

use graft_onnx::{export, import, import_reading, mutations, Reading};

fn main() -> Result<(), graft_onnx::OnnxError> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["llama", "gpt2"] {
        let file = dir.join(format!("tf_{name}.onnx"));
        let imp = import(&file)?;
        let mut m = imp.model;
        mutations::add_kv_head(&mut m)?;
        export(
            &m,
            &imp.interface,
            &dir.join(format!("tf_{name}.heads.graft.onnx")),
        )?;

        let imp = import(&file)?;
        let mut m = imp.model;
        mutations::prune_heads_and_mlp(&mut m, &[vec![16]])?;
        export(
            &m,
            &imp.interface,
            &dir.join(format!("tf_{name}.pruned.graft.onnx")),
        )?;

        let imp = import_reading(&file, Reading::HeadDims)?;
        let mut m = imp.model;
        let fold = mutations::query_fold(&m)?;
        mutations::widen(&mut m, &fold, 2)?;
        export(
            &m,
            &imp.interface,
            &dir.join(format!("tf_{name}.widedims.graft.onnx")),
        )?;

        let imp = import_reading(&file, Reading::HeadDims)?;
        let mut m = imp.model;
        mutations::prune_head_dims(&mut m, &[vec![16]])?;
        export(
            &m,
            &imp.interface,
            &dir.join(format!("tf_{name}.dims.graft.onnx")),
        )?;
    }
    // Mixtral: its experts are frozen; its attention heads change.
    let file = dir.join("tf_mixtral.onnx");
    for (kind, by) in [("heads", 1), ("fewerheads", -1)] {
        let imp = import(&file)?;
        let mut m = imp.model;
        let kv = mutations::kv_head_split(&m)?;
        mutations::widen(&mut m, &kv, by)?;
        export(
            &m,
            &imp.interface,
            &dir.join(format!("tf_mixtral.{kind}.graft.onnx")),
        )?;
    }
    let imp = import(&file)?;
    let mut m = imp.model;
    mutations::prune_experts(&mut m, &[vec![16]])?;
    export(
        &m,
        &imp.interface,
        &dir.join("tf_mixtral.experts.graft.onnx"),
    )?;
    println!(
        "wrote the mutated transformer fixtures to {}",
        dir.display()
    );
    Ok(())
}
