//! Bad input never panics: corrupted, truncated and structurally edited
//! fixtures import to a model or to a typed error.

use std::path::PathBuf;

use graft_onnx::import_bytes;
use graft_onnx::proto::ModelProto;
use proptest::prelude::*;
use prost::Message;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn corrupted_bytes_never_panic(
        which in 0..3usize,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let name = ["mlp.legacy.onnx", "rescnn.dynamo.onnx", "invres.legacy.onnx"][which];
        let mut b = bytes(name);
        for (i, v) in flips {
            let k = i.index(b.len());
            b[k] = v;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        let _ = import_bytes(&b);
    }

    #[test]
    fn edited_graphs_never_panic(
        which in 0..4usize,
        edits in prop::collection::vec((0..7u8, any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..6),
    ) {
        let name = ["mlp.legacy.onnx", "invres.legacy.onnx", "denseblock.legacy.onnx", "resnet18w8.dynamo.onnx"][which];
        let mut m = ModelProto::decode(bytes(name).as_slice()).unwrap();
        let g = m.graph.as_mut().unwrap();
        for (kind, a, b) in edits {
            if g.node.is_empty() {
                break;
            }
            let n = a.index(g.node.len());
            match kind {
                // Drop a node's inputs, or all but one.
                0 => g.node[n].input.clear(),
                1 => g.node[n].input.truncate(1),
                // Rewire an input to another node's output.
                2 => {
                    let src = b.index(g.node.len());
                    if let (Some(o), false) = (g.node[src].output.first().cloned(), g.node[n].input.is_empty()) {
                        g.node[n].input[0] = o;
                    }
                }
                // Drop attributes, outputs or an initializer; change an op.
                3 => g.node[n].attribute.clear(),
                4 => g.node[n].output.clear(),
                5 => {
                    let ops = ["Identity", "Dropout", "Flatten", "Reshape", "Concat", "Squeeze", "Add", "Clip", "MaxPool", "ReduceMean"];
                    g.node[n].op_type = Some(ops[b.index(ops.len())].to_string());
                }
                _ => {
                    if !g.initializer.is_empty() {
                        let k = b.index(g.initializer.len());
                        g.initializer[k].dims.push(2);
                    }
                }
            }
        }
        let _ = import_bytes(&m.encode_to_vec());
    }
}

/// An integer attribute.
fn int(name: &str, v: i64) -> graft_onnx::proto::AttributeProto {
    graft_onnx::proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}

/// An attribute of integers.
fn ints(name: &str, v: &[i64]) -> graft_onnx::proto::AttributeProto {
    graft_onnx::proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// Attributes out of range are typed errors naming the node and the
/// attribute, never a panic or an overflowed number (issue 18).
#[test]
fn attributes_out_of_range_name_the_node() {
    let base = ModelProto::decode(bytes("rescnn.dynamo.onnx").as_slice()).unwrap();
    let conv = base
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .position(|n| n.op_type.as_deref() == Some("Conv"))
        .unwrap();
    let cases = [
        (int("group", -2), "group = -2"),
        (int("group", 0), "group = 0"),
        (ints("strides", &[0, 0]), "strides"),
        (ints("dilations", &[0, 1]), "dilations"),
        (ints("pads", &[1, 1]), "pads"),
        (ints("kernel_shape", &[5, 5]), "kernel_shape"),
    ];
    for (attr, says) in cases {
        let mut m = base.clone();
        let node = &mut m.graph.as_mut().unwrap().node[conv];
        let name = node.name.clone().unwrap_or_default();
        node.attribute.retain(|a| a.name != attr.name);
        node.attribute.push(attr);
        let e = import_bytes(&m.encode_to_vec()).unwrap_err().to_string();
        assert!(e.contains(&name) && e.contains(says), "{says}: {e}");
    }
}

/// Graphs that break ONNX's integrity rules are refused before import,
/// naming the culprits (issue 18): a value written twice, an initializer
/// given twice, no outputs, more inputs than an op takes.
#[test]
fn broken_graphs_are_refused_naming_the_culprit() {
    let base = ModelProto::decode(bytes("mlp.legacy.onnx").as_slice()).unwrap();
    let edit = |f: &dyn Fn(&mut graft_onnx::proto::GraphProto)| {
        let mut m = base.clone();
        f(m.graph.as_mut().unwrap());
        import_bytes(&m.encode_to_vec()).unwrap_err().to_string()
    };
    let e = edit(&|g| {
        let o = g.node[0].output[0].clone();
        g.node[1].output[0] = o;
    });
    assert!(e.contains("is written by node"), "{e}");
    let e = edit(&|g| {
        let t = g.initializer[0].clone();
        g.initializer.push(t);
    });
    assert!(e.contains("given twice"), "{e}");
    let e = edit(&|g| g.output.clear());
    assert!(e.contains("no outputs"), "{e}");
    let e = edit(&|g| {
        let relu = g
            .node
            .iter_mut()
            .find(|n| n.op_type.as_deref() == Some("Relu"))
            .unwrap();
        let x = relu.input[0].clone();
        relu.input.push(x);
    });
    assert!(
        e.contains("(Relu) has 2 inputs; Relu takes at most 1"),
        "{e}"
    );
}

/// An axis out of range is a typed error naming the node (by its output
/// when it has no name) for every op that takes one (issue 18).
#[test]
fn axes_out_of_range_name_the_node() {
    use graft_onnx::proto::{AttributeProto, NodeProto, TensorProto};
    let base = ModelProto::decode(bytes("mlp.legacy.onnx").as_slice()).unwrap();
    let relu = base
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .position(|n| n.op_type.as_deref() == Some("Relu"))
        .unwrap();
    // The Relu (on a [N, 16] value) replaced by an op with a bad axis; the
    // node keeps its input and output but loses its name.
    let cases: Vec<(&str, Vec<AttributeProto>, bool)> = vec![
        ("Softmax", vec![int("axis", 10)], false),
        ("Concat", vec![int("axis", 10)], true),
        ("Transpose", vec![ints("perm", &[0, 9])], false),
        ("Flatten", vec![int("axis", 9)], false),
        ("ReduceMean", vec![ints("axes", &[9])], false),
        ("Gather", vec![int("axis", 9)], false),
        ("Split", vec![int("axis", 9)], false),
        ("Squeeze", vec![], false),
        ("Unsqueeze", vec![], false),
    ];
    for (op, attrs, twice) in cases {
        let mut m = base.clone();
        let g = m.graph.as_mut().unwrap();
        let old = g.node[relu].clone();
        let mut inputs = old.input.clone();
        if twice {
            inputs.push(old.input[0].clone());
        }
        match op {
            "Gather" => inputs.push("zero".into()),
            "Squeeze" | "Unsqueeze" => inputs.push("nine".into()),
            _ => {}
        }
        g.initializer.push(TensorProto {
            name: Some("zero".into()),
            data_type: Some(7),
            int64_data: vec![0],
            ..Default::default()
        });
        g.initializer.push(TensorProto {
            name: Some("nine".into()),
            data_type: Some(7),
            dims: vec![1],
            int64_data: vec![9],
            ..Default::default()
        });
        g.node[relu] = NodeProto {
            op_type: Some(op.into()),
            input: inputs,
            output: old.output.clone(),
            attribute: attrs,
            ..Default::default()
        };
        let Err(e) = import_bytes(&m.encode_to_vec()) else {
            panic!("{op}: accepted");
        };
        let e = e.to_string();
        let named = format!("<unnamed, output {}>", old.output[0]);
        assert!(e.contains(&named) && e.contains(op), "{op}: {e}");
        assert!(e.contains('9') || e.contains("10"), "{op}: {e}");
    }
}
