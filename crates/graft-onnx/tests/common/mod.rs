//! Helpers shared by the fixture tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::PathBuf;

use graft_nn::{Device, Tensor};

/// A file of `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A tensor file of the fixture scripts: u32 rank, u32 dims, f32 values.
pub fn read_tensor(name: &str) -> Tensor {
    let b = std::fs::read(fixture(name)).unwrap();
    let u = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    let rank = u(0);
    let dims: Vec<usize> = (1..=rank).map(u).collect();
    let vals: Vec<f32> = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_vec(vals, dims, &Device::Cpu).unwrap()
}

/// The first output of an evaluation pass, flattened.
pub fn run_all(m: &graft_nn::Model, inputs: &[Tensor]) -> Vec<f32> {
    let ex = graft_nn::Executor::new(m).unwrap();
    ex.run(m, inputs, &graft_nn::Run::eval()).unwrap().outputs[0]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// [`run_all`] on a one-input model.
pub fn run(m: &graft_nn::Model, x: &Tensor) -> Vec<f32> {
    run_all(m, std::slice::from_ref(x))
}

/// Within `tol` of the reference's largest magnitude.
pub fn assert_close_to(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want
        .iter()
        .fold(0f32, |a, &b| a.max(b.abs()))
        .max(f32::MIN_POSITIVE);
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * scale,
            "{what}[{i}]: {a} vs {b} (scale {scale})"
        );
    }
}

/// Within 1e-4 of the reference's largest magnitude.
pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_close_to(got, want, 1e-4, what);
}

/// The input in graft's axis order (sequences `[N, F, T]`, tokens with
/// their features last `[N, C, T]`), as the CLI and the Python package
/// give it.
#[allow(dead_code)]
pub fn graft_input(imp: &graft_onnx::Imported, x: &Tensor) -> Tensor {
    match &imp.input_perms[0] {
        Some(p) => x.permute(p.clone()).unwrap().contiguous().unwrap(),
        None => x.clone(),
    }
}
