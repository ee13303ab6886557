//! Select vertices (conditionals, gates, experts): the control input is free,
//! the branches are tied to the output like the inputs of an add.

use graft_core::{plan, plan_or_relax, Constraint, Graph, Request, SizeKind, Step, VertexId};

/// The seed's DynamicNet: x -> fc1 -> relu -> [fc2 -> relu if c > 0.5] -> fc3.
fn dynamic_net() -> (Graph, [VertexId; 7]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 10).unwrap();
    let c = g.add_input("control", 1).unwrap();
    let fc1 = g.add_absorb("fc1", &[x], 5).unwrap();
    let r1 = g.add_invariant("relu1", &[fc1]).unwrap();
    let fc2 = g.add_absorb("fc2", &[r1], 5).unwrap();
    let r2 = g.add_invariant("relu2", &[fc2]).unwrap();
    let sel = g
        .add_vertex("cond", SizeKind::Select, &[c, r2, r1], None)
        .unwrap();
    let fc3 = g.add_absorb("fc3", &[sel], 2).unwrap();
    (g, [c, fc1, r1, fc2, r2, sel, fc3])
}

#[test]
fn branches_are_one_component_and_the_control_is_not() {
    let (g, [c, fc1, r1, fc2, r2, sel, _]) = dynamic_net();
    let comp = g.size_component(fc1).unwrap();
    assert_eq!(comp, vec![fc1, r1, fc2, r2, sel]);
    assert_eq!(g.size_component(c).unwrap(), vec![c]);
    g.check().unwrap();
}

#[test]
fn growing_the_hidden_size_moves_both_branches() {
    let (mut g, [_, fc1, _, fc2, _, sel, fc3]) = dynamic_net();
    let done = g.change_sizes(&Request::new().nout(fc1, 3)).unwrap();
    assert_eq!(done.step, Step::Exact);
    g.check().unwrap();
    assert_eq!(g.nout(fc1).unwrap(), 8);
    assert_eq!(g.nin(fc2).unwrap(), &[8]);
    assert_eq!(g.nout(fc2).unwrap(), 8);
    assert_eq!(g.nout(sel).unwrap(), 8);
    assert_eq!(g.nin(sel).unwrap(), &[1, 8, 8]);
    assert_eq!(g.nin(fc3).unwrap(), &[8]);
}

#[test]
fn one_branch_alone_cannot_change_exactly() {
    let (g, [_, fc1, _, fc2, _, _, _]) = dynamic_net();
    // fc2 by +1 while fc1 keeps its size: the branches would differ.
    assert!(plan(&g, &Request::new().nout(fc2, 1).nout(fc1, 0)).is_err());
    // Relaxed, fc1 and fc2 move together.
    let relaxed = plan_or_relax(&g, &Request::new().nout_relaxed(fc2, 1)).unwrap();
    let p = relaxed.plan;
    let after = |v| p.change(v).map(|c| c.nout_after);
    assert_eq!(after(fc1), Some(6));
    assert_eq!(after(fc2), Some(6));
}

#[test]
fn a_select_needs_equal_branches_and_keeps_its_control() {
    let mut g = Graph::new();
    let c = g.add_input("c", 1).unwrap();
    let a = g.add_input("a", 4).unwrap();
    let b = g.add_input("b", 3).unwrap();
    assert!(g
        .add_vertex("s", SizeKind::Select, &[c, a, b], None)
        .is_err());
    assert!(g.add_vertex("s", SizeKind::Select, &[c], None).is_err());
    let (mut g, [c, _, r1, _, _, sel, _]) = dynamic_net();
    // The control cannot be disconnected, nor the last branch, and a
    // refusal leaves the graph as it was.
    let before = g.clone();
    assert!(g.remove_edge(c, sel, 0).is_err());
    assert_eq!(g, before);
    g.remove_edge(r1, sel, 0).unwrap();
    let one_branch = g.clone();
    let r2 = g.id("relu2").unwrap();
    assert!(g.remove_edge(r2, sel, 0).is_err());
    assert_eq!(g, one_branch);
    // Nor can an edge come in as a new control, or a select be inserted
    // after a vertex (it needs its control).
    let x = g.id("x").unwrap();
    assert!(g.add_edge(x, sel, Some(0), Default::default()).is_err());
    assert_eq!(g, one_branch);
    let select = graft_core::NewVertex {
        name: "s2".into(),
        kind: SizeKind::Select,
        nout: None,
        constraints: Vec::new(),
    };
    assert!(g
        .commit(&graft_core::Patch::new().insert(r1, select))
        .is_err());
    assert_eq!(g, one_branch);
    g.check().unwrap();
}

#[test]
fn a_fixed_router_keeps_its_size_while_experts_grow() {
    let mut g = Graph::new();
    let x = g.add_input("x", 6).unwrap();
    let router = g.add_absorb("router", &[x], 3).unwrap();
    g.add_constraint(router, Constraint::Fixed).unwrap();
    let experts: Vec<VertexId> = (0..3)
        .map(|i| g.add_absorb(&format!("e{i}"), &[x], 4).unwrap())
        .collect();
    let mut ins = vec![router];
    ins.extend(&experts);
    let moe = g.add_vertex("moe", SizeKind::Select, &ins, None).unwrap();
    let head = g.add_absorb("head", &[moe], 2).unwrap();
    g.change_sizes(&Request::new().nout(moe, 2)).unwrap();
    g.check().unwrap();
    for e in experts {
        assert_eq!(g.nout(e).unwrap(), 6);
    }
    assert_eq!(g.nout(router).unwrap(), 3);
    assert_eq!(g.nin(head).unwrap(), &[6]);
}
