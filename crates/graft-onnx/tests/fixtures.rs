//! Imported fixtures match onnxruntime, export then import gives the same
//! outputs, and bad files are typed errors. The fixtures and the reference
//! outputs come from `scripts/onnx_fixtures.py` (PyTorch export and
//! onnxruntime); the test suite needs only cargo.

mod common;

use common::{assert_close, fixture, graft_input, read_tensor, run};
use graft_nn::{Device, Tensor};
use graft_onnx::{export_bytes, import, import_bytes, Interface, OnnxError};

const MODELS: [&str; 7] = [
    "mlp",
    "rescnn",
    "invres",
    "resnet18w8",
    "denseblock",
    "lstm",
    "gru",
];

#[test]
fn imported_fixtures_match_onnxruntime() {
    for name in MODELS {
        let x = read_tensor(&format!("{name}.input.bin"));
        for exporter in ["legacy", "dynamo"] {
            let imp = import(&fixture(&format!("{name}.{exporter}.onnx")))
                .unwrap_or_else(|e| panic!("{name}.{exporter}: {e}"));
            let want: Vec<f32> = read_tensor(&format!("{name}.{exporter}.out.bin"))
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let xg = graft_input(&imp, &x);
            assert_close(&run(&imp.model, &xg), &want, &format!("{name}.{exporter}"));
        }
    }
}

#[test]
fn export_then_import_gives_the_same_outputs() {
    for name in MODELS {
        let x = read_tensor(&format!("{name}.input.bin"));
        let imp = import(&fixture(&format!("{name}.legacy.onnx"))).unwrap();
        let xg = graft_input(&imp, &x);
        let bytes = export_bytes(&imp.model, &imp.interface).unwrap();
        let back = import_bytes(&bytes).unwrap();
        assert_eq!(back.model.graph().len(), imp.model.graph().len(), "{name}");
        // The file keeps the input's layout (a sequence is transposed into
        // graft's `[N, F, T]` inside the graph).
        assert_eq!(back.input_perms, imp.input_perms, "{name}");
        assert_eq!(run(&back.model, &xg), run(&imp.model, &xg), "{name}");
    }
}

#[test]
fn bad_files_are_typed_errors() {
    assert!(matches!(
        import_bytes(b"\xff\xff\xff garbage"),
        Err(OnnxError::Malformed(_))
    ));
    let missing = fixture("nope.onnx");
    assert!(matches!(import(&missing), Err(OnnxError::Io { .. })));
}

/// Re-encode a fixture after `edit` changed its protobuf.
fn edited(name: &str, edit: impl FnOnce(&mut graft_onnx::proto::ModelProto)) -> Vec<u8> {
    use prost::Message;
    let bytes = std::fs::read(fixture(name)).unwrap();
    let mut m = graft_onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
    edit(&mut m);
    m.encode_to_vec()
}

#[test]
fn unsupported_ops_are_listed_in_one_error() {
    let bytes = edited("rescnn.legacy.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        for n in g.node.iter_mut() {
            match n.op_type.as_deref() {
                Some("Relu") => n.op_type = Some("Swish".into()),
                Some("MaxPool") => n.op_type = Some("LpPool".into()),
                _ => {}
            }
        }
    });
    match import_bytes(&bytes) {
        Err(OnnxError::Unsupported { ops }) => {
            let names: Vec<&str> = ops.iter().map(|(o, _)| o.as_str()).collect();
            assert_eq!(names, ["LpPool", "Swish"]);
            // Both Relu nodes of the model are named.
            assert_eq!(ops[1].1.len(), 2, "{ops:?}");
            assert!(ops[1].1.iter().all(|n| !n.is_empty()));
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn bad_opsets_missing_initializers_and_shapes_are_typed_errors() {
    let bytes = edited("mlp.legacy.onnx", |m| m.opset_import[0].version = Some(9));
    assert!(matches!(
        import_bytes(&bytes),
        Err(OnnxError::Opset { version: 9, .. })
    ));

    let bytes = edited("mlp.legacy.onnx", |m| {
        m.graph.as_mut().unwrap().initializer.remove(0);
    });
    assert!(
        matches!(
            import_bytes(&bytes),
            Err(OnnxError::MissingValue { .. } | OnnxError::Node { .. })
        ),
        "{:?}",
        import_bytes(&bytes)
    );

    // A weight of the wrong width for its input.
    let bytes = edited("mlp.legacy.onnx", |m| {
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        let d = t.dims.clone();
        t.dims = vec![d[0], d[1] - 1];
        let keep = (d[0] * (d[1] - 1) * 4) as usize;
        if let Some(raw) = t.raw_data.as_mut() {
            raw.truncate(keep);
        } else {
            t.float_data.truncate(keep / 4);
        }
    });
    assert!(
        matches!(import_bytes(&bytes), Err(OnnxError::Node { .. })),
        "{:?}",
        import_bytes(&bytes)
    );
}

#[test]
fn onnxruntime_agrees_with_graft_on_mutated_models() {
    // Written by examples/mutated_fixtures.rs (graft: import, mutate,
    // export) and run by onnxruntime in scripts/onnx_fixtures.py.
    let x = read_tensor("resnet18w8.input.bin");
    let original: Vec<f32> = read_tensor("resnet18w8.legacy.out.bin")
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for kind in ["grown", "pruned"] {
        let m = import(&fixture(&format!("resnet18w8.{kind}.graft.onnx")))
            .unwrap()
            .model;
        let ort: Vec<f32> = read_tensor(&format!("resnet18w8.{kind}.graft.out.bin"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ours = run(&m, &x);
        assert_close(&ours, &ort, kind);
        if kind == "grown" {
            // Growth kept the function: onnxruntime's output on the grown
            // model is the original model's.
            let scale = original.iter().fold(0f32, |a, &b| a.max(b.abs()));
            for (a, b) in ort.iter().zip(&original) {
                assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
            }
        }
    }
}

#[test]
fn cli_prune_to_half_the_macs_runs_in_onnxruntime() {
    // `graft prune resnet18w8.legacy.onnx --macs 421184`, run by
    // scripts/onnx_fixtures.py, which then ran the result in onnxruntime
    // (its log: resnet18w8.half.cli.txt).
    let full = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let half = import(&fixture("resnet18w8.half.cli.onnx")).unwrap();
    let shapes = vec![vec![3, 32, 32]];
    let macs0 = full.model.cost(&shapes).unwrap().total();
    let macs1 = half.model.cost(&shapes).unwrap().total();
    assert_eq!(macs0, 842_368);
    assert!(macs1 <= macs0 / 2, "{macs1} MACs");
    assert!(
        macs1 >= macs0 / 3,
        "{macs1} MACs: pruned far below the budget"
    );
    assert!(half.model.parameter_count() < full.model.parameter_count());
    // graft's executor and onnxruntime agree on the pruned model.
    let x = read_tensor("resnet18w8.input.bin");
    let ort: Vec<f32> = read_tensor("resnet18w8.half.cli.out.bin")
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_close(&run(&half.model, &x), &ort, "half");
    let log = std::fs::read_to_string(fixture("resnet18w8.half.cli.txt")).unwrap();
    assert!(log.contains("MACs per sample"), "{log}");
    assert!(log.contains("all finite"), "{log}");
}

#[test]
fn recurrent_layers_built_in_graft_round_trip() {
    use graft_nn::{Cell, Model, Op};
    for cell in [Cell::Lstm, Cell::Gru, Cell::Rnn] {
        let mut m = Model::new();
        let x = m.input("x", 3).unwrap();
        let r1 = m
            .add(
                "r1",
                Op::Recurrent {
                    cell,
                    sequences: true,
                },
                &[x],
                Some(5),
            )
            .unwrap();
        let r2 = m
            .add(
                "r2",
                Op::Recurrent {
                    cell,
                    sequences: false,
                },
                &[r1],
                Some(4),
            )
            .unwrap();
        let last = m.add("last", Op::LastStep, &[r1], None).unwrap();
        m.add("both", Op::Concat, &[r2, last], None).unwrap();
        let input = Tensor::randn(0f32, 1.0, (2, 3, 6), &Device::Cpu).unwrap();
        let bytes = export_bytes(&m, &Interface::for_model(&m, &[vec![2, 3, 6]]).unwrap()).unwrap();
        let back = import_bytes(&bytes).unwrap();
        assert!(back.input_perms[0].is_none());
        assert_eq!(
            graft_core::json::GraphSpec::from_graph(back.model.graph()),
            graft_core::json::GraphSpec::from_graph(m.graph()),
            "{cell:?}"
        );
        let (a, b) = (run(&m, &input), run(&back.model, &input));
        assert_close(&b, &a, &format!("{cell:?}"));
    }
}

/// A `Shape` node's `start` and `end` (opset 15) give a part of the shape:
/// the dynamo exporter writes `Shape(x, start=0, end=1)` for a batch size
/// (a class token expanded to the batch). Here the input is reshaped to
/// the concatenation of its first dimension and the rest, which is its
/// own shape; read whole, the two parts gave a target of rank 4.
#[test]
fn a_shape_node_gives_the_part_its_start_and_end_name() {
    use graft_onnx::proto::{AttributeProto, NodeProto};
    let attr = |name: &str, v: i64| AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    };
    let node = |op: &str, ins: &[&str], out: &str, attrs: Vec<AttributeProto>| NodeProto {
        op_type: Some(op.into()),
        name: Some(out.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: vec![out.into()],
        attribute: attrs,
        ..Default::default()
    };
    let bytes = edited("mlp.legacy.onnx", |m| {
        m.opset_import[0].version = Some(17);
        let g = m.graph.as_mut().unwrap();
        let x = g.input[0].name.clone().unwrap();
        for n in g.node.iter_mut() {
            for i in n.input.iter_mut().filter(|i| **i == x) {
                *i = "x_again".into();
            }
        }
        let front = vec![
            node(
                "Shape",
                &[&x],
                "batch",
                vec![attr("start", 0), attr("end", 1)],
            ),
            node("Shape", &[&x], "rest", vec![attr("start", -1)]),
            node(
                "Concat",
                &["batch", "rest"],
                "target",
                vec![attr("axis", 0)],
            ),
            node("Reshape", &[&x, "target"], "x_again", vec![]),
        ];
        g.node.splice(0..0, front);
    });
    let x = read_tensor("mlp.input.bin");
    let want = run(&import(&fixture("mlp.legacy.onnx")).unwrap().model, &x);
    let m = import_bytes(&bytes).unwrap().model;
    assert_eq!(run(&m, &x), want);
}

/// A graph output that is a transposed view of a computed value (Swin's
/// q, k, v permuted to `[3, B, heads, tokens, d]` and returned) is
/// computed in the file's layout: it was refused as a missing value.
#[test]
fn a_transposed_graph_output_is_computed_in_the_files_layout() {
    use graft_onnx::proto::{AttributeProto, NodeProto};
    let bytes = edited("mlp.legacy.onnx", |m| {
        let g = m.graph.as_mut().unwrap();
        let out = g.output[0].name.clone().unwrap();
        for n in g.node.iter_mut() {
            for o in n.output.iter_mut().filter(|o| **o == out) {
                *o = "before".into();
            }
        }
        g.node.push(NodeProto {
            op_type: Some("Transpose".into()),
            name: Some("swap".into()),
            input: vec!["before".into()],
            output: vec![out.clone()],
            attribute: vec![AttributeProto {
                name: Some("perm".into()),
                r#type: Some(7),
                ints: vec![1, 0],
                ..Default::default()
            }],
            ..Default::default()
        });
        // The declared output shape is the transpose's.
        if let Some(t) = g.output[0].r#type.as_mut() {
            if let Some(graft_onnx::proto::type_proto::Value::TensorType(tt)) = t.value.as_mut() {
                if let Some(s) = tt.shape.as_mut() {
                    s.dim.reverse();
                }
            }
        }
    });
    let x = read_tensor("mlp.input.bin");
    let plain = import(&fixture("mlp.legacy.onnx")).unwrap().model;
    let ex = graft_nn::Executor::new(&plain).unwrap();
    let want = ex
        .run(&plain, std::slice::from_ref(&x), &graft_nn::Run::eval())
        .unwrap()
        .outputs[0]
        .t()
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let m = import_bytes(&bytes).unwrap().model;
    assert_eq!(run(&m, &x), want);
}
