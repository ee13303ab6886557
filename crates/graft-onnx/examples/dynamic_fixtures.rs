//! Writes the dynamic-network fixtures that `scripts/onnx_dynamic_fixtures.py`
//! runs through onnxruntime (into `tests/fixtures/`):
//!
//! - `dynamic_net.if.graft.onnx`: the seed's DynamicNet(10, 5, 2) with a
//!   batch-level control, exported as an `If` keeping both branches;
//! - `dynamic_net.where.graft.onnx`: the same with per-sample controls, in
//!   mask-and-merge form (`Where`);
//! - `gated.graft.onnx`, `exits.graft.onnx`, `entropy_exits.graft.onnx`,
//!   `moe.graft.onnx`: gated residual blocks, early exits by max-softmax
//!   and by negative entropy, and a top-2 mixture of 4 experts, in their
//!   mask-and-merge forms;
//! - `switch.graft.onnx`, `argmax.graft.onnx`: per-sample conditionals over
//!   three branches by a switch and by an argmax (chains of `Where`);
//! - the inputs, as `NAME.x.bin` and `NAME.control.bin`.
//!
//! Every model is built by a seeded `graft_nn::zoo` function, so the tests
//! rebuild the same weights. Run:
//! `cargo run -p graft-onnx --example dynamic_fixtures`.

use std::path::{Path, PathBuf};

use graft_nn::{zoo, Confidence, Device, Rule, Tensor};
use graft_onnx::{export, Interface};

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
        &Interface::for_model(&m, &[vec![8, 10], vec![1, 1]])?,
        &dir.join("dynamic_net.if.graft.onnx"),
    )?;
    let m = zoo::dynamic_net(10, 5, 2, false, 7)?;
    export(
        &m,
        &Interface::for_model(&m, &[vec![8, 10], vec![8, 1]])?,
        &dir.join("dynamic_net.where.graft.onnx"),
    )?;

    // Mask-and-merge forms on one input `x`: (name, model, rows, scale).
    let one_input = [
        ("gated", zoo::gated_mlp(8, 16, 2, 3, 5)?, 32, 1.0),
        (
            "exits",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::MaxSoftmax, 0.4, 9)?,
            64,
            3.0,
        ),
        (
            "entropy_exits",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::NegEntropy, -1.35, 9)?,
            64,
            3.0,
        ),
        ("moe", zoo::moe_mlp(8, 16, 4, 2, 3, 13)?, 32, 1.0),
    ];
    for (seed, (name, m, rows, scale)) in (2..).zip(one_input) {
        write_tensor(
            &dir.join(format!("{name}.x.bin")),
            &inputs(rows, 8, scale, seed),
        )?;
        export(
            &m,
            &Interface::for_model(&m, &[vec![rows, 8]])?,
            &dir.join(format!("{name}.graft.onnx")),
        )?;
    }
    // Conditionals over three branches: a switch on a value in [-0.5, 2.5)
    // and an argmax over three columns, per sample.
    let x = inputs(24, 8, 1.0, 20);
    write_tensor(&dir.join("switch.x.bin"), &x)?;
    let c = inputs(24, 1, 1.5, 21).affine(1.0, 1.0)?;
    write_tensor(&dir.join("switch.control.bin"), &c)?;
    let m = zoo::switch_mlp(8, 16, 3, 3, Rule::Switch, 22)?;
    export(
        &m,
        &Interface::for_model(&m, &[vec![24, 8], vec![24, 1]])?,
        &dir.join("switch.graft.onnx"),
    )?;
    let c = inputs(24, 3, 1.0, 23);
    write_tensor(&dir.join("argmax.control.bin"), &c)?;
    let m = zoo::switch_mlp(8, 16, 3, 3, Rule::Argmax, 22)?;
    export(
        &m,
        &Interface::for_model(&m, &[vec![24, 8], vec![24, 3]])?,
        &dir.join("argmax.graft.onnx"),
    )?;
    println!("wrote the dynamic fixtures to {}", dir.display());
    Ok(())
}
