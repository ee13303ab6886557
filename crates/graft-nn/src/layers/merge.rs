//! Multi-input elementwise ops and dropout.

use candle_core::{Result, Tensor};
use rand::{Rng, SeedableRng};

use super::Ctx;

/// Fold the inputs left to right with `f`.
pub(crate) fn fold(
    xs: &[Tensor],
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let mut acc = xs[0].clone();
    for x in &xs[1..] {
        acc = f(&acc, x)?;
    }
    Ok(acc)
}

/// Inverted dropout with a mask drawn from the pass's seed.
pub(crate) fn dropout(x: &Tensor, p: f64, ctx: &Ctx) -> Result<Tensor> {
    if !ctx.train || p <= 0.0 {
        return Ok(x.clone());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(ctx.seed);
    let keep = 1.0 / (1.0 - p);
    let mask: Vec<f64> = (0..x.elem_count())
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { keep })
        .collect();
    let mask = Tensor::from_vec(mask, x.dims(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}
