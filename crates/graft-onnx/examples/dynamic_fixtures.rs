//! Writes the dynamic-network fixtures that `scripts/onnx_dynamic_fixtures.py`
//! runs through onnxruntime (into `tests/fixtures/`):
//!
//! - `dynamic_net.if.graft.onnx`: the seed's DynamicNet(10, 5, 2) with a
//!   batch-level control, exported as an `If` keeping both branches;
//! - `dynamic_net.where.graft.onnx`: the same with per-sample controls, in
//!   mask-and-merge form (`Where`);
//! - `gated.graft.onnx`, `exits.graft.onnx`, `moe.graft.onnx`: gated
//!   residual blocks, early exits and a top-2 mixture of 4 experts, in
//!   their mask-and-merge forms;
//! - the inputs, as `NAME.x.bin` (and `dynamic_net.control.bin`).
//!
//! Every model is built by a seeded `graft_nn::zoo` function, so the tests
//! rebuild the same weights. Run:
//! `cargo run -p graft-onnx --example dynamic_fixtures`.

use std::path::{Path, PathBuf};

use graft_nn::{zoo, Device, Tensor};
use graft_onnx::export;

fn write_tensor(path: &Path, t: &Tensor) -> std::io::Result<()> {
    let mut b = Vec::new();
    b.extend((t.rank() as u32).to_le_bytes());
    for &d in t.dims() {
        b.extend((d as u32).to_le_bytes());
    }
    let vals: Vec<f32> = t
        .flatten_all()
        .and_then(|x| x.to_vec1())
        .expect("f32 tensor");
    for v in vals {
        b.extend(v.to_le_bytes());
    }
    std::fs::write(path, b)
}

/// Seeded inputs in [-scale, scale) from a linear congruential generator
/// (the values are written to files; the tests read them back).
fn inputs(rows: usize, cols: usize, scale: f32, seed: u64) -> Tensor {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu).expect("shape")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let x = inputs(8, 10, 1.0, 1);
    write_tensor(&dir.join("dynamic_net.x.bin"), &x)?;
    let c: Vec<f32> = (0..8).map(|i| if i % 3 == 0 { 0.9 } else { 0.2 }).collect();
    write_tensor(
        &dir.join("dynamic_net.control.bin"),
        &Tensor::from_vec(c, (8, 1), &Device::Cpu)?,
    )?;
    let m = zoo::dynamic_net(10, 5, 2, true, 7)?;
    export(
        &m,
        &[vec![8, 10], vec![1, 1]],
        &dir.join("dynamic_net.if.graft.onnx"),
    )?;
    let m = zoo::dynamic_net(10, 5, 2, false, 7)?;
    export(
        &m,
        &[vec![8, 10], vec![8, 1]],
        &dir.join("dynamic_net.where.graft.onnx"),
    )?;

    let x = inputs(32, 8, 1.0, 2);
    write_tensor(&dir.join("gated.x.bin"), &x)?;
    export(
        &zoo::gated_mlp(8, 16, 2, 3, 5)?,
        &[vec![32, 8]],
        &dir.join("gated.graft.onnx"),
    )?;
    let x = inputs(64, 8, 3.0, 3);
    write_tensor(&dir.join("exits.x.bin"), &x)?;
    export(
        &zoo::early_exit_mlp(8, 16, 3, 4, 0.4, 9)?,
        &[vec![64, 8]],
        &dir.join("exits.graft.onnx"),
    )?;
    let x = inputs(32, 8, 1.0, 4);
    write_tensor(&dir.join("moe.x.bin"), &x)?;
    export(
        &zoo::moe_mlp(8, 16, 4, 2, 3, 13)?,
        &[vec![32, 8]],
        &dir.join("moe.graft.onnx"),
    )?;
    println!("wrote the dynamic fixtures to {}", dir.display());
    Ok(())
}
