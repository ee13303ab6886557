//! View ops: Transpose, Squeeze, Unsqueeze and unit-axis Reshape change how
//! ONNX sees a value without computing anything (a view keeps the graft
//! vertex and maps ONNX axes to graft axes); Shape, Gather on constants,
//! Unsqueeze on constants and Expand fold the shape arithmetic exporters
//! write around recurrent layers. Gather of the last time step of a
//! sequence becomes graft's `LastStep`; Gather of one index along another
//! axis (query, key and value picked from a stacked projection) a `Slice`
//! and a reshape, and of every index in order a reshape.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::{encode_i64, Const, Floats};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Transpose", transpose);
    r.insert("Squeeze", squeeze);
    r.insert("Unsqueeze", unsqueeze);
    r.insert("Shape", shape);
    r.insert("Gather", gather);
    r.insert("Expand", expand);
}

/// Axes from the attribute (older opsets) or the second input.
fn axes(ctx: &Ctx, node: &Node) -> Result<Option<Vec<i64>>, OnnxError> {
    if let Some(a) = node.ints("axes") {
        return Ok(Some(a));
    }
    Ok(ctx.constant(node, 1)?.map(|c| c.ints()))
}

fn norm_axis(node: &Node, a: i64, rank: usize) -> Result<usize, OnnxError> {
    let r = rank as i64;
    let x = if a < 0 { a + r } else { a };
    if !(0..r).contains(&x) {
        return Err(node.err(format!("axis {a} out of range for rank {rank}")));
    }
    Ok(x as usize)
}

fn input(ctx: &Ctx, node: &Node) -> Result<Value, OnnxError> {
    ctx.get(node, node.input(0)?)
}

fn transpose(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let val = input(ctx, node)?;
    let (v, shape, order) = val
        .view()
        .ok_or_else(|| node.err("transposing a constant is not supported"))?;
    let perm: Vec<usize> = match node.ints("perm") {
        Some(p) => p
            .iter()
            .map(|&a| norm_axis(node, a, order.len()))
            .collect::<Result<_, _>>()?,
        None => (0..order.len()).rev().collect(),
    };
    let mut seen = vec![false; order.len()];
    for &p in &perm {
        if p >= order.len() || seen[p] {
            return Err(node.err(format!(
                "perm {perm:?} is not a permutation of {} axes",
                order.len()
            )));
        }
        seen[p] = true;
    }
    if perm.len() != order.len() {
        return Err(node.err(format!("perm {perm:?} for rank {}", order.len())));
    }
    let new: Vec<Option<usize>> = perm.iter().map(|&p| order[p]).collect();
    ctx.alias(node, Value::from_view(v, shape, new));
    Ok(())
}

fn squeeze(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let val = input(ctx, node)?;
    // After a global pool graft's value is already [N, C] (ONNX's is
    // [N, C, 1, 1]): squeezing the spatial axes is a no-op.
    if let Value::Runtime { shape, .. } = &val {
        if shape.len() == 2 {
            // The axes are the pooled value's spatial ones (2 and 3, or
            // -2 and -1, of [N, C, 1, 1]).
            if let Some(a) = axes(ctx, node)? {
                if let Some(&bad) = a.iter().find(|&&x| !matches!(x, 2 | 3 | -1 | -2)) {
                    return Err(node.err(format!(
                        "axis {bad} of a pooled [N, C] value: only its unit axes 2 and 3 go"
                    )));
                }
            }
            ctx.alias(node, val);
            return Ok(());
        }
    }
    let Some((v, shape, order)) = val.view() else {
        return Err(node.err("squeezing a constant is not supported"));
    };
    let dims = Value::onnx_dims(&shape, &order);
    let remove: Vec<usize> = match axes(ctx, node)? {
        Some(a) => a
            .iter()
            .map(|&x| norm_axis(node, x, order.len()))
            .collect::<Result<_, _>>()?,
        None => (0..dims.len()).filter(|&i| dims[i] == 1).collect(),
    };
    let mut new = Vec::new();
    for (i, o) in order.iter().enumerate() {
        if remove.contains(&i) {
            match o {
                None => continue,
                // After a global pool graft's value has no spatial axes.
                Some(a) if shape[*a] == 1 => {
                    // A graft axis of size 1: computed as a reshape.
                    let target: Vec<usize> = (0..dims.len())
                        .filter(|k| !remove.contains(k))
                        .map(|k| dims[k])
                        .collect();
                    let (w, s) = ctx.runtime(node, 0)?;
                    return super::shape::reshape_to(ctx, node, w, s, target);
                }
                Some(_) => return Err(node.err(format!("axis {i} has size {}, not 1", dims[i]))),
            }
        }
        new.push(*o);
    }
    ctx.alias(node, Value::from_view(v, shape, new));
    Ok(())
}

fn unsqueeze(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let val = input(ctx, node)?;
    let add = axes(ctx, node)?.ok_or_else(|| node.err("needs axes"))?;
    match val {
        Value::Const(c) => {
            let rank = c.dims.len() + add.len();
            let mut at: Vec<usize> = add
                .iter()
                .map(|&a| norm_axis(node, a, rank))
                .collect::<Result<_, _>>()?;
            at.sort_unstable();
            let mut dims = c.dims.clone();
            for a in at {
                dims.insert(a.min(dims.len()), 1);
            }
            ctx.alias(node, Value::Const(Const { dims, ..c }));
            Ok(())
        }
        Value::Flat { of, len } => {
            // A computed value flattened to 1-D, batch axis included, then
            // given unit axes after it (a mixture of experts' expert ids
            // per token and slot, `[N·k]` to `[N·k, 1]`): a reshape of the
            // value to that batch-first shape.
            let rank = 1 + add.len();
            let mut at: Vec<usize> = add
                .iter()
                .map(|&a| norm_axis(node, a, rank))
                .collect::<Result<_, _>>()?;
            at.sort_unstable();
            if at.first() == Some(&0) {
                return Err(node.err(format!(
                    "unsqueezes `{of}` flattened with its batch axis in front of that axis"
                )));
            }
            let (v, s) = ctx.runtime_of(node, 0, &of)?;
            let mut dims = vec![len as i64];
            dims.extend(std::iter::repeat_n(1, add.len()));
            super::shape::reshape_to_target(ctx, node, v, s, dims)
        }
        other => {
            let Some((v, shape, order)) = other.view() else {
                return Err(node.err("unsqueezes a value graft does not compute"));
            };
            let rank = order.len() + add.len();
            let mut at: Vec<usize> = add
                .iter()
                .map(|&a| norm_axis(node, a, rank))
                .collect::<Result<_, _>>()?;
            at.sort_unstable();
            let mut new = order;
            for a in at {
                new.insert(a.min(new.len()), None);
            }
            ctx.alias(node, Value::from_view(v, shape, new));
            Ok(())
        }
    }
}

fn shape(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let val = input(ctx, node)?;
    // The ONNX axis carrying the batch, when it is symbolic.
    let mut batch = None;
    let dims: Vec<i64> = match &val {
        Value::Const(c) => c.dims.iter().map(|&d| d as i64).collect(),
        Value::Flat { len, .. } => vec![*len as i64],
        other => {
            let Some((v, shape, order)) = other.view() else {
                return Err(node.err("the shape of a value graft does not compute"));
            };
            if ctx.symbolic_batch {
                let b = ctx.batch_axis(v);
                batch = order.iter().position(|&o| o == Some(b));
            }
            Value::onnx_dims(&shape, &order)
                .iter()
                .map(|&d| d as i64)
                .collect()
        }
    };
    // Opset 15's `start` and `end` give a part of the shape.
    let (start, end) = crate::fold::shape_range(node, dims.len());
    let shape_const = |dims: &[i64]| {
        let part = dims[start..end].to_vec();
        Const {
            dims: vec![part.len()],
            f: Floats::default(),
            i: part,
        }
    };
    if let Some(b) = batch.filter(|b| (start..end).contains(b)) {
        // The same shape at batch size 2, for the arithmetic built on it.
        let mut two = dims.clone();
        two[b] *= 2;
        ctx.alts
            .insert(node.output().to_string(), shape_const(&two));
    }
    ctx.alias(node, Value::Const(shape_const(&dims)));
    Ok(())
}

fn gather(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if ctx.constant(node, 1).is_err() {
        // Computed ids into a weight: an embedding (the linear family).
        return super::linear::embedding(ctx, node);
    }
    let idx = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs constant indices"))?;
    let val = input(ctx, node)?;
    match val {
        Value::Const(c) => {
            // Gathering from a 1-D constant (shape arithmetic).
            if c.dims.len() != 1 || node.int("axis", 0) != 0 {
                return Err(node.err("gathering from a constant: 1-D, axis 0 only"));
            }
            let n = c.dims[0] as i64;
            let pick = |i: i64| -> Result<usize, OnnxError> {
                let j = if i < 0 { i + n } else { i };
                if !(0..n).contains(&j) {
                    return Err(node.err(format!("index {i} out of range {n}")));
                }
                Ok(j as usize)
            };
            let ints = c.ints();
            let floats = c.floats();
            let is_int = !c.i.is_empty();
            let sel: Vec<usize> = idx
                .ints()
                .iter()
                .map(|&i| pick(i))
                .collect::<Result<_, _>>()?;
            let dims = idx.dims.clone();
            let out = Const {
                dims,
                i: if is_int {
                    sel.iter().map(|&k| ints[k]).collect()
                } else {
                    Vec::new()
                },
                f: Floats::new(if is_int {
                    Vec::new()
                } else {
                    sel.iter().map(|&k| floats[k]).collect()
                }),
            };
            ctx.alias(node, Value::Const(out));
            Ok(())
        }
        Value::Flat { of, len } => as_strided(ctx, node, &of, len, &idx),
        other => {
            let Some((v, shape, order)) = other.view() else {
                return Err(node.err("gathers from a value graft does not compute"));
            };
            let axis = norm_axis(node, node.int("axis", 0), order.len())?;
            let Some(graft_axis) = order[axis] else {
                return Err(node.err("gathering along a unit axis is not supported"));
            };
            let dims = Value::onnx_dims(&shape, &order);
            let n = dims[axis] as i64;
            if idx.ints().iter().copied().eq(0..n) && !idx.dims.is_empty() {
                // Every index once, in order: a reshape.
                let mut target = dims[..axis].to_vec();
                target.extend(&idx.dims);
                target.extend(&dims[axis + 1..]);
                let (w, s) = ctx.runtime(node, 0)?;
                return super::shape::reshape_to(ctx, node, w, s, target);
            }
            if idx.dims.is_empty() && !(shape.len() == 3 && graft_axis == 2) {
                return gather_one(ctx, node, axis, idx.ints()[0]);
            }
            let t = shape.get(2).copied().unwrap_or(0) as i64;
            let last = idx.len() == 1
                && idx.dims.is_empty()
                && (idx.ints()[0] == -1 || idx.ints()[0] == t - 1);
            if shape.len() != 3 || graft_axis != 2 || !last {
                return Err(node.err(
                    "only the last time step of a sequence (a scalar index -1 on the time axis) is supported",
                ));
            }
            let name = ctx.vertex_name(node);
            let w = ctx.model.add(&name, Op::LastStep, &[v], None)?;
            let new: Vec<Option<usize>> = order
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != axis)
                .map(|(_, o)| *o)
                .collect();
            ctx.alias(node, Value::from_view(w, vec![shape[0], shape[1]], new));
            Ok(())
        }
    }
}

/// The second half of PyTorch's `as_strided` (see [`Value::Flat`]): a
/// Gather along axis 0 of the value `of` flattened to `len` elements. When
/// the indices read every element once in order (`arange(len)` in some
/// shape: a contiguous tensor given its own or another batch-first shape),
/// it is a reshape of `of` to the indices' shape; when they read every
/// element once through strides that are a permutation of a contiguous
/// layout (`x.permute(..)` written as strides), a reshape to that layout
/// and a lazy transpose. Other strides (repeats, gaps, overlaps) are
/// refused.
fn as_strided(
    ctx: &mut Ctx,
    node: &Node,
    of: &str,
    len: usize,
    idx: &Const,
) -> Result<(), OnnxError> {
    let ints = idx.ints();
    let permuted = (node.int("axis", 0) == 0 && idx.len() == len)
        .then(|| strided_permutation(&idx.dims, &ints))
        .flatten();
    let Some((layout, from)) = permuted else {
        return Err(node.err(format!(
            "as_strided of `{of}`: only indices reading every element once, in order or \
             through permuted contiguous strides, are supported (indices of shape {:?} from \
             {len} elements)",
            idx.dims
        )));
    };
    let (v, s) = ctx.runtime_of(node, 0, of)?;
    let dims: Vec<i64> = layout.iter().map(|&d| d as i64).collect();
    super::shape::reshape_to_target(ctx, node, v, s, dims)?;
    if from.iter().enumerate().all(|(a, &f)| a == f) {
        return Ok(());
    }
    let Some((u, ushape, order)) = ctx.get(node, node.output())?.view() else {
        return Err(node.err("the reshaped value is not computed"));
    };
    let order = from.iter().map(|&f| order[f]).collect();
    ctx.alias(node, Value::from_view(u, ushape, order));
    Ok(())
}

/// For indices `vals` of shape `dims` into a flat value of `vals.len()`
/// elements that are an affine function of their position (as_strided:
/// offset 0, one stride per axis) whose strides, largest first, lay the
/// axes out contiguously: that layout's shape (the same shape with the
/// axes larger than 1 reordered by stride) and, for each axis of `dims`,
/// the layout's axis it is. None for any other indices.
fn strided_permutation(dims: &[usize], vals: &[i64]) -> Option<(Vec<usize>, Vec<usize>)> {
    let total: usize = dims.iter().product();
    if total != vals.len() || vals.first().copied().unwrap_or(0) != 0 {
        return None;
    }
    let mut unit = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        unit[i] = unit[i + 1] * dims[i + 1];
    }
    // Each axis's stride: the index one step along it.
    let strides: Vec<i64> = (0..dims.len())
        .map(|a| if dims[a] > 1 { vals[unit[a]] } else { 0 })
        .collect();
    // Every index is the strided sum (walked with a counter per axis).
    let mut at = vec![0usize; dims.len()];
    for &got in vals {
        let want: i64 = at.iter().zip(&strides).map(|(&i, &st)| i as i64 * st).sum();
        if got != want {
            return None;
        }
        for a in (0..dims.len()).rev() {
            at[a] += 1;
            if at[a] < dims[a] {
                break;
            }
            at[a] = 0;
        }
    }
    // The axes larger than 1, by stride, largest first, must be laid out
    // contiguously (each stride the size of everything after it).
    let slots: Vec<usize> = (0..dims.len()).filter(|&a| dims[a] > 1).collect();
    let mut by_stride = slots.clone();
    by_stride.sort_by_key(|&a| std::cmp::Reverse(strides[a]));
    let mut expected = 1i64;
    for &a in by_stride.iter().rev() {
        if strides[a] != expected {
            return None;
        }
        expected *= dims[a] as i64;
    }
    // The layout keeps unit axes in place and fills the other slots in
    // stride order; axis `by_stride[k]` of `dims` is layout axis `slots[k]`.
    let mut layout = dims.to_vec();
    let mut from: Vec<usize> = (0..dims.len()).collect();
    for (k, &a) in by_stride.iter().enumerate() {
        layout[slots[k]] = dims[a];
        from[a] = slots[k];
    }
    Some((layout, from))
}

/// Gather of one index (a scalar) along ONNX axis `axis` of a computed
/// value (query, key and value picked from a stacked projection): a slice
/// of that axis, then a reshape dropping it. An index on the batch axis
/// (a file exported at batch size 1) regroups the value first.
fn gather_one(ctx: &mut Ctx, node: &Node, axis: usize, i: i64) -> Result<(), OnnxError> {
    if axis == 0 {
        if let Some((src, shape, order)) = input(ctx, node)?.view() {
            if let Some(&Some(a)) = order.first().filter(|o| !matches!(o, Some(0) | None)) {
                return gather_moved_axis(ctx, node, src, shape, order, a, i);
            }
        }
    }
    let (mut v, mut s) = ctx.runtime(node, 0)?;
    let mut at = axis;
    let n = s[axis] as i64;
    let j = if i < 0 { i + n } else { i };
    if !(0..n).contains(&j) {
        return Err(node.err(format!("index {i} out of range {n}")));
    }
    let mut target = s.clone();
    target.remove(axis);
    if axis == 0 {
        let mut dims = vec![1];
        dims.extend(&s);
        let name = ctx.fresh_name(&format!("{}.regroup", node.output()));
        let (op, nout) = super::attention::regroup_op(ctx, v, &s, &dims);
        v = ctx.model.add(&name, op, &[v], Some(nout))?;
        s = dims;
        at = 1;
    }
    let p = graft_nn::Slice {
        axis: at,
        start: j as usize,
        len: 1,
        step: 1,
        neurons: ctx.neuron_axis(v),
    };
    let name = ctx.fresh_name(&format!("{}.slice", node.output()));
    let w = ctx.model.add(&name, Op::Slice(p), &[v], None)?;
    s[at] = 1;
    super::shape::reshape_to(ctx, node, w, s, target)
}

/// Gather of one index along ONNX axis 0 when a transpose moved a
/// per-sample axis there (graft axis `a` of `src`) and the batch axis
/// elsewhere (timm's and Swin's q, k, v: `[3, B·windows, heads, tokens,
/// d]`): the slice is taken on graft axis `a` before the transpose, so the
/// batch axis stays graft's first at any batch size, and the transpose
/// stays lazy. Regrouping the transposed value instead fixes the batch
/// axis's size at the file's batch (wrong at any other).
fn gather_moved_axis(
    ctx: &mut Ctx,
    node: &Node,
    src: graft_core::VertexId,
    shape: Vec<usize>,
    order: Vec<Option<usize>>,
    a: usize,
    i: i64,
) -> Result<(), OnnxError> {
    let n = shape[a] as i64;
    let j = if i < 0 { i + n } else { i };
    if !(0..n).contains(&j) {
        return Err(node.err(format!("index {i} out of range {n}")));
    }
    let p = graft_nn::Slice {
        axis: a,
        start: j as usize,
        len: 1,
        step: 1,
        neurons: ctx.neuron_axis(src),
    };
    let name = ctx.fresh_name(&format!("{}.slice", node.output()));
    let w = ctx.model.add(&name, Op::Slice(p), &[src], None)?;
    let mut s = shape;
    s[a] = 1;
    let mut target = s.clone();
    target.remove(a);
    // The unit axis dropped (graft's axes in order), then the remaining
    // ONNX axes read through the same transpose, less that axis.
    super::shape::reshape_to(ctx, node, w, s, target)?;
    let Some((u, ushape, plain)) = ctx.get(node, node.output())?.view() else {
        return Err(node.err("the gathered value is not computed"));
    };
    let map = |o: &Option<usize>| -> Option<Option<usize>> {
        match *o {
            None => Some(None),
            Some(g) if g == a => None,
            Some(g) => plain.get(if g > a { g - 1 } else { g }).copied(),
        }
    };
    let order: Option<Vec<Option<usize>>> = order[1..].iter().map(map).collect();
    let order = order.ok_or_else(|| node.err("the gathered axis appears twice"))?;
    ctx.alias(node, Value::from_view(u, ushape, order));
    Ok(())
}

fn expand(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if !matches!(ctx.get(node, node.input(0)?)?, Value::Const(_)) {
        return super::pointwise::expand(ctx, node);
    }
    let c = ctx
        .constant(node, 0)?
        .ok_or_else(|| node.err("only expanding a constant is supported"))?;
    let to = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant shape"))?
        .ints();
    let vals = c.floats();
    if vals.is_empty() || vals.iter().any(|&x| x != vals[0]) {
        return Err(node.err("only expanding a uniform constant is supported"));
    }
    let dims: Vec<usize> = to.iter().map(|&d| d.max(0) as usize).collect();
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= 1 << 24);
    let n = n.ok_or_else(|| node.err(format!("shape {to:?} is too large")))?;
    ctx.alias(
        node,
        Value::Const(Const {
            dims,
            f: Floats::new(vec![vals[0]; n]),
            i: Vec::new(),
        }),
    );
    Ok(())
}

/// A `Reshape` node's constant target shape, with 0 (copy the input's
/// axis) resolved against `dims`; -1 is left for the caller.
pub(crate) fn reshape_target(
    ctx: &Ctx,
    node: &Node,
    dims: &[usize],
) -> Result<Vec<i64>, OnnxError> {
    let target = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant shape"))?
        .ints();
    Ok(target
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 {
                dims.get(i).copied().unwrap_or(1) as i64
            } else {
                d
            }
        })
        .collect())
}

/// Reshape of a view: only adding or removing unit axes.
pub(crate) fn reshape_view(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let val = input(ctx, node)?;
    let (v, shape, order) = val.view().expect("a view");
    let dims = Value::onnx_dims(&shape, &order);
    let target = reshape_target(ctx, node, &dims)?;
    // A batch axis that stays first is matched as such, whatever its size
    // (1 included); recurrent views have time first and skip this.
    let lead =
        usize::from(order.first() == Some(&Some(0)) && target.first() == Some(&(dims[0] as i64)));
    // Walk both: real axes must match in order; unit axes come and go.
    let real: Vec<(usize, Option<usize>)> = order
        .iter()
        .enumerate()
        .skip(lead)
        .filter(|(i, o)| o.is_some() || dims[*i] != 1)
        .map(|(i, o)| (dims[i], *o))
        .filter(|(d, _)| *d != 1)
        .collect();
    let mut new = if lead == 1 { vec![Some(0)] } else { Vec::new() };
    let mut k = 0;
    for &t in &target[lead..] {
        if t == 1 {
            new.push(None);
        } else if k < real.len() && (t == real[k].0 as i64 || t == -1) {
            new.push(real[k].1);
            k += 1;
        } else {
            return Err(node.err(format!(
                "reshape of a view from {dims:?} to {target:?}: only unit axes may change"
            )));
        }
    }
    if k != real.len() {
        return Err(node.err(format!(
            "reshape of a view from {dims:?} to {target:?}: only unit axes may change"
        )));
    }
    // Graft axes of size 1 that were dropped as unit axes are kept as real.
    if new.iter().flatten().count() != shape.len() {
        return Err(node.err("reshape would drop a graft axis"));
    }
    ctx.alias(node, Value::from_view(v, shape, new));
    Ok(())
}

/// A sequence's last step as `Gather` of index −1 on the time axis.
pub(crate) fn export_last_step(out: &mut Out, name: &str, x: &str) -> Result<(), OnnxError> {
    let idx = format!("{name}.index");
    out.inits.push(encode_i64(&idx, &[], &[-1]));
    out.node("Gather", name, &[x, &idx], name, vec![attr_i("axis", 2)]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::strided_permutation;

    #[test]
    fn strides_of_a_permuted_contiguous_layout_are_found() {
        // [N, C, H, W] = [2, 3, 2, 2] read channels last: shape [2, 2, 2, 3]
        // with strides (12, 2, 1, 4).
        let dims = [2, 2, 2, 3];
        let mut vals = Vec::new();
        for n in 0..2 {
            for h in 0..2 {
                for w in 0..2 {
                    for c in 0..3 {
                        vals.push(n * 12 + h * 2 + w + c * 4);
                    }
                }
            }
        }
        let (layout, from) = strided_permutation(&dims, &vals).unwrap();
        assert_eq!(layout, vec![2, 3, 2, 2]);
        // Output axis c (3) is layout axis 1, h is 2, w is 3.
        assert_eq!(from, vec![0, 2, 3, 1]);
        // In order: the identity.
        let order: Vec<i64> = (0..24).collect();
        assert_eq!(
            strided_permutation(&dims, &order),
            Some((dims.to_vec(), vec![0, 1, 2, 3]))
        );
        // A repeat (stride 0), a gap and an offset are not layouts.
        let mut repeat = order.clone();
        repeat[1] = 0;
        assert_eq!(strided_permutation(&dims, &repeat), None);
        let gap: Vec<i64> = (0..24).map(|i| 2 * i).collect();
        assert_eq!(strided_permutation(&dims, &gap), None);
        let shifted: Vec<i64> = (1..25).collect();
        assert_eq!(strided_permutation(&dims, &shifted), None);
    }
}
