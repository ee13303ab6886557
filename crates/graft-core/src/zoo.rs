//! Size-only graphs of well-known shapes, for benchmarks, demos and tests.
//!
//! Every convolution or dense layer is an absorbing vertex with the real
//! channel count; batch norms, activations and pooling are invariant;
//! residual adds are invariant with two inputs; concatenations are stacks.

use crate::graph::{Graph, SizeKind, VertexId};
use crate::planner::{Request, Utility};

/// Builder helpers that panic only on programmer error (names are unique by
/// construction).
struct B {
    g: Graph,
    n: usize,
}

impl B {
    /// An image input, a 64-channel conv-bn-relu stem and a max pool; returns
    /// the builder and the pool.
    fn with_image_stem() -> (B, VertexId) {
        let mut b = B {
            g: Graph::new(),
            n: 0,
        };
        let x = b.g.add_input("image", 3).expect("zoo");
        let stem = b.cbr(x, 64);
        let h = b.inv(&[stem], "maxpool");
        (b, h)
    }
    fn name(&mut self, p: &str) -> String {
        self.n += 1;
        format!("{p}{}", self.n)
    }
    fn conv(&mut self, x: VertexId, c: usize, p: &str) -> VertexId {
        let n = self.name(p);
        self.g.add_absorb(&n, &[x], c).expect("zoo conv")
    }
    fn inv(&mut self, xs: &[VertexId], p: &str) -> VertexId {
        let n = self.name(p);
        self.g.add_invariant(&n, xs).expect("zoo invariant")
    }
    fn cat(&mut self, xs: &[VertexId]) -> VertexId {
        let n = self.name("cat");
        self.g.add_stack(&n, xs).expect("zoo concat")
    }
    /// conv -> bn -> relu; returns the relu.
    fn cbr(&mut self, x: VertexId, c: usize) -> VertexId {
        let c = self.conv(x, c, "conv");
        let b = self.inv(&[c], "bn");
        self.inv(&[b], "relu")
    }
}

/// A25's graph: `v0 = lin(in(1), 1000)`, `v1 = conc(v0,v0,v0)`,
/// `v2 = conc(v1,v0,v1)`, `v3 = v2 + v2` (about 18k neurons).
pub fn a25() -> Graph {
    let mut g = Graph::new();
    let x = g.add_input("in", 1).expect("zoo");
    let v0 = g.add_absorb("v0", &[x], 1000).expect("zoo");
    let v1 = g.add_stack("v1", &[v0, v0, v0]).expect("zoo");
    let v2 = g.add_stack("v2", &[v1, v0, v1]).expect("zoo");
    g.add_invariant("v3", &[v2, v2]).expect("zoo");
    g
}

/// ResNet-50's channel graph (bottlenecks 3/4/6/3, widths 64..512, expansion
/// 4). The output of stage `s` (1-based) is the vertex named `stage{s}_out`.
pub fn resnet50() -> Graph {
    let (mut b, mut h) = B::with_image_stem();
    let mut cin = 64;
    for (s, (&blocks, &w)) in [3usize, 4, 6, 3]
        .iter()
        .zip(&[64usize, 128, 256, 512])
        .enumerate()
    {
        for i in 0..blocks {
            let a = b.cbr(h, w);
            let c = b.cbr(a, w);
            let e = b.conv(c, 4 * w, "conv");
            let e = b.inv(&[e], "bn");
            let skip = if i == 0 && cin != 4 * w {
                let d = b.conv(h, 4 * w, "downsample");
                b.inv(&[d], "bn")
            } else {
                h
            };
            let sum = b.inv(&[e, skip], "add");
            let name = if i == blocks - 1 {
                format!("stage{}_out", s + 1)
            } else {
                b.name("relu")
            };
            h = b.g.add_invariant(&name, &[sum]).expect("zoo");
            cin = 4 * w;
        }
    }
    let p = b.inv(&[h], "avgpool");
    b.conv(p, 1000, "fc");
    b.g
}

/// DenseNet-121's channel graph (growth 32, blocks 6/12/24/16, bottleneck
/// 128, compression 0.5). Each dense layer reads its own concatenation of all
/// earlier features of the block; the concatenation that ends block `s`
/// (1-based) is named `block{s}_out`.
pub fn densenet121() -> Graph {
    let (mut b, mut h) = B::with_image_stem();
    let blocks = [6usize, 12, 24, 16];
    for (s, &layers) in blocks.iter().enumerate() {
        let mut feats = vec![h];
        for _ in 0..layers {
            let input = if feats.len() == 1 {
                feats[0]
            } else {
                b.cat(&feats)
            };
            let n1 = b.inv(&[input], "bn");
            let r1 = b.inv(&[n1], "relu");
            let bott = b.cbr(r1, 128);
            let f = b.conv(bott, 32, "conv");
            feats.push(f);
        }
        let name = format!("block{}_out", s + 1);
        let out = b.g.add_stack(&name, &feats).expect("zoo");
        let n = b.inv(&[out], "bn");
        let r = b.inv(&[n], "relu");
        if s + 1 < blocks.len() {
            let c = b.g.nout(out).expect("zoo") / 2;
            let t = b.conv(r, c, "transition");
            h = b.inv(&[t], "avgpool");
        } else {
            let p = b.inv(&[r], "avgpool");
            b.conv(p, 1000, "fc");
        }
    }
    b.g
}

/// A synthetic graph of `stages` residual stages of the given width, each
/// with `blocks` blocks (conv -> relu -> conv, added to the stream) and a
/// concatenation of two branches at the end of the stage. Roughly
/// `stages · width · (4·blocks + 6)` neurons.
pub fn synthetic(stages: usize, blocks: usize, width: usize) -> Graph {
    let mut b = B {
        g: Graph::new(),
        n: 0,
    };
    let x = b.g.add_input("input", 16).expect("zoo");
    let mut h = b.conv(x, width, "conv");
    for _ in 0..stages {
        for _ in 0..blocks {
            let a = b.conv(h, width, "conv");
            let r = b.inv(&[a], "relu");
            let c = b.conv(r, width, "conv");
            h = b.inv(&[h, c], "add");
        }
        let l = b.conv(h, width / 2, "conv");
        let r = b.conv(h, width - width / 2, "conv");
        let cat = b.cat(&[l, r]);
        let a = b.inv(&[cat], "relu");
        h = b.conv(a, width, "conv");
    }
    b.g
}

/// The shape of a decoder-only language model (LLaMA's): `blocks` blocks of
/// grouped-query attention (`heads` query heads reading `kv_heads` KV
/// heads, each of `head_dim` neurons) and a SwiGLU MLP of width `mlp` on a
/// residual stream of `hidden` neurons, between a token embedding and an LM
/// head over `vocab` tokens. RMSNorms are invariant vertices. In block `b`
/// (0-based) the head splits are named `b{b}.q_heads`, `b{b}.k_heads` and
/// `b{b}.v_heads` (one neuron per head), the projections `b{b}.q` ...
/// `b{b}.o`, and the MLP's `b{b}.gate`, `b{b}.up` and `b{b}.down`.
pub fn llama(
    blocks: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    mlp: usize,
    hidden: usize,
    vocab: usize,
) -> Graph {
    use crate::graph::Constraint;
    let mut g = Graph::new();
    let z = |r: Result<VertexId, crate::error::GraphError>| r.expect("zoo llama");
    let ids = z(g.add_input("ids", 1));
    // The token embedding: its neurons are the hidden size.
    let mut x = z(g.add_absorb("embed", &[ids], hidden));
    for b in 0..blocks {
        let n = |s: &str| format!("b{b}.{s}");
        let norm = z(g.add_invariant(&n("attn_norm"), &[x]));
        let q = z(g.add_absorb(&n("q"), &[norm], heads * head_dim));
        let k = z(g.add_absorb(&n("k"), &[norm], kv_heads * head_dim));
        let v = z(g.add_absorb(&n("v"), &[norm], kv_heads * head_dim));
        let split = |g: &mut Graph, s: &str, from: VertexId, h: usize| {
            g.add_vertex_with(
                &n(s),
                SizeKind::Absorb,
                &[from],
                Some(h),
                &[Constraint::Heads { width: head_dim }],
            )
            .expect("zoo llama heads")
        };
        let qh = split(&mut g, "q_heads", q, heads);
        let kh = split(&mut g, "k_heads", k, kv_heads);
        let vh = split(&mut g, "v_heads", v, kv_heads);
        let (kr, vr) = if heads == kv_heads {
            (kh, vh)
        } else {
            let rep = |g: &mut Graph, s: &str, from: VertexId| {
                let r = g.add_absorb(&n(s), &[from], heads).expect("zoo llama");
                g.add_constraint(r, Constraint::depthwise(heads / kv_heads))
                    .expect("zoo llama repeat");
                r
            };
            (rep(&mut g, "k_rep", kh), rep(&mut g, "v_rep", vh))
        };
        let rope = z(g.add_invariant(&n("rope"), &[qh]));
        let scores = z(g.add_invariant(&n("scores"), &[rope, kr]));
        let attn = z(g.add_invariant(&n("softmax"), &[scores]));
        let av = z(g.add_invariant(&n("av"), &[attn, vr]));
        let merge = z(g.add_absorb(&n("merge"), &[av], heads * head_dim));
        g.add_constraint(merge, Constraint::depthwise(head_dim))
            .expect("zoo llama merge");
        let o = z(g.add_absorb(&n("o"), &[merge], hidden));
        x = z(g.add_invariant(&n("attn_res"), &[x, o]));
        let norm = z(g.add_invariant(&n("mlp_norm"), &[x]));
        let gate = z(g.add_absorb(&n("gate"), &[norm], mlp));
        let up = z(g.add_absorb(&n("up"), &[norm], mlp));
        let act = z(g.add_invariant(&n("silu"), &[gate]));
        let mul = z(g.add_invariant(&n("swiglu"), &[act, up]));
        let down = z(g.add_absorb(&n("down"), &[mul], hidden));
        x = z(g.add_invariant(&n("mlp_res"), &[x, down]));
    }
    let norm = z(g.add_invariant("final_norm", &[x]));
    z(g.add_absorb("lm_head", &[norm], vocab));
    g
}

/// LLaMA-7B's shape ([`llama`]): 32 blocks, 32 heads on 8 KV heads of 128,
/// MLP 11,008, hidden 4,096, vocabulary 32,000 (about 1.3M neurons).
pub fn llama_7b() -> Graph {
    llama(32, 32, 8, 128, 11_008, 4_096, 32_000)
}

/// Seeded utilities for every absorbing vertex: magnitudes in (0.5, 1.5),
/// a random half of each vertex's neurons negative. Other vertices keep the
/// default (0 for transparent ones).
pub fn half_negative_utility(g: &Graph, seed: u64) -> Utility {
    let mut rng = Rng::new(seed);
    let mut next = move || rng.next();
    let mut u = Utility::new();
    for id in g.ids() {
        let v = g.v(id);
        if v.kind != SizeKind::Absorb {
            continue;
        }
        let n = v.nout;
        let mut vals: Vec<f64> = (0..n)
            .map(|_| 0.5 + (next() >> 11) as f64 / (1u64 << 53) as f64)
            .collect();
        // Negate a random half: a partial Fisher-Yates shuffle of indices.
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..n / 2 {
            let j = i + (next() % (n - i) as u64) as usize;
            idx.swap(i, j);
            vals[idx[i]] = -vals[idx[i]];
        }
        u.set(id, vals);
    }
    u
}

/// Total number of neurons (sum of nout over all vertices).
pub fn neurons(g: &Graph) -> usize {
    g.ids().map(|id| g.v(id).nout).sum()
}

/// xorshift64*: tiny, seeded, and stable across platforms (the zoo's
/// generators and utilities must give the same graphs everywhere).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// One concatenation of `inputs` branches: `input(16)`, then `inputs`
/// absorbing branches of seeded widths in 8..=64, their concatenation
/// (named `cat`) and a 10-neuron head reading it.
pub fn concat_fan(inputs: usize, seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut b = B {
        g: Graph::new(),
        n: 0,
    };
    let x = b.g.add_input("input", 16).expect("zoo");
    let branches: Vec<VertexId> = (0..inputs)
        .map(|_| {
            let w = rng.range(8, 64);
            b.conv(x, w, "branch")
        })
        .collect();
    let cat = b.g.add_stack("cat", &branches).expect("zoo concat");
    b.conv(cat, 10, "head");
    b.g
}

/// A random DAG of about `neurons` neurons (seeded): a stem, then cells,
/// each a dense block of random depth (20 to 60 layers) whose layers read a
/// concatenation of a random subset of the block's earlier features
/// (always the newest) and add a feature of random width; the block ends in
/// a concatenation of all its features (named `cell{k}_out`), a transition
/// and a residual add with a projection of the cell's input. Widths scale
/// with `neurons` so that the graph has about 20 cells (fewer below about
/// 70,000 neurons, where features keep a width of at least 1). The cell outputs'
/// components hold one group per feature: 20 to 120 groups.
pub fn random_dag(neurons: usize, seed: u64) -> Graph {
    let mut rng = Rng::new(seed);
    let mut b = B {
        g: Graph::new(),
        n: 0,
    };
    // About 20 cells of about 40 layers; a layer's concatenation re-counts
    // about half the block's features, so a cell holds about 40·(1 + 40·w/2)
    // neurons of features of mean width w.
    // Features are at least 4 wide (fewer cells for small graphs).
    let scale = (neurons as f64 / (20.0 * 40.0 * 21.0)).max(4.0);
    let width = |rng: &mut Rng| ((rng.range(4, 28) as f64) * scale / 16.0).round() as usize;
    let x = b.g.add_input("input", 16).expect("zoo");
    let stem_w = (64.0 * scale / 16.0).round().max(4.0) as usize;
    let mut h = b.conv(x, stem_w, "stem");
    let mut cell = 0;
    while self::neurons(&b.g) < neurons {
        cell += 1;
        let depth = rng.range(20, 60);
        let mut feats = vec![h];
        for _ in 0..depth {
            let newest = *feats.last().expect("a feature");
            let mut pick: Vec<VertexId> = feats[..feats.len() - 1]
                .iter()
                .copied()
                .filter(|_| rng.unit() < 0.5)
                .collect();
            pick.push(newest);
            let input = if pick.len() == 1 {
                pick[0]
            } else {
                b.cat(&pick)
            };
            let w = width(&mut rng);
            let f = b.conv(input, w, "conv");
            feats.push(f);
        }
        let name = format!("cell{cell}_out");
        let out = b.g.add_stack(&name, &feats).expect("zoo");
        let t = b.conv(out, stem_w, "transition");
        let p = b.conv(h, stem_w, "proj");
        h = b.inv(&[t, p], "add");
    }
    b.g
}

/// Seeded utilities for every absorbing vertex, uniform in (0, 1).
pub fn uniform_utility(g: &Graph, seed: u64) -> Utility {
    let mut rng = Rng::new(seed);
    let mut u = Utility::new();
    for id in g.ids() {
        let v = g.v(id);
        if v.kind != SizeKind::Absorb {
            continue;
        }
        let vals: Vec<f64> = (0..v.nout).map(|_| rng.unit().max(1e-12)).collect();
        u.set(id, vals);
    }
    u
}

/// One class of hard planner requests (issue 16): a graph and a request per
/// seed.
pub struct HardCase {
    /// `family/graph/request`.
    pub name: String,
    /// One (graph, request) per seed.
    pub runs: Vec<(Graph, Request)>,
}

/// The planner's hard classes, generated with the given seeds:
///
/// - DenseNet-121 with [`uniform_utility`], exact −min(512, n/2) and +256 on
///   the concatenation ending each block and on each transition;
/// - [`random_dag`]s of 10k, 100k and 1M neurons, exact −n/2 and +n/4 on the
///   largest cell output (a component of 20 to 60 groups), uniform utility;
/// - [`concat_fan`]s of 50 to 300 inputs, exact −N/2 and +N/2 on the
///   concatenation, uniform utility;
/// - fans of 20 to 100 inputs, exact −N/2, with a utility of 0.5 on the
///   concatenation's neurons as well, and with a second weighted
///   concatenation of half the branches (not separable: the branch and
///   bound's case).
pub fn hard_cases(seeds: &[u64]) -> Vec<HardCase> {
    let mut out = Vec::new();
    let dn = densenet121();
    let mut sites: Vec<String> = (1..=4).map(|s| format!("block{s}_out")).collect();
    sites.extend(
        dn.ids()
            .map(|v| dn.name(v))
            .filter(|n| n.starts_with("transition")),
    );
    for site in &sites {
        let v = dn.id(site).expect("zoo site");
        let n = dn.v(v).nout as i64;
        for delta in [-(512.min(n / 2)), 256] {
            out.push(HardCase {
                name: format!("densenet121/{site}/{delta:+}"),
                runs: seeds
                    .iter()
                    .map(|&s| {
                        let req = Request::new()
                            .nout(v, delta)
                            .with_utility(uniform_utility(&dn, s));
                        (dn.clone(), req)
                    })
                    .collect(),
            });
        }
    }
    for (label, size) in [("10k", 10_000), ("100k", 100_000), ("1m", 1_000_000)] {
        for half in [true, false] {
            let runs = seeds
                .iter()
                .map(|&s| {
                    let g = random_dag(size, s);
                    let v = largest_cell(&g);
                    let n = g.v(v).nout as i64;
                    let delta = if half { -n / 2 } else { n / 4 };
                    let req = Request::new()
                        .nout(v, delta)
                        .with_utility(uniform_utility(&g, s));
                    (g, req)
                })
                .collect();
            let what = if half { "-n/2" } else { "+n/4" };
            out.push(HardCase {
                name: format!("random_dag/{label}/{what}"),
                runs,
            });
        }
    }
    for inputs in [50, 100, 150, 200, 250, 300] {
        for sign in [-1i64, 1] {
            let delta = sign * inputs as i64 / 2;
            let runs = seeds
                .iter()
                .map(|&s| {
                    let g = concat_fan(inputs, s);
                    let v = g.id("cat").expect("zoo cat");
                    let req = Request::new()
                        .nout(v, delta)
                        .with_utility(uniform_utility(&g, s));
                    (g, req)
                })
                .collect();
            out.push(HardCase {
                name: format!("concat/{inputs}/{delta:+}"),
                runs,
            });
        }
    }
    // The same fans with a utility of 0.5 on the concatenation (its fixed
    // size adds a constant penalty: still separable), and with a second,
    // weighted concatenation of the first half of the branches (a penalised
    // row over many groups whose size may change: not separable, the
    // branch and bound's case).
    for (label, overlap) in [("weighted", false), ("overlap", true)] {
        for inputs in [20, 50, 100] {
            let delta = -(inputs as i64) / 2;
            let runs = seeds
                .iter()
                .map(|&s| {
                    let mut g = concat_fan(inputs, s);
                    let v = g.id("cat").expect("zoo cat");
                    let mut u = uniform_utility(&g, s);
                    u.set(v, vec![0.5; g.v(v).nout]);
                    if overlap {
                        let half: Vec<VertexId> = g.v(v).inputs[..inputs / 2].to_vec();
                        let h = g.add_stack("half", &half).expect("zoo concat");
                        u.set(h, vec![0.5; g.v(h).nout]);
                    }
                    (g, Request::new().nout(v, delta).with_utility(u))
                })
                .collect();
            out.push(HardCase {
                name: format!("concat-{label}/{inputs}/{delta:+}"),
                runs,
            });
        }
    }
    out
}

/// The cell output of a [`random_dag`] with the most neurons.
fn largest_cell(g: &Graph) -> VertexId {
    g.ids()
        .filter(|&v| g.name(v).starts_with("cell"))
        .max_by_key(|&v| g.v(v).nout)
        .expect("a cell")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoo_graphs_are_valid_with_real_channel_counts() {
        for g in [a25(), resnet50(), densenet121(), synthetic(3, 2, 8)] {
            g.check().unwrap();
        }
        let r = resnet50();
        assert_eq!(r.nout(r.id("stage3_out").unwrap()).unwrap(), 1024);
        assert_eq!(r.nout(r.id("stage4_out").unwrap()).unwrap(), 2048);
        let d = densenet121();
        let outs: Vec<usize> = (1..=4)
            .map(|s| d.nout(d.id(&format!("block{s}_out")).unwrap()).unwrap())
            .collect();
        assert_eq!(outs, [256, 512, 1024, 1024]);
        assert_eq!(neurons(&a25()), 1 + 1000 + 3000 + 7000 + 7000);
    }
}
