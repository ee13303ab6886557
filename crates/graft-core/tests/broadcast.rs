//! Broadcast inputs of invariant vertices (numpy broadcasting along the
//! neuron axis): a layer norm's `x - mean(x)` reads the mean `[N, T, 1]`,
//! whose size is free, beside `x`, whose neurons are tied to the output.

use graft_core::{plan, Alignment, Constraint, Graph, Request, SizeKind, Step, VertexId};

/// x -> fc (8) -> {mean (1, fixed), centred = fc - mean (broadcast)} -> head.
fn centred() -> (Graph, [VertexId; 5]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 6).unwrap();
    let fc = g.add_absorb("fc", &[x], 8).unwrap();
    let mean = g
        .add_vertex_with(
            "mean",
            SizeKind::Absorb,
            &[fc],
            Some(1),
            &[Constraint::Fixed],
        )
        .unwrap();
    let sub = g
        .add_vertex_with(
            "centred",
            SizeKind::Invariant,
            &[fc, mean],
            None,
            &[Constraint::Broadcast { input: 1 }],
        )
        .unwrap();
    let head = g.add_absorb("head", &[sub], 3).unwrap();
    (g, [fc, mean, sub, head, x])
}

#[test]
fn a_broadcast_input_keeps_its_size_while_the_tied_ones_change() {
    let (mut g, [fc, mean, sub, head, _]) = centred();
    g.check().unwrap();
    assert_eq!(g.nin(sub).unwrap(), &[8, 1]);
    assert_eq!(g.size_component(fc).unwrap(), vec![fc, sub]);
    let done = g.change_sizes(&Request::new().nout(fc, -3)).unwrap();
    assert_eq!(done.step, Step::Exact);
    g.check().unwrap();
    assert_eq!(g.nout(fc).unwrap(), 5);
    assert_eq!(g.nout(sub).unwrap(), 5);
    assert_eq!(g.nin(sub).unwrap(), &[5, 1]);
    assert_eq!(g.nout(mean).unwrap(), 1);
    assert_eq!(g.nin(mean).unwrap(), &[5]);
    assert_eq!(g.nin(head).unwrap(), &[5]);
}

#[test]
fn the_plan_lists_the_tied_input_and_leaves_the_broadcast_one() {
    let (g, [fc, _, sub, _, _]) = centred();
    let p = plan(&g, &Request::new().nout(sub, 2)).unwrap();
    let c = p.change(sub).unwrap();
    assert_eq!(c.nout_after, 10);
    // Input 0 follows fc's new list; input 1 (the mean) is unchanged.
    assert!(c.ins[0].is_some());
    assert!(c.ins[1].is_none());
    assert_eq!(p.change(fc).unwrap().nout_after, 10);
}

#[test]
fn every_input_broadcast_is_refused_and_leaves_the_graph_as_it_was() {
    let (mut g, [fc, mean, _, _, _]) = centred();
    let before = g.clone();
    let all_free = [
        Constraint::Broadcast { input: 0 },
        Constraint::Broadcast { input: 1 },
    ];
    assert!(g
        .add_vertex_with("bad", SizeKind::Invariant, &[fc, mean], None, &all_free)
        .is_err());
    assert_eq!(g, before);
    // A constraint refused after the vertex went in takes the vertex out
    // again (revision included).
    assert!(g
        .add_vertex_with(
            "bad",
            SizeKind::Invariant,
            &[fc, fc],
            None,
            &[Constraint::Broadcast { input: 5 }],
        )
        .is_err());
    assert_eq!(g, before);
    assert!(g.id("bad").is_err());
    // Only invariant vertices have broadcast inputs.
    assert!(g
        .add_vertex_with(
            "bad",
            SizeKind::Absorb,
            &[fc],
            Some(2),
            &[Constraint::Broadcast { input: 0 }],
        )
        .is_err());
    assert_eq!(g, before);
}

#[test]
fn sizes_of_tied_inputs_must_agree_but_a_broadcast_one_may_differ() {
    let (mut g, [fc, mean, _, _, x]) = centred();
    // fc (8) and x (6) both tied: refused.
    assert!(g
        .add_vertex_with("bad", SizeKind::Invariant, &[fc, x], None, &[])
        .is_err());
    // x broadcast: accepted, nout from fc.
    let v = g
        .add_vertex_with(
            "scaled",
            SizeKind::Invariant,
            &[x, fc, mean],
            None,
            &[
                Constraint::Broadcast { input: 0 },
                Constraint::Broadcast { input: 2 },
            ],
        )
        .unwrap();
    assert_eq!(g.nout(v).unwrap(), 8);
    g.check().unwrap();
}

#[test]
fn the_last_tied_input_cannot_be_disconnected() {
    let (mut g, [fc, mean, sub, _, _]) = centred();
    let before = g.clone();
    assert!(g.remove_edge(fc, sub, 0).is_err());
    assert_eq!(g, before);
    // The broadcast input can go; the tied one stays.
    g.remove_edge(mean, sub, 0).unwrap();
    g.check().unwrap();
    assert_eq!(g.nin(sub).unwrap(), &[8]);
    assert!(!g.vertex(sub).unwrap().is_broadcast(0));
}

#[test]
fn broadcast_positions_follow_new_and_removed_edges() {
    let (mut g, [fc, mean, sub, _, _]) = centred();
    // A new tied input at position 0 shifts the broadcast mean to 2.
    let relu = g.add_invariant("relu", &[fc]).unwrap();
    g.add_edge(relu, sub, Some(0), Alignment::default())
        .unwrap();
    g.check().unwrap();
    assert_eq!(g.nin(sub).unwrap(), &[8, 8, 1]);
    assert!(g.vertex(sub).unwrap().is_broadcast(2));
    assert!(!g.vertex(sub).unwrap().is_broadcast(1));
    let _ = mean;
}
