//! Depthwise convolutions: output j reads input j / m, so input and output
//! neurons are coupled block by block and new input channels get contiguous
//! blocks of new outputs.

use graft_core::{
    plan, Constraint, Graph, GraphError, Multipliers, Neuron, PlanError, Request, Step, Utility,
    VertexId,
};

/// x(4) -> expand(6) -> bn -> dw(12, multiplier 2) -> bn2 -> project(3).
fn inverted_block() -> (Graph, [VertexId; 4]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 4).unwrap();
    let expand = g.add_absorb("expand", &[x], 6).unwrap();
    let bn = g.add_invariant("bn", &[expand]).unwrap();
    let dw = g.add_absorb("dw", &[bn], 12).unwrap();
    g.add_constraint(dw, Constraint::depthwise(2)).unwrap();
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
        g.add_constraint(expand, Constraint::depthwise(3)),
        Err(GraphError::InvalidConstraint { ref vertex, .. }) if vertex == "expand"
    ));
    assert!(matches!(
        g.add_constraint(bn2, Constraint::depthwise(1)),
        Err(GraphError::InvalidConstraint { .. })
    ));
    assert!(matches!(
        g.add_constraint(dw, Constraint::depthwise(2)),
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
    g.add_constraint(v3, Constraint::depthwise(2)).unwrap();
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

/// The inverted block with the depthwise multiplier free within `choices`.
fn block_with_choices(choices: &[usize]) -> (Graph, [VertexId; 4]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 4).unwrap();
    let expand = g.add_absorb("expand", &[x], 6).unwrap();
    let bn = g.add_invariant("bn", &[expand]).unwrap();
    let dw = g.add_absorb("dw", &[bn], 12).unwrap();
    let choices = Multipliers::new(choices).unwrap();
    g.add_constraint(
        dw,
        Constraint::Depthwise {
            multiplier: 2,
            choices,
        },
    )
    .unwrap();
    let bn2 = g.add_invariant("bn2", &[dw]).unwrap();
    let project = g.add_absorb("project", &[bn2], 3).unwrap();
    (g, [expand, dw, bn2, project])
}

#[test]
fn growing_by_a_larger_multiplier() {
    // +6 on dw: 9 input channels at multiplier 2 (expand +50%, dw +50%:
    // penalty 0.1·1 + 0.8·0.5 = 0.5) or multiplier 3 on the same 6 channels
    // (dw +50% only: 0.05 + 0.4 = 0.45). The second wins.
    let (mut g, [expand, dw, bn2, project]) = block_with_choices(&[2, 3]);
    let done = g.change_sizes(&Request::new().nout(dw, 6)).unwrap();
    g.check().unwrap();
    assert_eq!(g.vertex(dw).unwrap().depthwise(), Some(3));
    assert_eq!(done.plan.change(dw).unwrap().multiplier_after, Some(3));
    assert_eq!(g.nout(expand).unwrap(), 6);
    assert!(done.plan.change(expand).is_none());
    let block = |i: usize| [Neuron::Old(2 * i), Neuron::Old(2 * i + 1), Neuron::New];
    let want: Vec<Neuron> = (0..6).flat_map(block).collect();
    assert_eq!(outs(&done.plan, dw), want);
    assert_eq!(outs(&done.plan, bn2), want);
    assert_eq!(g.nin(project).unwrap(), &[18]);
}

#[test]
fn shrinking_by_a_smaller_multiplier() {
    // −6 on dw: drop 3 input channels (utility 3 + 6 lost) or go to
    // multiplier 1 (utility 6 lost, only dw changes): the second wins, and
    // each block keeps its first output.
    let (mut g, [expand, dw, _, project]) = block_with_choices(&[1, 2]);
    let done = g.change_sizes(&Request::new().nout(dw, -6)).unwrap();
    g.check().unwrap();
    assert_eq!(g.vertex(dw).unwrap().depthwise(), Some(1));
    assert_eq!(g.nout(expand).unwrap(), 6);
    assert_eq!(
        outs(&done.plan, dw),
        (0..6).map(|i| Neuron::Old(2 * i)).collect::<Vec<_>>()
    );
    assert_eq!(g.nin(project).unwrap(), &[6]);
}

#[test]
fn without_choices_the_multiplier_stays() {
    let (mut g, [expand, dw, _, _]) = inverted_block();
    let done = g.change_sizes(&Request::new().nout(dw, 6)).unwrap();
    assert_eq!(g.vertex(dw).unwrap().depthwise(), Some(2));
    assert_eq!(done.plan.change(dw).unwrap().multiplier_after, None);
    assert_eq!(g.nout(expand).unwrap(), 9);
}

#[test]
fn multiplier_choices_in_json_and_their_errors() {
    use graft_core::json::GraphSpec;
    let (g, _) = block_with_choices(&[1, 2, 4]);
    let text = serde_json::to_string(&GraphSpec::from_graph(&g)).unwrap();
    assert!(
        text.contains(r#"{"depthwise":{"multiplier":2,"choices":[1,2,4]}}"#),
        "{text}"
    );
    let back: GraphSpec = serde_json::from_str(&text).unwrap();
    let g2 = back.to_graph().unwrap();
    assert_eq!(
        g2.vertex(g2.id("dw").unwrap())
            .unwrap()
            .multiplier_choices(),
        vec![1, 2, 4]
    );
    let bad = text.replace("[1,2,4]", "[1,64]");
    let err = serde_json::from_str::<GraphSpec>(&bad).unwrap_err();
    assert!(err.to_string().contains("multiplier 64"), "{err}");

    let (mut g, _) = inverted_block();
    let dw2 = g.id("dw").unwrap();
    let before = g.clone();
    let c = Constraint::Depthwise {
        multiplier: 2,
        choices: Multipliers::new(&[1, 3]).unwrap(),
    };
    assert!(matches!(
        g.add_constraint(dw2, c),
        Err(GraphError::InvalidConstraint { ref reason, .. }) if reason.contains("do not include")
    ));
    assert_eq!(g, before);
    assert_eq!(
        g2.vertex(g2.id("dw").unwrap()).unwrap().depthwise(),
        Some(2)
    );
}
