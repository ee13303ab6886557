//! Conv (1-D and 2-D; groups, depthwise, dilation, pads, auto_pad, strides,
//! each per spatial axis) and ConvTranspose (2-D; equal strides, pads and
//! dilations on both axes).

use std::collections::HashMap;

use graft_nn::{Conv, Groups, Hw, Op};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, attr_ints, Out};
use crate::import::{Ctx, Node};
use crate::tensor::Const;
use crate::tensor::Init;
use graft_core::VertexId;
use graft_nn::Model;

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
    let stride = square(node, "strides", stride)?;
    let dilation = square(node, "dilations", dilation)?;
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
        stride: Hw::square(stride),
        padding: Hw::square(padding),
        dilation: Hw::square(dilation),
        groups: Groups::One,
        bias: bias.is_some(),
    };
    let mut oshape = vec![shape[0], out];
    for (&s, k) in shape[2..].iter().zip(k.pair()) {
        let full = (s.max(1) - 1) * stride + dilation * (k.max(1) - 1) + output_padding + 1;
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

/// The common value of a per-axis one, or an error naming the attribute.
fn square(node: &Node, key: &str, v: Hw) -> Result<usize, OnnxError> {
    v.as_square().ok_or_else(|| {
        node.err(format!(
            "{key} {v}: only equal values on both axes are supported here"
        ))
    })
}

/// One value per spatial axis (1-D: the width entry, the height equal to
/// it), `default` when the attribute is absent, or an error naming it.
pub(crate) fn per_axis(
    node: &Node,
    key: &str,
    v: &[i64],
    spatial: usize,
    default: usize,
) -> Result<Hw, OnnxError> {
    match (v, spatial) {
        ([], _) => Ok(Hw::square(default)),
        (&[x], 1) if x >= 0 => Ok(Hw::square(x as usize)),
        (&[h, w], 2) if h >= 0 && w >= 0 => Ok(Hw::new(h as usize, w as usize)),
        _ => Err(node.err(format!(
            "{key} {v:?}: one non-negative value per spatial axis ({spatial}) expected"
        ))),
    }
}

/// A convolution node's constant weight, and its kernel size, stride and
/// dilation per spatial axis.
fn geometry(ctx: &Ctx, node: &Node) -> Result<(Const, Hw, Hw, Hw), OnnxError> {
    let w = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant weight"))?;
    let dims: Vec<i64> = w.dims.iter().skip(2).map(|&d| d as i64).collect();
    let spatial = dims.len();
    let k = per_axis(node, "kernel_shape", &dims, spatial, 1)?;
    if let Some(ks) = node.ints("kernel_shape") {
        if ks != dims {
            return Err(node.err(format!(
                "kernel_shape {ks:?} disagrees with the weight's {dims:?}"
            )));
        }
    }
    let get = |key: &str| per_axis(node, key, &node.ints(key).unwrap_or_default(), spatial, 1);
    let stride = get("strides")?;
    let dilation = get("dilations")?;
    if stride.h == 0 || stride.w == 0 || dilation.h == 0 || dilation.w == 0 {
        return Err(node.err(format!(
            "strides {stride} and dilations {dilation} must be positive"
        )));
    }
    Ok((w, k, stride, dilation))
}

/// Pads that differ before and after an axis (PyTorch's exporters fold an
/// explicit `F.pad` into the convolution): on each axis the part above the
/// smaller side becomes a zero [`graft_nn::Pad`] vertex before the
/// convolution, which keeps the smaller side as its padding on that axis.
fn uneven_pads(
    ctx: &mut Ctx,
    node: &Node,
    x: graft_core::VertexId,
    shape: Vec<usize>,
) -> Result<(graft_core::VertexId, Vec<usize>, Option<Hw>), OnnxError> {
    let pads = node.ints("pads").unwrap_or_default();
    let n = pads.len() / 2;
    let auto = node.string("auto_pad");
    let even = (0..n).all(|i| pads[i] == pads[i + n]);
    if even || !matches!(auto.as_deref(), None | Some("NOTSET")) || n + 2 != shape.len() {
        return Ok((x, shape, None));
    }
    if pads.iter().any(|&p| p < 0) {
        return Err(node.err(format!("negative pads {pads:?}")));
    }
    let m: Vec<usize> = (0..n).map(|i| pads[i].min(pads[i + n]) as usize).collect();
    let list: Vec<(usize, usize, usize)> = (0..n)
        .map(|i| {
            let (b, e) = (pads[i] as usize - m[i], pads[i + n] as usize - m[i]);
            (i + 2, b, e)
        })
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
    let m = match m[..] {
        [w] => Hw::square(w),
        [h, w] => Hw::new(h, w),
        _ => return Err(node.err(format!("pads {pads:?}: 1-D or 2-D only"))),
    };
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
        "NOTSET" => match evened {
            Some(p) => p,
            None => {
                // Even pads: begin == end on every axis.
                let pads = node.ints("pads").unwrap_or_default();
                per_axis(node, "pads", &pads[..pads.len() / 2], spatial, 0)?
            }
        },
        "VALID" => Hw::default(),
        "SAME_UPPER" | "SAME_LOWER"
            if stride == Hw::square(1)
                && (dilation.h * (k.h - 1)) % 2 == 0
                && (dilation.w * (k.w - 1)) % 2 == 0 =>
        {
            Hw::new(dilation.h * (k.h - 1) / 2, dilation.w * (k.w - 1) / 2)
        }
        other => return Err(node.err(format!("auto_pad {other} with stride {stride}"))),
    };
    let cin = shape[1];
    let out = w.dims[0];
    let g = node.int("group", 1);
    let g = usize::try_from(g)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or_else(|| node.err(format!("attribute group = {g}: it must be at least 1")))?;
    let groups = match g {
        1 => Groups::One,
        g if g == cin && w.dims[1] == 1 => Groups::Depthwise,
        g => Groups::Fixed(g),
    };
    if w.dims[1].checked_mul(g) != Some(cin) {
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
    let axes = |v: Hw| {
        if spatial == 1 {
            vec![v.w]
        } else {
            v.pair().to_vec()
        }
    };
    let (ks, ss, ps, ds) = (axes(k), axes(stride), axes(padding), axes(dilation));
    for (i, &s) in shape[2..].iter().enumerate() {
        let eff = ds[i] * ks[i].max(1).saturating_sub(1) + 1;
        if s + 2 * ps[i] < eff {
            return Err(node.err(format!("kernel {k} does not fit input size {s}")));
        }
        oshape.push((s + 2 * ps[i] - eff) / ss[i] + 1);
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

/// A convolution (1-D, 2-D, masked: the masked kernel is written) as `Conv`.
pub(crate) fn export_conv(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    op: &Op,
    c: &Conv,
) -> Result<(), OnnxError> {
    let spatial = if matches!(op, Op::Conv1d(_)) { 1 } else { 2 };
    let groups = match c.groups {
        Groups::One => 1,
        Groups::Depthwise => model.graph().nin(v)?[0] as i64,
        Groups::Fixed(k) => k as i64,
    };
    let mut p = out.weight_bias(model, v, name, c.bias)?;
    if matches!(op, Op::MaskedConv2d(_)) {
        // ONNX has no mask: the masked kernel is written.
        let w = model.param(v, "weight")?.mul(&model.param(v, "mask")?)?;
        let wn = format!("{name}.masked_weight");
        out.inits.push(Init::tensor(&wn, &w));
        p[0] = wn;
    }
    let i: Vec<&str> = std::iter::once(x)
        .chain(p.iter().map(String::as_str))
        .collect();
    let axes = |v: graft_nn::Hw| -> Vec<i64> {
        let v = v.pair().map(|x| x as i64);
        v[2 - spatial..].to_vec()
    };
    let pads = [axes(c.padding), axes(c.padding)].concat();
    let attrs = vec![
        attr_ints("kernel_shape", axes(c.kernel)),
        attr_ints("strides", axes(c.stride)),
        attr_ints("pads", pads),
        attr_ints("dilations", axes(c.dilation)),
        attr_i("group", groups),
    ];
    out.node("Conv", name, &i, name, attrs);
    Ok(())
}

/// A transposed convolution as `ConvTranspose`.
pub(crate) fn export_conv_transpose(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    c: &Conv,
    output_padding: usize,
) -> Result<(), OnnxError> {
    let p = out.weight_bias(model, v, name, c.bias)?;
    let i: Vec<&str> = std::iter::once(x)
        .chain(p.iter().map(String::as_str))
        .collect();
    let hw = |v: graft_nn::Hw| vec![v.h as i64, v.w as i64];
    let attrs = vec![
        attr_ints("kernel_shape", hw(c.kernel)),
        attr_ints("strides", hw(c.stride)),
        attr_ints("pads", [hw(c.padding), hw(c.padding)].concat()),
        attr_ints("dilations", hw(c.dilation)),
        attr_ints("output_padding", vec![output_padding as i64; 2]),
    ];
    out.node("ConvTranspose", name, &i, name, attrs);
    Ok(())
}
