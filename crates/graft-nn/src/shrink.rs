//! Structured pruning to a target: remove whole neurons (channels, features)
//! until a share of them, a parameter budget or a MAC budget is met.
//!
//! The planner does the removing. Every prunable vertex gets a utility per
//! neuron, shifted down by a cut; a re-select request then drops the
//! neurons of negative utility, coupled neurons (residual adds,
//! concatenations, branches) deciding together and every vertex keeping at
//! least one. The cut is searched by bisection until the target holds,
//! then neurons that fell together at the last step (tied utilities) are
//! kept back, the first ones first, as many as the target allows, so a
//! ratio over equal utilities keeps the share it asks for:
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

/// The neurons of `vs` that plan `below` keeps and plan `above` (at cut
/// `hi`) drops or values at most `hi`: the ones a rise of the cut made fall
/// together, and those of them the planner kept only to keep a vertex
/// alive. Most useful first: by utility, then by position (the first
/// neurons of a vertex are kept before later ones, so ties break the same
/// way every time).
fn jumped(
    g: &Graph,
    vs: &[VertexId],
    base: &[(VertexId, Vec<f64>)],
    below: &Plan,
    (above, hi): (&Plan, f64),
) -> Result<Vec<(VertexId, usize)>> {
    let kept = |p: &Plan, v: VertexId, n: usize| -> Vec<bool> {
        let mut k = vec![false; n];
        match p.change(v).and_then(|c| c.outs.as_ref()) {
            Some(list) => {
                for x in list {
                    if let graft_core::Neuron::Old(i) = *x {
                        if let Some(b) = k.get_mut(i) {
                            *b = true;
                        }
                    }
                }
            }
            None => k.iter_mut().for_each(|b| *b = true),
        }
        k
    };
    let mut out: Vec<(f64, usize, usize, VertexId)> = Vec::new();
    for (order, &v) in vs.iter().enumerate() {
        let n = g.nout(v)?;
        let (a, b) = (kept(below, v, n), kept(above, v, n));
        // `base` lists the vertices of `vs` in their order.
        let vals = base
            .get(order)
            .filter(|(w, _)| *w == v)
            .map(|(_, x)| x.as_slice());
        for i in 0..n {
            let u = vals.and_then(|x| x.get(i)).copied().unwrap_or(0.0);
            if a[i] && (!b[i] || u <= hi) {
                out.push((u, order, i, v));
            }
        }
    }
    out.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    Ok(out.into_iter().map(|(_, _, i, v)| (v, i)).collect())
}

/// The plan keeping back the most of `n` neurons (`keep_back(k)` keeps the
/// first `k`) that still meets the target, by bisection on `k`; `fallback`
/// (none kept back) meets it.
fn largest_meeting(
    n: usize,
    fallback: (Plan, Measure),
    keep_back: impl Fn(usize) -> Result<(Plan, Measure)>,
    meets: &impl Fn(&Measure) -> bool,
) -> Result<(Plan, Measure)> {
    let (mut lo, mut hi) = (0usize, n);
    let mut best = fallback;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let (p, m) = keep_back(mid)?;
        if meets(&m) {
            lo = mid;
            best = (p, m);
        } else {
            hi = mid;
        }
    }
    Ok(best)
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
    if let Target::Ratio(r) = target {
        if !(0.0..1.0).contains(&r) {
            return Err(bad_target(format!(
                "a ratio of {r}: it must be at least 0 and below 1"
            )));
        }
    }
    let vs = pruned_vertices(model, parts)?;
    let before = measure(model.graph(), model, input_shapes, &vs)?;
    let search = Search::new(
        model,
        input_shapes,
        &vs,
        base_utilities(model, utility, &vs, scope)?,
    );
    let meets = |m: &Measure| match target {
        Target::Ratio(r) => (before.neurons - m.neurons) as f64 >= r * before.neurons as f64 - 1e-9,
        Target::Params(n) => m.params <= n,
        Target::Macs(n) => m.macs <= n,
    };
    let (p, after) = search.smallest_cut(scope, target, &meets)?;
    model.apply_plan(&p)?;
    Ok(Shrunk {
        plan: p,
        neurons: (before.neurons, after.neurons),
        params: (before.params, after.params),
        macs: (before.macs, after.macs),
    })
}

fn bad_target(reason: String) -> NnError {
    NnError::Invalid {
        what: "pruning target".into(),
        reason,
    }
}

/// The prunable vertices of `parts` that a plan can shrink.
fn pruned_vertices(model: &Model, parts: &[Part]) -> Result<Vec<VertexId>> {
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
        return Err(bad_target(format!("no vertex of {parts:?} can be pruned")));
    }
    Ok(vs)
}

/// Per-vertex utilities of `vs`, in their order, normalised (global) or
/// as ranks in [0, 1) (layer: a cut at c removes the share c of every
/// vertex).
fn base_utilities(
    model: &Model,
    utility: &Utility,
    vs: &[VertexId],
    scope: Scope,
) -> Result<Vec<(VertexId, Vec<f64>)>> {
    let mut base = Vec::with_capacity(vs.len());
    for &v in vs {
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
                // Ties: the later neurons rank lower (go first).
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| u[a].total_cmp(&u[b]).then(b.cmp(&a)));
                let mut rank = vec![0.0; n];
                for (r, &i) in order.iter().enumerate() {
                    rank[i] = (r as f64 + 0.5) / n as f64;
                }
                rank
            }
        };
        base.push((v, vals));
    }
    Ok(base)
}

/// The search for the cut: plans of the utilities shifted down by a cut,
/// measured.
struct Search<'a> {
    model: &'a Model,
    input_shapes: &'a [Shape],
    vs: &'a [VertexId],
    base: Vec<(VertexId, Vec<f64>)>,
    /// Head splits and merges pass neurons on: no utility of their own.
    passing: Vec<(VertexId, usize)>,
    /// A kept-back neuron's value: above what every other vertex's
    /// neurons of its class could take away at any cut.
    lift: f64,
}

impl<'a> Search<'a> {
    fn new(
        model: &'a Model,
        input_shapes: &'a [Shape],
        vs: &'a [VertexId],
        base: Vec<(VertexId, Vec<f64>)>,
    ) -> Self {
        let passing = model
            .graph()
            .ids()
            .filter(|&v| is_regroup(model, v))
            .filter_map(|v| Some((v, model.graph().nout(v).ok()?)))
            .collect();
        let top = base
            .iter()
            .flat_map(|(_, v)| v.iter().map(|x| x.abs()))
            .fold(1.0, f64::max);
        let lift = (top + 1.0) * (base.len() as f64 + 1.0);
        Search {
            model,
            input_shapes,
            vs,
            base,
            passing,
            lift,
        }
    }

    /// Utilities shifted down by `cut`, the neurons of `back` kept back.
    /// Graph outputs and other vertices keep their default utility.
    fn request(&self, cut: f64, back: &[(VertexId, usize)]) -> Request {
        let mut lifted: std::collections::HashMap<VertexId, Vec<usize>> = Default::default();
        for &(w, i) in back {
            lifted.entry(w).or_default().push(i);
        }
        let mut u = Utility::new();
        for (v, vals) in &self.base {
            let mut x: Vec<f64> = vals.iter().map(|x| x - cut).collect();
            for &i in lifted.get(v).map_or(&[][..], Vec::as_slice) {
                if let Some(y) = x.get_mut(i) {
                    *y = self.lift;
                }
            }
            u.set(*v, x);
        }
        for &(v, n) in &self.passing {
            u.set(v, vec![0.0; n]);
        }
        Request::new().with_utility(u)
    }

    /// The plan at `cut` with `back` kept back, and what it leaves.
    fn try_with(&self, cut: f64, back: &[(VertexId, usize)]) -> Result<(Plan, Measure)> {
        let g = self.model.graph();
        let p = plan(g, &self.request(cut, back))?;
        let mut g = g.clone();
        p.apply(&mut g)?;
        let m = measure(&g, self.model, self.input_shapes, self.vs)?;
        Ok((p, m))
    }

    /// The plan of the smallest cut that `meets` the target: the cut
    /// rises until it holds, bisected; then the neurons that fell together
    /// at its last step are kept back as far as the target allows.
    fn smallest_cut(
        &self,
        scope: Scope,
        target: Target,
        meets: &impl Fn(&Measure) -> bool,
    ) -> Result<(Plan, Measure)> {
        let hi_cut = match scope {
            Scope::Layer => 1.0,
            Scope::Global => {
                self.base
                    .iter()
                    .flat_map(|(_, v)| v.iter().copied())
                    .fold(0.0, f64::max)
                    + 1.0
            }
        };
        let (mut lo, mut hi) = (0.0, hi_cut);
        let (p_hi, m_hi) = self.try_with(hi, &[])?;
        if !meets(&m_hi) {
            return Err(bad_target(format!(
                "{target:?} cannot be met: the smallest network pruning leaves has {} parameters and {} MACs",
                m_hi.params, m_hi.macs
            )));
        }
        let (p0, m0) = self.try_with(0.0, &[])?;
        if meets(&m0) {
            return Ok((p0, m0));
        }
        let mut best = (p_hi, m_hi);
        let mut below = p0;
        for _ in 0..40 {
            let mid = 0.5 * (lo + hi);
            let (p, m) = self.try_with(mid, &[])?;
            if meets(&m) {
                hi = mid;
                best = (p, m);
            } else {
                lo = mid;
                below = p;
            }
            if hi - lo < 1e-6 {
                break;
            }
        }
        // Neurons whose utilities tie (or nearly) fall together when the
        // cut passes them: keep as many of them back as the target allows.
        let jump = jumped(
            self.model.graph(),
            self.vs,
            &self.base,
            &below,
            (&best.0, hi),
        )?;
        if jump.len() > 1 {
            let keep_back = |k: usize| self.try_with(hi, &jump[..k]);
            best = largest_meeting(jump.len(), best, keep_back, meets)?;
        }
        Ok(best)
    }
}
