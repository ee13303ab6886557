//! Pooling: MaxPool, AveragePool (square windows, no padding), the global
//! pools and ReduceMean over every spatial axis.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
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
    let st = node.ints("strides").unwrap_or_else(|| vec![1; ks.len()]);
    let pads = node.ints("pads").unwrap_or_default();
    if shape.len() != 4 || ks.len() != 2 || ks[0] != ks[1] || st.len() != 2 || st[0] != st[1] {
        return Err(node.err(format!(
            "square 2-D windows only (kernel {ks:?}, strides {st:?})"
        )));
    }
    let pad = match pads.first() {
        None => 0,
        Some(&p) if pads.iter().all(|&q| q == p) && (max || p == 0) => p as usize,
        // An average that counts the padding (PyTorch's default) is an
        // average over a zero-padded input.
        Some(&p)
            if pads.iter().all(|&q| q == p)
                && p > 0
                && node.int("count_include_pad", 0) != 0 =>
        {
            let p = p as usize;
            let op = graft_nn::Pad {
                pads: vec![(2, p, p), (3, p, p)],
                mode: graft_nn::PadMode::Constant { value: 0.0 },
                neurons: ctx.neuron_axis(x),
                rank: 4,
            };
            let name = ctx.fresh_name(&format!("{}.pad", node.output()));
            let v = ctx.model.add(&name, Op::Pad(op), &[x], None)?;
            let padded = vec![shape[0], shape[1], shape[2] + 2 * p, shape[3] + 2 * p];
            return window_on(ctx, node, v, padded, 0, max, ks, st);
        }
        _ => {
            return Err(node.err(format!(
                "pads {pads:?}: equal padding on every side; an average pool counts it (count_include_pad)"
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
    pad: usize,
    max: bool,
    ks: Vec<i64>,
    st: Vec<i64>,
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
    let (k, s) = (ks[0] as usize, st[0] as usize);
    if shape[2] + 2 * pad < k || shape[3] + 2 * pad < k {
        return Err(node.err(format!("window {k} larger than the input {shape:?}")));
    }
    // ceil_mode: windows may run past the far edge (never starting in the
    // far padding); a max pool reads them as −∞ padding before it.
    let extra = |l: usize| -> usize {
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
    let (eh, ew) = (extra(shape[2]), extra(shape[3]));
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
        (shape[2] + 2 * pad - k) / s + 1,
        (shape[3] + 2 * pad - k) / s + 1,
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
