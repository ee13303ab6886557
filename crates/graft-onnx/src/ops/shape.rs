//! Shape and plumbing ops: Concat, Flatten, Reshape, Squeeze, Identity,
//! Dropout, Constant.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::{decode, encode_i64};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Flatten", flatten);
    r.insert("Reshape", reshape);
    r.insert("Identity", identity);
    r.insert("Dropout", dropout);
    r.insert("Constant", constant);
}

/// Identity on a constant (exporters re-share initializers that way) is an
/// alias; on a computed value it is a vertex, so graphs round-trip.
fn identity(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    match ctx.get(node, node.input(0)?)? {
        // graft's identity keeps neurons on axis 1; a value whose neurons
        // are elsewhere (tokens, channels last) is passed on as it is.
        Value::Runtime { v, shape } if ctx.neuron_axis(v).is_some_and(|a| a != 1) => {
            ctx.alias(node, Value::Runtime { v, shape });
            Ok(())
        }
        Value::Runtime { v, shape } => {
            ctx.add(node, Op::Identity, &[v], None, shape)?;
            Ok(())
        }
        c => {
            ctx.alias(node, c);
            Ok(())
        }
    }
}

fn dropout(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (v, shape) = ctx.runtime(node, 0)?;
    let p = match ctx.constant(node, 1)? {
        Some(c) if c.len() == 1 => c.floats()[0] as f64,
        _ => node.float("ratio", 0.5) as f64,
    };
    ctx.add(node, Op::Dropout { p }, &[v], None, shape)?;
    Ok(())
}

fn constant(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let t = node
        .tensor("value")
        .ok_or_else(|| node.err("only a `value` tensor is supported"))?;
    let c = decode(t)?;
    ctx.alias(node, Value::Const(c));
    Ok(())
}

fn flatten_to(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    // A global pool's [N, C, 1, 1] view flattens to graft's [N, C] value.
    if let Some(Value::View { v, shape, order }) = ctx.values.get(node.input(0)?).cloned() {
        let units_after = order.iter().skip(2).all(Option::is_none);
        if shape.len() == 2 && order.get(..2) == Some(&[Some(0), Some(1)]) && units_after {
            ctx.alias(node, Value::Runtime { v, shape });
            return Ok(());
        }
    }
    let (v, s) = ctx.runtime(node, 0)?;
    if s.len() == 2 {
        ctx.alias(node, Value::Runtime { v, shape: s });
        return Ok(());
    }
    let spatial: usize = s[2..].iter().product();
    ctx.add(
        node,
        Op::Flatten { spatial },
        &[v],
        None,
        vec![s[0], s[1] * spatial],
    )?;
    Ok(())
}

fn flatten(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let axis = node.int("axis", 1);
    if axis != 1 {
        return Err(node.err(format!("axis {axis}: only axis 1 is supported")));
    }
    flatten_to(ctx, node)
}

/// A reshape of a computed value to 1-D, batch axis included: bound as
/// [`Value::Flat`] for the Gather of PyTorch's `as_strided` to read. False
/// when the reshape is not one.
fn flatten_batch(ctx: &mut Ctx, node: &Node) -> Result<bool, OnnxError> {
    let name = node.input(0)?;
    let Some((_, shape, order)) = ctx.get(node, name)?.view() else {
        return Ok(false);
    };
    let dims = Value::onnx_dims(&shape, &order);
    let total = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| node.err(format!("a value of shape {dims:?} is too large")))?;
    let target = super::view::reshape_target(ctx, node, &dims)?;
    let flat = matches!(target[..], [d] if d == -1 || d == total as i64);
    if !flat || dims.len() < 2 {
        return Ok(false);
    }
    let of = name.to_string();
    ctx.alias(node, Value::Flat { of, len: total });
    Ok(true)
}

fn reshape(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if flatten_batch(ctx, node)? {
        return Ok(());
    }
    // A view that only gains or loses unit axes stays a view; any other
    // reshape of it becomes vertices (a transpose first) below.
    if let Some(Value::View { .. }) = ctx.values.get(node.input(0)?) {
        if super::view::reshape_view(ctx, node).is_ok() {
            return Ok(());
        }
    }
    let (v, s) = ctx.runtime(node, 0)?;
    // Resolve 0 (copy), then -1 (infer).
    let dims = super::view::reshape_target(ctx, node, &s)?;
    reshape_to_target(ctx, node, v, s, dims)
}

/// The reshape of vertex `v` (graft shape `s`) to `dims` (ONNX's target,
/// 0 resolved, -1 still to infer).
pub(crate) fn reshape_to_target(
    ctx: &mut Ctx,
    node: &Node,
    v: graft_core::VertexId,
    s: Vec<usize>,
    mut dims: Vec<i64>,
) -> Result<(), OnnxError> {
    let total: usize = s.iter().product();
    let target = dims.clone();
    if dims.iter().any(|&d| d < -1 || d > total as i64) {
        return Err(node.err(format!("cannot reshape {s:?} to {target:?}")));
    }
    if let Some(p) = dims.iter().position(|&d| d == -1) {
        let known = dims
            .iter()
            .filter(|&&d| d != -1)
            .try_fold(1i64, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        if known <= 0 || total as i64 % known != 0 {
            return Err(node.err(format!("cannot reshape {s:?} to {target:?}")));
        }
        dims[p] = total as i64 / known;
    }
    let dims: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    let size = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if size != Some(total) {
        return Err(node.err(format!("cannot reshape {s:?} to {target:?}")));
    }
    reshape_to(ctx, node, v, s, dims)
}

/// A reshape of computed `v` (shape `s`) to `dims` (as many values) for
/// `node`: an alias, a view, a flatten, a reshape or a regroup.
pub(crate) fn reshape_to(
    ctx: &mut Ctx,
    node: &Node,
    v: graft_core::VertexId,
    s: Vec<usize>,
    dims: Vec<usize>,
) -> Result<(), OnnxError> {
    if dims.first() != s.first() || dims.len() < 2 {
        // Values move across the batch axis (a file exported at batch
        // size 1 folding heads or windows into it).
        return super::attention::regroup(ctx, node, v, &s, dims);
    }
    if dims == s {
        ctx.alias(node, Value::Runtime { v, shape: s });
        return Ok(());
    }
    if super::attention::fused_head_split(ctx, node, v, &s, &dims)? {
        return Ok(());
    }
    if let Some((op, nout)) = super::attention::head_regroup(ctx, v, &s, &dims) {
        ctx.add(node, op, &[v], Some(nout), dims)?;
        return Ok(());
    }
    if let Some(view) = keeps_neurons_whole(ctx.neuron_axis(v), &s, &dims) {
        ctx.add(node, Op::View(view), &[v], None, dims)?;
        return Ok(());
    }
    if dims.len() == 2 && s.len() > 2 && ctx.neuron_axis(v) == Some(1) {
        let spatial: usize = s[2..].iter().product();
        ctx.add(node, Op::Flatten { spatial }, &[v], None, dims)?;
        return Ok(());
    }
    let axis = ctx.neuron_axis(v);
    if s.len() >= 3 && (axis.is_none() || axis == Some(s.len() - 1)) {
        // Channels-last values (tokens, attention heads) regrouped: the
        // neurons stay on the last axis.
        return super::attention::regroup(ctx, node, v, &s, dims);
    }
    ctx.add(
        node,
        Op::Reshape {
            shape: dims[1..].to_vec(),
        },
        &[v],
        None,
        dims,
    )?;
    Ok(())
}

/// A reshape from `from` to `to` (batch axis first in both) that keeps the
/// neuron axis whole: the neurons' size is an axis of the target, with the
/// same number of elements before it. Then it is a [`graft_nn::View`]
/// (invariant) rather than an immutable reshape.
fn keeps_neurons_whole(
    axis: Option<usize>,
    from: &[usize],
    to: &[usize],
) -> Option<graft_nn::View> {
    let a = axis?;
    let c = *from.get(a)?;
    let before: usize = from[..a].iter().product();
    let b = (1..to.len()).find(|&b| to[b] == c && to[..b].iter().product::<usize>() == before)?;
    if c == 1 || to.first() != from.first() {
        return None;
    }
    Some(graft_nn::View {
        dims: to[1..]
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if i + 1 == b {
                    graft_nn::ViewDim::Neurons
                } else {
                    graft_nn::ViewDim::Fixed(d)
                }
            })
            .collect(),
        from: Some(a),
    })
}

/// Dropout (an identity in inference) as `Dropout` with its ratio.
pub(crate) fn export_dropout(out: &mut Out, name: &str, x: &str, p: f64) -> Result<(), OnnxError> {
    let r = out.scalar(&format!("{name}.ratio"), p as f32);
    out.node("Dropout", name, &[x, &r], name, vec![]);
    Ok(())
}

/// A per-sample reshape as `Reshape` (batch kept: 0).
pub(crate) fn export_reshape(
    out: &mut Out,
    name: &str,
    x: &str,
    shape: &[usize],
) -> Result<(), OnnxError> {
    let s = format!("{name}.shape");
    let mut dims = vec![0i64];
    dims.extend(shape.iter().map(|&d| d as i64));
    out.inits.push(encode_i64(&s, &[dims.len()], &dims));
    out.node("Reshape", name, &[x, &s], name, vec![]);
    Ok(())
}

/// An identity as `Identity`.
pub(crate) fn export_identity(out: &mut Out, name: &str, x: &str) {
    out.node("Identity", name, &[x], name, vec![]);
}

/// A flatten of everything after the batch axis as `Flatten` (axis 1).
pub(crate) fn export_flatten(out: &mut Out, name: &str, x: &str) {
    out.node("Flatten", name, &[x], name, vec![attr_i("axis", 1)]);
}
