//! Structural mutations beyond the acceptance scenarios: exact undo on
//! duplicated inputs (the failures of NaiveNASlib issues #62, #64, #65 and
//! #66), patches that batch several edits, inserts that resize, and typed
//! errors for bad input.

use graft_core::{
    Alignment, Applied, Connect, Edit, Graph, MutationError, Neuron, NewVertex, Patch, PlanError,
    Request, Reroute, VertexId,
};

fn old(range: impl IntoIterator<Item = usize>) -> Vec<Neuron> {
    range.into_iter().map(Neuron::Old).collect()
}

fn inputs(g: &Graph, v: VertexId) -> Vec<VertexId> {
    g.vertex(v).unwrap().inputs().to_vec()
}

/// `v3 = conc(v0, v1, v2)` with `v4 = lin(v3)` and `v5 = lin(v2)` (issue #64).
fn issue64() -> (Graph, [VertexId; 6]) {
    let mut g = Graph::new();
    let v0 = g.add_input("v0", 3).unwrap();
    let v1 = g.add_absorb("v1", &[v0], 5).unwrap();
    let v2 = g.add_absorb("v2", &[v0], 4).unwrap();
    let v3 = g.add_stack("v3", &[v0, v1, v2]).unwrap();
    let v4 = g.add_absorb("v4", &[v3], 3).unwrap();
    let v5 = g.add_absorb("v5", &[v2], 2).unwrap();
    (g, [v0, v1, v2, v3, v4, v5])
}

#[test]
fn refused_patch_restores_the_removed_edge_at_its_position() {
    // Issue #64: a reverted remove_edge came back at the last position.
    let (mut g, [v0, v1, v2, v3, ..]) = issue64();
    let before = g.clone();
    // The edge removal succeeds inside the draft; the second edit (removing
    // a graph input) is refused, so the whole patch is.
    let patch = Patch::new().remove_edge(v1, v3).remove(v0);
    let err = g.commit(&patch).unwrap_err();
    assert!(matches!(err, MutationError::NotRemovable { .. }), "{err}");
    assert_eq!(g, before);
    assert_eq!(inputs(&g, v3), [v0, v1, v2]);
    assert_eq!(g.nin(v3).unwrap(), [3, 5, 4]);
}

#[test]
fn refused_stack_edge_removal_restores_sizes() {
    // Issue #65: after a failed output selection the stack was left too big.
    // Here the stack feeds an add whose other input is a graph input, so its
    // slice cannot be dropped.
    let mut g = Graph::new();
    let x = g.add_input("x", 12).unwrap();
    let v0 = g.add_input("v0", 3).unwrap();
    let v1 = g.add_absorb("v1", &[v0], 3).unwrap();
    let v2 = g.add_absorb("v2", &[v0], 4).unwrap();
    let v3 = g.add_absorb("v3", &[v0], 5).unwrap();
    let v4 = g.add_stack("v4", &[v1, v2, v3]).unwrap();
    let add = g.add_invariant("add", &[v4, x]).unwrap();
    g.add_absorb("v5", &[add], 3).unwrap();
    let before = g.clone();
    let err = g.remove_edge(v2, v4, 0).unwrap_err();
    assert_eq!(
        err,
        MutationError::Misaligned {
            source_vertex: "v4".into(),
            vertex: "x".into(),
            why: "it cannot change size (it is an input)".into()
        }
    );
    assert_eq!(g, before);
    assert_eq!(g.nin(v4).unwrap(), [3, 4, 5]);
    assert_eq!(g.nout(v4).unwrap(), 12);
}

#[test]
fn stack_edge_removal_drops_exactly_that_slice() {
    // Issue #66 (open there): the consumers kept the first 8 columns instead
    // of dropping the removed input's slice.
    let mut g = Graph::new();
    let v0 = g.add_input("v0", 3).unwrap();
    let v1 = g.add_absorb("v1", &[v0], 3).unwrap();
    let v2 = g.add_absorb("v2", &[v0], 4).unwrap();
    let v3 = g.add_absorb("v3", &[v0], 5).unwrap();
    let v4 = g.add_stack("v4", &[v1, v2, v3]).unwrap();
    let v5 = g.add_absorb("v5", &[v4], 3).unwrap();
    let done = g.remove_edge(v2, v4, 0).unwrap();
    assert_eq!(inputs(&g, v4), [v1, v3]);
    let Applied::EdgeRemoved { follow, .. } = &done.steps[0] else {
        panic!("edge removal expected: {:?}", done.steps)
    };
    let keep = [old(0..3), old(7..12)].concat();
    let c4 = follow.iter().find(|c| c.vertex == v4).unwrap();
    assert_eq!(c4.outs.as_ref(), Some(&keep));
    let c5 = follow.iter().find(|c| c.vertex == v5).unwrap();
    assert_eq!(c5.ins, [Some(keep)]);
    // The sources are untouched.
    assert!(follow.iter().all(|c| ![v1, v2, v3].contains(&c.vertex)));
}

#[test]
fn refused_changes_on_duplicated_inputs_restore_exact_positions() {
    // Issue #62: reverting on a vertex that is an input several times.
    let mut g = Graph::new();
    let x = g.add_input("in", 2).unwrap();
    let l1 = g.add_absorb("l1", &[x], 3).unwrap();
    let l2 = g.add_absorb("l2", &[x], 5).unwrap();
    let merged = g.add_stack("merged", &[l1, l2, l1]).unwrap();
    let add = g.add_invariant("add", &[l1, l1]).unwrap();
    g.add_absorb("out", &[merged], 3).unwrap();
    g.add_absorb("out2", &[add], 3).unwrap();
    let before = g.clone();

    // Removing l1 needs in (2) and l1 (3) aligned; growing the input is
    // impossible and the chain allows nothing else.
    let only_grow = Alignment::only(graft_core::Align::IncreaseSmaller);
    let err = g
        .remove_vertex_with(l1, Connect::Inputs, only_grow)
        .unwrap_err();
    assert!(matches!(err, MutationError::Unaligned { .. }), "{err}");
    assert_eq!(g, before);
    assert_eq!(inputs(&g, merged), [l1, l2, l1]);
    assert_eq!(inputs(&g, add), [l1, l1]);

    // Removing both occurrences from the add leaves it without inputs.
    let err = g
        .commit(&Patch::new().remove_edge(l1, add).remove_edge(l1, add))
        .unwrap_err();
    assert_eq!(
        err,
        MutationError::LastInput {
            vertex: "add".into()
        }
    );
    assert_eq!(g, before);

    // A graph cycle through a duplicated edge is named and refused.
    let err = g
        .add_edge(merged, l1, None, Alignment::default())
        .unwrap_err();
    assert!(matches!(err, MutationError::Check(_)), "{err}");
    assert_eq!(g, before);

    // With Connect::Nothing, both occurrences go and the stack shrinks.
    let done = g.remove_vertex_with(l1, Connect::Nothing, Alignment::default());
    // The add would be left without inputs: refused, untouched.
    assert_eq!(
        done.unwrap_err(),
        MutationError::LastInput {
            vertex: "add".into()
        }
    );
    assert_eq!(g, before);
}

#[test]
fn patch_is_solved_on_the_draft_and_committed_once() {
    let (mut g, [_, v1, v2, v3, v4, _]) = issue64();
    let rev = g.revision();
    let patch = Patch::new()
        .insert(v1, NewVertex::absorb("w", 7))
        .remove_edge(v2, v3)
        .resize(Request::new().nout(v4, 2))
        .push(Edit::AddEdge {
            from: "w".into(),
            to: v3.into(),
            position: Some(0),
            align: Alignment::default(),
        });
    let done = g.commit(&patch).unwrap();
    g.check().unwrap();
    assert_eq!(g.revision(), rev + 1);
    let w = g.id("w").unwrap();
    assert_eq!(done.created, [w]);
    assert_eq!(g.nout(w).unwrap(), 7);
    assert_eq!(inputs(&g, v3), [w, g.id("v0").unwrap(), w]);
    assert_eq!(g.nin(v3).unwrap(), [7, 3, 7]);
    assert_eq!(g.nout(v4).unwrap(), 5);
    assert_eq!(done.steps.len(), 5, "{:?}", done.steps);
}

#[test]
fn insert_resizes_the_consumers_or_is_refused() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 4).unwrap();
    let r = g.add_invariant("r", &[a]).unwrap();
    let b = g.add_absorb("b", &[r], 2).unwrap();
    let done = g
        .insert_after(a, NewVertex::absorb("a2", 6), Reroute::All)
        .unwrap();
    g.check().unwrap();
    let a2 = done.created[0];
    assert_eq!(g.nin(r).unwrap(), [6]);
    assert_eq!(g.nin(b).unwrap(), [6]);
    assert_eq!(g.nin(a2).unwrap(), [4]);

    // After an input whose consumer is immutable, a wider layer cannot fit.
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    g.add_immutable("head", &[x], 1).unwrap();
    let before = g.clone();
    let err = g
        .insert_after(x, NewVertex::absorb("wide", 5), Reroute::All)
        .unwrap_err();
    assert!(
        matches!(err, MutationError::Plan(PlanError::Infeasible { .. })),
        "{err}"
    );
    assert_eq!(g, before);
}

#[test]
fn bad_input_is_a_typed_error_naming_the_culprit() {
    let (mut g, [v0, v1, _, v3, v4, _]) = issue64();
    let before = g.clone();
    let cases: Vec<(Patch, MutationError)> = vec![
        (
            Patch::new().remove("nope"),
            MutationError::Graph(graft_core::GraphError::UnknownVertex {
                name: "nope".into(),
            }),
        ),
        (
            Patch::new().insert(v1, NewVertex::absorb("v2", 3)),
            MutationError::Graph(graft_core::GraphError::DuplicateName { name: "v2".into() }),
        ),
        (
            Patch::new().add_edge(v4, v0),
            MutationError::FrozenInputs {
                vertex: "v0".into(),
                why: "it is an input".into(),
            },
        ),
        (
            Patch::new().push(Edit::AddEdge {
                from: v1.into(),
                to: v3.into(),
                position: Some(9),
                align: Alignment::default(),
            }),
            MutationError::BadPosition {
                vertex: "v3".into(),
                position: 9,
                inputs: 3,
            },
        ),
        (
            Patch::new().remove_edge(v4, v1),
            MutationError::NoSuchEdge {
                from: "v4".into(),
                to: "v1".into(),
                nth: 0,
                count: 0,
            },
        ),
        (
            Patch::new().insert(
                v1,
                NewVertex {
                    nout: Some(2),
                    ..NewVertex::invariant("act")
                },
            ),
            MutationError::BadNewVertex {
                vertex: "act".into(),
                why: "kind invariant takes the size of `v1` (5), not 2".into(),
            },
        ),
        (
            Patch::new().push(Edit::Insert {
                after: v1.into(),
                vertex: NewVertex::invariant("act"),
                reroute: Reroute::Only(vec![v4.into()]),
                utility: Default::default(),
            }),
            MutationError::NotAConsumer {
                vertex: "v1".into(),
                consumer: "v4".into(),
            },
        ),
    ];
    for (patch, want) in cases {
        assert_eq!(g.commit(&patch).unwrap_err(), want);
        assert_eq!(g, before);
    }
    // A removed id is no longer valid.
    let done = g.remove_vertex(v4).unwrap();
    assert_eq!(done.invalidated, [v4]);
    assert!(matches!(
        g.remove_vertex(v4).unwrap_err(),
        MutationError::Graph(graft_core::GraphError::UnknownId { .. })
    ));
}

#[test]
fn change_both_finds_the_nearest_common_size() {
    // The input side is three copies of v1 (a multiple of 3); v2 changes in
    // steps of 2. 15 and 16 cannot meet by moving one side: 18 is the
    // nearest size both sides can reach.
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 5).unwrap();
    let ids: Vec<VertexId> = (0..3)
        .map(|i| g.add_invariant(&format!("id{i}"), &[v1]).unwrap())
        .collect();
    let join = g.add_stack("join", &ids).unwrap();
    let v2 = g.add_absorb("v2", &[join], 16).unwrap();
    g.add_constraint(v2, graft_core::Constraint::NoutStep { step: 2 })
        .unwrap();
    let v3 = g.add_absorb("v3", &[v2], 4).unwrap();
    let before = g.clone();

    let err = g
        .remove_vertex_with(
            v2,
            Connect::Inputs,
            Alignment {
                chain: vec![
                    graft_core::Align::IncreaseSmaller,
                    graft_core::Align::DecreaseBigger,
                ],
                utility: Default::default(),
            },
        )
        .unwrap_err();
    let MutationError::Unaligned { tried, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(tried.len(), 2, "{tried:?}");
    assert_eq!(g, before);

    let done = g.remove_vertex(v2).unwrap();
    g.check().unwrap();
    assert_eq!(g.nin(v3).unwrap(), [18]);
    assert_eq!(g.nout(v1).unwrap(), 6);
    assert!(matches!(
        done.steps[0],
        Applied::Resize {
            reason: graft_core::Reason::Align(graft_core::Align::ChangeBoth),
            ..
        }
    ));
}
