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

pub(crate) fn conv1d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let y = x.conv1d(p(params, "weight")?, c.padding, c.stride, c.dilation, g)?;
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
