//! Property test of structural mutations: random graphs, then random
//! sequences of 1 to 20 mutations (resize, re-select, insert, remove, add
//! edge, remove edge, and batches of them in one patch).
//!
//! - after every accepted step `check()` passes, the revision moves by one,
//!   removed ids are invalid, every other old id is still valid, created ids
//!   are fresh, and `resized` lists exactly the surviving vertices whose
//!   sizes changed;
//! - after every refused step the graph equals the graph before, field by
//!   field (wiring, input order with duplicates, names, sizes, constraints,
//!   revision);
//! - nothing panics.
//!
//! 256 cases by default; `GRAFT_MUTATION_CASES=10000` runs more.

mod common;

use common::{build, step};
use graft_core::{
    Align, Alignment, Connect, Edit, Graph, NewVertex, Patch, Ref, Request, Reroute, SizeKind,
    Utility, VertexId,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Resize {
        v: usize,
        delta: i64,
        relaxed: bool,
    },
    Reselect {
        seed: u64,
    },
    Insert {
        v: usize,
        kind: u8,
        nout: usize,
        subset: u8,
    },
    Remove {
        v: usize,
        nothing: bool,
        chain: u8,
    },
    AddEdge {
        u: usize,
        v: usize,
        pos: usize,
    },
    RemoveEdge {
        v: usize,
        input: usize,
        nth: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..64usize, -3..4i64, any::<bool>())
            .prop_map(|(v, delta, relaxed)| Op::Resize { v, delta, relaxed }),
        1 => any::<u64>().prop_map(|seed| Op::Reselect { seed }),
        2 => (0..64usize, 0..4u8, 1..6usize, any::<u8>())
            .prop_map(|(v, kind, nout, subset)| Op::Insert { v, kind, nout, subset }),
        2 => (0..64usize, any::<bool>(), 0..4u8)
            .prop_map(|(v, nothing, chain)| Op::Remove { v, nothing, chain }),
        2 => (0..64usize, 0..64usize, 0..4usize)
            .prop_map(|(u, v, pos)| Op::AddEdge { u, v, pos }),
        2 => (0..64usize, 0..4usize, 0..3usize)
            .prop_map(|(v, input, nth)| Op::RemoveEdge { v, input, nth }),
    ]
}

/// Turn an op into an edit on the graph as it is (vertex choices are taken
/// modulo the live vertices, so every op names something).
fn edit(g: &Graph, op: &Op, fresh: &mut usize) -> Edit {
    let ids: Vec<VertexId> = g.ids().collect();
    let pick = |i: usize| ids[i % ids.len()];
    match *op {
        Op::Resize { v, delta, relaxed } => {
            let v = pick(v);
            Edit::Resize(if relaxed {
                Request::new().nout_relaxed(v, delta)
            } else {
                Request::new().nout(v, delta)
            })
        }
        Op::Reselect { seed } => {
            let mut u = Utility::new();
            let mut x = seed | 1;
            for &v in &ids {
                let vals = (0..g.nout(v).unwrap())
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % 7) as f64 - 3.0
                    })
                    .collect();
                u.set(v, vals);
            }
            Edit::Resize(Request::new().with_utility(u))
        }
        Op::Insert {
            v,
            kind,
            nout,
            subset,
        } => {
            let v = pick(v);
            *fresh += 1;
            let name = format!("new{fresh}");
            let vertex = match kind {
                0 => NewVertex::absorb(&name, nout),
                1 => NewVertex::invariant(&name),
                2 => NewVertex::stack(&name),
                _ => NewVertex::absorb(&name, g.nout(v).unwrap()),
            };
            let outs = g.vertex(v).unwrap().outputs().to_vec();
            let reroute = if subset == 0 || outs.is_empty() {
                Reroute::All
            } else {
                Reroute::Only(
                    outs.iter()
                        .enumerate()
                        .filter(|(k, _)| subset >> (k % 8) & 1 == 1)
                        .map(|(_, &c)| Ref::from(c))
                        .collect(),
                )
            };
            Edit::Insert {
                after: v.into(),
                vertex,
                reroute,
                utility: Utility::new(),
            }
        }
        Op::Remove { v, nothing, chain } => Edit::Remove {
            vertex: pick(v).into(),
            connect: if nothing {
                Connect::Nothing
            } else {
                Connect::Inputs
            },
            align: match chain {
                0 => Alignment::only(Align::IncreaseSmaller),
                1 => Alignment::only(Align::DecreaseBigger),
                2 => Alignment::only(Align::ChangeBoth),
                _ => Alignment::default(),
            },
        },
        Op::AddEdge { u, v, pos } => {
            let (u, v) = (pick(u), pick(v));
            let n = g.vertex(v).unwrap().inputs().len();
            Edit::AddEdge {
                from: u.into(),
                to: v.into(),
                position: Some(pos % (n + 1)),
                align: Alignment::default(),
            }
        }
        Op::RemoveEdge { v, input, nth } => {
            let v = pick(v);
            let ins = g.vertex(v).unwrap().inputs().to_vec();
            let u = if ins.is_empty() {
                v
            } else {
                ins[input % ins.len()]
            };
            // Mostly an existing occurrence, sometimes one past the last.
            let count = ins.iter().filter(|&&x| x == u).count();
            Edit::RemoveEdge {
                from: u.into(),
                to: v.into(),
                nth: nth % (count + 1),
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("GRAFT_MUTATION_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Field-by-field view of a graph, for a readable failure message (the
/// `PartialEq` of `Graph` compares every field too).
fn fields(g: &Graph) -> Vec<String> {
    let mut out = vec![format!("revision {}", g.revision())];
    for v in g.ids() {
        let x = g.vertex(v).unwrap();
        out.push(format!(
            "{v} {} {:?} nout {} nin {:?} inputs {:?} outputs {:?} constraints {:?}",
            x.name(),
            x.kind(),
            x.nout(),
            x.nin(),
            x.inputs(),
            x.outputs(),
            x.constraints()
        ));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn mutations_keep_the_graph_valid_or_leave_it_untouched(
        inputs in prop::collection::vec(1..5usize, 1..3),
        steps in prop::collection::vec(step(), 1..12),
        ops in prop::collection::vec((op(), 0..4u8), 1..=20),
    ) {
        let mut g = build(&inputs, &steps);
        let mut fresh = 0usize;
        let mut i = 0;
        while i < ops.len() {
            // One in four steps batches this op with the next one.
            let batch = ops[i].1 == 0 && i + 1 < ops.len();
            let mut patch = Patch::new().push(edit(&g, &ops[i].0, &mut fresh));
            if batch {
                // The second edit is chosen on the graph before the patch;
                // it may name a vertex the first edit removes (then the
                // whole patch is refused).
                patch = patch.push(edit(&g, &ops[i + 1].0, &mut fresh));
                i += 1;
            }
            i += 1;
            let before = g.clone();
            match g.commit(&patch) {
                Ok(done) => {
                    prop_assert_eq!(g.check(), Ok(()));
                    prop_assert_eq!(g.revision(), before.revision() + 1);
                    for r in &done.removed {
                        prop_assert!(g.vertex(r.id).is_err());
                        prop_assert!(before.vertex(r.id).is_ok());
                    }
                    prop_assert_eq!(
                        done.invalidated.clone(),
                        done.removed.iter().map(|r| r.id).collect::<Vec<_>>()
                    );
                    for v in before.ids() {
                        if !done.invalidated.contains(&v) {
                            let (a, b) = (before.vertex(v).unwrap(), g.vertex(v).unwrap());
                            prop_assert_eq!(a.name(), b.name());
                            let moved = a.nout() != b.nout() || a.nin() != b.nin();
                            prop_assert_eq!(moved, done.resized.contains(&v));
                        }
                    }
                    for &c in &done.created {
                        prop_assert!(c.index() >= before.id_bound());
                        prop_assert!(g.vertex(c).unwrap().kind() != SizeKind::Input);
                    }
                    prop_assert_eq!(g.len(), before.len() + done.created.len() - done.removed.len());
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    prop_assert_eq!(fields(&g), fields(&before));
                    prop_assert!(g == before, "graph changed by a refused patch");
                }
            }
        }
    }
}
