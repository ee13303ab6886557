//! Fully connected layer: `y = x Wᵀ + b` on `[N, F]`; weight `[out, in]`.

use candle_core::{Result, Tensor};

use super::{p, Params};

pub(crate) fn forward(params: &Params, x: &Tensor) -> Result<Tensor> {
    let y = x.matmul(&p(params, "weight")?.t()?)?;
    match params.get("bias") {
        Some(b) => y.broadcast_add(b.as_tensor()),
        None => Ok(y),
    }
}
