//! Mutations on an imported narrow ResNet-18: widen a convolution inside a
//! residual stage, insert an identity convolution, prune half of every
//! convolution's channels by magnitude, remove a residual block; each then
//! exported, imported again and run.

mod common;

use common::run;

use std::path::PathBuf;

use graft_core::{Alignment, Connect, Edit, Patch};
use graft_nn::{Device, Model, Op, Tensor};
use graft_onnx::{export_bytes, import, import_bytes, mutations, Interface};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn model() -> (Model, Tensor) {
    let imp = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &Device::Cpu).unwrap();
    (imp.model, x)
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * scale, "{x} vs {y} (scale {scale})");
    }
}

/// Export, import again, and check the outputs survive the trip.
fn roundtrip(m: &Model, x: &Tensor) -> Vec<f32> {
    let bytes = export_bytes(m, &Interface::for_model(m, &[x.dims().to_vec()]).unwrap()).unwrap();
    let back = import_bytes(&bytes).unwrap().model;
    let out = run(&back, x);
    close(&out, &run(m, x), 1e-5);
    out
}

#[test]
fn widening_a_conv_in_a_residual_stage_keeps_the_function() {
    let (mut m, x) = model();
    let before = run(&m, &x);
    mutations::widen(&mut m, "/blocks/blocks.3/c2/Conv", 4).unwrap();
    // The residual stream of the stage follows: both blocks' second convs
    // and the downsampling conv.
    for name in [
        "/blocks/blocks.2/c2/Conv",
        "/blocks/blocks.2/down/down.0/Conv",
        "/blocks/blocks.3/c2/Conv",
    ] {
        assert_eq!(m.graph().nout(m.id(name).unwrap()).unwrap(), 20, "{name}");
    }
    close(&run(&m, &x), &before, 1e-5);
    close(&roundtrip(&m, &x), &before, 1e-5);
}

#[test]
fn inserting_an_identity_conv_keeps_the_function() {
    let (mut m, x) = model();
    let before = run(&m, &x);
    mutations::insert_identity_conv(&mut m, "/blocks/blocks.1/Relu_1", "extra").unwrap();
    close(&run(&m, &x), &before, 1e-5);
    close(&roundtrip(&m, &x), &before, 1e-5);
}

#[test]
fn pruning_half_of_every_conv_by_magnitude() {
    let (mut m, x) = model();
    let channels = |m: &Model| -> usize {
        m.graph()
            .ids()
            .filter(|&v| matches!(m.layer(v).map(|l| &l.op), Some(Op::Conv2d(_))))
            .map(|v| m.graph().nout(v).unwrap())
            .sum()
    };
    let before = channels(&m);
    mutations::prune_half_by_magnitude(&mut m).unwrap();
    let after = channels(&m);
    assert!(
        after * 10 <= before * 6 && after * 10 >= before * 3,
        "{before} -> {after}"
    );
    let out = roundtrip(&m, &x);
    assert!(out.iter().all(|v| v.is_finite()));
}

#[test]
fn removing_a_residual_block() {
    let (mut m, x) = model();
    let n = m.graph().len();
    let b = "/blocks/blocks.1";
    let patch = Patch::new()
        .push(Edit::Remove {
            vertex: format!("{b}/c2/Conv").into(),
            connect: Connect::Nothing,
            align: Alignment::default(),
        })
        .remove(format!("{b}/Relu").as_str())
        .remove(format!("{b}/c1/Conv").as_str())
        .remove(format!("{b}/Add").as_str());
    m.commit(&patch, &[]).unwrap();
    assert_eq!(m.graph().len(), n - 4);
    m.graph().check().unwrap();
    let out = roundtrip(&m, &x);
    assert_eq!(out.len(), 20);
}
