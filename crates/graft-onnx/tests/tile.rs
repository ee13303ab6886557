//! Tile of a computed value: copies joined along the repeated axes (a stack
//! of the neurons along the neuron axis), checked against tiling graft's
//! own output of the untiled model; bad repeats are typed errors naming
//! the node.

mod common;

use common::{fixture, run};
use graft_onnx::proto::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use graft_onnx::{import_bytes, OnnxError};
use prost::Message;

/// The MLP fixture with its output tiled by `reps`.
fn tiled(reps: &[i64]) -> (Vec<u8>, Vec<u8>) {
    let plain = std::fs::read(fixture("mlp.legacy.onnx")).unwrap();
    let mut m = ModelProto::decode(plain.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let out = g.output[0].name.clone().unwrap();
    let last = g
        .node
        .iter_mut()
        .find(|n| n.output.first() == Some(&out))
        .unwrap();
    last.output[0] = "untiled".into();
    g.initializer.push(TensorProto {
        name: Some("reps".into()),
        dims: vec![reps.len() as i64],
        data_type: Some(DataType::Int64 as i32),
        int64_data: reps.to_vec(),
        ..Default::default()
    });
    g.node.push(NodeProto {
        op_type: Some("Tile".into()),
        name: Some("tile".into()),
        input: vec!["untiled".into(), "reps".into()],
        output: vec![out],
        ..Default::default()
    });
    // The output's declared shape no longer holds; drop it.
    g.output[0].r#type = None;
    (plain, m.encode_to_vec())
}

#[test]
fn tiling_the_neurons_stacks_copies() {
    let (plain, tiled) = tiled(&[1, 3]);
    let a = import_bytes(&plain).unwrap().model;
    let b = import_bytes(&tiled).unwrap_or_else(|e| panic!("{e}"));
    b.model.graph().check().unwrap();
    let x = graft_nn::Tensor::ones(
        (2, a.graph().nout(a.graph().ids().next().unwrap()).unwrap()),
        graft_nn::DType::F32,
        &graft_nn::Device::Cpu,
    )
    .unwrap();
    let (ya, yb) = (run(&a, &x), run(&b.model, &x));
    let k = ya.len() / 2;
    let want: Vec<f32> = ya
        .chunks(k)
        .flat_map(|row| {
            row.iter()
                .chain(row)
                .chain(row)
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(yb, want);
}

#[test]
fn bad_repeats_name_the_node() {
    for reps in [vec![2i64, 1], vec![1, 0], vec![1, 2, 3], vec![1, 5000]] {
        let (_, bytes) = tiled(&reps);
        match import_bytes(&bytes) {
            Err(OnnxError::Node { node, .. }) => assert_eq!(node, "tile", "{reps:?}"),
            other => panic!("{reps:?}: {other:?}"),
        }
    }
}
