//! Fully connected layer: `y = x Wᵀ + b` on `[N, F]`; weight `[out, in]`.

use candle_core::{Result, Tensor};

use super::{linear::linear, p, Params};

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
