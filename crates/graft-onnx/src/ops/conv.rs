//! Conv (1-D and 2-D; groups, depthwise, dilation, pads, auto_pad, strides).

use std::collections::HashMap;

use graft_nn::{Conv, Groups, Op};

use super::Importer;
use crate::error::OnnxError;
use crate::import::{Ctx, Node};
use crate::tensor::Const;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Conv", conv);
    r.insert("ConvTranspose", conv_transpose);
}

fn conv_transpose(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let (w, k, stride, dilation) = geometry(ctx, node)?;
    if w.dims.len() != 4 || shape.len() != 4 || w.dims[0] != shape[1] {
        return Err(node.err(format!("2-D only: weight {:?} on input {shape:?}", w.dims)));
    }
    if node.int("group", 1) != 1 {
        return Err(node.err("groups are not supported for ConvTranspose"));
    }
    if node.ints("output_shape").is_some() {
        return Err(node.err("output_shape is not supported; give pads and output_padding"));
    }
    let padding = same(node, "pads", &node.ints("pads").unwrap_or_default(), 0)?;
    let output_padding = same(
        node,
        "output_padding",
        &node.ints("output_padding").unwrap_or_default(),
        0,
    )?;
    let out = w.dims[1];
    let bias = ctx.constant(node, 2)?;
    let conv = Conv {
        kernel: k,
        stride,
        padding,
        dilation,
        groups: Groups::One,
        bias: bias.is_some(),
    };
    let mut oshape = vec![shape[0], out];
    for &s in &shape[2..] {
        let full = (s - 1) * stride + dilation * (k - 1) + output_padding + 1;
        if full <= 2 * padding {
            return Err(node.err(format!("padding {padding} leaves no output from size {s}")));
        }
        oshape.push(full - 2 * padding);
    }
    let v = ctx.add(
        node,
        Op::ConvTranspose2d {
            conv,
            output_padding,
        },
        &[x],
        Some(out),
        oshape,
    )?;
    ctx.set(v, "weight", &w.dims, w.floats())?;
    if let Some(b) = bias {
        ctx.set(v, "bias", &[out], b.floats())?;
    }
    Ok(())
}

/// All entries equal, or an error naming the attribute.
fn same(node: &Node, key: &str, v: &[i64], default: i64) -> Result<usize, OnnxError> {
    match v.first() {
        None => Ok(default as usize),
        Some(&x) if v.iter().all(|&y| y == x) && x >= 0 => Ok(x as usize),
        _ => Err(node.err(format!(
            "{key} {v:?}: only equal values on every axis are supported"
        ))),
    }
}

/// A convolution node's constant weight, and its kernel size, stride and
/// dilation (equal on every axis).
fn geometry(ctx: &Ctx, node: &Node) -> Result<(Const, usize, usize, usize), OnnxError> {
    let w = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant weight"))?;
    let dims: Vec<i64> = w.dims.iter().skip(2).map(|&d| d as i64).collect();
    let k = same(node, "kernel_shape", &dims, 1)?;
    let stride = same(
        node,
        "strides",
        &node.ints("strides").unwrap_or_default(),
        1,
    )?;
    let dilation = same(
        node,
        "dilations",
        &node.ints("dilations").unwrap_or_default(),
        1,
    )?;
    Ok((w, k, stride, dilation))
}

/// Uneven `pads` (PyTorch's exporters fold an explicit `F.pad` into the
/// convolution): the part above the smallest pad becomes a zero
/// [`graft_nn::Pad`] vertex before the convolution, which keeps the
/// smallest as its even padding.
fn uneven_pads(
    ctx: &mut Ctx,
    node: &Node,
    x: graft_core::VertexId,
    shape: Vec<usize>,
) -> Result<(graft_core::VertexId, Vec<usize>, Option<usize>), OnnxError> {
    let pads = node.ints("pads").unwrap_or_default();
    let n = pads.len() / 2;
    let auto = node.string("auto_pad");
    let even = pads.windows(2).all(|p| p[0] == p[1]);
    if even || !matches!(auto.as_deref(), None | Some("NOTSET")) || n + 2 != shape.len() {
        return Ok((x, shape, None));
    }
    if pads.iter().any(|&p| p < 0) {
        return Err(node.err(format!("negative pads {pads:?}")));
    }
    let m = *pads.iter().min().expect("pads") as usize;
    let list: Vec<(usize, usize, usize)> = (0..n)
        .map(|i| (i + 2, pads[i] as usize - m, pads[i + n] as usize - m))
        .filter(|&(_, b, e)| b + e > 0)
        .collect();
    let mut out = shape.clone();
    for &(a, b, e) in &list {
        out[a] += b + e;
    }
    let p = graft_nn::Pad {
        pads: list,
        mode: graft_nn::PadMode::Constant { value: 0.0 },
        neurons: ctx.neuron_axis(x),
        rank: shape.len(),
    };
    let name = ctx.fresh_name(&format!("{}.pad", node.output()));
    let v = ctx.model.add(&name, Op::Pad(p), &[x], None)?;
    Ok((v, out, Some(m)))
}

fn conv(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let (x, shape, evened) = uneven_pads(ctx, node, x, shape)?;
    let (w, k, stride, dilation) = geometry(ctx, node)?;
    let spatial = w.dims.len().saturating_sub(2);
    if !(1..=2).contains(&spatial) || shape.len() != spatial + 2 {
        return Err(node.err(format!(
            "weight {:?} on input {shape:?}: 1-D or 2-D only",
            w.dims
        )));
    }
    let padding = match node.string("auto_pad").as_deref().unwrap_or("NOTSET") {
        "NOTSET" if evened.is_some() => evened.unwrap_or(0),
        "NOTSET" => same(node, "pads", &node.ints("pads").unwrap_or_default(), 0)?,
        "VALID" => 0,
        "SAME_UPPER" | "SAME_LOWER" if stride == 1 && (dilation * (k - 1)) % 2 == 0 => {
            dilation * (k - 1) / 2
        }
        other => return Err(node.err(format!("auto_pad {other} with stride {stride}"))),
    };
    let cin = shape[1];
    let out = w.dims[0];
    let g = node.int("group", 1) as usize;
    let groups = match g {
        1 => Groups::One,
        g if g == cin && w.dims[1] == 1 => Groups::Depthwise,
        g => Groups::Fixed(g),
    };
    if w.dims[1] * g != cin {
        return Err(node.err(format!(
            "weight reads {} x {g} channels, the input has {cin}",
            w.dims[1]
        )));
    }
    let bias = ctx.constant(node, 2)?;
    let c = Conv {
        kernel: k,
        stride,
        padding,
        dilation,
        groups,
        bias: bias.is_some(),
    };
    let mut oshape = vec![shape[0], out];
    for &s in &shape[2..] {
        let eff = dilation * (k - 1) + 1;
        if s + 2 * padding < eff {
            return Err(node.err(format!("kernel {k} does not fit input size {s}")));
        }
        oshape.push((s + 2 * padding - eff) / stride + 1);
    }
    let op = if spatial == 2 {
        Op::Conv2d(c)
    } else {
        Op::Conv1d(c)
    };
    let v = ctx.add(node, op, &[x], Some(out), oshape)?;
    ctx.set(v, "weight", &w.dims, w.floats())?;
    if let Some(b) = bias {
        let b = b.floats();
        if b.len() != out {
            return Err(node.err(format!("bias of {} values for {out} outputs", b.len())));
        }
        ctx.set(v, "bias", &[out], b)?;
    }
    Ok(())
}
