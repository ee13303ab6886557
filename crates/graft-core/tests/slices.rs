//! Neuron maps and regroupings of the neuron axis: slices and shuffles
//! (ShuffleNet's unit: a channel split, one half through a branch, a
//! concatenation, a channel shuffle), with pruning and growth inside a
//! part, moving slice starts, the shuffle's rows and typed refusals; and
//! blocks (a reshape into aligned groups) and units (heads kept whole).

use graft_core::json::GraphSpec;
use graft_core::{
    plan, Constraint, Graph, GraphError, MutationError, Neuron, Request, SizeKind, VertexId,
};

fn slice(g: &mut Graph, name: &str, input: VertexId, start: usize, len: usize) -> VertexId {
    g.add_vertex_with(
        name,
        SizeKind::Absorb,
        &[input],
        Some(len),
        &[Constraint::Slice { start }],
    )
    .unwrap()
}

/// x(3) -> stem(8) -> {left = stem[0..4], right = stem[4..8] -> branch(4)};
/// cat = left ++ branch (8) -> shuffle(2 groups) -> head(5).
struct Unit {
    g: Graph,
    stem: VertexId,
    left: VertexId,
    right: VertexId,
    branch: VertexId,
    cat: VertexId,
    shuffle: VertexId,
    head: VertexId,
}

fn unit() -> Unit {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let stem = g.add_absorb("stem", &[x], 8).unwrap();
    let left = slice(&mut g, "left", stem, 0, 4);
    let right = slice(&mut g, "right", stem, 4, 4);
    let branch = g.add_absorb("branch", &[right], 4).unwrap();
    let cat = g.add_stack("cat", &[left, branch]).unwrap();
    let shuffle = g
        .add_vertex_with(
            "shuffle",
            SizeKind::Absorb,
            &[cat],
            Some(8),
            &[Constraint::Shuffle { groups: 2 }],
        )
        .unwrap();
    let head = g.add_absorb("head", &[shuffle], 5).unwrap();
    g.check().unwrap();
    Unit {
        g,
        stem,
        left,
        right,
        branch,
        cat,
        shuffle,
        head,
    }
}

fn start(g: &Graph, v: VertexId) -> usize {
    g.vertex(v).unwrap().slice_start().unwrap()
}

#[test]
fn pruning_the_shuffle_removes_whole_rows_and_moves_the_second_part() {
    let mut u = unit();
    // The shuffle ties cat[k] (left's k-th) to cat[4 + k] (branch's k-th):
    // a row of two output neurons. Removing 2 removes one row: one neuron
    // of the first part of stem, one of branch.
    // (Without new neurons: else a new neuron in stem's second part could
    // keep stem's size, which the size penalty likes as much.)
    let p = plan(
        &u.g,
        &Request::new().nout(u.shuffle, -2).without_new_neurons(),
    )
    .unwrap();
    let stem_list = p.change(u.stem).unwrap().outs.clone().unwrap();
    assert_eq!(stem_list.len(), 7);
    // The dropped stem neuron lies in the first part; the second is whole.
    assert_eq!(
        &stem_list[3..],
        &[
            Neuron::Old(4),
            Neuron::Old(5),
            Neuron::Old(6),
            Neuron::Old(7)
        ]
    );
    assert_eq!(p.change(u.right).unwrap().slice_start_after, Some(3));
    p.apply(&mut u.g).unwrap();
    u.g.check().unwrap();
    assert_eq!(start(&u.g, u.right), 3);
    assert_eq!(start(&u.g, u.left), 0);
    assert_eq!(u.g.nout(u.left).unwrap(), 3);
    assert_eq!(u.g.nout(u.branch).unwrap(), 3);
    assert_eq!(u.g.nout(u.cat).unwrap(), 6);
    assert_eq!(u.g.nin(u.head).unwrap(), &[6]);
}

#[test]
fn a_shuffle_changes_only_by_whole_rows() {
    let u = unit();
    // One neuron less would break the rows: relaxed, the planner removes a
    // row of two; exact, it is infeasible.
    assert!(plan(&u.g, &Request::new().nout(u.shuffle, -1)).is_err());
    let mut g = u.g.clone();
    g.change_sizes(&Request::new().nout(u.shuffle, -1)).unwrap();
    assert_eq!(g.nout(u.shuffle).unwrap() % 2, 0);
    assert_ne!(g.nout(u.shuffle).unwrap(), 8);
}

#[test]
fn growing_a_part_adds_at_its_end_and_moves_the_parts_after_it() {
    let mut u = unit();
    let p = plan(&u.g, &Request::new().nout(u.left, 1)).unwrap();
    // One new row: left and branch grow by one, stem grows at the end of
    // its first part (after neuron 3), so the second part starts at 5.
    let stem_list = p.change(u.stem).unwrap().outs.clone().unwrap();
    assert_eq!(stem_list[4], Neuron::New);
    assert_eq!(stem_list.len(), 9);
    p.apply(&mut u.g).unwrap();
    u.g.check().unwrap();
    assert_eq!(start(&u.g, u.right), 5);
    assert_eq!(u.g.nout(u.right).unwrap(), 4);
    assert_eq!(u.g.nout(u.shuffle).unwrap(), 10);
    // The shuffle's new row sits at the end of the output (k = 4), and at
    // the end of each group on its input.
    let sh = p.change(u.shuffle).unwrap();
    assert_eq!(sh.outs.as_ref().unwrap()[8..], [Neuron::New, Neuron::New]);
    assert_eq!(sh.ins[0].as_ref().unwrap()[4], Neuron::New);
    assert_eq!(sh.ins[0].as_ref().unwrap()[9], Neuron::New);
}

#[test]
fn pruning_inside_the_second_part_keeps_the_first_where_it_is() {
    let mut u = unit();
    let p = plan(&u.g, &Request::new().nout(u.right, -2)).unwrap();
    assert_eq!(p.change(u.right).unwrap().slice_start_after, None);
    p.apply(&mut u.g).unwrap();
    u.g.check().unwrap();
    assert_eq!(start(&u.g, u.right), 4);
    assert_eq!(u.g.nout(u.stem).unwrap(), 6);
    assert_eq!(u.g.nout(u.left).unwrap(), 4);
    assert_eq!(u.g.nin(u.branch).unwrap(), &[2]);
}

#[test]
fn bad_slices_and_shuffles_are_typed_refusals() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 6).unwrap();
    let err = g
        .add_vertex_with(
            "past_the_end",
            SizeKind::Absorb,
            &[a],
            Some(4),
            &[Constraint::Slice { start: 3 }],
        )
        .unwrap_err();
    assert!(
        matches!(err, GraphError::InvalidConstraint { ref vertex, .. } if vertex == "past_the_end")
    );
    let err = g
        .add_vertex_with(
            "uneven",
            SizeKind::Absorb,
            &[a],
            Some(6),
            &[Constraint::Shuffle { groups: 4 }],
        )
        .unwrap_err();
    assert!(matches!(err, GraphError::InvalidConstraint { .. }));
    let err = g
        .add_vertex_with(
            "invariant_slice",
            SizeKind::Invariant,
            &[a],
            None,
            &[Constraint::Slice { start: 0 }],
        )
        .unwrap_err();
    assert!(matches!(err, GraphError::InvalidConstraint { .. }));
    // Nothing was left behind by the refused additions.
    assert_eq!(g.len(), 2);
    g.check().unwrap();
}

#[test]
fn a_slice_takes_no_second_input_and_the_graph_stays_as_it_was() {
    let mut u = unit();
    let before = u.g.clone();
    let err =
        u.g.add_edge(u.stem, u.left, None, Default::default())
            .unwrap_err();
    assert!(matches!(err, MutationError::FrozenInputs { ref vertex, .. } if vertex == "left"));
    assert_eq!(u.g, before);
}

#[test]
fn slices_and_shuffles_survive_json() {
    let u = unit();
    let back = GraphSpec::from_graph(&u.g).to_graph().unwrap();
    assert_eq!(back.vertex(u.right).unwrap().slice_start(), Some(4));
    assert_eq!(back.vertex(u.shuffle).unwrap().shuffle_groups(), Some(2));
    back.check().unwrap();
}

/// x(3) -> heads(8, four units of 2) -> out(5).
#[test]
fn units_are_kept_dropped_and_added_whole() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let heads = g
        .add_vertex_with(
            "heads",
            SizeKind::Absorb,
            &[x],
            Some(8),
            &[Constraint::Units { width: 2 }],
        )
        .unwrap();
    g.add_absorb("out", &[heads], 5).unwrap();
    // Utility: head 1 (neurons 2, 3) is the weakest as a whole, though
    // neuron 0 alone is the weakest neuron.
    let mut u = graft_core::Utility::new();
    u.set(heads, vec![0.1, 5.0, 1.0, 1.0, 3.0, 3.0, 4.0, 4.0]);
    let p = plan(&g, &Request::new().with_utility(u.clone()).nout(heads, -2)).unwrap();
    let kept = p.change(heads).unwrap().outs.clone().unwrap();
    assert_eq!(
        kept,
        [0, 1, 4, 5, 6, 7].map(Neuron::Old).to_vec(),
        "head 1 goes, not neuron 0 and another"
    );
    // Half a head is no size.
    assert!(plan(&g, &Request::new().with_utility(u).nout(heads, -1)).is_err());
    // A new head is two new neurons side by side after a whole head.
    let p = plan(&g, &Request::new().nout(heads, 2)).unwrap();
    let grown = p.change(heads).unwrap().outs.clone().unwrap();
    let at = grown.iter().position(|n| *n == Neuron::New).unwrap();
    assert_eq!(at % 2, 0);
    assert_eq!(grown[at + 1], Neuron::New);
    g.change_sizes(&Request::new().nout(heads, 2)).unwrap();
    g.check().unwrap();
    assert_eq!(g.nout(heads).unwrap(), 10);
}

/// x(3) -> a(6) -> norm (invariant, 3 aligned blocks of 2) -> out(4).
#[test]
fn aligned_blocks_lose_the_same_local_neurons() {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let a = g.add_absorb("a", &[x], 6).unwrap();
    let norm = g
        .add_vertex_with(
            "norm",
            SizeKind::Invariant,
            &[a],
            None,
            &[Constraint::Blocks { groups: 3 }],
        )
        .unwrap();
    g.add_absorb("out", &[norm], 4).unwrap();
    let mut u = graft_core::Utility::new();
    // Local neuron 1 is weaker than local neuron 0 summed over the blocks.
    u.set(a, vec![1.0, 0.5, 1.0, 0.5, 1.0, 0.1]);
    let p = plan(&g, &Request::new().with_utility(u).nout(a, -3)).unwrap();
    assert_eq!(
        p.change(a).unwrap().outs.clone().unwrap(),
        [0, 2, 4].map(Neuron::Old).to_vec()
    );
    assert!(plan(&g, &Request::new().nout(a, -1)).is_err());
    let err = g
        .add_vertex_with(
            "uneven",
            SizeKind::Invariant,
            &[a],
            None,
            &[Constraint::Blocks { groups: 4 }],
        )
        .unwrap_err();
    assert!(matches!(err, GraphError::InvalidConstraint { .. }));
}
