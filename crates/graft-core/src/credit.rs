//! Scores of neurons carried back through the neuron maps to the vertices
//! that make those neurons.
//!
//! A neuron is often best judged where it is read: a layer's columns that
//! read it, weighted by how large it is on real data (Wanda's score, on the
//! reading side). The reader's input may be a vertex that only passes
//! neurons on (an activation, a norm, a SwiGLU product, a head merge); the
//! score belongs to the layer that makes the neuron. [`carry_back`] walks
//! the same ties the planner's classes follow, tensor-free.

use std::collections::HashMap;

use crate::graph::{Graph, SizeKind, VertexId};

/// Carry per-neuron `scores` of some vertices back, through every tie that
/// maps a vertex's neurons to its inputs' (invariant and select inputs one
/// to one, a stack's parts, a slice's part, a depthwise block to its input
/// neuron, a head to its input neurons, a fold, a tile, a shuffle), to the
/// vertices where `makes(v)` holds (a layer with weights): their carried
/// scores. Scores meeting at one neuron add up; a neuron standing for
/// several (a head for its width of input neurons, a fold's neuron for one
/// in each block) shares its score equally among them. Scores reaching a
/// vertex that neither makes its neurons nor maps them (an immutable
/// vertex, another absorbing one, an input) stop there.
///
/// # Errors
/// A graph with a cycle.
pub fn carry_back(
    graph: &Graph,
    scores: &HashMap<VertexId, Vec<f64>>,
    makes: impl Fn(VertexId) -> bool,
) -> Result<HashMap<VertexId, Vec<f64>>, crate::error::CheckError> {
    let topo = graph.topological_order()?;
    let mut acc: HashMap<VertexId, Vec<f64>> = HashMap::new();
    for (&v, s) in scores {
        if graph.vertex(v).is_ok_and(|x| x.nout() == s.len()) {
            add(&mut acc, v, s.len(), |j| s[j]);
        }
    }
    let mut out = HashMap::new();
    for &v in topo.iter().rev() {
        let Some(s) = acc.remove(&v) else { continue };
        if makes(v) {
            out.insert(v, s);
            continue;
        }
        pass_on(graph, v, &s, &mut acc);
    }
    Ok(out)
}

/// Add `f(j)` to neuron `j` of `v`'s accumulated scores.
fn add(acc: &mut HashMap<VertexId, Vec<f64>>, v: VertexId, n: usize, f: impl Fn(usize) -> f64) {
    let e = acc.entry(v).or_insert_with(|| vec![0.0; n]);
    for (j, x) in e.iter_mut().enumerate() {
        *x += f(j);
    }
}

/// Pass `v`'s scores `s` on to its inputs through `v`'s neuron map.
fn pass_on(graph: &Graph, v: VertexId, s: &[f64], acc: &mut HashMap<VertexId, Vec<f64>>) {
    let vx = graph.v(v);
    let nin = |k: usize| vx.nin[k];
    match vx.kind {
        SizeKind::Invariant | SizeKind::Select => {
            for (k, u) in vx.tied_inputs() {
                add(acc, u, nin(k), |j| s[j]);
            }
        }
        SizeKind::Stack => {
            let mut off = 0;
            for (k, &u) in vx.inputs.iter().enumerate() {
                add(acc, u, nin(k), |j| s[off + j]);
                off += nin(k);
            }
        }
        SizeKind::Absorb if vx.inputs.len() == 1 => {
            let (u, n) = (vx.inputs[0], nin(0));
            if let Some(start) = vx.slice_start() {
                add(acc, u, n, |i| {
                    i.checked_sub(start)
                        .and_then(|j| s.get(j))
                        .copied()
                        .unwrap_or(0.0)
                });
            } else if let Some(m) = vx.depthwise() {
                add(acc, u, n, |i| (i * m..(i + 1) * m).map(|j| s[j]).sum());
            } else if let Some(w) = vx.heads() {
                add(acc, u, n, |i| s[i / w] / w as f64);
            } else if let Some(b) = vx.fold() {
                let w = vx.nout;
                add(acc, u, n, |i| s[i % w] / b as f64);
            } else if let Some(b) = vx.tile() {
                add(acc, u, n, |i| (0..b).map(|blk| s[blk * n + i]).sum());
            } else if let Some(g) = vx.shuffle_groups() {
                // Output k·g + i is input i·w + k.
                let w = n / g.max(1);
                add(acc, u, n, |x| s[(x % w) * g + x / w]);
            }
        }
        SizeKind::Absorb | SizeKind::Input | SizeKind::Immutable => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Constraint;

    #[test]
    fn scores_reach_the_layers_that_make_the_neurons() {
        // x -> gate(4), up(4) -> act(gate) -> prod(act, up) -> down reads prod.
        let mut g = Graph::new();
        let x = g.add_input("x", 3).unwrap();
        let gate = g.add_absorb("gate", &[x], 4).unwrap();
        let up = g.add_absorb("up", &[x], 4).unwrap();
        let act = g.add_invariant("act", &[gate]).unwrap();
        let prod = g.add_invariant("prod", &[act, up]).unwrap();
        g.add_absorb("down", &[prod], 2).unwrap();
        let makes = |v: VertexId| v == gate || v == up;
        let s = HashMap::from([(prod, vec![1.0, 2.0, 3.0, 4.0])]);
        let c = carry_back(&g, &s, makes).unwrap();
        assert_eq!(c[&gate], vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(c[&up], vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn heads_merges_and_stacks_map_scores() {
        // q(4) -> split into 2 heads of 2 -> merge back (depthwise 2) ->
        // cat(merge, y) read by o.
        let mut g = Graph::new();
        let x = g.add_input("x", 3).unwrap();
        let q = g.add_absorb("q", &[x], 4).unwrap();
        let h = g
            .add_vertex_with(
                "h",
                SizeKind::Absorb,
                &[q],
                Some(2),
                &[Constraint::Heads { width: 2 }],
            )
            .unwrap();
        let m = g.add_absorb("m", &[h], 4).unwrap();
        g.add_constraint(m, Constraint::depthwise(2)).unwrap();
        let y = g.add_absorb("y", &[x], 1).unwrap();
        let cat = g.add_stack("cat", &[m, y]).unwrap();
        let makes = |v: VertexId| v == q || v == y;
        let s = HashMap::from([(cat, vec![1.0, 3.0, 5.0, 7.0, 9.0])]);
        let c = carry_back(&g, &s, makes).unwrap();
        // Head 0: 1 + 3 = 4, shared by q's neurons 0 and 1; head 1: 12.
        assert_eq!(c[&q], vec![2.0, 2.0, 6.0, 6.0]);
        assert_eq!(c[&y], vec![9.0]);
    }
}
