//! Seeded graph generators, oriented as deepstruct does: an undirected edge
//! {u, v} becomes u -> v when u comes first in node order, so every result
//! is a DAG.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dag::LayeredDag;

fn oriented(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> LayeredDag {
    let mut seen = std::collections::BTreeSet::new();
    for (a, b) in edges {
        if a != b {
            seen.insert((a.min(b), a.max(b)));
        }
    }
    let list: Vec<(usize, usize)> = seen.into_iter().collect();
    LayeredDag::from_edges(n, &list).expect("edges from lower to higher ids are acyclic")
}

/// A balanced tree with branching `r` and height `h` (breadth-first ids).
pub fn balanced_tree(r: usize, h: usize) -> LayeredDag {
    let n: usize = (0..=h).map(|k| r.pow(k as u32)).sum();
    oriented(n, (1..n).map(|v| ((v - 1) / r, v)))
}

/// A `rows` × `cols` grid, ids row-major.
pub fn grid_2d(rows: usize, cols: usize) -> LayeredDag {
    let id = |i: usize, j: usize| i * cols + j;
    let mut e = Vec::new();
    for i in 0..rows {
        for j in 0..cols {
            if j + 1 < cols {
                e.push((id(i, j), id(i, j + 1)));
            }
            if i + 1 < rows {
                e.push((id(i, j), id(i + 1, j)));
            }
        }
    }
    oriented(rows * cols, e)
}

/// The ring lattice of `n` nodes, each joined to its `k / 2` nearest
/// neighbours on either side.
fn ring(n: usize, k: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|i| (1..=k / 2).map(move |d| (i, (i + d) % n)))
        .collect()
}

/// Watts–Strogatz: the ring lattice with every edge's far end rewired with
/// probability `p` (no self-loops or duplicates).
pub fn watts_strogatz(n: usize, k: usize, p: f64, seed: u64) -> LayeredDag {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut set: std::collections::BTreeSet<(usize, usize)> = ring(n, k)
        .into_iter()
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    for (a, b) in ring(n, k) {
        if rng.random::<f64>() < p {
            let c = rng.random_range(0..n);
            let new = (a.min(c), a.max(c));
            if c != a && !set.contains(&new) {
                set.remove(&(a.min(b), a.max(b)));
                set.insert(new);
            }
        }
    }
    oriented(n, set)
}

/// Newman–Watts–Strogatz: the ring lattice plus, for every lattice edge, a
/// shortcut from its first node to a random node with probability `p`.
pub fn newman_watts_strogatz(n: usize, k: usize, p: f64, seed: u64) -> LayeredDag {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut e = ring(n, k);
    for (a, _) in ring(n, k) {
        if rng.random::<f64>() < p {
            e.push((a, rng.random_range(0..n)));
        }
    }
    oriented(n, e)
}

/// Erdős–Rényi G(n, p).
pub fn erdos_renyi(n: usize, p: f64, seed: u64) -> LayeredDag {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut e = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            if rng.random::<f64>() < p {
                e.push((a, b));
            }
        }
    }
    oriented(n, e)
}

/// Barabási–Albert: each new node attaches to `m` existing nodes chosen
/// with probability proportional to their degree.
pub fn barabasi_albert(n: usize, m: usize, seed: u64) -> LayeredDag {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut e = Vec::new();
    let mut pool: Vec<usize> = (0..m.min(n)).collect();
    for v in m..n {
        let mut picked = std::collections::BTreeSet::new();
        while picked.len() < m.min(v) {
            picked.insert(pool[rng.random_range(0..pool.len())]);
        }
        for &t in &picked {
            e.push((t, v));
            pool.push(t);
            pool.push(v);
        }
    }
    oriented(n, e)
}

/// A scalable family member: every node `v` of `base` becomes a group of
/// `round(proportion[v] · scale)` neurons, and every base edge a complete
/// bipartite join between the two groups (nodes without a proportion get
/// none). Returns the graph and each new node's base node.
pub fn scaled(base: &LayeredDag, proportions: &[f64], scale: usize) -> (LayeredDag, Vec<usize>) {
    let mut g = LayeredDag::new();
    let mut group: Vec<Vec<usize>> = Vec::with_capacity(base.len());
    let mut origin = Vec::new();
    // A node without a proportion (or a negative one) gets no neurons.
    for v in 0..base.len() {
        let p = proportions.get(v).copied().unwrap_or(0.0).max(0.0);
        let n = (p * scale as f64).round() as usize;
        group.push((0..n).map(|_| g.add_node()).collect());
        origin.extend(std::iter::repeat_n(v, n));
    }
    for (a, b) in base.edges() {
        for &x in &group[a] {
            for &y in &group[b] {
                g.add_edge(x, y)
                    .expect("a copy of a DAG's edges is acyclic");
            }
        }
    }
    (g, origin)
}
