//! Bad input gives a typed error that names the culprit, and leaves the graph
//! untouched.

use graft_core::json::{GraphSpec, RequestSpec, TargetSpec};
use graft_core::{plan, Budget, Constraint, Graph, GraphError, PlanError, Request, Utility};

fn chain() -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 5).unwrap();
    let p = g.add_immutable("pinned", &[a], 2).unwrap();
    g.add_absorb("b", &[p], 4).unwrap();
    g
}

#[test]
fn duplicate_and_unknown_names() {
    let mut g = chain();
    let before = g.clone();
    let x = g.id("x").unwrap();
    assert_eq!(
        g.add_absorb("a", &[x], 2),
        Err(GraphError::DuplicateName { name: "a".into() })
    );
    assert_eq!(
        g.id("nope"),
        Err(GraphError::UnknownVertex {
            name: "nope".into()
        })
    );
    assert_eq!(g, before);
}

#[test]
fn sizes_that_break_a_kind_are_refused_when_building() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let y = g.add_input("y", 4).unwrap();
    let e = g.add_invariant("add", &[x, y]).unwrap_err();
    assert_eq!(
        e,
        GraphError::SizeMismatch {
            vertex: "add".into(),
            input: "y".into(),
            expected: 3,
            found: 4
        }
    );
    assert_eq!(
        g.add_absorb("z", &[x], 0),
        Err(GraphError::ZeroSize { vertex: "z".into() })
    );
    assert_eq!(
        g.add_stack("s", &[]),
        Err(GraphError::NoInputs { vertex: "s".into() })
    );
    assert_eq!(g.len(), 2);
}

#[test]
fn malformed_constraints_are_refused() {
    let mut g = chain();
    let a = g.id("a").unwrap();
    let before = g.clone();
    assert!(matches!(
        g.add_constraint(a, Constraint::NoutStep { step: 0 }),
        Err(GraphError::InvalidConstraint { ref vertex, .. }) if vertex == "a"
    ));
    assert!(matches!(
        g.add_constraint(a, Constraint::NinStep { input: 3, step: 2 }),
        Err(GraphError::InvalidConstraint { ref reason, .. }) if reason.contains("no input 3")
    ));
    assert_eq!(g, before);
}

#[test]
fn targets_on_frozen_vertices_and_missing_inputs() {
    let g = chain();
    let (x, a, p, b) = (
        g.id("x").unwrap(),
        g.id("a").unwrap(),
        g.id("pinned").unwrap(),
        g.id("b").unwrap(),
    );
    assert!(matches!(
        plan(&g, &Request::new().nout(x, 1)),
        Err(PlanError::NotMutable { ref vertex, why: "an input" }) if vertex == "x"
    ));
    assert!(matches!(
        plan(&g, &Request::new().nout(p, 1)),
        Err(PlanError::NotMutable { ref vertex, why: "immutable" }) if vertex == "pinned"
    ));
    // a feeds an immutable vertex, so its size is frozen as well.
    assert!(matches!(
        plan(&g, &Request::new().nout(a, -1)),
        Err(PlanError::Infeasible { ref vertices }) if vertices == &["a"]
    ));
    assert!(matches!(
        plan(&g, &Request::new().nin(b, 2, 1)),
        Err(PlanError::NoSuchInput { ref vertex, input: 2, inputs: 1 }) if vertex == "b"
    ));
    let mut g2 = g.clone();
    g2.add_constraint(b, Constraint::Fixed).unwrap();
    assert!(matches!(
        plan(&g2, &Request::new().nout(b, 1)),
        Err(PlanError::NotMutable { why: "fixed", .. })
    ));
}

#[test]
fn impossible_sizes_conflicts_and_bad_utilities() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 5).unwrap();
    let before = g.clone();
    assert_eq!(
        g.change_sizes(&Request::new().nout(a, -5)),
        Err(PlanError::BelowOne {
            vertex: "a".into(),
            size: 5,
            delta: -5
        })
    );
    assert_eq!(
        g.change_sizes(&Request::new().nout(a, -1).nout(a, 2)),
        Err(PlanError::ConflictingTargets {
            vertex: "a".into(),
            first: -1,
            second: 2
        })
    );
    let short = Request::new()
        .nout(a, -1)
        .with_utility(Utility::new().with(a, vec![1.0; 4]));
    assert!(matches!(
        g.change_sizes(&short),
        Err(PlanError::BadUtility { ref vertex, ref reason }) if vertex == "a" && reason.contains("4 values for 5")
    ));
    let nan =
        Request::new().with_utility(Utility::new().with(a, vec![1.0, f64::NAN, 1.0, 1.0, 1.0]));
    assert!(matches!(
        g.change_sizes(&nan),
        Err(PlanError::BadUtility { ref reason, .. }) if reason.contains("neuron 1")
    ));
    // A relaxed target needs a search (an exact one on a single vertex is
    // settled by propagation alone), so a budget of 0 nodes runs out.
    let no_budget = Request::new().nout_relaxed(a, -2).with_budget(Budget {
        max_nodes: 0,
        time: None,
    });
    assert!(matches!(
        g.change_sizes(&no_budget),
        Err(PlanError::BudgetExceeded { .. })
    ));
    // A deadline that has already passed stops a search that needs nodes.
    let no_time = Request::new().nout_relaxed(a, -2).with_budget(Budget {
        max_nodes: u64::MAX,
        time: Some(std::time::Duration::ZERO),
    });
    assert!(matches!(
        g.change_sizes(&no_time),
        Err(PlanError::BudgetExceeded { ref vertices, .. }) if vertices == &["a"]
    ));
    assert_eq!(g, before);
}

#[test]
fn a_plan_refuses_a_graph_that_changed() {
    let mut g = chain();
    let b = g.id("b").unwrap();
    let p = plan(&g, &Request::new().nout(b, 1)).unwrap();
    let mut g2 = g.clone();
    g2.add_constraint(b, Constraint::NoutStep { step: 1 })
        .unwrap();
    let before = g2.clone();
    assert!(matches!(p.apply(&mut g2), Err(PlanError::StalePlan { .. })));
    assert_eq!(g2, before);
    p.apply(&mut g).unwrap();
    assert_eq!(g.nout(b).unwrap(), 5);
}

#[test]
fn json_forward_reference_is_an_unknown_vertex() {
    // Inputs must be listed before their consumers, so a cycle cannot be
    // written: the forward reference is reported by name.
    let spec: GraphSpec = serde_json::from_str(
        r#"{"vertices": [
            {"name": "x", "kind": "input", "nout": 2},
            {"name": "a", "kind": "absorb", "nout": 2, "inputs": ["b"]},
            {"name": "b", "kind": "absorb", "nout": 2, "inputs": ["a"]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(
        spec.to_graph(),
        Err(GraphError::UnknownVertex { name: "b".into() })
    );
}

#[test]
fn json_names_the_unknown_vertex() {
    let g = chain();
    let spec = RequestSpec {
        targets: vec![TargetSpec {
            vertex: "ghost".into(),
            input: None,
            delta: 1,
            relaxed: false,
        }],
        ..RequestSpec::default()
    };
    assert_eq!(
        spec.to_request(&g),
        Err(PlanError::Graph(GraphError::UnknownVertex {
            name: "ghost".into()
        }))
    );
    let missing_nout: Result<GraphSpec, _> =
        serde_json::from_str(r#"{"vertices": [{"name": "x", "kind": "input"}]}"#);
    assert!(matches!(
        missing_nout.unwrap().to_graph(),
        Err(GraphError::InvalidConstraint { ref vertex, .. }) if vertex == "x"
    ));
}

#[test]
fn json_round_trip_keeps_the_graph() {
    let mut g = chain();
    let a = g.id("a").unwrap();
    g.add_constraint(a, Constraint::NoutStep { step: 5 })
        .unwrap();
    let text = serde_json::to_string(&GraphSpec::from_graph(&g)).unwrap();
    let back: GraphSpec = serde_json::from_str(&text).unwrap();
    let g2 = back.to_graph().unwrap();
    assert_eq!(g2.summary(), g.summary());
    assert_eq!(
        g2.vertex(g2.id("a").unwrap()).unwrap().constraints(),
        &[Constraint::NoutStep { step: 5 }]
    );
}

/// Issue 16: sizes and deltas far outside any model are typed errors, not
/// overflows, and need no search.
#[test]
fn huge_targets_are_typed_errors_and_shrinking_to_nothing_is_immediate() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 5).unwrap();
    g.add_absorb("b", &[a], 4).unwrap();
    let before = g.clone();
    for req in [
        Request::new().nout(a, i64::MAX),
        Request::new().nout_relaxed(a, 1 << 62),
        Request::new().nout(a, graft_core::MAX_NOUT as i64),
    ] {
        let e = g.change_sizes(&req).unwrap_err();
        assert!(
            matches!(e, PlanError::TooLarge { ref vertex, max, .. }
                if vertex == "a" && max == graft_core::MAX_NOUT),
            "{e}"
        );
    }
    assert!(matches!(
        g.change_sizes(&Request::new().nout(a, i64::MIN)),
        Err(PlanError::BelowOne { .. })
    ));
    assert_eq!(g, before);
    // A relaxed −10¹² lands on size 1 after one node per size, not 10¹².
    let done = g
        .change_sizes(&Request::new().nout_relaxed(a, -1_000_000_000_000))
        .unwrap();
    assert_eq!(g.nout(a).unwrap(), 1);
    assert!(done.plan.nodes <= 8, "{} nodes", done.plan.nodes);
    assert!(done.plan.optimal);
}

#[test]
fn a_component_too_large_to_plan_is_refused_before_allocating() {
    // A size any file may declare: 2^40 neurons is refused when the graph
    // is built, above graft_core::MAX_SIZE.
    let mut g = graft_core::Graph::new();
    let x = g.add_input("x", 4).unwrap();
    let e = g.add_absorb("d", &[x], 1 << 40).unwrap_err();
    assert!(
        matches!(e, graft_core::GraphError::TooLarge { ref vertex, size, max }
            if vertex == "d" && size == 1 << 40 && max == 1 << 32),
        "{e}"
    );
    // 2^28 neurons a graph holds, a plan does not.
    let d = g.add_absorb("d", &[x], 1 << 28).unwrap();
    g.add_absorb("e", &[d], 2).unwrap();
    let e = graft_core::plan(&g, &graft_core::Request::new().nout(d, -1)).unwrap_err();
    assert!(
        matches!(e, graft_core::PlanError::ComponentTooLarge { ref vertices, neurons, .. }
            if vertices == &["d"] && neurons == 1 << 28),
        "{e}"
    );
    // Re-selecting every component refuses it too.
    assert!(graft_core::plan(&g, &graft_core::Request::new()).is_err());
}
