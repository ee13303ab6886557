//! Attention heads in the core: a head split (`Constraint::Heads`: one
//! neuron per head) after the query, key and value projections, products
//! invariant over the heads, the merge back a depthwise repeat of each head
//! (its width), and grouped-query attention's KV heads repeated to their
//! query heads. Whole heads are kept, dropped and added together in every
//! projection, a KV head with its query heads.

use graft_core::{plan, Constraint, Graph, Neuron, Request, SizeKind, TargetMode, VertexId};

/// Multi-head attention on tokens of width `heads · d`, with `kv` KV heads
/// (`kv == heads`: plain multi-head attention). Returns the graph and
/// (q, q split, k, v, merge, o).
fn attention(heads: usize, kv: usize, d: usize) -> (Graph, [VertexId; 6]) {
    let mut g = Graph::new();
    let x = g.add_input("x", 16).unwrap();
    let split = |g: &mut Graph, name: &str, from: VertexId, n: usize| {
        g.add_vertex_with(
            name,
            SizeKind::Absorb,
            &[from],
            Some(n),
            &[Constraint::Heads { width: d }],
        )
        .unwrap()
    };
    let q = g.add_absorb("q", &[x], heads * d).unwrap();
    let k = g.add_absorb("k", &[x], kv * d).unwrap();
    let v = g.add_absorb("v", &[x], kv * d).unwrap();
    let qh = split(&mut g, "qh", q, heads);
    let kh = split(&mut g, "kh", k, kv);
    let vh = split(&mut g, "vh", v, kv);
    // repeat_kv: each KV head for heads / kv query heads.
    let rep = |g: &mut Graph, name: &str, from: VertexId| {
        if kv == heads {
            return from;
        }
        let r = g.add_absorb(name, &[from], heads).unwrap();
        g.add_constraint(r, Constraint::depthwise(heads / kv))
            .unwrap();
        r
    };
    let kr = rep(&mut g, "kr", kh);
    let vr = rep(&mut g, "vr", vh);
    let scores = g.add_invariant("scores", &[qh, kr]).unwrap();
    let av = g.add_invariant("av", &[scores, vr]).unwrap();
    let merge = g.add_absorb("merge", &[av], heads * d).unwrap();
    g.add_constraint(merge, Constraint::depthwise(d)).unwrap();
    let o = g.add_absorb("o", &[merge], 16).unwrap();
    g.check().unwrap();
    (g, [q, qh, k, v, merge, o])
}

fn kept(outs: &[Neuron]) -> Vec<usize> {
    outs.iter()
        .filter_map(|n| match n {
            Neuron::Old(i) => Some(*i),
            Neuron::New => None,
        })
        .collect()
}

#[test]
fn dropping_a_head_drops_it_in_every_projection() {
    let (g, [q, qh, k, v, merge, o]) = attention(4, 4, 3);
    let p = plan(&g, &Request::new().nout(qh, -1)).unwrap();
    let mut g2 = g.clone();
    p.apply(&mut g2).unwrap();
    g2.check().unwrap();
    for x in [q, k, v, merge] {
        assert_eq!(g2.nout(x).unwrap(), 9, "{}", g.name(x));
    }
    assert_eq!(g2.nin(o).unwrap(), &[9]);
    // The same head, whole, in q, k and v (and the merge's input columns).
    let lists: Vec<Vec<usize>> = [q, k, v, merge]
        .iter()
        .map(|&x| {
            kept(
                p.changes
                    .iter()
                    .find(|c| c.vertex == x)
                    .unwrap()
                    .outs
                    .as_ref()
                    .unwrap(),
            )
        })
        .collect();
    for l in &lists {
        assert_eq!(l, &lists[0]);
        for h in l.chunks(3) {
            assert!(
                h[0] % 3 == 0 && h[1] == h[0] + 1 && h[2] == h[0] + 2,
                "{l:?}"
            );
        }
    }
}

#[test]
fn a_new_head_is_whole_and_keeps_the_others() {
    let (g, [q, qh, _k, v, merge, _o]) = attention(2, 2, 2);
    let p = plan(&g, &Request::new().nout(qh, 1)).unwrap();
    let mut g2 = g.clone();
    p.apply(&mut g2).unwrap();
    g2.check().unwrap();
    for x in [q, v, merge] {
        assert_eq!(g2.nout(x).unwrap(), 6);
        let outs = p
            .changes
            .iter()
            .find(|c| c.vertex == x)
            .unwrap()
            .outs
            .clone()
            .unwrap();
        // Whole old heads, and the new head's two neurons side by side at
        // a head boundary.
        assert_eq!(kept(&outs), vec![0, 1, 2, 3]);
        let first_new = outs.iter().position(|n| *n == Neuron::New).unwrap();
        assert_eq!(first_new % 2, 0, "{outs:?}");
        assert_eq!(outs[first_new + 1], Neuron::New, "{outs:?}");
    }
}

#[test]
fn grouped_query_attention_drops_a_kv_head_with_its_query_heads() {
    // 4 query heads reading 2 KV heads of width 2.
    let (g, [q, qh, k, v, merge, _o]) = attention(4, 2, 2);
    // One query head alone cannot go: its KV head's other query head reads
    // the same KV head.
    let exact = Request::new().nout(qh, -1);
    assert!(plan(&g, &exact).is_err());
    let mut relaxed = Request::new().nout(qh, -1);
    relaxed.targets[0].mode = TargetMode::Relaxed;
    let p = plan(&g, &relaxed).unwrap();
    let mut g2 = g.clone();
    p.apply(&mut g2).unwrap();
    g2.check().unwrap();
    assert_eq!(g2.nout(q).unwrap(), 4);
    assert_eq!(g2.nout(k).unwrap(), 2);
    assert_eq!(g2.nout(v).unwrap(), 2);
    assert_eq!(g2.nout(merge).unwrap(), 4);
    // Dropping a KV head drops two query heads.
    let p = plan(&g, &Request::new().nout(k, -2)).unwrap();
    let mut g3 = g.clone();
    p.apply(&mut g3).unwrap();
    assert_eq!(g3.nout(qh).unwrap(), 2);
    let qk = kept(
        p.changes
            .iter()
            .find(|c| c.vertex == q)
            .unwrap()
            .outs
            .as_ref()
            .unwrap(),
    );
    let kk = kept(
        p.changes
            .iter()
            .find(|c| c.vertex == k)
            .unwrap()
            .outs
            .as_ref()
            .unwrap(),
    );
    // KV head j serves query heads 2j and 2j + 1.
    let kv_head = kk[0] / 2;
    assert_eq!(qk, (kv_head * 4..kv_head * 4 + 4).collect::<Vec<_>>());
}

#[test]
fn heads_are_checked_and_refuse_bad_widths() {
    let mut g = Graph::new();
    let x = g.add_input("x", 6).unwrap();
    let bad = g.add_vertex_with(
        "h",
        SizeKind::Absorb,
        &[x],
        Some(4),
        &[Constraint::Heads { width: 2 }],
    );
    assert!(bad.unwrap_err().to_string().contains("width 2"));
    let zero = g.add_vertex_with(
        "h0",
        SizeKind::Absorb,
        &[x],
        Some(3),
        &[Constraint::Heads { width: 0 }],
    );
    assert!(zero.is_err());
    let h = g
        .add_vertex_with(
            "h",
            SizeKind::Absorb,
            &[x],
            Some(3),
            &[Constraint::Heads { width: 2 }],
        )
        .unwrap();
    assert_eq!(g.vertex(h).unwrap().heads(), Some(2));
    g.check().unwrap();
}

#[test]
fn a_llama_shaped_graph_prunes_heads_and_mlp_to_half_exactly() {
    // A small LLaMA shape: 2 blocks, 8 heads on 2 KV heads of 4.
    let g = graft_core::zoo::llama(2, 8, 2, 4, 24, 16, 50);
    g.check().unwrap();
    let id = |n: &str| g.id(n).unwrap();
    let mut req = Request::new();
    for b in 0..2 {
        req = req
            .nout(id(&format!("b{b}.k_heads")), -1)
            .nout(id(&format!("b{b}.gate")), -12);
    }
    let p = plan(&g, &req).unwrap();
    assert!(p.optimal);
    let mut g2 = g.clone();
    p.apply(&mut g2).unwrap();
    g2.check().unwrap();
    for b in 0..2 {
        let n = |s: &str| g2.nout(g2.id(&format!("b{b}.{s}")).unwrap()).unwrap();
        assert_eq!((n("q_heads"), n("k_heads"), n("v_heads")), (4, 1, 1));
        assert_eq!((n("q"), n("k"), n("v"), n("merge")), (16, 4, 4, 16));
        assert_eq!((n("gate"), n("up")), (12, 12));
        assert_eq!(n("o"), 16);
    }
}

mod random_blocks {
    use super::*;
    use graft_core::Utility;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Random attention blocks (KV heads, query heads per KV head, head
        /// size; positive utilities on the projections, as magnitudes, none
        /// on the reshapes; with negative ones, replacing a head by a new
        /// one of utility 0 can be better than keeping it): the
        /// plan keeps `check()`, keeps whole heads aligned in q, k, v and the
        /// merge, drops the KV head whose class is worth least (an
        /// independent count: the sum of its neurons' utilities), and a new
        /// KV head brings its query heads.
        #[test]
        fn random_attention_blocks_keep_heads_whole_and_drop_the_least_useful(
            kv in 2..4usize,
            group in 1..4usize,
            d in 1..4usize,
            seed in prop::collection::vec(0.01f64..1.0, 96),
        ) {
            let heads = kv * group;
            let (g, [q, qh, k, v, merge, _o]) = attention(heads, kv, d);
            let kh = g.id("kh").unwrap();
            let mut u = Utility::new();
            let mut it = seed.iter().cycle();
            let mut vals = |n: usize| -> Vec<f64> { (0..n).map(|_| *it.next().unwrap()).collect() };
            let (uq, uk, uv) = (vals(heads * d), vals(kv * d), vals(kv * d));
            u.set(q, uq.clone());
            u.set(k, uk.clone());
            u.set(v, uv.clone());
            for x in g.ids() {
                let vx = g.vertex(x).unwrap();
                if vx.kind() == SizeKind::Absorb && ![q, k, v].contains(&x) && g.name(x) != "o" {
                    u.set(x, vec![0.0; vx.nout()]);
                }
            }
            // The worth of KV head j: its k and v neurons and its query
            // heads' q neurons.
            let worth = |j: usize| -> f64 {
                uk[j * d..(j + 1) * d].iter().sum::<f64>()
                    + uv[j * d..(j + 1) * d].iter().sum::<f64>()
                    + uq[j * group * d..(j + 1) * group * d].iter().sum::<f64>()
            };
            let least = (0..kv).min_by(|&a, &b| worth(a).total_cmp(&worth(b))).unwrap();

            let p = plan(&g, &Request::new().with_utility(u.clone()).nout(kh, -1)).unwrap();
            let mut g2 = g.clone();
            p.apply(&mut g2).unwrap();
            g2.check().unwrap();
            let list = |x: VertexId| kept(p.changes.iter().find(|c| c.vertex == x).unwrap().outs.as_ref().unwrap());
            let ks = list(k);
            let dropped: Vec<usize> = (0..kv).filter(|j| !ks.contains(&(j * d))).collect();
            prop_assert_eq!(dropped, vec![least]);
            let expect_q: Vec<usize> = (0..heads * d).filter(|i| i / (group * d) != least).collect();
            prop_assert_eq!(list(q), expect_q.clone());
            prop_assert_eq!(list(merge), expect_q);
            prop_assert_eq!(list(v), ks);
            prop_assert_eq!(g2.nout(qh).unwrap(), heads - group);

            let p = plan(&g, &Request::new().with_utility(u).nout(kh, 1)).unwrap();
            let mut g3 = g.clone();
            p.apply(&mut g3).unwrap();
            g3.check().unwrap();
            prop_assert_eq!(g3.nout(q).unwrap(), (heads + group) * d);
            prop_assert_eq!(g3.nout(k).unwrap(), (kv + 1) * d);
        }
    }
}

#[test]
fn a_transformer_block_half_is_removed_and_the_stream_passes_through() {
    let g = graft_core::zoo::llama(2, 4, 2, 2, 8, 8, 20);
    let res = g.id("b0.attn_res").unwrap();
    let block = graft_core::residual_block(&g, res).unwrap();
    // Norm, q, k, v, three head splits, two repeats, rope, scores,
    // softmax, av, merge, o.
    assert_eq!(
        block.len(),
        15,
        "{:?}",
        block.iter().map(|&v| g.name(v)).collect::<Vec<_>>()
    );
    assert_eq!(g.name(*block.last().unwrap()), "b0.o");
    let mut g2 = g.clone();
    g2.commit(
        &graft_core::Patch::new()
            .remove_residual_block(&g, res)
            .unwrap(),
    )
    .unwrap();
    g2.check().unwrap();
    assert_eq!(g2.len(), g.len() - 16);
    assert!(g2.id("b0.q").is_err() && g2.id("b0.attn_res").is_err());
    // The MLP's norm now reads the embedding.
    let norm = g2.id("b0.mlp_norm").unwrap();
    assert_eq!(
        g2.vertex(norm).unwrap().inputs(),
        &[g2.id("embed").unwrap()]
    );
    // Not a residual add, or a block read from outside: typed errors.
    let q = g.id("b0.q").unwrap();
    assert!(graft_core::residual_block(&g, q).is_err());
    let mut h = g.clone();
    let rope = h.id("b0.rope").unwrap();
    h.add_invariant("leak", &[rope]).unwrap();
    let e = graft_core::residual_block(&h, res).unwrap_err().to_string();
    assert!(e.contains("b0.rope") && e.contains("leak"), "{e}");
}
