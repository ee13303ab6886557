//! Structured pruning to a target: remove whole neurons (channels, features)
//! until a share of them, a parameter budget or a MAC budget is met.
//!
//! The planner does the removing. Every prunable vertex gets a utility per
//! neuron, shifted down by a cut; a re-select request then drops the
//! neurons of negative utility, coupled neurons (residual adds,
//! concatenations, branches) deciding together and every vertex keeping at
//! least one. The cut is searched by bisection until the target holds:
//!
//! - global scope: one cut over utilities normalised per vertex (each
//!   vertex's utilities divided by their mean), so vertices compete;
//! - layer scope: every vertex loses the same share, its own quantile.
//!
//! Prunable vertices are the absorbing ones whose size may change and that
//! feed something (a graph output keeps its size).

use graft_core::{plan, Graph, Plan, Request, SizeKind, Utility, VertexId};

use crate::cost::{cost_of, parameters_of, Shape};
use crate::error::{NnError, Result};
use crate::model::Model;

/// What to prune to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Remove this share (0 to 1) of the prunable neurons.
    Ratio(f64),
    /// At most this many trainable parameters.
    Params(u64),
    /// At most this many multiply-accumulates per sample.
    Macs(u64),
}

/// How neurons compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One cut over the whole network (utilities normalised per vertex).
    Global,
    /// The same share from every vertex.
    Layer,
}

/// Which parts of a transformer pruning may shrink, by the size component
/// a prunable vertex belongs to: the one holding a head split, the one
/// holding a token embedding (the residual stream), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// Attention heads: the query, key, value and output projections'
    /// whole heads.
    Heads,
    /// Experts: a router's outputs that a top-k chooses among, with their
    /// rows in every expert table.
    Experts,
    /// Head dimensions (a model imported reading attention along the head
    /// dimension): the same dimensions of every head of the query and key
    /// projections (rotary pairs together), and of the value and output
    /// projections.
    HeadDims,
    /// The hidden size: the token embedding, every norm and every
    /// projection reading or writing the residual stream.
    Hidden,
    /// Everything else (MLP widths; every layer of a network without
    /// heads or embeddings).
    Mlp,
}

/// The part of prunable vertex `v` ([`Part`]).
pub fn part_of(model: &Model, v: VertexId) -> Part {
    part_of_component(model, &model.graph().size_component(v).unwrap_or_default())
}

/// The part of the vertices of one size component.
fn part_of_component(model: &Model, comp: &[VertexId]) -> Part {
    let g = model.graph();
    let has = |f: &dyn Fn(&crate::op::Op) -> bool| {
        comp.iter()
            .any(|&u| model.layer(u).is_some_and(|l| f(&l.op)))
    };
    if comp
        .iter()
        .any(|&u| g.vertex(u).is_ok_and(|x| x.heads().is_some()))
    {
        Part::Heads
    } else if comp.iter().any(|&u| {
        g.vertex(u)
            .is_ok_and(|x| x.fold().is_some() || x.tile().is_some())
    }) {
        Part::HeadDims
    } else if comp.iter().any(|&u| {
        g.vertex(u).is_ok_and(|x| {
            x.outputs()
                .iter()
                .any(|&o| matches!(model.layer(o).map(|l| &l.op), Some(crate::op::Op::TopK(_))))
        })
    }) {
        Part::Experts
    } else if has(&|op| matches!(op, crate::op::Op::Embedding(_))) {
        Part::Hidden
    } else {
        Part::Mlp
    }
}

/// Sizes and costs before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct Shrunk {
    /// The plan that was applied.
    pub plan: Plan,
    /// Prunable neurons before and after.
    pub neurons: (u64, u64),
    /// Trainable parameters before and after.
    pub params: (u64, u64),
    /// MACs per sample before and after.
    pub macs: (u64, u64),
}

/// The vertices pruning may shrink: absorbing vertices (not slices or
/// shuffles, whose neurons are their input's, nor the reshapes that split
/// and merge attention heads, which pass their projections' neurons on)
/// whose size is not frozen and is not tied to a graph output's (a
/// classifier ending in a convolution, pooled and flattened, keeps its
/// classes). Heads are pruned through their projections: a head's utility
/// is the sum of its query, key, value and output neurons'.
pub fn prunable(model: &Model) -> Vec<VertexId> {
    let g = model.graph();
    let mut tied_to_output = std::collections::HashSet::new();
    for s in g.ids() {
        if g.vertex(s).is_ok_and(|x| x.outputs().is_empty()) {
            tied_to_output.extend(g.size_component(s).unwrap_or_default());
        }
    }
    g.ids()
        .filter(|&v| {
            g.vertex(v).is_ok_and(|x| {
                x.kind() == SizeKind::Absorb
                    && !x.maps_neurons()
                    && !is_regroup(model, v)
                    && !x.is_size_frozen()
                    && !tied_to_output.contains(&v)
            })
        })
        .collect()
}

/// Drop from `vs` the vertices no plan can shrink: those whose every
/// neuron is frozen through the graph (read by an immutable vertex, such as
/// a mixture of experts' router read by its top-k, or tied to one), so
/// that a ratio counts only the neurons pruning can remove. Found with one
/// plan that values every neuron of `vs` below nothing.
fn drop_unmovable(model: &Model, vs: &mut Vec<VertexId>) -> Result<()> {
    let g = model.graph();
    let mut u = Utility::new();
    for &v in vs.iter() {
        u.set(v, vec![-1.0; g.nout(v)?]);
    }
    let p = plan(g, &Request::new().with_utility(u))?;
    vs.retain(|&v| {
        let n = g.nout(v).unwrap_or(0);
        p.change(v)
            .and_then(|c| c.outs.as_ref())
            .is_some_and(|l| l.len() < n)
    });
    Ok(())
}

/// A reshape of the neuron axis (a head split or merge): no weights.
fn is_regroup(model: &Model, v: VertexId) -> bool {
    matches!(
        model.layer(v).map(|l| &l.op),
        Some(crate::op::Op::Regroup(_))
    )
}

struct Measure {
    neurons: u64,
    params: u64,
    macs: u64,
}

fn measure(g: &Graph, model: &Model, shapes: &[Shape], prunable: &[VertexId]) -> Result<Measure> {
    Ok(Measure {
        neurons: prunable
            .iter()
            .map(|&v| g.nout(v).unwrap_or(0) as u64)
            .sum(),
        params: parameters_of(g, model),
        macs: cost_of(g, model, shapes)?.total(),
    })
}

/// Prune `model` to `target` with per-neuron `utility` (e.g.
/// [`crate::utility::magnitude`]). `input_shapes` are per-sample shapes of
/// the graph inputs, for counting MACs. All or nothing.
///
/// # Errors
/// A target outside what pruning can reach (a ratio outside [0, 1), a budget
/// below the smallest network the planner can leave), no prunable vertex,
/// planner errors.
pub fn shrink(
    model: &mut Model,
    utility: &Utility,
    target: Target,
    scope: Scope,
    input_shapes: &[Shape],
) -> Result<Shrunk> {
    shrink_parts(
        model,
        utility,
        target,
        scope,
        input_shapes,
        &[
            Part::Heads,
            Part::HeadDims,
            Part::Experts,
            Part::Hidden,
            Part::Mlp,
        ],
    )
}

/// [`shrink`], pruning only the vertices of the given parts (the others
/// keep their sizes; a ratio counts the neurons of these parts only).
///
/// # Errors
/// As [`shrink`]; no prunable vertex in these parts.
pub fn shrink_parts(
    model: &mut Model,
    utility: &Utility,
    target: Target,
    scope: Scope,
    input_shapes: &[Shape],
    parts: &[Part],
) -> Result<Shrunk> {
    let bad = |reason: String| NnError::Invalid {
        what: "pruning target".into(),
        reason,
    };
    if let Target::Ratio(r) = target {
        if !(0.0..1.0).contains(&r) {
            return Err(bad(format!(
                "a ratio of {r}: it must be at least 0 and below 1"
            )));
        }
    }
    // Each size component is classified once (not once per vertex).
    let mut part: std::collections::HashMap<VertexId, Part> = Default::default();
    let mut vs = Vec::new();
    for v in prunable(model) {
        if !part.contains_key(&v) {
            let comp = model.graph().size_component(v)?;
            let p = part_of_component(model, &comp);
            part.extend(comp.into_iter().map(|u| (u, p)));
            part.insert(v, p);
        }
        if parts.contains(&part[&v]) {
            vs.push(v);
        }
    }
    drop_unmovable(model, &mut vs)?;
    if vs.is_empty() {
        return Err(bad(format!("no vertex of {parts:?} can be pruned")));
    }
    let before = measure(model.graph(), model, input_shapes, &vs)?;
    // Per-vertex utilities, normalised (global) or as ranks in [0, 1)
    // (layer: a cut at c removes the share c of every vertex).
    let mut base: Vec<(VertexId, Vec<f64>)> = Vec::new();
    for &v in &vs {
        let n = model.graph().nout(v)?;
        let u: Vec<f64> = utility.get(v).map_or_else(|| vec![1.0; n], <[f64]>::to_vec);
        let vals = match scope {
            Scope::Global => {
                let mean = u.iter().sum::<f64>() / n.max(1) as f64;
                u.iter()
                    .map(|x| if mean > 0.0 { x / mean } else { 1.0 })
                    .collect()
            }
            Scope::Layer => {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| u[a].total_cmp(&u[b]));
                let mut rank = vec![0.0; n];
                for (r, &i) in order.iter().enumerate() {
                    rank[i] = (r as f64 + 0.5) / n as f64;
                }
                rank
            }
        };
        base.push((v, vals));
    }
    // Graph outputs and other vertices keep their default utility.
    // Head splits and merges pass neurons on: no utility of their own.
    let passing: Vec<(VertexId, usize)> = model
        .graph()
        .ids()
        .filter(|&v| is_regroup(model, v))
        .filter_map(|v| Some((v, model.graph().nout(v).ok()?)))
        .collect();
    let request = |cut: f64| {
        let mut u = Utility::new();
        for (v, vals) in &base {
            u.set(*v, vals.iter().map(|x| x - cut).collect());
        }
        for &(v, n) in &passing {
            u.set(v, vec![0.0; n]);
        }
        Request::new().with_utility(u)
    };
    let try_cut = |cut: f64| -> Result<(Plan, Measure)> {
        let p = plan(model.graph(), &request(cut))?;
        let mut g = model.graph().clone();
        p.apply(&mut g)?;
        let m = measure(&g, model, input_shapes, &vs)?;
        Ok((p, m))
    };
    let meets = |m: &Measure| match target {
        Target::Ratio(r) => (before.neurons - m.neurons) as f64 >= r * before.neurons as f64 - 1e-9,
        Target::Params(n) => m.params <= n,
        Target::Macs(n) => m.macs <= n,
    };
    // The cut rises until the target holds; bisect for the smallest such.
    let hi_cut = match scope {
        Scope::Layer => 1.0,
        Scope::Global => {
            base.iter()
                .flat_map(|(_, v)| v.iter().copied())
                .fold(0.0, f64::max)
                + 1.0
        }
    };
    let (mut lo, mut hi) = (0.0, hi_cut);
    let (p_hi, m_hi) = try_cut(hi)?;
    if !meets(&m_hi) {
        return Err(bad(format!(
            "{target:?} cannot be met: the smallest network pruning leaves has {} parameters and {} MACs",
            m_hi.params, m_hi.macs
        )));
    }
    let mut best = (p_hi, m_hi);
    let (p0, m0) = try_cut(0.0)?;
    if meets(&m0) {
        best = (p0, m0);
    } else {
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            let (p, m) = try_cut(mid)?;
            if meets(&m) {
                hi = mid;
                best = (p, m);
            } else {
                lo = mid;
            }
            if hi - lo < 1e-6 {
                break;
            }
        }
    }
    let (p, after) = best;
    model.apply_plan(&p)?;
    Ok(Shrunk {
        plan: p,
        neurons: (before.neurons, after.neurons),
        params: (before.params, after.params),
        macs: (before.macs, after.macs),
    })
}
