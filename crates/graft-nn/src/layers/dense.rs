//! Fully connected layer: `y = x Wᵀ + b` on `[N, F]`; weight `[out, in]`.

use candle_core::{Result, Tensor};

use super::{linear::linear, p, Params};

pub(crate) fn forward(params: &Params, x: &Tensor) -> Result<Tensor> {
    linear(
        x,
        p(params, "weight")?,
        params.get("bias").map(|b| b.as_tensor()),
    )
}

/// `y = x (W ⊙ M)ᵀ + b`: masked entries contribute nothing and get exactly
/// zero gradient.
pub(crate) fn masked(params: &Params, x: &Tensor) -> Result<Tensor> {
    let w = p(params, "weight")?.mul(p(params, "mask")?)?;
    linear(x, &w, params.get("bias").map(|b| b.as_tensor()))
}
