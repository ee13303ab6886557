//! Pooling: MaxPool, AveragePool (2-D windows, kernel, stride and padding
//! per axis, the padding the same before and after), the global pools and
//! ReduceMean over every spatial axis.

use std::collections::HashMap;

use graft_nn::{Hw, Op};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, attr_ints, Out};
use crate::import::{Ctx, Node, Value};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("MaxPool", |c, n| window(c, n, true));
    r.insert("AveragePool", |c, n| window(c, n, false));
    r.insert("GlobalAveragePool", |c, n| global(c, n, Op::GlobalAvgPool));
    r.insert("GlobalMaxPool", |c, n| global(c, n, Op::GlobalMaxPool));
}

fn window(ctx: &mut Ctx, node: &Node, max: bool) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let ks = node.ints("kernel_shape").unwrap_or_default();
    let st = node.ints("strides").unwrap_or_default();
    let pads = node.ints("pads").unwrap_or_default();
    if shape.len() != 4 || ks.len() != 2 {
        return Err(node.err(format!(
            "2-D windows only (kernel {ks:?} on input {shape:?})"
        )));
    }
    let ks = super::conv::per_axis(node, "kernel_shape", &ks, 2, 1)?;
    let st = super::conv::per_axis(node, "strides", &st, 2, 1)?;
    if ks.h == 0 || ks.w == 0 || st.h == 0 || st.w == 0 {
        return Err(node.err(format!("kernel {ks} and strides {st} must be positive")));
    }
    let even = pads.len() == 4 && pads[0] == pads[2] && pads[1] == pads[3];
    let pad = match pads.len() {
        0 => Hw::default(),
        _ if !even => {
            return Err(node.err(format!(
                "pads {pads:?}: the same padding before and after each axis is supported"
            )))
        }
        _ => super::conv::per_axis(node, "pads", &pads[..2], 2, 0)?,
    };
    let pad = match pad {
        p if max || p == Hw::default() => p,
        // An average that counts the padding (PyTorch's default) is an
        // average over a zero-padded input.
        p if node.int("count_include_pad", 0) != 0 => {
            let op = graft_nn::Pad {
                pads: vec![(2, p.h, p.h), (3, p.w, p.w)],
                mode: graft_nn::PadMode::Constant { value: 0.0 },
                neurons: ctx.neuron_axis(x),
                rank: 4,
            };
            let name = ctx.fresh_name(&format!("{}.pad", node.output()));
            let v = ctx.model.add(&name, Op::Pad(op), &[x], None)?;
            let padded = vec![shape[0], shape[1], shape[2] + 2 * p.h, shape[3] + 2 * p.w];
            return window_on(ctx, node, v, padded, Hw::default(), max, ks, st);
        }
        _ => {
            return Err(node.err(format!(
                "pads {pads:?}: an average pool with padding must count it (count_include_pad)"
            )))
        }
    };
    window_on(ctx, node, x, shape, pad, max, ks, st)
}

/// The pool on `x` (already padded where needed) with even padding `pad`.
#[allow(clippy::too_many_arguments)]
fn window_on(
    ctx: &mut Ctx,
    node: &Node,
    x: graft_core::VertexId,
    shape: Vec<usize>,
    pad: Hw,
    max: bool,
    k: Hw,
    s: Hw,
) -> Result<(), OnnxError> {
    let ceil = node.int("ceil_mode", 0) != 0;
    if ceil && !max {
        return Err(node.err("ceil_mode is supported for max pooling only"));
    }
    if node
        .ints("dilations")
        .is_some_and(|d| d.iter().any(|&x| x != 1))
    {
        return Err(node.err("dilated pooling is not supported"));
    }
    if shape[2] + 2 * pad.h < k.h || shape[3] + 2 * pad.w < k.w {
        return Err(node.err(format!("window {k} larger than the input {shape:?}")));
    }
    // ceil_mode: windows may run past the far edge (never starting in the
    // far padding); a max pool reads them as −∞ padding before it.
    let extra = |l: usize, k: usize, s: usize, pad: usize| -> usize {
        if !ceil {
            return 0;
        }
        let span = l + 2 * pad - k;
        let mut n = span.div_ceil(s) + 1;
        if (n - 1) * s >= l + pad {
            n -= 1;
        }
        ((n - 1) * s + k).saturating_sub(l + 2 * pad)
    };
    let eh = extra(shape[2], k.h, s.h, pad.h);
    let ew = extra(shape[3], k.w, s.w, pad.w);
    let (x, shape) = if eh + ew > 0 {
        let p = graft_nn::Pad {
            pads: vec![(2, 0, eh), (3, 0, ew)],
            mode: graft_nn::PadMode::Constant {
                value: f64::NEG_INFINITY,
            },
            neurons: ctx.neuron_axis(x),
            rank: 4,
        };
        let name = ctx.fresh_name(&format!("{}.ceil", node.output()));
        let v = ctx.model.add(&name, Op::Pad(p), &[x], None)?;
        (v, vec![shape[0], shape[1], shape[2] + eh, shape[3] + ew])
    } else {
        (x, shape)
    };
    let out = vec![
        shape[0],
        shape[1],
        (shape[2] + 2 * pad.h - k.h) / s.h + 1,
        (shape[3] + 2 * pad.w - k.w) / s.w + 1,
    ];
    let op = if max {
        Op::MaxPool2d {
            kernel: k,
            stride: s,
            padding: pad,
        }
    } else {
        Op::AvgPool2d {
            kernel: k,
            stride: s,
        }
    };
    ctx.add(node, op, &[x], None, out)?;
    Ok(())
}

fn global(ctx: &mut Ctx, node: &Node, op: Op) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    if shape.len() < 3 {
        return Err(node.err(format!("needs spatial axes, got {shape:?}")));
    }
    // graft's global pools drop the spatial axes: [N, C]. ONNX's value
    // keeps them with size 1, so it is bound as a view with unit axes:
    // Flatten, Squeeze and Reshape to [N, C] after it are free, and a
    // convolution or a broadcast reading it (squeeze-and-excitation) gets
    // a vertex that adds the unit axes back.
    let v = ctx.add(node, op, &[x], None, vec![shape[0], shape[1]])?;
    let mut order = vec![Some(0), Some(1)];
    order.extend(std::iter::repeat_n(None, shape.len() - 2));
    ctx.alias(node, Value::from_view(v, vec![shape[0], shape[1]], order));
    Ok(())
}

/// A max pool as `MaxPool`.
pub(crate) fn export_max_pool(
    out: &mut Out,
    name: &str,
    x: &str,
    kernel: &Hw,
    stride: &Hw,
    padding: &Hw,
) -> Result<(), OnnxError> {
    let hw = |v: &graft_nn::Hw| vec![v.h as i64, v.w as i64];
    let attrs = vec![
        attr_ints("kernel_shape", hw(kernel)),
        attr_ints("strides", hw(stride)),
        attr_ints("pads", [hw(padding), hw(padding)].concat()),
    ];
    out.node("MaxPool", name, &[x], name, attrs);
    Ok(())
}

/// An average pool as `AveragePool`.
pub(crate) fn export_avg_pool(
    out: &mut Out,
    name: &str,
    x: &str,
    kernel: &Hw,
    stride: &Hw,
) -> Result<(), OnnxError> {
    let hw = |v: &graft_nn::Hw| vec![v.h as i64, v.w as i64];
    let attrs = vec![
        attr_ints("kernel_shape", hw(kernel)),
        attr_ints("strides", hw(stride)),
    ];
    out.node("AveragePool", name, &[x], name, attrs);
    Ok(())
}

/// A global pool, then `Flatten`: graft's `[N, C]` is ONNX's `[N, C, 1, 1]`.
pub(crate) fn export_global_pool(
    out: &mut Out,
    name: &str,
    x: &str,
    avg: bool,
) -> Result<(), OnnxError> {
    let op = if avg {
        "GlobalAveragePool"
    } else {
        "GlobalMaxPool"
    };
    // graft's global pools give [N, C]; ONNX's [N, C, 1, 1].
    // The pool node keeps the vertex's name, so it imports back
    // as the same vertex (the Flatten after it is a no-op).
    let pooled = format!("{name}.pooled");
    out.node(op, name, &[x], &pooled, vec![]);
    let flat = format!("{name}.flatten");
    out.node("Flatten", &flat, &[&pooled], name, vec![attr_i("axis", 1)]);
    Ok(())
}
