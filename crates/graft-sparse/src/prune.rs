//! Masks from saliency. Saliency is |w| of the weights still kept; pruning
//! turns mask entries off (the weights themselves stay until
//! [`apply_mask`]). Percentages apply to what remains; ties are broken by
//! position (earlier entries first), so the count removed is exact.

use graft_core::VertexId;
use graft_nn::{Model, Op, Tensor};

use crate::error::SparseError;

/// The masked layers (dense and 2-D convolution) of a model, in
/// topological order.
pub fn masked_layers(model: &Model) -> Vec<VertexId> {
    model
        .graph()
        .topological_order()
        .unwrap_or_default()
        .into_iter()
        .filter(|&v| {
            matches!(
                model.layer(v).map(|l| &l.op),
                Some(Op::MaskedDense { .. } | Op::MaskedConv2d(_))
            )
        })
        .collect()
}

fn read(model: &Model, v: VertexId, p: &str) -> Result<(Vec<usize>, Vec<f32>), SparseError> {
    let t = model.param(v, p)?;
    Ok((
        t.dims().to_vec(),
        t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?,
    ))
}

fn write(
    model: &mut Model,
    v: VertexId,
    p: &str,
    dims: &[usize],
    vals: Vec<f32>,
) -> Result<(), SparseError> {
    let t = Tensor::from_vec(vals, dims, &graft_nn::Device::Cpu)?;
    model.set_param(v, p, &t)?;
    Ok(())
}

/// Mask entries that are on, over all masked layers.
///
/// # Errors
/// Tensor errors.
pub fn kept(model: &Model) -> Result<usize, SparseError> {
    let mut n = 0;
    for v in masked_layers(model) {
        n += read(model, v, "mask")?
            .1
            .iter()
            .filter(|&&m| m != 0.0)
            .count();
    }
    Ok(n)
}

/// How important a weight is; the lowest go first.
#[derive(Debug, Clone)]
pub enum Saliency {
    /// |w|.
    Magnitude,
    /// A seeded random number per weight.
    Random {
        /// Seed.
        seed: u64,
    },
    /// Optimal Brain Damage with a diagonal Fisher estimate of the Hessian:
    /// ½ · w² · E[g²], the expectation from the gradients a [`Fisher`]
    /// collected during training.
    Obd(Fisher),
}

/// Running mean of squared gradients of every masked layer's weight (the
/// diagonal of the empirical Fisher information), for [`Saliency::Obd`].
#[derive(Debug, Clone, Default)]
pub struct Fisher {
    sums: std::collections::HashMap<VertexId, Vec<f32>>,
    count: usize,
}

impl Fisher {
    /// An empty estimate.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add one step's gradients.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn observe(
        &mut self,
        model: &Model,
        grads: &graft_nn::GradStore,
    ) -> Result<(), SparseError> {
        for v in masked_layers(model) {
            let Some((_, _, var)) = model
                .trainable()
                .into_iter()
                .find(|(x, n, _)| *x == v && n == "weight")
            else {
                continue;
            };
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g: Vec<f32> = g.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
            let acc = self.sums.entry(v).or_insert_with(|| vec![0.0; g.len()]);
            if acc.len() == g.len() {
                acc.iter_mut().zip(&g).for_each(|(a, x)| *a += x * x);
            }
        }
        self.count += 1;
        Ok(())
    }
    fn mean(&self, v: VertexId, i: usize) -> f32 {
        self.sums
            .get(&v)
            .and_then(|s| s.get(i))
            .map_or(0.0, |x| x / self.count.max(1) as f32)
    }
}

/// How many weights to prune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    /// This fraction of the weights that remain.
    Fraction(f64),
    /// Exactly this many.
    Count(usize),
    /// As many as leave exactly this many (a bucket of survivors).
    Keep(usize),
}

/// Prune `amount` of the masked weights by `saliency`, over all masked
/// layers together (`per_layer = false`) or in each layer separately.
///
/// # Errors
/// Tensor errors.
pub fn prune(
    model: &mut Model,
    saliency: &Saliency,
    amount: Amount,
    per_layer: bool,
) -> Result<(), SparseError> {
    let groups: Vec<Vec<VertexId>> = if per_layer {
        masked_layers(model).into_iter().map(|v| vec![v]).collect()
    } else {
        vec![masked_layers(model)]
    };
    for layers in groups {
        let mut kept_here = 0;
        for &v in &layers {
            kept_here += read(model, v, "mask")?
                .1
                .iter()
                .filter(|&&m| m != 0.0)
                .count();
        }
        let k = match amount {
            Amount::Fraction(f) => (kept_here as f64 * f).floor() as usize,
            Amount::Count(c) => c,
            Amount::Keep(k) => kept_here.saturating_sub(k),
        };
        prune_by(model, &layers, k, saliency)?;
    }
    Ok(())
}

/// Turn off the `k` kept entries of lowest |w| among `layers`.
fn prune_k(model: &mut Model, layers: &[VertexId], k: usize) -> Result<(), SparseError> {
    prune_by(model, layers, k, &Saliency::Magnitude)
}

/// Turn off the `k` kept entries of lowest saliency among `layers`.
fn prune_by(
    model: &mut Model,
    layers: &[VertexId],
    k: usize,
    saliency: &Saliency,
) -> Result<(), SparseError> {
    use rand::{Rng, SeedableRng};
    let mut rng = match saliency {
        Saliency::Random { seed } => Some(rand::rngs::StdRng::seed_from_u64(*seed)),
        _ => None,
    };
    let mut cands: Vec<(f32, usize, usize)> = Vec::new();
    let mut masks = Vec::new();
    for (li, &v) in layers.iter().enumerate() {
        let (_, w) = read(model, v, "weight")?;
        let (dims, m) = read(model, v, "mask")?;
        for (i, (&x, &on)) in w.iter().zip(&m).enumerate() {
            if on != 0.0 {
                let s = match saliency {
                    Saliency::Magnitude => x.abs(),
                    Saliency::Random { .. } => rng.as_mut().map_or(0.0, |r| r.random::<f32>()),
                    Saliency::Obd(f) => 0.5 * x * x * f.mean(v, i),
                };
                cands.push((s, li, i));
            }
        }
        masks.push((dims, m));
    }
    cands.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for &(_, li, i) in cands.iter().take(k) {
        masks[li].1[i] = 0.0;
    }
    for (li, &v) in layers.iter().enumerate() {
        let (dims, m) = std::mem::take(&mut masks[li]);
        write(model, v, "mask", &dims, m)?;
    }
    Ok(())
}

/// Prune `fraction` of the weights that remain, by global saliency.
///
/// # Errors
/// Tensor errors.
pub fn prune_global(model: &mut Model, fraction: f64) -> Result<(), SparseError> {
    let k = (kept(model)? as f64 * fraction).floor() as usize;
    let layers = masked_layers(model);
    prune_k(model, &layers, k)
}

/// Prune exactly `k` weights (the lowest saliency over all layers).
///
/// # Errors
/// Tensor errors.
pub fn prune_count(model: &mut Model, k: usize) -> Result<(), SparseError> {
    let layers = masked_layers(model);
    prune_k(model, &layers, k)
}

/// Prune `fraction` of what remains in every layer separately.
///
/// # Errors
/// Tensor errors.
pub fn prune_layerwise(model: &mut Model, fraction: f64) -> Result<(), SparseError> {
    for v in masked_layers(model) {
        let n = read(model, v, "mask")?
            .1
            .iter()
            .filter(|&&m| m != 0.0)
            .count();
        prune_k(model, &[v], (n as f64 * fraction).floor() as usize)?;
    }
    Ok(())
}

/// Recompute a layer's mask from a threshold: keep |w| ≥ `theta`. With
/// `revive`, entries pruned before come back when their weight passes the
/// threshold (deepstruct's behaviour); without it, pruning is for good.
///
/// # Errors
/// Not a masked layer, tensor errors.
pub fn recompute_mask(
    model: &mut Model,
    v: VertexId,
    theta: f32,
    revive: bool,
) -> Result<(), SparseError> {
    let (_, w) = read(model, v, "weight")?;
    let (dims, m) = read(model, v, "mask")?;
    let new: Vec<f32> = w
        .iter()
        .zip(&m)
        .map(|(&x, &on)| {
            let pass = x.abs() >= theta;
            f32::from(pass && (revive || on != 0.0))
        })
        .collect();
    write(model, v, "mask", &dims, new)
}

/// Zero the masked weights for good (the mask stays).
///
/// # Errors
/// Not a masked layer, tensor errors.
pub fn apply_mask(model: &mut Model, v: VertexId) -> Result<(), SparseError> {
    let (dims, w) = read(model, v, "weight")?;
    let (_, m) = read(model, v, "mask")?;
    let new = w.iter().zip(&m).map(|(&x, &on)| x * on).collect();
    write(model, v, "weight", &dims, new)
}

/// Turn unstructured sparsity into structure: neurons of masked dense
/// layers that pruning left with no outgoing connection (their column is
/// off in every consumer), or with no incoming one (their row is off:
/// they output a constant, which is first folded into the consumers'
/// biases), are removed for real by a planner re-select with those neurons
/// at negative utility. The dense layers shrink and the function is kept.
/// Only neurons read by masked layers of the same family are considered,
/// directly or through per-channel vertices: ReLU and identity-like
/// vertices (a constant is folded through them), or other activations and
/// batch norms (only unread neurons are removed through those: their
/// constant output would change). Removing neurons can leave
/// others dead, so this repeats until nothing changes. Returns how many
/// neurons went.
///
/// All or nothing: the work (bias folding, then the planner's re-select)
/// is done on a copy, which replaces the model only when every step went
/// through.
///
/// # Errors
/// Planner or tensor errors; the model is unchanged.
pub fn to_structure(model: &mut Model) -> Result<usize, SparseError> {
    let mut draft = model.clone();
    let mut total = 0;
    loop {
        let n = to_structure_once(&mut draft)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    if total > 0 {
        *model = draft;
    }
    Ok(total)
}

fn to_structure_once(model: &mut Model) -> Result<usize, SparseError> {
    use graft_core::{Request, Utility};
    let layers = masked_layers(model);
    let mut utility = Utility::new();
    let mut dead_total = 0;
    for &v in &layers {
        let g = model.graph();
        let n = g.nout(v).map_err(graft_nn::NnError::from)?;
        let conv = matches!(model.layer(v).map(|l| &l.op), Some(Op::MaskedConv2d(_)));
        // Follow unary vertices to the consumers, which must be masked
        // layers of the same family (a convolution's channels read by
        // full-group convolutions); note a ReLU on the way, and any other
        // per-channel op, through which a constant cannot be folded.
        let mut relu = false;
        let mut opaque = false;
        let mut frontier = vec![v];
        let mut readers = Vec::new();
        let mut ok = true;
        while let Some(x) = frontier.pop() {
            for &c in g.vertex(x).map_err(graft_nn::NnError::from)?.outputs() {
                match model.layer(c).map(|l| &l.op) {
                    Some(Op::MaskedDense { .. }) if !conv => readers.push((c, 0usize)),
                    Some(Op::MaskedConv2d(cv)) if conv && cv.groups == graft_nn::Groups::One => {
                        readers.push((c, cv.padding.h.max(cv.padding.w)))
                    }
                    Some(Op::Activation(graft_nn::Activation::Relu)) => {
                        relu = true;
                        frontier.push(c);
                    }
                    Some(Op::Identity | Op::Dropout { .. }) => frontier.push(c),
                    Some(Op::Activation(_) | Op::BatchNorm { .. }) => {
                        opaque = true;
                        frontier.push(c);
                    }
                    _ => ok = false,
                }
            }
        }
        if !ok || readers.is_empty() {
            continue;
        }
        let (_, mask) = read(model, v, "mask")?;
        let row = mask.len() / n;
        let no_in: Vec<bool> = (0..n)
            .map(|i| mask[i * row..(i + 1) * row].iter().all(|&m| m == 0.0))
            .collect();
        // A reader's mask is [rows, n, taps...]: input unit i is the slice
        // of `taps` entries at i in every row.
        let mut no_out = vec![true; n];
        for &(r, _) in &readers {
            let (_, rm) = read(model, r, "mask")?;
            let rows = model.graph().nout(r).map_err(graft_nn::NnError::from)?;
            let taps = rm.len() / (rows * n);
            for (i, keep) in no_out.iter_mut().enumerate() {
                if (0..rows).any(|j| {
                    rm[(j * n + i) * taps..(j * n + i + 1) * taps]
                        .iter()
                        .any(|&m| m != 0.0)
                }) {
                    *keep = false;
                }
            }
        }
        // A unit with no input outputs a constant (its bias, through the
        // ReLU): fold it into the readers' biases. A padded convolution
        // sees the constant only inside the image, so it cannot be folded.
        let foldable = !opaque && readers.iter().all(|&(_, pad)| pad == 0);
        let bias = match model.param(v, "bias") {
            Ok(b) => b.to_dtype(graft_nn::DType::F32)?.to_vec1::<f32>()?,
            Err(_) => vec![0.0; n],
        };
        let with_bias = readers.iter().all(|&(r, _)| model.param(r, "bias").is_ok());
        let fold: Vec<bool> = (0..n)
            .map(|i| no_in[i] && !no_out[i] && foldable && with_bias)
            .collect();
        let dead: Vec<bool> = (0..n).map(|i| no_out[i] || fold[i]).collect();
        let count = dead.iter().filter(|&&d| d).count();
        if count == 0 || count == n {
            continue;
        }
        for &(r, _) in &readers {
            if !fold.iter().any(|&f| f) {
                break;
            }
            let (_, w) = read(model, r, "weight")?;
            let (_, rm) = read(model, r, "mask")?;
            let rows = model.graph().nout(r).map_err(graft_nn::NnError::from)?;
            let taps = w.len() / (rows * n);
            let mut b: Vec<f32> = model
                .param(r, "bias")?
                .to_dtype(graft_nn::DType::F32)?
                .to_vec1()?;
            for i in (0..n).filter(|&i| fold[i]) {
                let c = if relu { bias[i].max(0.0) } else { bias[i] };
                for (j, bj) in b.iter_mut().enumerate().take(rows) {
                    let at = (j * n + i) * taps;
                    let s: f32 = (at..at + taps).map(|t| w[t] * rm[t]).sum();
                    *bj += s * c;
                }
            }
            write(model, r, "bias", &[rows], b)?;
        }
        dead_total += count;
        utility.set(
            v,
            dead.iter().map(|&d| if d { -1.0 } else { 1.0 }).collect(),
        );
    }
    if dead_total > 0 {
        model.change_sizes(&Request::new().with_utility(utility))?;
    }
    Ok(dead_total)
}

/// Iterative pruning: `steps` rounds of pruning `amount` by `saliency`
/// (over all layers), each followed by fine-tuning with `fit`. Returns, per
/// round, the weights kept and the last fine-tuning epoch's loss.
///
/// # Errors
/// Tensor or training errors.
#[allow(clippy::too_many_arguments)]
pub fn iterative(
    model: &mut Model,
    opt: &mut dyn graft_nn::train::Optimizer,
    fit: &graft_nn::train::Fit,
    x: &Tensor,
    y: &Tensor,
    saliency: &Saliency,
    amount: Amount,
    steps: usize,
) -> Result<Vec<(usize, f64)>, SparseError> {
    let mut out = Vec::with_capacity(steps);
    for _ in 0..steps {
        prune(model, saliency, amount, false)?;
        let losses = fit.run(model, opt, x, y, |_, _, _| Ok(()))?;
        out.push((kept(model)?, losses.last().copied().unwrap_or(f64::NAN)));
    }
    Ok(out)
}
