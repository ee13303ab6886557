//! ONNX external data (issue 19): a model whose weights live in a file
//! beside it is read (the onnx library's layout, as torch writes models
//! above 2 GB), written (`export_parts`, `--external-data`, or any model
//! above protobuf's 2 GiB), and round-trips; a location that leaves the
//! model's directory is refused.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_close, assert_close_to, fixture, read_tensor, run};
use graft_onnx::proto::ModelProto;
use graft_onnx::{export_parts, import, import_bytes};
use prost::Message;

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("external")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn want(name: &str) -> Vec<f32> {
    read_tensor(name).flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn a_model_with_external_data_is_read_from_beside_it() {
    let x = read_tensor("mlp.input.bin");
    let m = import(&fixture("external/mlp_ext.onnx")).unwrap().model;
    assert_close(&run(&m, &x), &want("mlp.legacy.out.bin"), "mlp_ext");
    // From bytes alone there is no directory to read the data from.
    let bytes = std::fs::read(fixture("external/mlp_ext.onnx")).unwrap();
    let e = import_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("external data"), "{e}");
}

#[test]
fn external_data_round_trips_through_export() {
    let x = read_tensor("resnet18w8.input.bin");
    let imp = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let before = run(&imp.model, &x);
    let dir = scratch("roundtrip");
    let path = dir.join("r.onnx");
    let (model, data) = export_parts(&imp.model, &imp.interface, "r.onnx.data", true).unwrap();
    let data = data.expect("the convolutions' weights go to the data file");
    // The model holds only the small tensors.
    assert!(
        model.len() < data.len() / 10,
        "{} and {}",
        model.len(),
        data.len()
    );
    std::fs::write(dir.join("r.onnx.data"), &data).unwrap();
    std::fs::write(&path, &model).unwrap();
    let back = import(&path).unwrap();
    assert_close_to(&run(&back.model, &x), &before, 1e-6, "external round trip");
}

/// The fixture with its data location replaced, written into `dir`.
fn with_location(dir: &Path, location: &str) -> PathBuf {
    let mut m = ModelProto::decode(
        std::fs::read(fixture("external/mlp_ext.onnx"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    for t in &mut m.graph.as_mut().unwrap().initializer {
        for e in &mut t.external_data {
            if e.key.as_deref() == Some("location") {
                e.value = Some(location.into());
            }
        }
    }
    let path = dir.join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

#[test]
fn external_data_outside_the_models_directory_is_refused() {
    let root = scratch("escape");
    let inner = root.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let data = std::fs::read(fixture("external/mlp_ext.onnx.data")).unwrap();
    // The data sits one directory up: reachable by `..`, by an absolute
    // path and through a link, all refused.
    std::fs::write(root.join("secret.data"), &data).unwrap();
    std::os::unix::fs::symlink(root.join("secret.data"), inner.join("link.data")).unwrap();
    let abs = root.join("secret.data").display().to_string();
    for location in ["../secret.data", abs.as_str(), "link.data"] {
        let path = with_location(&inner, location);
        let e = import(&path).unwrap_err().to_string();
        assert!(e.contains("model's directory"), "{location}: {e}");
    }
    // Inside the directory it is read.
    std::fs::write(inner.join("ok.data"), &data).unwrap();
    assert!(import(&with_location(&inner, "ok.data")).is_ok());
    // Offsets past the file's end, and a missing file, are errors.
    let mut m = ModelProto::decode(
        std::fs::read(with_location(&inner, "ok.data"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    for e in &mut m.graph.as_mut().unwrap().initializer[0].external_data {
        if e.key.as_deref() == Some("offset") {
            e.value = Some("1000000".into());
        }
    }
    std::fs::write(inner.join("far.onnx"), m.encode_to_vec()).unwrap();
    let e = import(&inner.join("far.onnx")).unwrap_err().to_string();
    assert!(e.contains("the file has"), "{e}");
    let e = import(&with_location(&inner, "missing.data"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.data"), "{e}");
}

#[test]
fn a_streamed_file_is_the_canonical_encoding_of_its_model() {
    // The writer streams the weights from the model's memory with the
    // lengths worked out first; the bytes must be exactly what prost
    // writes for the decoded message (fields in tag order, every length
    // right), to a file as in memory, with and without external data.
    let imp = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let bytes = graft_onnx::export_bytes(&imp.model, &imp.interface).unwrap();
    let decoded = ModelProto::decode(bytes.as_slice()).unwrap();
    assert_eq!(decoded.encode_to_vec(), bytes);
    let dir = scratch("streamed");
    let path = dir.join("s.onnx");
    graft_onnx::export(&imp.model, &imp.interface, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let (model, data) = export_parts(&imp.model, &imp.interface, "s.onnx.data", true).unwrap();
    let decoded = ModelProto::decode(model.as_slice()).unwrap();
    assert_eq!(decoded.encode_to_vec(), model);
    let data = data.unwrap();
    let p = graft_onnx::prepare_sized(&imp.model, &imp.interface, "s.onnx.data", true).unwrap();
    assert!(p.has_data());
    assert_eq!(p.model_len(), model.len());
    assert_eq!(data.len() % 4, 0);
}

#[test]
fn a_directory_is_refused_as_a_model_file() {
    let dir = scratch("directory");
    let e = import(&dir).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
}
