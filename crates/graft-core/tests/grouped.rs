//! Grouped convolutions: sizes change by whole rows of groups, every block
//! keeps the same local neurons, and new ones go at the end of each block,
//! on the output side and on the producer's side.

use graft_core::{plan, Constraint, Graph, Neuron, PlanError, Request, Utility, VertexId};

fn old(v: &[usize]) -> Vec<Neuron> {
    v.iter().map(|&i| Neuron::Old(i)).collect()
}

/// x(4) -> a(8) -> g(6, two groups) -> h(3)
fn graph() -> (Graph, [VertexId; 3]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 4).unwrap();
    let a = g.add_absorb("a", &[x], 8).unwrap();
    let gc = g.add_absorb("g", &[a], 6).unwrap();
    g.add_constraint(gc, Constraint::Grouped { groups: 2 })
        .unwrap();
    let h = g.add_absorb("h", &[gc], 3).unwrap();
    (g, [a, gc, h])
}

#[test]
fn outputs_shrink_and_grow_block_by_block() {
    let (mut g, [_, gc, h]) = graph();
    let p = g
        .change_sizes(
            &Request::new()
                .nout(gc, -2)
                .with_utility(Utility::ascending(&g)),
        )
        .unwrap()
        .plan;
    g.check().unwrap();
    let kept = old(&[1, 2, 4, 5]);
    assert_eq!(p.change(gc).unwrap().outs.as_ref(), Some(&kept));
    assert_eq!(p.change(h).unwrap().ins, vec![Some(kept)]);

    let p = g.change_sizes(&Request::new().nout(gc, 2)).unwrap().plan;
    g.check().unwrap();
    let grown = vec![
        Neuron::Old(0),
        Neuron::Old(1),
        Neuron::New,
        Neuron::Old(2),
        Neuron::Old(3),
        Neuron::New,
    ];
    assert_eq!(p.change(gc).unwrap().outs.as_ref(), Some(&grown));
}

#[test]
fn an_odd_change_is_infeasible() {
    let (g, [_, gc, _]) = graph();
    assert!(matches!(
        plan(&g, &Request::new().nout(gc, -1)),
        Err(PlanError::Infeasible { .. })
    ));
}

#[test]
fn the_producer_keeps_the_same_neurons_in_every_block() {
    let (mut g, [a, gc, _]) = graph();
    let p = g
        .change_sizes(
            &Request::new()
                .nout(a, -2)
                .with_utility(Utility::ascending(&g)),
        )
        .unwrap()
        .plan;
    g.check().unwrap();
    // One local neuron (the least useful, 0) goes from each block.
    let kept = old(&[1, 2, 3, 5, 6, 7]);
    assert_eq!(p.change(a).unwrap().outs.as_ref(), Some(&kept));
    assert_eq!(p.change(gc).unwrap().ins, vec![Some(kept)]);
    assert_eq!(g.nin(gc).unwrap(), &[6]);
}

#[test]
fn the_constraint_is_checked() {
    let (mut g, [a, ..]) = graph();
    assert!(g
        .add_constraint(a, Constraint::Grouped { groups: 3 })
        .is_err());
    assert!(g
        .add_constraint(a, Constraint::Grouped { groups: 0 })
        .is_err());
}
