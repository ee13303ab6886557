//! Fully connected layer: `y = x Wᵀ + b` on `[N, F]`; weight `[out, in]`.

use candle_core::{Result, Tensor};

use super::{linear::linear, p, Params};
use crate::op::{spec, Fill, ParamSpec, Role};

pub(crate) fn forward(params: &Params, x: &Tensor) -> Result<Tensor> {
    linear(x, p(params, "weight")?, params.get("bias"))
}

/// `y = x (W ⊙ M)ᵀ + b`: masked entries contribute nothing and get exactly
/// zero gradient.
pub(crate) fn masked(params: &Params, x: &Tensor) -> Result<Tensor> {
    let w = p(params, "weight")?.mul(p(params, "mask")?)?;
    linear(x, &w, params.get("bias"))
}

/// `y = x (W ⊙ M)ᵀ + b` with `M = [logits > 0]` in value and
/// `sigmoid(logits)` in gradient (straight-through).
pub(crate) fn learnable(params: &Params, x: &Tensor) -> Result<Tensor> {
    let logits = p(params, "mask_logits")?;
    let hard = logits.gt(0.0)?.to_dtype(logits.dtype())?;
    let soft = super::activation::sigmoid(logits)?;
    let m = hard.sub(&soft.detach())?.add(&soft)?;
    let w = p(params, "weight")?.mul(&m)?;
    linear(x, &w, params.get("bias"))
}

/// The masked layer through the sparse kernel (the pattern of its mask).
pub(crate) fn sparse(
    params: &Params,
    x: &Tensor,
    csr: std::sync::Arc<super::sparse::Csr>,
) -> Result<Tensor> {
    let w = p(params, "weight")?;
    let b = match params.get("bias") {
        Some(b) => b.clone(),
        None => Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?,
    };
    x.contiguous()?
        .apply_op3(w, &b, super::sparse::SparseLinear(csr))
}

/// The parameters of a dense layer: weight `[nout, nin]` (rows follow the
/// outputs, columns the input) and an optional bias.
pub(crate) fn params(bias: bool, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let mut v = vec![spec(
        "weight",
        vec![nout, nin],
        vec![Role::Out, Role::In(0)],
        Fill::Random,
    )];
    if bias {
        v.push(spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)));
    }
    v
}

/// A masked dense layer's: the dense layer's and a fixed 0/1 mask.
pub(crate) fn masked_params(bias: bool, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let mut v = params(bias, nin, nout);
    let mut m = spec(
        "mask",
        vec![nout, nin],
        vec![Role::Out, Role::In(0)],
        Fill::Value(1.0),
    );
    m.trainable = false;
    v.push(m);
    v
}

/// A learnable-mask dense layer's: the dense layer's and mask logits
/// (starting well above 0: every weight kept).
pub(crate) fn learnable_params(bias: bool, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let mut v = params(bias, nin, nout);
    v.push(spec(
        "mask_logits",
        vec![nout, nin],
        vec![Role::Out, Role::In(0)],
        Fill::Value(3.0),
    ));
    v
}

/// Multiply-accumulates of one sample: `nin · nout`.
pub(crate) fn macs(nin: u64, nout: u64) -> Option<u64> {
    nin.checked_mul(nout)
}

/// A unit matrix for a square weight `[n, n]` (an inserted layer that
/// keeps the function), row-major.
pub(crate) fn identity(shape: &[usize]) -> std::result::Result<Vec<f64>, String> {
    let (o, i) = (shape[0], shape[1]);
    if o != i {
        return Err(format!("identity needs a square weight, not {o}x{i}"));
    }
    let mut v = vec![0.0; o * i];
    for k in 0..o {
        v[k * i + k] = 1.0;
    }
    Ok(v)
}
