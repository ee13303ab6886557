//! Neuron utilities for the planner, computed from a model.

use candle_core::{DType, Tensor};
use std::collections::HashMap;

use graft_core::{Utility, VertexId};

use crate::error::Result;
use crate::model::Model;
use crate::op::Role;

/// Magnitude utility: for every neuron of a layer with parameters, the L2
/// norm of each trainable weight slice it owns (its row, per gate block for
/// recurrent layers) plus the absolute value of each 1-D parameter entry it
/// owns (bias; γ and β for norms). Vertices without parameters get the
/// planner's default.
///
/// # Errors
/// Tensor errors.
pub fn magnitude(model: &Model) -> Result<Utility> {
    use rayon::prelude::*;
    // The layers in parallel (each reads its own weights); set in order.
    let layers: Vec<_> = model.layers().iter().collect();
    let scored: Vec<Option<(VertexId, Vec<f64>)>> = layers
        .par_iter()
        .map(|(v, layer)| layer_magnitude(model, **v, layer))
        .collect::<Result<_>>()?;
    let mut u = Utility::new();
    for (v, acc) in scored.into_iter().flatten() {
        u.set(v, acc);
    }
    add_expert_rows(model, &mut u)?;
    Ok(u)
}

/// One layer's magnitudes per neuron, if it has weights that score them.
fn layer_magnitude(
    model: &Model,
    v: VertexId,
    layer: &crate::Layer,
) -> Result<Option<(VertexId, Vec<f64>)>> {
    let n = model.graph().nout(v)?;
    let mut acc = vec![0f64; n];
    let mut any = false;
    for s in layer.op.params(&[1], 1) {
        if !s.trainable {
            continue;
        }
        let Some(axis) = s.roles.iter().enumerate().find_map(|(a, r)| match *r {
            Role::Out | Role::OutGates(_) => Some(a),
            _ => None,
        }) else {
            continue;
        };
        let Some(var) = layer.params.get(&s.name) else {
            continue;
        };
        let per = slice_norms(var, axis)?;
        for (i, x) in per.iter().enumerate() {
            acc[i % n] += x;
        }
        any = true;
    }
    Ok(any.then_some((v, acc)))
}

/// The L2 norm of each slice of `p` along `axis`, the absolute value where
/// a slice holds one element; read where the values lie (in place, or in
/// chunks of a file), in f64, with no copy of the tensor.
fn slice_norms(p: &crate::Param, axis: usize) -> Result<Vec<f64>> {
    let dims = p.dims();
    let len = dims.get(axis).copied().unwrap_or(1);
    let post: usize = dims.get(axis + 1..).map_or(1, |d| d.iter().product());
    let mut sq = vec![0f64; len];
    if len == 0 || post == 0 {
        return Ok(sq);
    }
    // Whole rows of `post` at a time (a file-backed parameter is read in
    // chunks of them): the sums are the same however it is read.
    p.for_chunks(post, |start, vals| {
        for (j, row) in vals.chunks_exact(post).enumerate() {
            sq[(start / post + j) % len] += sum_squares(row);
        }
        Ok::<(), std::convert::Infallible>(())
    })?
    .unwrap_or_else(|e| match e {});
    sq.iter_mut().for_each(|s| *s = s.sqrt());
    Ok(sq)
}

/// The sum of squares of `row` in f64, in four interleaved partial sums
/// (one chain of additions would wait on each; four fill the vector
/// units): the same order, so the same value, on every machine.
fn sum_squares(row: &[f32]) -> f64 {
    let mut acc = [0f64; 4];
    let quads = row.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        for k in 0..4 {
            acc[k] += f64::from(q[k]) * f64::from(q[k]);
        }
    }
    let tail: f64 = rest.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// An expert is worth its router row and its rows in every expert table:
/// each table row's norm is added to the router neuron it follows (the
/// absorbing vertex behind the table's router input, through invariant
/// ops such as the router's softmax).
fn add_expert_rows(model: &Model, u: &mut Utility) -> Result<()> {
    let g = model.graph();
    for (v, layer) in model.layers() {
        let Some(at) = layer.op.router_rows_input() else {
            continue;
        };
        let Some(&from) = g.vertex(*v)?.inputs().get(at) else {
            continue;
        };
        let mut router = from;
        while g.vertex(router)?.kind() == graft_core::SizeKind::Invariant {
            match g.vertex(router)?.inputs().first() {
                Some(&w) => router = w,
                None => break,
            }
        }
        let Some(t) = layer.params.get("table") else {
            continue;
        };
        let t: Tensor = t.tensor().to_dtype(DType::F64)?;
        let rows = t.dim(0)?;
        if g.nout(router)? != rows {
            continue;
        }
        let norms: Vec<f64> = t.reshape((rows, ()))?.sqr()?.sum(1)?.sqrt()?.to_vec1()?;
        let mut acc = u
            .get(router)
            .map_or_else(|| vec![0.0; rows], <[f64]>::to_vec);
        for (a, n) in acc.iter_mut().zip(norms) {
            *a += n;
        }
        u.set(router, acc);
    }
    Ok(())
}

/// Activation contribution (first-order Taylor, Molchanov et al.): for each
/// neuron, an exponential moving average over batches of
/// |mean(activation × gradient)|, the mean taken over the batch and every
/// spatial position. Feed it forward passes made with probes
/// ([`crate::Executor::forward_with`], or [`crate::train::Fit`] with
/// `probes`) and their gradients; it records every `every`-th call.
#[derive(Debug, Clone)]
pub struct Taylor {
    /// `None`: the plain mean of every record.
    decay: Option<f64>,
    records: usize,
    every: usize,
    calls: usize,
    values: std::collections::HashMap<graft_core::VertexId, Vec<f64>>,
}

impl Taylor {
    /// With moving-average weight `decay` on the old value (NaiveNASflux
    /// uses 0.9) and a record every `every` steps.
    pub fn new(decay: f64, every: usize) -> Self {
        Self {
            decay: Some(decay),
            records: 0,
            every: every.max(1),
            calls: 0,
            values: Default::default(),
        }
    }

    /// The plain mean of every record (for measuring on a fixed data set
    /// rather than following training).
    pub fn averaging() -> Self {
        Self {
            decay: None,
            records: 0,
            every: 1,
            calls: 0,
            values: Default::default(),
        }
    }

    /// Record one step.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn observe(
        &mut self,
        f: &crate::exec::Forward,
        grads: &candle_core::backprop::GradStore,
    ) -> Result<()> {
        self.calls += 1;
        if !self.calls.is_multiple_of(self.every) {
            return Ok(());
        }
        self.records += 1;
        // Weight of the old value: the decay, or (k-1)/k for a plain mean.
        let keep = self
            .decay
            .unwrap_or((self.records - 1) as f64 / self.records as f64);
        for (v, probe) in &f.probes {
            let Some(g) = grads.get(probe.as_tensor()) else {
                continue;
            };
            // The probe's gradient sums activation x gradient over batch
            // and space; divide by their count for the mean.
            let count = f
                .activations
                .get(v)
                .map(|a| a.elem_count() / a.dim(1).unwrap_or(1).max(1))
                .unwrap_or(1);
            let per: Vec<f64> = g
                .to_dtype(DType::F64)?
                .flatten_all()?
                .affine(1.0 / count as f64, 0.0)?
                .abs()?
                .to_vec1()?;
            match self.values.get_mut(v) {
                Some(old) if old.len() == per.len() => {
                    for (o, n) in old.iter_mut().zip(&per) {
                        *o = keep * *o + (1.0 - keep) * n;
                    }
                }
                _ => {
                    self.values.insert(*v, per);
                }
            }
        }
        Ok(())
    }

    /// The recorded values as a planner utility (vertices whose size has
    /// changed since they were recorded are left out).
    pub fn utility(&self, model: &Model) -> Utility {
        let mut u = Utility::new();
        for (v, vals) in &self.values {
            if model.graph().nout(*v).ok() == Some(vals.len()) {
                u.set(*v, vals.clone());
            }
        }
        u
    }
}

/// The Taylor utility of `model` measured on data without changing it: one
/// pass over `x` (targets `y`) in batches of `batch`, in evaluation mode,
/// each batch's |mean(activation × gradient of `loss`)| per neuron averaged
/// over the batches. `each_batch` is called after every batch (progress).
///
/// # Errors
/// Shape errors, an empty data set or a batch of 0.
pub fn taylor_on(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    loss: crate::train::Loss,
    batch: usize,
    mut each_batch: impl FnMut(),
) -> Result<Utility> {
    let n = x.dim(0)?;
    if batch == 0 || n == 0 {
        return Err(crate::error::NnError::Invalid {
            what: "Taylor utility".into(),
            reason: format!("{n} samples in batches of {batch}"),
        });
    }
    let ex = crate::exec::Executor::new(model)?;
    let mut t = Taylor::averaging();
    let mut start = 0;
    while start < n {
        let len = (n - start).min(batch);
        let xb = x.narrow(0, start, len)?;
        let yb = y.narrow(0, start, len)?;
        let f = ex.forward_with(model, &[xb], crate::exec::Mode::Eval, true, true)?;
        let grads = loss.compute(&f.outputs[0], &yb)?.backward()?;
        t.observe(&f, &grads)?;
        each_batch();
        start += len;
    }
    Ok(t.utility(model))
}

/// Activation-aware utility (Wanda's score, summed per neuron, on the
/// reading side): a neuron `j` that dense layers read (on axis 1 or on the
/// last axis, or experts' projections, every expert's weights summed) is
/// worth `Σ_o |W[o, j]| · ‖X_j‖₂` summed over those layers,
/// where `‖X_j‖₂` is the neuron's norm over every sample and position of a
/// calibration pass on `inputs`: what its readers make of it on real data.
/// The score is carried back through the ops that pass neurons on (an
/// activation, a norm, a SwiGLU product, a head merge: see
/// [`graft_core::carry_back`]) to the layer that makes the neuron, replacing
/// that layer's own score. Dense layers whose neurons nothing dense reads
/// are scored on the producing side, `Σ_i |W[o, i]| · ‖X_i‖₂` over their
/// inputs; other layers keep [`magnitude`].
///
/// # Errors
/// Inputs the model does not take, tensor errors.
pub fn activation_aware(model: &Model, inputs: &[Tensor]) -> Result<Utility> {
    let mut u = magnitude(model)?;
    let mut read: HashMap<VertexId, Vec<f64>> = HashMap::new();
    let ex = crate::exec::Executor::new(model)?;
    let run = crate::exec::Run {
        keep: true,
        ..crate::exec::Run::eval()
    };
    let f = ex.run(model, inputs, &run)?;
    let g = model.graph();
    for (v, layer) in model.layers() {
        // Dense layers read features on axis 1, last-axis ones on the
        // last, an expert's projection (input 1) on the second-to-last;
        // the input position, the feature axis from the end, the weight.
        // A last-axis layer holds its weight `[nin, nout]` (transposed
        // here to the others' `[nout, nin]`).
        let Some((at, from_end, name, in_out)) = layer.op.feature_weight() else {
            continue;
        };
        let Some(&from) = g.vertex(*v)?.inputs().get(at) else {
            continue;
        };
        let Some(x) = f.activations.get(&from) else {
            continue;
        };
        let Some(w) = layer.params.get(name) else {
            continue;
        };
        // Per input feature: the L2 norm over everything else.
        let x = x.to_dtype(DType::F64)?;
        let feat = from_end.map_or(1, |k| x.rank().saturating_sub(k));
        let nin = x.dim(feat)?;
        let x = if feat == 0 { x } else { x.transpose(0, feat)? };
        let norms = x.reshape((nin, ()))?.sqr()?.sum(1)?.sqrt()?;
        // An expert table `[E, nout, nin]` counts every expert's weight.
        let w = w.tensor().to_dtype(DType::F64)?.abs()?;
        let w = if in_out { w.t()? } else { w };
        let w = if w.rank() == 3 { w.sum(0)? } else { w };
        let score: Vec<f64> = w.broadcast_mul(&norms.unsqueeze(0)?)?.sum(1)?.to_vec1()?;
        u.set(*v, score);
        // The reading side: input feature i is worth its norm times the
        // columns that read it.
        let cols: Vec<f64> = w.sum(0)?.mul(&norms)?.to_vec1()?;
        let e = read.entry(from).or_insert_with(|| vec![0.0; cols.len()]);
        if e.len() == cols.len() {
            for (a, c) in e.iter_mut().zip(cols) {
                *a += c;
            }
        }
    }
    // A neuron is worth what its readers make of it: the reading side's
    // scores, carried back to the layers that make the neurons, replace
    // those layers' own (weighted-row) scores where they arrive.
    let makes = |v: VertexId| makes_neurons(model, v);
    for (v, s) in graft_core::carry_back(g, &read, makes)? {
        u.set(v, s);
    }
    Ok(u)
}

/// True when `v` makes its neurons with weights of its own (an absorbing
/// layer whose parameters follow its outputs), rather than passing them on.
fn makes_neurons(model: &Model, v: VertexId) -> bool {
    let Ok(x) = model.graph().vertex(v) else {
        return false;
    };
    if x.kind() != graft_core::SizeKind::Absorb
        || x.maps_neurons()
        || x.heads().is_some()
        || x.depthwise().is_some()
            && model
                .layer(v)
                .is_some_and(|l| matches!(l.op, crate::op::Op::Regroup(_)))
    {
        return false;
    }
    model.layer(v).is_some_and(|l| {
        l.op.params(&[1], 1).iter().any(|s| {
            s.trainable
                && s.roles
                    .iter()
                    .any(|r| matches!(r, Role::Out | Role::OutGates(_)))
        })
    })
}
