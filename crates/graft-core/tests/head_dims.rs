//! Attention read along the head dimension: the head split is a fold
//! (`Constraint::Fold`: output `k` is dimension `k` of every head), rotary
//! embeddings rotate the two halves of the dimensions into each other (a
//! slice of each half, stacked the other way round, added back), the
//! query-key product ties the query's and key's dimensions and carries no
//! neurons of its own, the weighted sum of values carries the values'
//! dimensions, and the merge is a tile (`Constraint::Tile`). The same
//! dimensions are kept in every head; under rotary embeddings a dimension
//! goes with its partner half a head away.

use graft_core::{plan, Constraint, Graph, Neuron, Request, SizeKind, Utility, VertexId};

struct Block {
    g: Graph,
    q: VertexId,
    qd: VertexId,
    k: VertexId,
    v: VertexId,
    vd: VertexId,
    merge: VertexId,
    o: VertexId,
}

/// Attention with `heads` query heads on `kv` KV heads of `d` dimensions,
/// with rotary embeddings on q and k when `rope` (d even).
fn attention(heads: usize, kv: usize, d: usize, rope: bool) -> Block {
    let mut g = Graph::new();
    let x = g.add_input("x", 16).unwrap();
    let with = |g: &mut Graph, name: &str, from: VertexId, n: usize, c: Constraint| {
        g.add_vertex_with(name, SizeKind::Absorb, &[from], Some(n), &[c])
            .unwrap()
    };
    let q = g.add_absorb("q", &[x], heads * d).unwrap();
    let k = g.add_absorb("k", &[x], kv * d).unwrap();
    let v = g.add_absorb("v", &[x], kv * d).unwrap();
    let qd = with(&mut g, "qd", q, d, Constraint::Fold { blocks: heads });
    let kd = with(&mut g, "kd", k, d, Constraint::Fold { blocks: kv });
    let vd = with(&mut g, "vd", v, d, Constraint::Fold { blocks: kv });
    let rotate = |g: &mut Graph, name: &str, from: VertexId| {
        if !rope {
            return from;
        }
        let lo = with(
            g,
            &format!("{name}_lo"),
            from,
            d / 2,
            Constraint::Slice { start: 0 },
        );
        let hi = with(
            g,
            &format!("{name}_hi"),
            from,
            d / 2,
            Constraint::Slice { start: d / 2 },
        );
        let rot = g.add_stack(&format!("{name}_rot"), &[hi, lo]).unwrap();
        g.add_invariant(&format!("{name}_rope"), &[from, rot])
            .unwrap()
    };
    let qr = rotate(&mut g, "q", qd);
    let kr = rotate(&mut g, "k", kd);
    let scores = g.add_invariant("scores", &[qr, kr]).unwrap();
    // Scale, mask and softmax: no neuron axis (one neuron).
    let probs = g.add_absorb("probs", &[scores], 1).unwrap();
    let av = g
        .add_vertex_with(
            "av",
            SizeKind::Invariant,
            &[probs, vd],
            None,
            &[Constraint::Broadcast { input: 0 }],
        )
        .unwrap();
    let merge = with(
        &mut g,
        "merge",
        av,
        heads * d,
        Constraint::Tile { blocks: heads },
    );
    let o = g.add_absorb("o", &[merge], 16).unwrap();
    g.check().unwrap();
    Block {
        g,
        q,
        qd,
        k,
        v,
        vd,
        merge,
        o,
    }
}

fn kept(outs: &[Neuron]) -> Vec<usize> {
    outs.iter()
        .filter_map(|n| match n {
            Neuron::Old(i) => Some(*i),
            Neuron::New => None,
        })
        .collect()
}

fn outs(p: &graft_core::Plan, v: VertexId) -> Vec<Neuron> {
    p.changes
        .iter()
        .find(|c| c.vertex == v)
        .and_then(|c| c.outs.clone())
        .unwrap_or_default()
}

/// The same dimensions in every one of `blocks` heads of `d`.
fn in_every_head(dims: &[usize], blocks: usize, d: usize) -> Vec<usize> {
    (0..blocks)
        .flat_map(|h| dims.iter().map(move |&k| h * d + k))
        .collect()
}

#[test]
fn a_query_key_dimension_goes_from_every_head_and_the_values_keep_theirs() {
    let b = attention(4, 2, 6, false);
    let mut u = Utility::new();
    // Dimension 4 is worth least in q and k together.
    let qk = |k: usize| if k == 4 { 0.1 } else { 1.0 };
    u.set(b.q, (0..24).map(|i| qk(i % 6)).collect());
    u.set(b.k, (0..12).map(|i| qk(i % 6)).collect());
    let p = plan(&b.g, &Request::new().with_utility(u).nout(b.qd, -1)).unwrap();
    assert!(p.optimal);
    let keep = [0, 1, 2, 3, 5];
    assert_eq!(kept(&outs(&p, b.q)), in_every_head(&keep, 4, 6));
    assert_eq!(kept(&outs(&p, b.k)), in_every_head(&keep, 2, 6));
    assert!(outs(&p, b.v).is_empty(), "values keep their dimensions");
    let mut g = b.g.clone();
    p.apply(&mut g).unwrap();
    g.check().unwrap();
    assert_eq!(g.nout(b.q).unwrap(), 20);
    assert_eq!(g.nout(b.k).unwrap(), 10);
    assert_eq!(g.nin(b.o).unwrap(), vec![24]);
}

#[test]
fn rotary_dimensions_go_in_pairs_half_a_head_apart() {
    let b = attention(2, 1, 8, true);
    let mut u = Utility::new();
    // Dimension 1 is worth least alone, but its partner 5 is worth much:
    // the pair (2, 6) goes.
    let w = [1.0, 0.05, 0.2, 1.0, 1.0, 0.9, 0.2, 1.0];
    u.set(b.q, (0..16).map(|i| w[i % 8]).collect());
    u.set(b.k, (0..8).map(|i| w[i % 8]).collect());
    let p = plan(&b.g, &Request::new().with_utility(u).nout(b.qd, -2)).unwrap();
    assert!(p.optimal);
    let keep = [0, 1, 3, 4, 5, 7];
    assert_eq!(kept(&outs(&p, b.q)), in_every_head(&keep, 2, 8));
    assert_eq!(kept(&outs(&p, b.k)), in_every_head(&keep, 1, 8));
    // An odd change cannot keep the pairs.
    assert!(plan(&b.g, &Request::new().nout(b.qd, -1)).is_err());
    let mut g = b.g.clone();
    p.apply(&mut g).unwrap();
    g.check().unwrap();
    assert_eq!(g.nout(g.id("q_lo").unwrap()).unwrap(), 3);
    assert_eq!(g.nout(g.id("q_hi").unwrap()).unwrap(), 3);
}

#[test]
fn value_dimensions_go_from_every_head_through_the_merge() {
    let b = attention(4, 2, 4, true);
    let mut u = Utility::new();
    u.set(
        b.v,
        (0..8).map(|i| if i % 4 == 2 { 0.0 } else { 1.0 }).collect(),
    );
    let p = plan(&b.g, &Request::new().with_utility(u).nout(b.vd, -1)).unwrap();
    let keep = [0, 1, 3];
    assert_eq!(kept(&outs(&p, b.v)), in_every_head(&keep, 2, 4));
    assert_eq!(kept(&outs(&p, b.merge)), in_every_head(&keep, 4, 4));
    assert!(outs(&p, b.q).is_empty() && outs(&p, b.k).is_empty());
    let mut g = b.g.clone();
    p.apply(&mut g).unwrap();
    g.check().unwrap();
    assert_eq!(g.nin(b.o).unwrap(), vec![12]);
}

#[test]
fn a_new_dimension_lands_at_the_same_place_in_every_head() {
    let b = attention(2, 2, 4, true);
    let p = plan(&b.g, &Request::new().nout(b.qd, 2)).unwrap();
    let q = outs(&p, b.q);
    assert_eq!(q.len(), 12);
    // Each head: its first half, one new, its second half, one new.
    let head = |h: usize| {
        let o = |i: usize| Neuron::Old(h * 4 + i);
        vec![o(0), o(1), Neuron::New, o(2), o(3), Neuron::New]
    };
    assert_eq!(q, [head(0), head(1)].concat());
    let mut g = b.g.clone();
    p.apply(&mut g).unwrap();
    g.check().unwrap();
}

#[test]
fn folds_and_tiles_are_checked() {
    let mut g = Graph::new();
    let x = g.add_input("x", 12).unwrap();
    let bad = g.add_vertex_with(
        "f",
        SizeKind::Absorb,
        &[x],
        Some(5),
        &[Constraint::Fold { blocks: 2 }],
    );
    assert!(bad.unwrap_err().to_string().contains("fold"));
    let bad = g.add_vertex_with(
        "t",
        SizeKind::Absorb,
        &[x],
        Some(13),
        &[Constraint::Tile { blocks: 2 }],
    );
    assert!(bad.unwrap_err().to_string().contains("tile"));
    let f = g
        .add_vertex_with(
            "f",
            SizeKind::Absorb,
            &[x],
            Some(4),
            &[Constraint::Fold { blocks: 3 }],
        )
        .unwrap();
    assert_eq!(g.vertex(f).unwrap().fold(), Some(3));
    let t = g
        .add_vertex_with(
            "t",
            SizeKind::Absorb,
            &[f],
            Some(8),
            &[Constraint::Tile { blocks: 2 }],
        )
        .unwrap();
    assert_eq!(g.vertex(t).unwrap().tile(), Some(2));
    g.check().unwrap();
    // In JSON as `{"fold": {"blocks": 3}}` and `{"tile": {"blocks": 2}}`.
    let spec = graft_core::json::GraphSpec::from_graph(&g);
    let text = serde_json::to_string(&spec).unwrap();
    assert!(text.contains(r#"{"fold":{"blocks":3}}"#), "{text}");
    assert!(text.contains(r#"{"tile":{"blocks":2}}"#), "{text}");
    let back = spec.to_graph().unwrap();
    assert_eq!(back.vertex(f).unwrap().fold(), Some(3));
    assert_eq!(back.vertex(t).unwrap().tile(), Some(2));
}

mod random_blocks {
    use super::*;
    use proptest::prelude::*;

    /// The best sum of class utilities over keeping `keep` of the classes
    /// (dimension pairs under rotary embeddings, else single dimensions).
    fn best(worth: &[f64], keep: usize) -> f64 {
        let mut w = worth.to_vec();
        w.sort_by(|a, b| b.total_cmp(a));
        w[..keep].iter().sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random attention blocks read along the head dimension (KV
        /// heads, query heads per KV head, head size, rotary or not;
        /// positive utilities on q and k): the plan keeps `check()`, the
        /// same dimensions in every head of q and k, the pairs together
        /// under rotary embeddings, and its utility is the best over every
        /// choice of dimension classes (brute force by sorting, as the
        /// classes are independent).
        #[test]
        fn random_blocks_keep_the_best_dimensions_in_every_head(
            kv in 1..3usize,
            group in 1..3usize,
            half in 1..4usize,
            rope in any::<bool>(),
            drop in 1..3usize,
            seed in prop::collection::vec(0.01f64..1.0, 64),
        ) {
            let heads = kv * group;
            let d = 2 * half;
            let b = attention(heads, kv, d, rope);
            let mut it = seed.iter().cycle();
            let mut vals = |n: usize| -> Vec<f64> { (0..n).map(|_| *it.next().unwrap()).collect() };
            let (uq, uk) = (vals(heads * d), vals(kv * d));
            let mut u = Utility::new();
            u.set(b.q, uq.clone());
            u.set(b.k, uk.clone());
            for x in b.g.ids() {
                let vx = b.g.vertex(x).unwrap();
                if vx.kind() == SizeKind::Absorb && ![b.q, b.k].contains(&x) {
                    u.set(x, vec![0.0; vx.nout()]);
                }
            }
            let dim = |k: usize| -> f64 {
                (0..heads).map(|h| uq[h * d + k]).sum::<f64>() + (0..kv).map(|h| uk[h * d + k]).sum::<f64>()
            };
            let worth: Vec<f64> = if rope {
                (0..half).map(|k| dim(k) + dim(k + half)).collect()
            } else {
                (0..d).map(dim).collect()
            };
            let removed = if rope { 2 * drop.min(half - 1) } else { drop.min(d - 1) };
            prop_assume!(removed > 0);
            let p = plan(&b.g, &Request::new().with_utility(u).nout(b.qd, -(removed as i64))).unwrap();
            prop_assert!(p.optimal);
            let mut g = b.g.clone();
            p.apply(&mut g).unwrap();
            g.check().unwrap();
            let q = kept(&outs(&p, b.q));
            let dims: Vec<usize> = q.iter().copied().filter(|&i| i < d).collect();
            prop_assert_eq!(&q, &in_every_head(&dims, heads, d));
            prop_assert_eq!(kept(&outs(&p, b.k)), in_every_head(&dims, kv, d));
            if rope {
                for &k in &dims {
                    prop_assert!(dims.contains(&((k + half) % d)), "pair of {} kept", k);
                }
            }
            let got: f64 = dims.iter().map(|&k| dim(k)).sum();
            let classes = if rope { half - removed / 2 } else { d - removed };
            let want = best(&worth, classes);
            prop_assert!((got - want).abs() < 1e-9, "got {} want {}", got, want);
            prop_assert_eq!(g.nout(b.vd).unwrap(), d);
        }
    }
}
