//! Scenarios A14-A24 of shared/acceptance/mutation.md: structural mutations
//! (sizes, wiring and index lists; indices there are 1-based, here 0-based).
//! The output values of A19, A20, A22 and A24 belong to the layers crate.

use graft_core::{
    Align, Alignment, Applied, Committed, Connect, Graph, MutationError, Neuron, NewVertex, Plan,
    Reason, Ref, Reroute, Utility, VertexId,
};

fn old(range: impl IntoIterator<Item = usize>) -> Vec<Neuron> {
    range.into_iter().map(Neuron::Old).collect()
}

fn news(n: usize) -> Vec<Neuron> {
    vec![Neuron::New; n]
}

fn inputs(g: &Graph, v: VertexId) -> Vec<VertexId> {
    g.vertex(v).unwrap().inputs().to_vec()
}

fn nin(g: &Graph, v: VertexId) -> Vec<usize> {
    g.nin(v).unwrap().to_vec()
}

/// The single size plan of a committed mutation, with its reason.
fn the_resize(done: &Committed) -> (&Plan, Reason) {
    let plans: Vec<(&Plan, Reason)> = done
        .steps
        .iter()
        .filter_map(|s| match s {
            Applied::Resize { plan, reason, .. } => Some((plan, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(plans.len(), 1, "one size plan expected: {done:?}");
    plans[0]
}

fn outs(p: &Plan, v: VertexId) -> Option<Vec<Neuron>> {
    p.change(v).and_then(|c| c.outs.clone())
}

fn ins(p: &Plan, v: VertexId) -> Vec<Option<Vec<Neuron>>> {
    p.change(v).map(|c| c.ins.clone()).unwrap_or_default()
}

/// The follow-up index lists of an edge edit.
fn follow(done: &Committed) -> &[graft_core::VertexChange] {
    done.steps
        .iter()
        .find_map(|s| match s {
            Applied::EdgeAdded { follow, .. } | Applied::EdgeRemoved { follow, .. } => {
                Some(follow.as_slice())
            }
            _ => None,
        })
        .expect("an edge step")
}

fn follow_ins(done: &Committed, v: VertexId) -> Vec<Option<Vec<Neuron>>> {
    follow(done)
        .iter()
        .find(|c| c.vertex == v)
        .map(|c| c.ins.clone())
        .expect("vertex in the follow list")
}

#[test]
fn a14_remove_vertex_nin_ne_nout() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 5).unwrap();
    let v2 = g.add_absorb("v2", &[v1], 4).unwrap();
    let v3 = g.add_absorb("v3", &[v2], 6).unwrap();

    let done = g.remove_vertex(v2).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v3), [5]);
    assert_eq!(inputs(&g, v3), [v1]);
    let (p, why) = the_resize(&done);
    assert_eq!(why, Reason::Align(Align::IncreaseSmaller));
    assert_eq!(outs(p, v2), Some([old(0..4), news(1)].concat()));
    assert_eq!(ins(p, v3), [Some([old(0..4), news(1)].concat())]);
    assert_eq!(done.invalidated, [v2]);

    // The input is immutable, so the bigger side (v1) shrinks instead.
    let done = g.remove_vertex(v1).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v3), [3]);
    assert_eq!(inputs(&g, v3), [x]);
    assert_eq!(the_resize(&done).1, Reason::Align(Align::DecreaseBigger));

    // Index variant.
    let build = || {
        let mut g = Graph::new();
        let x = g.add_input("in", 3).unwrap();
        let v1 = g.add_absorb("v1", &[x], 2).unwrap();
        let v2 = g.add_invariant("v2", &[v1]).unwrap();
        let v3 = g.add_absorb("v3", &[v2], 4).unwrap();
        let v4 = g.add_absorb("v4", &[v3], 3).unwrap();
        (g, [v1, v2, v3, v4])
    };
    let (mut g, [v1, v2, v3, v4]) = build();
    let done = g.remove_vertex(v3).unwrap();
    let (p, _) = the_resize(&done);
    let grown = [old(0..2), news(2)].concat();
    assert_eq!(outs(p, v1), Some(grown.clone()));
    assert_eq!(outs(p, v2), Some(grown));
    // v3's outputs are untouched, so v4 keeps all four input columns, in order.
    assert!(outs(p, v3).is_none() && p.change(v4).is_none());
    assert_eq!(inputs(&g, v4), [v2]);
    assert_eq!(nin(&g, v4), [4]);

    let (mut g, [v1, _, v3, v4]) = build();
    let al = Alignment::only(Align::DecreaseBigger).with_utility(Utility::ascending(&g));
    let done = g.remove_vertex_with(v3, Connect::Inputs, al).unwrap();
    let (p, _) = the_resize(&done);
    assert_eq!(ins(p, v4), [Some(old([2, 3]))]);
    assert!(p.change(v1).is_none());
    assert_eq!(g.nout(v1).unwrap(), 2);
    assert_eq!(nin(&g, v4), [2]);
}

#[test]
fn a15_remove_input_of_concat() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 4).unwrap();
    let v2 = g.add_absorb("v2", &[x], 5).unwrap();
    let v3 = g.add_absorb("v3", &[x], 6).unwrap();
    let v4 = g.add_stack("v4", &[v1, v2, v3]).unwrap();
    let v5 = g.add_absorb("v5", &[v4], 7).unwrap();

    g.remove_vertex(v2).unwrap();
    g.check().unwrap();
    assert_eq!(inputs(&g, v4), [v1, x, v3]);
    assert_eq!(nin(&g, v4), [4, 3, 6]);
    assert_eq!(nin(&g, v5), [13]);

    let done = g
        .remove_vertex_with(v1, Connect::Nothing, Alignment::default())
        .unwrap();
    g.check().unwrap();
    assert_eq!(inputs(&g, v4), [x, v3]);
    assert_eq!(nin(&g, v5), [9]);
    // v5 drops exactly the four columns that came from v1.
    assert_eq!(follow_ins(&done, v5), [Some(old(4..13))]);
}

#[test]
fn a16_remove_inside_residual() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 10).unwrap();
    let v2 = g.add_absorb("v2", &[v1], 3).unwrap();
    let v3 = g.add_stack("v3", &[v2]).unwrap();
    let v4 = g.add_absorb("v4", &[v3], 10).unwrap();
    let v5 = g.add_invariant("v5", &[v4, v1]).unwrap();
    let v6 = g.add_absorb("v6", &[v5], 4).unwrap();

    g.remove_vertex(v4).unwrap();
    assert_eq!(inputs(&g, v5), [v3, v1]);
    g.remove_vertex(v3).unwrap();
    assert_eq!(inputs(&g, v5), [v2, v1]);
    g.remove_vertex(v2).unwrap();
    assert_eq!(inputs(&g, v5), [v1, v1]);
    assert_eq!(nin(&g, v5), [10, 10]);
    g.check().unwrap();

    let v7 = g.add_absorb("v7", &[v6], 13).unwrap();
    g.remove_vertex(v6).unwrap();
    assert_eq!(nin(&g, v7), [10]);

    let v8 = g.add_absorb("v8", &[v7], 3).unwrap();
    g.remove_vertex(v7).unwrap();
    assert_eq!(nin(&g, v5), [13, 13]);
    assert_eq!(inputs(&g, v8), [v5]);
    g.check().unwrap();
}

/// The A17 graph; `split` replaces p1 by two absorbing layers p1a -> p1b.
fn a17_graph(split: bool) -> (Graph, Vec<VertexId>) {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 3).unwrap();
    let v2 = g.add_absorb("v2", &[v1], 5).unwrap();
    let v3 = g.add_invariant("v3", &[v2]).unwrap();
    let mut ps = Vec::new();
    let p1 = if split {
        let a = g.add_absorb("p1a", &[v3], 3).unwrap();
        ps.push(a);
        g.add_absorb("p1b", &[a], 3).unwrap()
    } else {
        g.add_absorb("p1", &[v3], 3).unwrap()
    };
    ps.push(p1);
    let p2 = g.add_absorb("p2", &[v3], 2).unwrap();
    let v4 = g.add_stack("v4", &[p1, p2]).unwrap();
    let v5 = g.add_invariant("v5", &[v4, v2]).unwrap();
    let mut ids = vec![v1, v2, v3, p2, v4, v5];
    ids.extend(ps);
    (g, ids)
}

#[test]
fn a17_size_cycle_refuses_removal() {
    let (mut g, ids) = a17_graph(false);
    let p1 = g.id("p1").unwrap();
    let before = g.clone();
    let err = g.remove_vertex(p1).unwrap_err();
    assert_eq!(
        err,
        MutationError::SizeCycle {
            vertices: ["v5", "v4", "v3", "v2", "v5"].map(String::from).to_vec()
        }
    );
    assert_eq!(g, before);
    assert_eq!(ids.len(), 7);

    for name in ["p1a", "p1b"] {
        let (mut g, _) = a17_graph(true);
        let v = g.id(name).unwrap();
        g.remove_vertex(v).unwrap();
        g.check().unwrap();
        assert!(g.id(name).is_err());
    }
}

#[test]
fn a18_size_cycle_refuses_edge() {
    let (mut g, _) = a17_graph(false);
    let (p1, v5) = (g.id("p1").unwrap(), g.id("v5").unwrap());
    let before = g.clone();
    let err = g.add_edge(p1, v5, None, Alignment::default()).unwrap_err();
    assert!(
        matches!(&err, MutationError::SizeCycle { vertices } if vertices.contains(&"p1".to_string()))
    );
    assert_eq!(g, before);

    // Variant: ve = id(v1), v4 = conc(id(v2)), v5 = v4 + v2; edge ve -> v4.
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 3).unwrap();
    let v2 = g.add_absorb("v2", &[v1], 5).unwrap();
    let ve = g.add_invariant("ve", &[v1]).unwrap();
    let i2 = g.add_invariant("i2", &[v2]).unwrap();
    let v4 = g.add_stack("v4", &[i2]).unwrap();
    g.add_invariant("v5", &[v4, v2]).unwrap();
    let before = g.clone();
    let err = g.add_edge(ve, v4, None, Alignment::default()).unwrap_err();
    assert!(matches!(err, MutationError::SizeCycle { .. }), "{err}");
    assert_eq!(g, before);
}

#[test]
fn a19_add_edge_into_concat() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 3).unwrap();
    let v2 = g.add_absorb("v2", &[x], 4).unwrap();
    let v3 = g.add_absorb("v3", &[x], 5).unwrap();
    let v4 = g.add_stack("v4", &[v1, v2]).unwrap();
    let v5 = g.add_absorb("v5", &[v4], 3).unwrap();

    let done = g.add_edge(v3, v4, None, Alignment::default()).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v4), [3, 4, 5]);
    assert_eq!(follow_ins(&done, v5), [Some([old(0..7), news(5)].concat())]);
    // The sources keep all their neurons: no size plan, no change to them.
    assert!(done
        .steps
        .iter()
        .all(|s| !matches!(s, Applied::Resize { .. })));
    assert!(follow(&done)
        .iter()
        .all(|c| ![v1, v2, v3].contains(&c.vertex)));
    assert_eq!(done.resized, [v4, v5]);
}

#[test]
fn a20_add_edge_into_add_with_size_mismatch() {
    let mut g = Graph::new();
    let in1 = g.add_input("in1", 3).unwrap();
    let in2 = g.add_input("in2", 2).unwrap();
    let l1 = g.add_absorb("l1", &[in1], 4).unwrap();
    let l2 = g.add_absorb("l2", &[in2], 4).unwrap();
    let add = g.add_invariant("add", &[l1, l2]).unwrap();
    let out = g.add_absorb("out", &[add], 5).unwrap();
    let l3 = g.add_absorb("l3", &[in2], 6).unwrap();

    let done = g.add_edge(l3, add, None, Alignment::default()).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, add), [6, 6, 6]);
    assert_eq!(nin(&g, out), [6]);
    let (p, why) = the_resize(&done);
    assert_eq!(why, Reason::Align(Align::IncreaseSmaller));
    assert_eq!(outs(p, l1), Some([old(0..4), news(2)].concat()));
    assert!(p.change(l3).is_none());

    // The other input of the add is immutable: increase smaller fails and
    // decrease bigger keeps v2's best neurons.
    let mut g = Graph::new();
    let v0 = g.add_input("v0", 3).unwrap();
    let v1 = g.add_absorb("v1", &[v0], 3).unwrap();
    let v2 = g.add_absorb("v2", &[v0], 5).unwrap();
    let v3 = g.add_invariant("v3", &[v0, v1]).unwrap();
    g.add_absorb("v4", &[v3], 3).unwrap();
    let u = Utility::new().with(v2, (1..=5).map(|i| 2f64.powi(i)).collect());
    let al = Alignment {
        chain: vec![Align::IncreaseSmaller, Align::DecreaseBigger],
        utility: u,
    };
    let done = g.add_edge(v2, v3, None, al).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v3), [3, 3, 3]);
    let (p, why) = the_resize(&done);
    assert_eq!(why, Reason::Align(Align::DecreaseBigger));
    assert_eq!(outs(p, v2), Some(old([2, 3, 4])));
}

#[test]
fn a21_add_edge_into_smaller_invariant() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 3).unwrap();
    let v2 = g.add_invariant("v2", &[v1]).unwrap();
    let v3 = g.add_absorb("v3", &[v2], 2).unwrap();
    let vnew = g.add_absorb("vnew", &[x], 7).unwrap();

    let done = g.add_edge(vnew, v2, None, Alignment::default()).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v2), [7, 7]);
    let (p, _) = the_resize(&done);
    let grown = [old(0..3), news(4)].concat();
    assert_eq!(outs(p, v1), Some(grown.clone()));
    assert_eq!(outs(p, v2), Some(grown.clone()));
    assert_eq!(ins(p, v3), [Some(grown)]);
    // vnew keeps 0..7 untouched.
    assert!(p.change(vnew).is_none());
    assert_eq!(g.nout(vnew).unwrap(), 7);
}

fn a22_graph() -> (Graph, [VertexId; 4]) {
    let mut g = Graph::new();
    let x = g.add_input("in", 4).unwrap();
    let l1 = g.add_absorb("l1", &[x], 3).unwrap();
    let l2 = g.add_absorb("l2", &[x], 5).unwrap();
    let merged = g.add_stack("merged", &[l1, l2, l1]).unwrap();
    let out = g.add_absorb("out", &[merged], 3).unwrap();
    (g, [l1, l2, merged, out])
}

#[test]
fn a22_remove_duplicate_edge() {
    let (mut g, [l1, l2, merged, out]) = a22_graph();
    let done = g.remove_edge(l1, merged, 0).unwrap();
    g.check().unwrap();
    assert_eq!(inputs(&g, merged), [l2, l1]);
    assert_eq!(nin(&g, merged), [5, 3]);
    assert_eq!(follow_ins(&done, out), [Some(old(3..11))]);

    let (mut g, [l1, l2, merged, out]) = a22_graph();
    let done = g.remove_edge(l1, merged, 1).unwrap();
    assert_eq!(inputs(&g, merged), [l1, l2]);
    assert_eq!(follow_ins(&done, out), [Some(old(0..8))]);

    // There is no third occurrence; nothing changes.
    let (mut g, [l1, _, merged, _]) = a22_graph();
    let before = g.clone();
    let err = g.remove_edge(l1, merged, 2).unwrap_err();
    assert_eq!(
        err,
        MutationError::NoSuchEdge {
            from: "l1".into(),
            to: "merged".into(),
            nth: 2,
            count: 2
        }
    );
    assert_eq!(g, before);
}

#[test]
fn a23_incompatible_size_factor_on_removal() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v1 = g.add_absorb("v1", &[x], 5).unwrap();
    let ids: Vec<VertexId> = (0..3)
        .map(|i| g.add_invariant(&format!("id{i}"), &[v1]).unwrap())
        .collect();
    let join = g.add_stack("join", &ids).unwrap();
    let v2 = g.add_absorb("v2", &[join], 16).unwrap();
    let v3 = g.add_absorb("v3", &[v2], 4).unwrap();

    let done = g.remove_vertex(v2).unwrap();
    g.check().unwrap();
    assert_eq!(nin(&g, v3), [15]);
    assert_eq!(g.nout(v1).unwrap(), 5);
    let (p, why) = the_resize(&done);
    assert_eq!(why, Reason::Align(Align::DecreaseBigger));
    assert_eq!(ins(p, v3)[0].as_ref().map(Vec::len), Some(15));
}

#[test]
fn a24_insert_vertex() {
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let l1 = g.add_absorb("l1", &[x], 5).unwrap();
    let done = g
        .insert_after(x, NewVertex::absorb("new", 3), Reroute::All)
        .unwrap();
    let new = done.created[0];
    assert_eq!(g.len(), 3);
    assert_eq!(g.vertex(x).unwrap().outputs(), [new]);
    assert_eq!(inputs(&g, l1), [new]);
    assert_eq!(nin(&g, new), [3]);
    g.check().unwrap();

    // Reroute only the first and third outputs.
    let mut g = Graph::new();
    let x = g.add_input("in", 3).unwrap();
    let v = g.add_absorb("v", &[x], 4).unwrap();
    let c: Vec<VertexId> = (0..3)
        .map(|i| g.add_absorb(&format!("c{i}"), &[v], 2).unwrap())
        .collect();
    let done = g
        .insert_after(
            v,
            NewVertex::invariant("vnew2"),
            Reroute::Only(vec![Ref::from(c[0]), Ref::from(c[2])]),
        )
        .unwrap();
    let w = done.created[0];
    assert_eq!(inputs(&g, c[0]), [w]);
    assert_eq!(inputs(&g, c[1]), [v]);
    assert_eq!(inputs(&g, c[2]), [w]);
    let mut o = g.vertex(v).unwrap().outputs().to_vec();
    o.sort();
    assert_eq!(o, [c[1], w]);
    g.check().unwrap();
}
