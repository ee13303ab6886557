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
    // A view that only gains or loses unit axes stays a view (unless a
    // symbolic batch, one at import, is what it takes for a unit axis);
    // any other reshape of it becomes vertices (a transpose first) below.
    if let Some(Value::View { v, shape, order }) = ctx.values.get(node.input(0)?).cloned() {
        if super::view::reshape_view(ctx, node).is_ok()
            && view_keeps_batch(ctx, node, v, &shape, &order)?
        {
            return Ok(());
        }
    }
    let (v, s) = ctx.runtime(node, 0)?;
    // Resolve 0 (copy), then -1 (infer).
    let dims = super::view::reshape_target(ctx, node, &s)?;
    let b = ctx.batch_axis(v);
    if let Some(at) = batch_target_axis(ctx, node, &s, b, &dims)? {
        let plain = at == 0 && b == 0 && ctx.neuron_axis(v) != Some(0);
        if !plain {
            let dims = infer_target(node, &s, dims)?;
            return reshape_batched(ctx, node, v, &s, dims, at);
        }
    }
    reshape_to_target(ctx, node, v, s, dims)
}

/// With a symbolic batch, whether the view `reshape_view` bound for
/// `node` (of a view of `v`: graft shape `shape`, ONNX axes `order`) keeps
/// the batch on the target axis that carries it.
fn view_keeps_batch(
    ctx: &mut Ctx,
    node: &Node,
    v: graft_core::VertexId,
    shape: &[usize],
    order: &[Option<usize>],
) -> Result<bool, OnnxError> {
    if !ctx.symbolic_batch {
        return Ok(true);
    }
    let b = ctx.batch_axis(v);
    let dims = Value::onnx_dims(shape, order);
    let Some(onnx_b) = order.iter().position(|&o| o == Some(b)) else {
        return Ok(true);
    };
    let target = super::view::reshape_target(ctx, node, &dims)?;
    let Some(at) = batch_target_axis(ctx, node, &dims, onnx_b, &target)? else {
        return Ok(true);
    };
    let kept = match ctx.get(node, node.output())?.view() {
        Some((_, _, new)) => new.get(at) == Some(&Some(b)),
        None => false,
    };
    Ok(kept)
}

/// With a symbolic batch size, the target axis that carries the batch of a
/// value of shape `s` holding it on axis `b`: read from the target at
/// batch size 2 ([`Ctx::alts`], or -1 inferred from twice the values), the
/// one axis that doubles.
fn batch_target_axis(
    ctx: &mut Ctx,
    node: &Node,
    s: &[usize],
    b: usize,
    dims: &[i64],
) -> Result<Option<usize>, OnnxError> {
    if !ctx.symbolic_batch {
        return Ok(None);
    }
    let Some(mut two) = s.get(b).map(|_| s.to_vec()) else {
        return Ok(None);
    };
    two[b] *= 2;
    let alt = match ctx.alts.get(node.input(1)?) {
        Some(c) => c.ints(),
        None => ctx
            .constant(node, 1)?
            .ok_or_else(|| node.err("needs a constant shape"))?
            .ints(),
    };
    let alt: Vec<i64> = alt
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                two.get(i).map_or(1, |&x| x as i64)
            } else {
                d
            }
        })
        .collect();
    let (Ok(one), Ok(two)) = (
        infer_target(node, s, dims.to_vec()),
        infer_target(node, &two, alt),
    ) else {
        return Ok(None);
    };
    if one.len() != two.len() {
        return Ok(None);
    }
    let moved: Vec<usize> = (0..one.len()).filter(|&i| one[i] != two[i]).collect();
    let [at] = moved[..] else {
        return Ok(None);
    };
    Ok((two[at] == 2 * one[at]).then_some(at))
}

/// A target with -1 inferred from the values of `s`, checked to hold them.
fn infer_target(node: &Node, s: &[usize], mut dims: Vec<i64>) -> Result<Vec<usize>, OnnxError> {
    let total: usize = s.iter().product();
    let target = dims.clone();
    let bad = || node.err(format!("cannot reshape {s:?} to {target:?}"));
    if dims.iter().any(|&d| d < -1 || d > total as i64)
        || dims.iter().filter(|&&d| d == -1).count() > 1
    {
        return Err(bad());
    }
    if let Some(p) = dims.iter().position(|&d| d == -1) {
        let known = dims
            .iter()
            .filter(|&&d| d != -1)
            .try_fold(1i64, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        if known <= 0 || total as i64 % known != 0 {
            return Err(bad());
        }
        dims[p] = total as i64 / known;
    }
    let out: Vec<usize> = dims.iter().map(|&d| d.max(0) as usize).collect();
    if out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(total) {
        return Err(bad());
    }
    Ok(out)
}

/// A reshape of `v` (shape `s` at batch size 1) to `dims` whose axis `at`
/// carries the batch: a [`graft_nn::Regroup`] told so, right at any batch
/// size.
pub(crate) fn reshape_batched(
    ctx: &mut Ctx,
    node: &Node,
    v: graft_core::VertexId,
    s: &[usize],
    dims: Vec<usize>,
    at: usize,
) -> Result<(), OnnxError> {
    if super::attention::fused_head_split(ctx, node, v, s, &dims, Some(at))? {
        return Ok(());
    }
    // A neuron axis that lands on the batch's axis holds the neurons per
    // sample (`[T, N·heads, d]`): `BatchAt` reads their count per sample.
    let (mut op, nout) = match super::attention::head_regroup(ctx, v, s, &dims) {
        Some(found) => found,
        None => super::attention::regroup_op(ctx, v, s, &dims),
    };
    if let Op::Regroup(r) = &mut op {
        r.batch = Some(graft_nn::BatchAt {
            axis: at,
            first: dims[0],
        });
    }
    ctx.add(node, op, &[v], Some(nout), dims)?;
    Ok(())
}

/// Where the batch axis `b` of `s` lands in `dims` when the reshape only
/// removes or inserts unit axes (an importer dropping the axis it sliced):
/// after as many larger axes, at the same place in its run of unit axes.
fn unit_moved(b: usize, s: &[usize], dims: &[usize]) -> Option<usize> {
    let big = |d: &[usize]| d.iter().copied().filter(|&x| x != 1).collect::<Vec<_>>();
    if big(s) != big(dims) || s.get(b) != Some(&1) {
        return None;
    }
    let before = s[..b].iter().filter(|&&x| x != 1).count();
    let run_start = s[..b].iter().rposition(|&x| x != 1).map_or(0, |i| i + 1);
    let m = b - run_start;
    // The run of unit axes after `before` larger ones in `dims`.
    let mut seen = 0;
    let mut start = 0;
    for (i, &d) in dims.iter().enumerate() {
        if seen == before {
            start = i;
            break;
        }
        if d != 1 {
            seen += 1;
            start = i + 1;
        }
    }
    let len = dims[start..].iter().take_while(|&&x| x == 1).count();
    (len > 0).then(|| start + m.min(len - 1))
}

/// The reshape of vertex `v` (graft shape `s`) to `dims` (ONNX's target,
/// 0 resolved, -1 still to infer).
pub(crate) fn reshape_to_target(
    ctx: &mut Ctx,
    node: &Node,
    v: graft_core::VertexId,
    s: Vec<usize>,
    dims: Vec<i64>,
) -> Result<(), OnnxError> {
    let dims = infer_target(node, &s, dims)?;
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
    if ctx.symbolic_batch {
        // The batch away from the first axis (a transposed value's):
        // graft's plain reshapes keep the first axis as the batch.
        let b = ctx.batch_axis(v);
        if b != 0 || ctx.neuron_axis(v) == Some(0) {
            if let Some(at) = unit_moved(b, &s, &dims) {
                return reshape_batched(ctx, node, v, &s, dims, at);
            }
        }
    }
    if dims.first() != s.first() || dims.len() < 2 {
        // Values move across the batch axis (a file exported at batch
        // size 1 folding heads or windows into it).
        return super::attention::regroup(ctx, node, v, &s, dims);
    }
    if dims == s {
        ctx.alias(node, Value::Runtime { v, shape: s });
        return Ok(());
    }
    if super::attention::fused_head_split(ctx, node, v, &s, &dims, None)? {
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
