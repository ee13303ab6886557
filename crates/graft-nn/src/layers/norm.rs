//! Normalisation layers over axis 1: batch, layer, group and instance norm.
//! Variances are biased (divide by n) in the forward pass, as in PyTorch;
//! batch norm's running variance uses the unbiased batch variance.

use candle_core::{Result, Tensor};

use super::{channel, p, Params, Updates};
use crate::op::{spec, Declared, Fill, ParamSpec, Role};

fn affine(params: &Params, y: Tensor) -> Result<Tensor> {
    let r = y.rank();
    y.broadcast_mul(&channel(p(params, "weight")?, r)?)?
        .broadcast_add(&channel(p(params, "bias")?, r)?)
}

/// Normalise `x` by its mean and variance over `dims` (kept).
fn standardise(x: &Tensor, dims: &[usize], eps: f64) -> Result<(Tensor, Tensor, Tensor)> {
    let mean = x.mean_keepdim(dims.to_vec())?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(dims.to_vec())?;
    let y = centred.broadcast_div(&var.affine(1.0, eps)?.sqrt()?)?;
    Ok((y, mean, var))
}

pub(crate) fn batch_norm(
    params: &Params,
    x: &Tensor,
    eps: f64,
    momentum: f64,
    train: bool,
) -> Result<(Tensor, Updates)> {
    let r = x.rank();
    let dims: Vec<usize> = (0..r).filter(|&d| d != 1).collect();
    if train {
        let (y, mean, var) = standardise(x, &dims, eps)?;
        let n = x.elem_count() / x.dim(1)?;
        let c = x.dim(1)?;
        let mean = mean.reshape(c)?.detach();
        let unbiased = var
            .reshape(c)?
            .detach()
            .affine(n as f64 / (n.max(2) - 1) as f64, 0.0)?;
        let rm = p(params, "running_mean")?;
        let rv = p(params, "running_var")?;
        let rm = rm
            .affine(1.0 - momentum, 0.0)?
            .add(&mean.affine(momentum, 0.0)?)?;
        let rv = rv
            .affine(1.0 - momentum, 0.0)?
            .add(&unbiased.affine(momentum, 0.0)?)?;
        Ok((
            affine(params, y)?,
            vec![("running_mean", rm), ("running_var", rv)],
        ))
    } else {
        let mean = channel(p(params, "running_mean")?, r)?;
        let var = channel(p(params, "running_var")?, r)?;
        let y = x
            .broadcast_sub(&mean)?
            .broadcast_div(&var.affine(1.0, eps)?.sqrt()?)?;
        Ok((affine(params, y)?, Vec::new()))
    }
}

pub(crate) fn layer_norm(params: &Params, x: &Tensor, eps: f64) -> Result<Tensor> {
    let (y, _, _) = standardise(x, &[1], eps)?;
    affine(params, y)
}

pub(crate) fn group_norm(params: &Params, x: &Tensor, groups: usize, eps: f64) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (n, c) = (dims[0], dims[1]);
    let rest: usize = dims[2..].iter().product();
    let g = x.reshape((n, groups, (c / groups) * rest))?;
    let (y, _, _) = standardise(&g, &[2], eps)?;
    affine(params, y.reshape(dims)?)
}

pub(crate) fn instance_norm(params: &Params, x: &Tensor, eps: f64) -> Result<Tensor> {
    let dims: Vec<usize> = (2..x.rank()).collect();
    if dims.is_empty() {
        candle_core::bail!("instance norm needs spatial axes, got shape {:?}", x.dims());
    }
    let (y, _, _) = standardise(x, &dims, eps)?;
    affine(params, y)
}

/// The affine parameters of a norm: a scale starting at 1 and a shift at
/// 0, one per channel.
pub(crate) fn affine_params(nout: usize) -> Vec<ParamSpec> {
    vec![
        spec("weight", vec![nout], vec![Role::Out], Fill::Value(1.0)),
        spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)),
    ]
}

/// A batch norm's: the affine parameters and the running mean and variance
/// (buffers, not trained).
pub(crate) fn batch_params(nout: usize) -> Vec<ParamSpec> {
    let mut v = affine_params(nout);
    let mut m = spec(
        "running_mean",
        vec![nout],
        vec![Role::Out],
        Fill::Value(0.0),
    );
    m.trainable = false;
    let mut s = spec("running_var", vec![nout], vec![Role::Out], Fill::Value(1.0));
    s.trainable = false;
    v.push(m);
    v.push(s);
    v
}

/// The size rule of a group norm: invariant, its channels `groups` blocks
/// that change by the same amount each and keep their local neurons
/// (`Constraint::Blocks`), so every channel stays in its group: the groups
/// are contiguous runs of channels, recut evenly after any change.
pub(crate) fn group_declare(groups: usize) -> Declared {
    Declared {
        kind: graft_core::SizeKind::Invariant,
        constraints: vec![graft_core::Constraint::Blocks { groups }],
    }
}
