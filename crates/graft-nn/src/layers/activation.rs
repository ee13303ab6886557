//! Pointwise nonlinearities.

use candle_core::{Result, Tensor};

use crate::op::Activation;

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

pub(crate) fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.neg()?.exp()?.affine(1.0, 1.0)?.recip()
}

/// Softmax over axis 1 (shifted by the detached maximum for stability).
pub(crate) fn softmax(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(1)?)
}

pub(crate) fn forward(f: Activation, x: &Tensor) -> Result<Tensor> {
    match f {
        Activation::Relu => x.relu(),
        Activation::LeakyRelu { slope } => x.relu()?.sub(&x.neg()?.relu()?.affine(slope, 0.0)?),
        Activation::Elu { alpha } => x.elu(alpha),
        Activation::Selu => x.elu(SELU_ALPHA)?.affine(SELU_SCALE, 0.0),
        Activation::Gelu => x.gelu_erf(),
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.tanh(),
        Activation::Softmax => softmax(x),
        Activation::HardSwish => x
            .mul(&x.affine(1.0, 3.0)?.clamp(0.0, 6.0)?)?
            .affine(1.0 / 6.0, 0.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::HardSigmoid { alpha, beta } => x.affine(alpha, beta)?.clamp(0.0, 1.0),
    }
}
