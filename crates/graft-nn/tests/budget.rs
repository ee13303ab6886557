//! Issue 16: a plan the budget did not let the search prove optimal is not
//! applied to a model; its graph and parameters stay as they were.

use graft_core::{plan, Budget, Request};
use graft_nn::{Model, Op};

#[test]
fn an_unproven_plan_leaves_the_model_untouched() {
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let a = m.add("a", Op::Dense { bias: true }, &[x], Some(8)).unwrap();
    let b = m.add("b", Op::Dense { bias: true }, &[a], Some(3)).unwrap();
    // A relaxed target enumerates a's sizes; three nodes are not enough.
    let req = Request::new().nout_relaxed(a, -3).with_budget(Budget {
        max_nodes: 3,
        time: None,
    });
    let p = plan(m.graph(), &req).unwrap();
    assert!(!p.optimal, "the budget should stop the enumeration");

    let graph = m.graph().clone();
    let params = weights(&m, &[a, b]);
    let e = m.change_sizes(&req).unwrap_err().to_string();
    assert!(e.contains("budget exhausted"), "{e}");
    assert_eq!(m.graph(), &graph);
    let after = weights(&m, &[a, b]);
    assert_eq!(after, params);
    // With room to finish, the same request applies.
    m.change_sizes(&Request::new().nout_relaxed(a, -3)).unwrap();
    assert_eq!(m.graph().nout(a).unwrap(), 5);
}

/// The weights and biases of `vs`, flattened.
fn weights(m: &graft_nn::Model, vs: &[graft_core::VertexId]) -> Vec<Vec<f32>> {
    vs.iter()
        .flat_map(|&v| ["weight", "bias"].map(|n| (v, n)))
        .map(|(v, n)| {
            m.param(v, n)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        })
        .collect()
}
