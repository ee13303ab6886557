//! The axes family in ONNX: reductions (ReduceMean, ReduceSum, ReduceMax,
//! ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
//! ReduceLogSumExp) on computed values, and the export of graft's
//! transposes, views and reductions. Transposes, squeezes and unsqueezes
//! are read lazily as views (`view.rs`) and become vertices when a
//! computing op reads them (`Ctx::runtime`). Graft's side is `graft_nn`'s
//! `layers/axes.rs`.

use std::collections::HashMap;

use graft_nn::{Op, Reduce, Reducer, ViewDim};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, attr_ints, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::encode_i64;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("ReduceMean", |c, n| reduce(c, n, Reducer::Mean));
    r.insert("ReduceSum", |c, n| reduce(c, n, Reducer::Sum));
    r.insert("ReduceMax", |c, n| reduce(c, n, Reducer::Max));
    r.insert("ReduceMin", |c, n| reduce(c, n, Reducer::Min));
    r.insert("ReduceProd", |c, n| reduce(c, n, Reducer::Prod));
    r.insert("ReduceL1", |c, n| reduce(c, n, Reducer::L1));
    r.insert("ReduceL2", |c, n| reduce(c, n, Reducer::L2));
    r.insert("ReduceSumSquare", |c, n| reduce(c, n, Reducer::SumSquare));
    r.insert("ReduceLogSumExp", |c, n| reduce(c, n, Reducer::LogSumExp));
}

fn reduce(ctx: &mut Ctx, node: &Node, f: Reducer) -> Result<(), OnnxError> {
    let name = node.input(0)?;
    let val = ctx.get(node, name)?;
    let onnx_rank = match &val {
        Value::Runtime { shape, .. } => shape.len(),
        Value::View { order, .. } => order.len(),
        Value::Const(_) | Value::Test { .. } | Value::Flat { .. } => {
            return Err(node.err("reduces a value graft does not compute"))
        }
    };
    let given = match node.ints("axes") {
        Some(a) => Some(a),
        None => ctx.constant(node, 1)?.map(|c| c.ints()),
    };
    let mut axes: Vec<usize> = match given {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&x| {
                let r = onnx_rank as i64;
                let y = if x < 0 { x + r } else { x };
                if (0..r).contains(&y) {
                    Ok(y as usize)
                } else {
                    Err(node.err(format!("axis {x} out of range for rank {r}")))
                }
            })
            .collect::<Result<_, _>>()?,
        _ if node.int("noop_with_empty_axes", 0) != 0 => {
            ctx.alias(node, val);
            return Ok(());
        }
        _ => (0..onnx_rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    if axes.contains(&0) {
        return Err(node.err("a reduction over the batch axis is not supported"));
    }
    let keepdims = node.int("keepdims", 1) != 0;
    // A mean over every spatial axis of [N, C, ...] is graft's global
    // average pool (as before, so older files read back the same); with
    // keepdims the unit axes are a view.
    if let Value::Runtime { v, shape } = &val {
        let spatial: Vec<usize> = (2..onnx_rank).collect();
        if f == Reducer::Mean && onnx_rank >= 3 && axes == spatial && ctx.neuron_axis(*v) == Some(1)
        {
            let w = ctx.add(
                node,
                Op::GlobalAvgPool,
                &[*v],
                None,
                vec![shape[0], shape[1]],
            )?;
            if keepdims {
                let mut order = vec![Some(0), Some(1)];
                order.extend(std::iter::repeat_n(None, onnx_rank - 2));
                ctx.alias(node, Value::from_view(w, vec![shape[0], shape[1]], order));
            }
            return Ok(());
        }
    }
    let (x, shape) = ctx.runtime(node, 0)?;
    let r = Reduce {
        f,
        axes: axes.clone(),
        keepdims,
        from: ctx.neuron_axis(x),
    };
    let out: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    ctx.add(node, Op::Reduce(r), &[x], None, out)?;
    Ok(())
}

/// The opset whose reductions take their axes as an input rather than an
/// attribute (ReduceSum from 13, the others from 18).
fn axes_as_input(f: Reducer, opset: i64) -> bool {
    opset >= 18 || (f == Reducer::Sum && opset >= 13)
}

/// Export a transpose, view or reduction as ONNX nodes writing `name`.
pub(crate) fn export(
    out: &mut Out,
    name: &str,
    x: &str,
    op: &Op,
    nout: usize,
    opset: i64,
) -> Result<(), OnnxError> {
    match op {
        Op::Transpose(t) => {
            let perm = t.perm.iter().map(|&p| p as i64).collect();
            out.node("Transpose", name, &[x], name, vec![attr_ints("perm", perm)]);
        }
        Op::View(v) => {
            // 0 copies the batch axis.
            let mut dims = vec![0i64];
            dims.extend(v.dims.iter().map(|d| match d {
                ViewDim::Fixed(n) => *n as i64,
                ViewDim::Neurons => nout as i64,
            }));
            let s = format!("{name}.shape");
            out.inits.push(encode_i64(&s, &[dims.len()], &dims));
            out.node("Reshape", name, &[x, &s], name, vec![]);
        }
        Op::Reduce(r) => {
            let axes: Vec<i64> = r.axes.iter().map(|&a| a as i64).collect();
            let keep = attr_i("keepdims", i64::from(r.keepdims));
            if axes_as_input(r.f, opset) {
                let a = format!("{name}.axes");
                out.inits.push(encode_i64(&a, &[axes.len()], &axes));
                out.node(r.f.onnx_name(), name, &[x, &a], name, vec![keep]);
            } else {
                out.node(
                    r.f.onnx_name(),
                    name,
                    &[x],
                    name,
                    vec![attr_ints("axes", axes), keep],
                );
            }
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.to_string(),
                reason: format!("{} is not an axes op", other.name()),
            })
        }
    }
    Ok(())
}
