//! `graft run` on the ONNX fixtures of graft-onnx: its outputs match the
//! onnxruntime outputs recorded by `scripts/onnx_fixtures.py`, and bad
//! inputs exit 2 and write nothing.

use std::path::{Path, PathBuf};

use graft::nn::{Device, Tensor};
use serde_json::Value;

mod common;

use common::{ok, refused};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graft-onnx/tests/fixtures")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh output path (no file there yet).
fn out(test: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("run")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// A fixture tensor file: u32 rank, u32 dims, f32 values, little-endian.
fn read_tensor(path: &Path) -> Tensor {
    let b = std::fs::read(path).unwrap();
    let u = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    let rank = u(0);
    let dims: Vec<usize> = (1..=rank).map(u).collect();
    let vals: Vec<f32> = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_vec(vals, dims, &Device::Cpu).unwrap()
}

/// Within `tol` of the reference's largest magnitude.
fn assert_close(got: &Tensor, want: &Tensor, tol: f32, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: shapes");
    let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let scale = want.iter().fold(0f32, |a, &b| a.max(b.abs())).max(1e-30);
    let diff = got
        .iter()
        .zip(&want)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    assert!(
        diff <= tol * scale,
        "{what}: max |diff| {diff} (scale {scale})"
    );
}

#[test]
fn run_matches_the_recorded_onnxruntime_outputs() {
    // The MLP, a CNN, and an LSTM (whose sequence input graft holds in
    // another axis order), from both exporters.
    for name in ["mlp", "rescnn", "lstm"] {
        let x = out("matches", &format!("{name}.npy"));
        read_tensor(&fixture(&format!("{name}.input.bin")))
            .write_npy(&x)
            .unwrap();
        for exporter in ["legacy", "dynamo"] {
            let model = fixture(&format!("{name}.{exporter}.onnx"));
            let o = out("matches", &format!("{name}.{exporter}.npz"));
            let text = ok(&["run", s(&model), "--input", s(&x), "-o", s(&o)]);
            assert!(text.contains("wrote "), "{text}");
            let arrays = Tensor::read_npz(&o).unwrap();
            let want = read_tensor(&fixture(&format!("{name}.{exporter}.out.bin")));
            // One array, keyed by the model's output name.
            let onnx_name = graft::onnx::import(&model).unwrap().outputs[0].0.clone();
            assert_eq!(arrays.len(), 1, "{name}.{exporter}");
            assert_eq!(arrays[0].0, onnx_name, "{name}.{exporter}");
            assert_close(&arrays[0].1, &want, 1e-5, &format!("{name}.{exporter}"));
        }
    }
}

#[test]
fn run_json_and_the_committed_npy() {
    // The .npy of the README's tour holds the recorded MLP input.
    let x = fixture("mlp.input.npy");
    let want = read_tensor(&fixture("mlp.input.bin"));
    assert_close(&Tensor::read_npy(&x).unwrap(), &want, 0.0, "mlp.input.npy");
    let o = out("json", "mlp.npz");
    let model = fixture("mlp.legacy.onnx");
    let doc: Value = serde_json::from_str(&ok(&[
        "run",
        s(&model),
        "--input",
        s(&x),
        "-o",
        s(&o),
        "--json",
    ]))
    .unwrap();
    assert_eq!(doc["inputs"][0]["name"], "input");
    assert_eq!(doc["inputs"][0]["shape"], serde_json::json!([2, 6]));
    assert_eq!(doc["outputs"][0]["name"], "output");
    assert_eq!(doc["outputs"][0]["shape"], serde_json::json!([2, 4]));
    assert_eq!(doc["output"], s(&o));
    let got = &Tensor::read_npz(&o).unwrap()[0].1;
    assert_close(
        got,
        &read_tensor(&fixture("mlp.legacy.out.bin")),
        1e-5,
        "mlp --json",
    );
}

#[test]
fn run_refuses_bad_inputs() {
    let model = fixture("mlp.legacy.onnx");
    let x = fixture("mlp.input.npy");
    let o = out("refuses", "out.npz");
    // Two inputs for a model with one.
    refused(
        &[
            "run",
            s(&model),
            "--input",
            s(&x),
            "--input",
            s(&x),
            "-o",
            s(&o),
        ],
        &o,
        "has 1 inputs (input)",
    );
    // A missing file.
    let missing = fixture("nope.npy");
    refused(
        &["run", s(&model), "--input", s(&missing), "-o", s(&o)],
        &o,
        "nope.npy",
    );
    // Not a NumPy file.
    refused(
        &[
            "run",
            s(&model),
            "--input",
            s(&fixture("mlp.input.bin")),
            "-o",
            s(&o),
        ],
        &o,
        "give a .npy file",
    );
    // The wrong number of features.
    let wrong = out("refuses", "wrong.npy");
    Tensor::zeros((2, 5), graft::nn::DType::F32, &Device::Cpu)
        .unwrap()
        .write_npy(&wrong)
        .unwrap();
    refused(
        &["run", s(&model), "--input", s(&wrong), "-o", s(&o)],
        &o,
        "shape [2, 5]",
    );
    // An output directory that does not exist.
    let nowhere = out("refuses", "no/such/dir/out.npz");
    refused(
        &["run", s(&model), "--input", s(&x), "-o", s(&nowhere)],
        &nowhere,
        "no/such/dir/out.npz",
    );
}
