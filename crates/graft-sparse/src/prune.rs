//! Masks from saliency. Saliency is |w| of the weights still kept; pruning
//! turns mask entries off (the weights themselves stay until
//! [`apply_mask`]). Percentages apply to what remains; ties are broken by
//! position (earlier entries first), so the count removed is exact.

use graft_core::VertexId;
use graft_nn::{Model, Op, Tensor};

use crate::error::SparseError;

/// The masked dense layers of a model, in topological order.
pub fn masked_layers(model: &Model) -> Vec<VertexId> {
    model
        .graph()
        .topological_order()
        .unwrap_or_default()
        .into_iter()
        .filter(|&v| matches!(model.layer(v).map(|l| &l.op), Some(Op::MaskedDense { .. })))
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

/// Turn off the `k` kept entries of lowest |w| among `layers`.
fn prune_k(model: &mut Model, layers: &[VertexId], k: usize) -> Result<(), SparseError> {
    let mut cands: Vec<(f32, usize, usize)> = Vec::new();
    let mut masks = Vec::new();
    for (li, &v) in layers.iter().enumerate() {
        let (_, w) = read(model, v, "weight")?;
        let (dims, m) = read(model, v, "mask")?;
        for (i, (&x, &on)) in w.iter().zip(&m).enumerate() {
            if on != 0.0 {
                cands.push((x.abs(), li, i));
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
