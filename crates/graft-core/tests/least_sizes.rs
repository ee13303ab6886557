//! Least sizes (`Constraint::NinAtLeast`): a top-k router choosing `k` of
//! its experts keeps at least `k` of them, whatever the plan.

use graft_core::{plan, Constraint, Graph, PlanError, Request, SizeKind, Utility, VertexId};

/// x(8) -> router(6) -> softmax (invariant) -> top-2 (one fixed neuron,
/// at least 2 arriving).
fn router() -> (Graph, VertexId, VertexId) {
    let mut g = Graph::new();
    let x = g.add_input("x", 8).unwrap();
    let r = g.add_absorb("router", &[x], 6).unwrap();
    let s = g.add_invariant("softmax", &[r]).unwrap();
    let t = g
        .add_vertex_with(
            "top2",
            SizeKind::Absorb,
            &[s],
            Some(1),
            &[
                Constraint::Fixed,
                Constraint::NinAtLeast { input: 0, min: 2 },
            ],
        )
        .unwrap();
    g.check().unwrap();
    (g, r, t)
}

#[test]
fn a_plan_keeps_at_least_k_experts() {
    let (g, r, _) = router();
    // Down to 2: fine; down to 1: infeasible, naming the router.
    let p = plan(&g, &Request::new().nout(r, -4)).unwrap();
    let mut g2 = g.clone();
    p.apply(&mut g2).unwrap();
    assert_eq!(g2.nout(r).unwrap(), 2);
    g2.check().unwrap();
    let e = plan(&g, &Request::new().nout(r, -5)).unwrap_err();
    assert!(
        matches!(e, PlanError::Infeasible { ref vertices } if vertices == &["router"]),
        "{e}"
    );
    // Every expert worth less than nothing: the plan keeps the best two.
    let mut u = Utility::new();
    u.set(r, vec![-3.0, -1.0, -5.0, -0.5, -4.0, -2.0]);
    let p = plan(&g, &Request::new().with_utility(u)).unwrap();
    let kept: Vec<usize> = p
        .change(r)
        .and_then(|c| c.outs.clone())
        .unwrap()
        .iter()
        .filter_map(|n| match n {
            graft_core::Neuron::Old(i) => Some(*i),
            graft_core::Neuron::New => None,
        })
        .collect();
    assert_eq!(kept, vec![1, 3]);
}

#[test]
fn least_sizes_are_checked_and_survive_json() {
    let (g, r, t) = router();
    let mut bad = g.clone();
    let e = bad
        .add_constraint(t, Constraint::NinAtLeast { input: 0, min: 7 })
        .unwrap_err();
    assert!(e.to_string().contains("below its least size 7"), "{e}");
    let e = bad
        .add_constraint(t, Constraint::NinAtLeast { input: 1, min: 1 })
        .unwrap_err();
    assert!(e.to_string().contains("no input 1"), "{e}");
    let spec = graft_core::json::GraphSpec::from_graph(&g);
    let text = serde_json::to_string(&spec).unwrap();
    assert!(
        text.contains(r#"{"nin_at_least":{"input":0,"min":2}}"#),
        "{text}"
    );
    let back = spec.to_graph().unwrap();
    back.check().unwrap();
    assert_eq!(back.nout(r).unwrap(), 6);
}
