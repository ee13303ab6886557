//! Graphs shared by the tests: random graphs for the property tests (a
//! recipe of steps, each adding one vertex: absorb, stack with duplicated
//! inputs, invariant, depthwise, invariant with a broadcast input, slice,
//! shuffle, blocks, units, heads) and a residual block around a
//! concatenation.
#![allow(dead_code)]

use graft_core::{Constraint, Graph, VertexId};
use proptest::prelude::*;

/// A recipe for a random graph: each step adds one vertex.
#[derive(Debug, Clone)]
pub enum Step {
    Absorb {
        input: usize,
        nout: usize,
    },
    Stack {
        inputs: Vec<usize>,
    },
    Invariant {
        input: usize,
        extra: Vec<usize>,
    },
    Depthwise {
        input: usize,
        multiplier: usize,
    },
    /// An invariant vertex tied to `input` that reads `other` broadcast
    /// (free size), as `x - mean(x)` reads the mean.
    Broadcast {
        input: usize,
        other: usize,
    },
    /// A contiguous part of `input`'s neurons (clamped to fit), as a Split
    /// or Slice along the neuron axis.
    Slice {
        input: usize,
        start: usize,
        len: usize,
    },
    /// A channel shuffle of `input` in `groups` groups (an invariant vertex
    /// when its size is not a multiple of `groups`).
    Shuffle {
        input: usize,
        groups: usize,
    },
    /// An invariant vertex on `input` whose neurons are `groups` aligned
    /// blocks (a plain invariant when the size does not divide).
    Blocks {
        input: usize,
        groups: usize,
    },
    /// An absorbing vertex on `input` of `units` units of `width` neurons
    /// (attention heads).
    Units {
        input: usize,
        units: usize,
        width: usize,
    },
    /// A head split of `input`: one neuron per `width` of its neurons (a
    /// plain absorbing vertex when its size does not divide).
    Heads {
        input: usize,
        width: usize,
    },
}

pub fn build(inputs: &[usize], steps: &[Step]) -> Graph {
    let mut g = Graph::new();
    let mut ids: Vec<VertexId> = Vec::new();
    for (i, &n) in inputs.iter().enumerate() {
        ids.push(g.add_input(&format!("in{i}"), n).unwrap());
    }
    for (k, s) in steps.iter().enumerate() {
        let name = format!("v{k}");
        let pick = |i: usize| ids[i % ids.len()];
        let id = match s {
            Step::Absorb { input, nout } => g.add_absorb(&name, &[pick(*input)], *nout).unwrap(),
            Step::Stack { inputs } => {
                let ins: Vec<VertexId> = inputs.iter().map(|&i| pick(i)).collect();
                let total: usize = ins.iter().map(|&i| g.nout(i).unwrap()).sum();
                if total > 8 {
                    g.add_invariant(&name, &ins[..1]).unwrap()
                } else {
                    g.add_stack(&name, &ins).unwrap()
                }
            }
            Step::Invariant { input, extra } => {
                let first = pick(*input);
                let n = g.nout(first).unwrap();
                let same: Vec<VertexId> = ids
                    .iter()
                    .copied()
                    .filter(|&i| g.nout(i).unwrap() == n)
                    .collect();
                let mut ins = vec![first];
                for &e in extra {
                    ins.push(same[e % same.len()]);
                }
                g.add_invariant(&name, &ins).unwrap()
            }
            Step::Broadcast { input, other } => {
                let ins = [pick(*input), pick(*other)];
                g.add_vertex_with(
                    &name,
                    graft_core::SizeKind::Invariant,
                    &ins,
                    None,
                    &[Constraint::Broadcast { input: 1 }],
                )
                .unwrap()
            }
            Step::Slice { input, start, len } => {
                let u = pick(*input);
                let n = g.nout(u).unwrap();
                let start = start % n;
                let len = 1 + len % (n - start);
                let id = g.add_absorb(&name, &[u], len).unwrap();
                g.add_constraint(id, Constraint::Slice { start }).unwrap();
                id
            }
            Step::Shuffle { input, groups } => {
                let u = pick(*input);
                let n = g.nout(u).unwrap();
                if n.is_multiple_of(*groups) {
                    let id = g.add_absorb(&name, &[u], n).unwrap();
                    g.add_constraint(id, Constraint::Shuffle { groups: *groups })
                        .unwrap();
                    id
                } else {
                    g.add_invariant(&name, &[u]).unwrap()
                }
            }
            Step::Blocks { input, groups } => {
                let u = pick(*input);
                let n = g.nout(u).unwrap();
                let c: &[Constraint] = if n.is_multiple_of(*groups) {
                    &[Constraint::Blocks { groups: *groups }]
                } else {
                    &[]
                };
                g.add_vertex_with(&name, graft_core::SizeKind::Invariant, &[u], None, c)
                    .unwrap()
            }
            Step::Units {
                input,
                units,
                width,
            } => g
                .add_vertex_with(
                    &name,
                    graft_core::SizeKind::Absorb,
                    &[pick(*input)],
                    Some(units * width),
                    &[Constraint::Units { width: *width }],
                )
                .unwrap(),
            Step::Heads { input, width } => {
                let u = pick(*input);
                let n = g.nout(u).unwrap();
                if n.is_multiple_of(*width) {
                    g.add_vertex_with(
                        &name,
                        graft_core::SizeKind::Absorb,
                        &[u],
                        Some(n / width),
                        &[Constraint::Heads { width: *width }],
                    )
                    .unwrap()
                } else {
                    g.add_absorb(&name, &[u], 1).unwrap()
                }
            }
            Step::Depthwise { input, multiplier } => {
                let u = pick(*input);
                let id = g
                    .add_absorb(&name, &[u], multiplier * g.nout(u).unwrap())
                    .unwrap();
                g.add_constraint(id, Constraint::depthwise(*multiplier))
                    .unwrap();
                id
            }
        };
        ids.push(id);
    }
    g
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..20usize, 1..4usize).prop_map(|(input, nout)| Step::Absorb { input, nout }),
        2 => prop::collection::vec(0..20usize, 1..4).prop_map(|inputs| Step::Stack { inputs }),
        2 => (0..20usize, prop::collection::vec(0..20usize, 0..3))
            .prop_map(|(input, extra)| Step::Invariant { input, extra }),
        1 => (0..20usize, 1..3usize)
            .prop_map(|(input, multiplier)| Step::Depthwise { input, multiplier }),
        1 => (0..20usize, 0..20usize).prop_map(|(input, other)| Step::Broadcast { input, other }),
        1 => (0..20usize, 0..8usize, 0..8usize)
            .prop_map(|(input, start, len)| Step::Slice { input, start, len }),
        1 => (0..20usize, 2..4usize).prop_map(|(input, groups)| Step::Shuffle { input, groups }),
        1 => (0..20usize, 2..4usize).prop_map(|(input, groups)| Step::Blocks { input, groups }),
        1 => (0..20usize, 1..3usize, 1..3usize)
            .prop_map(|(input, units, width)| Step::Units { input, units, width }),
        1 => (0..20usize, 1..4usize).prop_map(|(input, width)| Step::Heads { input, width }),
    ]
}

/// x(3) -> stem(8) -> {b1(4), b2(4)} -> cat = b1 ++ b2 (8);
/// add = stem + cat (8) -> head(10).
pub fn residual_concat() -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("x", 3).unwrap();
    let stem = g.add_absorb("stem", &[x], 8).unwrap();
    let b1 = g.add_absorb("b1", &[stem], 4).unwrap();
    let b2 = g.add_absorb("b2", &[stem], 4).unwrap();
    let cat = g.add_stack("cat", &[b1, b2]).unwrap();
    let add = g.add_invariant("add", &[stem, cat]).unwrap();
    g.add_absorb("head", &[add], 10).unwrap();
    g
}
