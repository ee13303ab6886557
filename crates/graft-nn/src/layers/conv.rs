//! Convolutions: 1-D and 2-D (groups, depthwise) and 2-D transposed. Weights
//! `[out, in/groups, k(, k)]`, transposed `[in, out, k, k]`.

use candle_core::{Result, Tensor};

use super::{channel, p, Params};
use crate::op::{Conv, Op};

fn add_bias(params: &Params, y: Tensor) -> Result<Tensor> {
    match params.get("bias") {
        Some(b) => {
            let r = y.rank();
            y.broadcast_add(&channel(b.as_tensor(), r)?)
        }
        None => Ok(y),
    }
}

/// 1-D convolution as a 2-D one of height 1 (padding applied along the
/// length only): candle 0.11's own `conv1d` backward disagrees with finite
/// differences once there is padding (`tests/gradients.rs`).
pub(crate) fn conv1d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let x = if c.padding > 0 {
        x.pad_with_zeros(2, c.padding, c.padding)?
    } else {
        x.clone()
    };
    let w = p(params, "weight")?.unsqueeze(2)?;
    let y = x
        .unsqueeze(2)?
        .conv2d(&w, 0, c.stride, c.dilation, g)?
        .squeeze(2)?;
    add_bias(params, y)
}

pub(crate) fn conv2d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let y = x.conv2d(p(params, "weight")?, c.padding, c.stride, c.dilation, g)?;
    add_bias(params, y)
}

pub(crate) fn conv_transpose2d(
    params: &Params,
    c: &Conv,
    output_padding: usize,
    x: &Tensor,
) -> Result<Tensor> {
    let y = x.conv_transpose2d(
        p(params, "weight")?,
        c.padding,
        output_padding,
        c.stride,
        c.dilation,
    )?;
    add_bias(params, y)
}

/// The kernel multiplied by its mask, then [`conv2d`]'s computation.
pub(crate) fn masked_conv2d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let w = p(params, "weight")?.mul(p(params, "mask")?)?;
    let y = x.conv2d(&w, c.padding, c.stride, c.dilation, g)?;
    add_bias(params, y)
}
