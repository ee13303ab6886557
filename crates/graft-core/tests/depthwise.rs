//! Depthwise convolutions: output j reads input j / m, so input and output
//! neurons are coupled block by block and new input channels get contiguous
//! blocks of new outputs.

use graft_core::{
    plan, Constraint, Graph, GraphError, Neuron, PlanError, Request, Step, Utility, VertexId,
};

/// x(4) -> expand(6) -> bn -> dw(12, multiplier 2) -> bn2 -> project(3).
fn inverted_block() -> (Graph, [VertexId; 4]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 4).unwrap();
    let expand = g.add_absorb("expand", &[x], 6).unwrap();
    let bn = g.add_invariant("bn", &[expand]).unwrap();
    let dw = g.add_absorb("dw", &[bn], 12).unwrap();
    g.add_constraint(dw, Constraint::Depthwise { multiplier: 2 })
        .unwrap();
    let bn2 = g.add_invariant("bn2", &[dw]).unwrap();
    let project = g.add_absorb("project", &[bn2], 3).unwrap();
    (g, [expand, dw, bn2, project])
}

fn outs(p: &graft_core::Plan, v: VertexId) -> Vec<Neuron> {
    p.change(v).unwrap().outs.clone().unwrap()
}

#[test]
fn pruning_an_input_channel_drops_its_block() {
    let (mut g, [expand, dw, bn2, project]) = inverted_block();
    assert_eq!(g.size_component(expand).unwrap().len(), 4);
    let req = Request::new()
        .nout(expand, -2)
        .with_utility(Utility::new().with(expand, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    let done = g.change_sizes(&req).unwrap();
    let old = |r: std::ops::Range<usize>| r.map(Neuron::Old).collect::<Vec<_>>();
    assert_eq!(outs(&done.plan, expand), old(2..6));
    assert_eq!(outs(&done.plan, dw), old(4..12));
    assert_eq!(outs(&done.plan, bn2), old(4..12));
    assert_eq!(g.nin(project).unwrap(), &[8]);
    g.check().unwrap();
}

#[test]
fn a_new_input_channel_gets_a_contiguous_block() {
    let (mut g, [expand, dw, _, project]) = inverted_block();
    let done = g.change_sizes(&Request::new().nout(expand, 1)).unwrap();
    let mut want: Vec<Neuron> = (0..12).map(Neuron::Old).collect();
    want.extend([Neuron::New, Neuron::New]);
    assert_eq!(outs(&done.plan, dw), want);
    assert_eq!(g.nin(project).unwrap(), &[14]);
    g.check().unwrap();
}

#[test]
fn odd_changes_of_the_output_relax_to_whole_blocks() {
    let (mut g, [_, dw, _, _]) = inverted_block();
    assert!(matches!(
        plan(&g, &Request::new().nout(dw, 1)),
        Err(PlanError::Infeasible { .. })
    ));
    let done = g.change_sizes(&Request::new().nout(dw, 1)).unwrap();
    assert_eq!(done.step, Step::Relaxed);
    assert_eq!(g.nout(dw).unwrap(), 14);
}

#[test]
fn depthwise_needs_matching_sizes_and_one_input() {
    let (mut g, [expand, dw, bn2, _]) = inverted_block();
    let before = g.clone();
    assert!(matches!(
        g.add_constraint(expand, Constraint::Depthwise { multiplier: 3 }),
        Err(GraphError::InvalidConstraint { ref vertex, .. }) if vertex == "expand"
    ));
    assert!(matches!(
        g.add_constraint(bn2, Constraint::Depthwise { multiplier: 1 }),
        Err(GraphError::InvalidConstraint { .. })
    ));
    assert!(matches!(
        g.add_constraint(dw, Constraint::Depthwise { multiplier: 2 }),
        Ok(())
    ));
    assert_eq!(g, before);
}

/// Pinned from a shrunk property-test failure: an absorbing vertex whose two
/// neurons are one class (tied to both outputs of a depthwise block through
/// an add). A new neuron must land after the block in every vertex.
#[test]
fn growth_through_a_block_tied_to_an_absorbing_vertex() {
    let mut g = Graph::new();
    let x = g.add_input("in0", 1).unwrap();
    let v0 = g.add_absorb("v0", &[x], 2).unwrap();
    let v2 = g.add_absorb("v2", &[x], 1).unwrap();
    let v3 = g.add_absorb("v3", &[v2], 2).unwrap();
    g.add_constraint(v3, Constraint::Depthwise { multiplier: 2 })
        .unwrap();
    let v4 = g.add_invariant("v4", &[v3, v0]).unwrap();
    let done = g
        .change_sizes(&Request::new().nout_relaxed(v0, -2))
        .unwrap();
    g.check().unwrap();
    let block = vec![Neuron::Old(0), Neuron::Old(1), Neuron::New, Neuron::New];
    for v in [v0, v3, v4] {
        assert_eq!(outs(&done.plan, v), block, "{}", g.name(v));
    }
    assert_eq!(outs(&done.plan, v2), vec![Neuron::Old(0), Neuron::New]);
}
