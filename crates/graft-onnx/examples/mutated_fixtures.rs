//! Writes the mutated-model fixtures that `scripts/onnx_fixtures.py` checks
//! with onnxruntime: the narrow ResNet-18 fixture imported, mutated by graft
//! and exported again.
//!
//! - `resnet18w8.grown.graft.onnx`: a residual stage widened by 4 channels
//!   and an identity convolution inserted (function-preserving);
//! - `resnet18w8.pruned.graft.onnx`: half of every convolution's channels
//!   pruned by magnitude.
//!
//! Run: `cargo run -p graft-onnx --example mutated_fixtures`.

use std::path::PathBuf;

use graft_onnx::{export, import, mutations};

fn main() -> Result<(), graft_onnx::OnnxError> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // Written with the interface the file was read with: its input and
    // output names, symbolic batch and opset.
    let imp = import(&dir.join("resnet18w8.legacy.onnx"))?;
    let mut m = imp.model;
    mutations::widen(&mut m, "/blocks/blocks.3/c2/Conv", 4)?;
    mutations::insert_identity_conv(&mut m, "/blocks/blocks.1/Relu_1", "extra")?;
    export(&m, &imp.interface, &dir.join("resnet18w8.grown.graft.onnx"))?;

    let imp = import(&dir.join("resnet18w8.legacy.onnx"))?;
    let mut m = imp.model;
    mutations::prune_half_by_magnitude(&mut m)?;
    export(
        &m,
        &imp.interface,
        &dir.join("resnet18w8.pruned.graft.onnx"),
    )?;
    println!("wrote the mutated fixtures to {}", dir.display());
    Ok(())
}
