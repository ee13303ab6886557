//! Scenario D7 of shared/acceptance/dynamic.md: dynamic networks in ONNX.
//! A batch-level conditional exports as `If` keeping both branches and
//! imports back; a per-sample one exports as `Where` (mask-and-merge) and
//! imports back; gates, exits and experts export in mask-and-merge form.
//! onnxruntime's outputs on graft's exports come from
//! `scripts/onnx_dynamic_fixtures.py` (committed); the tests need only cargo.

mod common;

use common::{fixture, read_tensor, run_all};
use graft_nn::{zoo, Confidence, Device, Executor, Model, Op, Rule, Run, Tensor};
use graft_onnx::{import, proto::ModelProto};
use prost::Message;

/// Within 1e-5 of the reference's largest magnitude.
fn assert_matches(got: &[f32], want: &Tensor) {
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-5 * scale, "{g} vs {w}");
    }
}

fn scalar(v: f32) -> Tensor {
    Tensor::from_vec(vec![v], (1, 1), &Device::Cpu).unwrap()
}

fn conds(m: &Model) -> Vec<Op> {
    m.graph()
        .topological_order()
        .unwrap()
        .into_iter()
        .filter_map(|v| m.layer(v).map(|l| l.op.clone()))
        .filter(|op| matches!(op, Op::Cond { .. }))
        .collect()
}

#[test]
fn d7_if_keeps_both_branches_and_imports_back() {
    let x = read_tensor("dynamic_net.x.bin");
    let m = zoo::dynamic_net(10, 5, 2, true, 7).unwrap();
    // The file holds an If whose branches hold fc2 (then) and nothing but
    // the value of relu1 (else).
    let bytes = std::fs::read(fixture("dynamic_net.if.graft.onnx")).unwrap();
    let proto = ModelProto::decode(bytes.as_slice()).unwrap();
    let g = proto.graph.unwrap();
    let iff = g
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("If"))
        .expect("an If node");
    let branch = |key: &str| {
        iff.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(key))
            .and_then(|a| a.g.clone())
            .unwrap()
    };
    let ops = |g: &graft_onnx::proto::GraphProto| -> Vec<String> {
        g.node
            .iter()
            .map(|n| n.op_type.clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(ops(&branch("then_branch")), ["Gemm", "Relu", "Identity"]);
    assert_eq!(ops(&branch("else_branch")), ["Identity"]);
    assert!(!g.node.iter().any(|n| n.name.as_deref() == Some("fc2")));

    // graft's executor and onnxruntime agree on both sides of the
    // threshold, and so does the imported model.
    let back = import(&fixture("dynamic_net.if.graft.onnx")).unwrap().model;
    assert_eq!(
        conds(&back),
        [Op::Cond {
            rule: Rule::Threshold { threshold: 0.5 },
            batch: true
        }]
    );
    for (c, tag) in [(0.7, "hi"), (0.3, "lo")] {
        let want = read_tensor(&format!("dynamic_net.if.{tag}.out.bin"));
        assert_matches(&run_all(&m, &[x.clone(), scalar(c)]), &want);
        assert_matches(&run_all(&back, &[x.clone(), scalar(c)]), &want);
    }
    // The imported conditional still routes: fc2 runs only above 0.5.
    let fc2 = back.id("fc2").unwrap();
    let ex = Executor::new(&back).unwrap();
    let t = ex
        .run(&back, &[x.clone(), scalar(0.3)], &Run::eval().traced())
        .unwrap()
        .trace
        .unwrap();
    assert_eq!(t.rows.get(&fc2), None);
}

#[test]
fn d7_per_sample_routing_exports_as_mask_and_merge() {
    let x = read_tensor("dynamic_net.x.bin");
    let c = read_tensor("dynamic_net.control.bin");
    let m = zoo::dynamic_net(10, 5, 2, false, 7).unwrap();
    let want = read_tensor("dynamic_net.where.out.bin");
    assert_matches(&run_all(&m, &[x.clone(), c.clone()]), &want);
    let back = import(&fixture("dynamic_net.where.graft.onnx"))
        .unwrap()
        .model;
    assert_eq!(
        conds(&back),
        [Op::Cond {
            rule: Rule::Threshold { threshold: 0.5 },
            batch: false
        }]
    );
    assert_matches(&run_all(&back, &[x, c]), &want);
}

#[test]
fn d7_gates_exits_and_experts_match_onnxruntime() {
    let cases: [(&str, Model); 4] = [
        ("gated", zoo::gated_mlp(8, 16, 2, 3, 5).unwrap()),
        (
            "exits",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::MaxSoftmax, 0.4, 9).unwrap(),
        ),
        (
            "entropy_exits",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::NegEntropy, -1.35, 9).unwrap(),
        ),
        ("moe", zoo::moe_mlp(8, 16, 4, 2, 3, 13).unwrap()),
    ];
    for (name, m) in cases {
        let x = read_tensor(&format!("{name}.x.bin"));
        let want = read_tensor(&format!("{name}.graft.out.bin"));
        assert_matches(&run_all(&m, std::slice::from_ref(&x)), &want);
        // The mask-and-merge forms are written, not read back: a typed
        // error, never a panic.
        assert!(import(&fixture(&format!("{name}.graft.onnx"))).is_err());
        if name.ends_with("exits") {
            // The fixture does route: some samples leave at each exit and
            // some run to the end.
            let t = Executor::new(&m)
                .unwrap()
                .run(&m, &[x], &Run::eval().traced())
                .unwrap()
                .trace
                .unwrap();
            let taken: Vec<Option<_>> = (0..64).map(|i| t.exit_taken(i)).collect();
            for e in ["exit0", "exit1"] {
                let v = m.id(e).unwrap();
                assert!(taken.contains(&Some(v)), "{name}: nobody left at {e}");
            }
            assert!(taken.contains(&None), "{name}: everybody left early");
        }
    }
}

#[test]
fn d7_switch_and_argmax_conditionals_match_onnxruntime() {
    let x = read_tensor("switch.x.bin");
    for (name, rule) in [("switch", Rule::Switch), ("argmax", Rule::Argmax)] {
        let m = zoo::switch_mlp(8, 16, 3, 3, rule, 22).unwrap();
        let c = read_tensor(&format!("{name}.control.bin"));
        let inputs = [x.clone(), c];
        let want = read_tensor(&format!("{name}.graft.out.bin"));
        assert_matches(&run_all(&m, &inputs), &want);
        // Every branch is taken by some sample.
        let t = Executor::new(&m)
            .unwrap()
            .run(&m, &inputs, &Run::eval().traced())
            .unwrap()
            .trace
            .unwrap();
        for b in 0..3 {
            let v = m.id(&format!("branch{b}")).unwrap();
            assert!(
                t.rows.get(&v).is_some_and(|&r| r > 0 && r < 24),
                "{name}: branch {b}"
            );
        }
    }
}

#[test]
fn a_capacity_factor_is_refused_by_export() {
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    m.mixture("moe", x, 2, 1, Some(1.0), |m, e, x| {
        m.add(&format!("e{e}"), Op::Dense { bias: true }, &[x], Some(4))
    })
    .unwrap();
    let err = graft_onnx::export_bytes(
        &m,
        &graft_onnx::Interface::for_model(&m, &[vec![2, 4]]).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("moe"), "{err}");
}

#[test]
fn malformed_conditionals_are_typed_errors_naming_the_node() {
    use graft_onnx::import_bytes;
    let bytes = std::fs::read(fixture("dynamic_net.where.graft.onnx")).unwrap();
    let edit = |f: &dyn Fn(&mut graft_onnx::proto::GraphProto)| {
        let mut p = ModelProto::decode(bytes.as_slice()).unwrap();
        f(p.graph.as_mut().unwrap());
        import_bytes(&p.encode_to_vec()).unwrap_err().to_string()
    };
    // A threshold that is not one number.
    let err = edit(&|g| {
        let t = g
            .initializer
            .iter_mut()
            .find(|t| t.name.as_deref() == Some("cond.threshold"))
            .unwrap();
        t.dims = vec![2];
        t.float_data = vec![0.5, 0.5];
        t.raw_data = None;
    });
    assert!(err.contains("cond.when"), "{err}");
    // A Where whose condition is a value, not a test.
    let err = edit(&|g| {
        let w = g
            .node
            .iter_mut()
            .find(|n| n.op_type.as_deref() == Some("Where"))
            .unwrap();
        w.input[0] = "x".into();
    });
    assert!(err.contains("cond") && err.contains("Greater"), "{err}");
    // A test of a multi-column value.
    let err = edit(&|g| {
        let gr = g
            .node
            .iter_mut()
            .find(|n| n.op_type.as_deref() == Some("Greater"))
            .unwrap();
        gr.input[0] = "relu1".into();
    });
    assert!(err.contains("one-column"), "{err}");
}
