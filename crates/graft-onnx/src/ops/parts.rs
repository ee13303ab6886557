//! The parts family in ONNX: Slice and Split (each output a graft
//! [`Slice`]), Concat (graft's `concat` for channels on axis 1, a
//! [`Join`] in any other layout), Tile (joins of copies) and Pad, import
//! and export side by side. Graft's
//! side is `graft_nn`'s `layers/parts.rs`.

use std::collections::HashMap;

use graft_core::VertexId;
use graft_nn::{Join, Op, Pad, PadMode, Slice};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::encode_i64;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Slice", slice);
    r.insert("Split", split);
    r.insert("Concat", concat);
    r.insert("Pad", pad);
    r.insert("Tile", tile);
}

fn norm_axis(node: &Node, a: i64, rank: usize) -> Result<usize, OnnxError> {
    let r = rank as i64;
    let x = if a < 0 { a.saturating_add(r) } else { a };
    if !(1..r).contains(&x) {
        return Err(node.err(format!(
            "axis {a} of rank {rank}: graft slices and joins every axis but the batch axis"
        )));
    }
    Ok(x as usize)
}

/// A vertex, its graft shape, and the graft axis of each ONNX axis.
type Viewed = (VertexId, Vec<usize>, Vec<Option<usize>>);

/// Input 0 as graft's value under the ONNX view of it: the vertex, its
/// graft shape and, for each ONNX axis, the graft axis it is (a transpose
/// is such a view until something needs it laid out), so that a slice
/// along an axis a transpose moved in front of the batch axis (timm's
/// `qkv` permuted to `[3, N, heads, tokens, d]`) is a slice of graft's
/// axis.
fn viewed(ctx: &mut Ctx, node: &Node) -> Result<Viewed, OnnxError> {
    if let Some(view) = ctx.get(node, node.input(0)?)?.view() {
        return Ok(view);
    }
    let (v, s) = ctx.runtime(node, 0)?;
    let order = (0..s.len()).map(Some).collect();
    Ok((v, s, order))
}

/// ONNX axis `a` of a view of `order` as graft's axis: any but the batch
/// axis; `None` for an axis of size 1 the view inserted.
fn graft_axis(node: &Node, a: i64, order: &[Option<usize>]) -> Result<Option<usize>, OnnxError> {
    let r = order.len() as i64;
    let x = if a < 0 { a.saturating_add(r) } else { a };
    let refuse = || {
        node.err(format!(
            "axis {a} of rank {r}: graft slices and joins every axis but the batch axis"
        ))
    };
    if !(0..r).contains(&x) {
        return Err(refuse());
    }
    match order[x as usize] {
        Some(0) => Err(refuse()),
        g => Ok(g),
    }
}

/// Integers from input `k` (newer opsets) or attribute `attr` (older).
fn ints(ctx: &Ctx, node: &Node, k: usize, attr: &str) -> Result<Option<Vec<i64>>, OnnxError> {
    if let Some(c) = ctx.constant(node, k)? {
        return Ok(Some(c.ints()));
    }
    Ok(node.ints(attr))
}

fn slice(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape, order) = viewed(ctx, node)?;
    let starts = ints(ctx, node, 1, "starts")?.ok_or_else(|| node.err("needs starts"))?;
    let ends = ints(ctx, node, 2, "ends")?.ok_or_else(|| node.err("needs ends"))?;
    let axes = ints(ctx, node, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = ints(ctx, node, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(node.err("starts, ends, axes and steps differ in length"));
    }
    let neurons = ctx.neuron_axis(x);
    let mut cur = (x, shape);
    for k in 0..starts.len() {
        let Some(axis) = graft_axis(node, axes[k], &order)? else {
            // An inserted axis of size 1: a slice keeping it is a no-op.
            let d = 1i64;
            let norm = |x: i64| if x < 0 { x.saturating_add(d) } else { x };
            if norm(starts[k]).clamp(0, d) == 0 && norm(ends[k]).clamp(0, d) == 1 && steps[k] == 1 {
                continue;
            }
            return Err(node.err(format!("an empty slice of axis {}", axes[k])));
        };
        let d = cur.1[axis] as i64;
        let step = steps[k];
        if step == 0 {
            return Err(node.err("step 0"));
        }
        let norm = |x: i64| if x < 0 { x.saturating_add(d) } else { x };
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let (start, len) = if step > 0 {
            let (s, e) = (s.clamp(0, d), e.clamp(0, d));
            (s, (e - s).max(0).saturating_add(step - 1) / step)
        } else {
            let (s, e) = (s.clamp(-1, d - 1), e.clamp(-1, d - 1));
            let back = step
                .checked_neg()
                .ok_or_else(|| node.err(format!("step {step}")))?;
            (s, (s - e).max(0).saturating_add(back - 1) / back)
        };
        if len == 0 {
            return Err(node.err(format!("an empty slice of axis {axis}")));
        }
        if start == 0 && len == d && step == 1 {
            continue;
        }
        let p = Slice {
            axis,
            start: start as usize,
            len: len as usize,
            step,
            neurons,
        };
        let mut out = cur.1.clone();
        out[axis] = len as usize;
        let name = chain_name(ctx, node, k + 1 == starts.len(), k);
        let v = ctx.model.add(&name, Op::Slice(p), &[cur.0], None)?;
        cur = (v, out);
    }
    ctx.alias(node, Value::from_view(cur.0, cur.1, order));
    Ok(())
}

fn split(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape, order) = viewed(ctx, node)?;
    let a = node.int("axis", 0);
    let axis = graft_axis(node, a, &order)?
        .ok_or_else(|| node.err(format!("splits axis {a}, of size 1")))?;
    let d = shape[axis];
    let outs = &node.proto.output;
    let sizes: Vec<usize> = match ints(ctx, node, 1, "split")? {
        Some(s) => s
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| node.err(format!("split size {x}"))))
            .collect::<Result<_, _>>()?,
        None => {
            // Equal parts; with num_outputs (opset 18) the last may be
            // smaller.
            let n = outs.len().max(1);
            let part = d.div_ceil(n);
            (0..n)
                .map(|k| part.min(d.saturating_sub(k * part)))
                .collect()
        }
    };
    if sizes.len() != outs.len() || sizes.iter().sum::<usize>() != d || sizes.contains(&0) {
        return Err(node.err(format!(
            "split sizes {sizes:?} for {} outputs of axis {axis} of size {d}",
            outs.len()
        )));
    }
    let neurons = ctx.neuron_axis(x);
    let mut start = 0;
    for (name, &len) in outs.iter().zip(&sizes) {
        let p = Slice {
            axis,
            start,
            len,
            step: 1,
            neurons,
        };
        let mut out = shape.clone();
        out[axis] = len;
        let vname = ctx.fresh_name(name);
        let v = ctx.model.add(&vname, Op::Slice(p), &[x], None)?;
        ctx.values
            .insert(name.clone(), Value::from_view(v, out, order.clone()));
        start += len;
    }
    Ok(())
}

fn concat(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let mut vs = Vec::new();
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    let mut consts = Vec::new();
    for k in 0..node.inputs().len() {
        match ctx.get(node, node.input(k)?)? {
            Value::Const(c) => consts.push((k, c)),
            _ => {
                let (v, s) = ctx.runtime(node, k)?;
                vs.push(v);
                shapes.push(s);
            }
        }
    }
    // Constants joined to computed values (a class token) repeat over the
    // batch: a token vertex each, in place.
    if !consts.is_empty() {
        let like = *vs.first().ok_or_else(|| node.err("joins constants only"))?;
        let neurons = ctx.neuron_axis(like);
        for (k, c) in consts {
            let (v, s) = super::attention::token(ctx, node, k, &c, like, neurons)?;
            vs.insert(k, v);
            shapes.insert(k, s);
        }
    }
    let first = shapes.first().ok_or_else(|| node.err("no inputs"))?.clone();
    let axis = norm_axis(node, node.int("axis", 1), first.len())?;
    let mut out = first.clone();
    out[axis] = 0;
    for s in &shapes {
        let fits = s.len() == first.len()
            && s.iter()
                .zip(&first)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !fits {
            return Err(node.err(format!(
                "shapes {first:?} and {s:?} do not concatenate on axis {axis}"
            )));
        }
        out[axis] += s[axis];
    }
    let axes: Vec<Option<usize>> = vs.iter().map(|&v| ctx.neuron_axis(v)).collect();
    let neurons = axes[0];
    if axes.iter().any(|a| *a != neurons) {
        return Err(node.err(format!(
            "inputs hold their neurons on different axes ({axes:?})"
        )));
    }
    let op = if axis == 1 && neurons == Some(1) {
        Op::Concat
    } else {
        Op::Join(Join { axis, neurons })
    };
    ctx.add(node, op, &vs, None, out)?;
    Ok(())
}

/// Tile of a computed value by constant repeats: `r` copies of the value
/// joined along each repeated axis, a stack of its neurons along the neuron
/// axis (the core's stack with the same input `r` times: pruning a neuron
/// prunes every copy) and an invariant join along the others.
fn tile(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let reps = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs constant repeats"))?
        .ints();
    if reps.len() != shape.len() {
        return Err(node.err(format!("{} repeats for rank {}", reps.len(), shape.len())));
    }
    if let Some(r) = reps.iter().find(|&&r| r < 1) {
        return Err(node.err(format!("a repeat of {r}: each must be at least 1")));
    }
    if reps[0] != 1 {
        return Err(node.err("repeating the batch axis is not supported"));
    }
    let neurons = ctx.neuron_axis(x);
    let tiled: Vec<usize> = (1..reps.len()).filter(|&a| reps[a] > 1).collect();
    let mut cur = (x, shape);
    for (i, &axis) in tiled.iter().enumerate() {
        let r = usize::try_from(reps[axis]).unwrap_or(usize::MAX);
        if r > 1024 {
            return Err(node.err(format!(
                "repeating axis {axis} {r} times: at most 1024 copies are joined"
            )));
        }
        let mut out = cur.1.clone();
        out[axis] = out[axis]
            .checked_mul(r)
            .filter(|&n| n <= 1 << 26)
            .ok_or_else(|| node.err(format!("repeating axis {axis} {r} times is too large")))?;
        let op = if axis == 1 && neurons == Some(1) {
            Op::Concat
        } else {
            Op::Join(Join { axis, neurons })
        };
        let name = chain_name(ctx, node, i + 1 == tiled.len(), axis);
        let v = ctx.model.add(&name, op, &vec![cur.0; r], None)?;
        cur = (v, out);
    }
    ctx.alias(
        node,
        Value::Runtime {
            v: cur.0,
            shape: cur.1,
        },
    );
    Ok(())
}

fn pad(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let rank = shape.len();
    let pads = ints(ctx, node, 1, "pads")?.ok_or_else(|| node.err("needs pads"))?;
    let axes: Vec<usize> = match ints(ctx, node, 3, "")? {
        Some(a) => a
            .iter()
            .map(|&x| {
                let r = rank as i64;
                let y = if x < 0 { x + r } else { x };
                usize::try_from(y)
                    .ok()
                    .filter(|&y| y < rank)
                    .ok_or_else(|| node.err(format!("axis {x} for rank {rank}")))
            })
            .collect::<Result<_, _>>()?,
        None => (0..rank).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(node.err(format!("{} pads for {} axes", pads.len(), axes.len())));
    }
    let value = match ctx.constant(node, 2)? {
        Some(c) => c.floats().first().copied().unwrap_or(0.0) as f64,
        None => node.float("value", 0.0) as f64,
    };
    let mode = match node.string("mode").as_deref() {
        None | Some("constant") => PadMode::Constant { value },
        Some("edge") => PadMode::Edge,
        Some(other) => return Err(node.err(format!("mode {other} is not supported"))),
    };
    let n = axes.len();
    let mut out = shape.clone();
    let mut list = Vec::new();
    for (k, &a) in axes.iter().enumerate() {
        let (b, e) = (pads[k], pads[k + n]);
        if b < 0 || e < 0 {
            return Err(node.err(format!(
                "negative padding {pads:?} (a crop) is not supported"
            )));
        }
        if b == 0 && e == 0 {
            continue;
        }
        if a == 0 {
            return Err(node.err("padding the batch axis is not supported"));
        }
        out[a] = b
            .checked_add(e)
            .and_then(|p| usize::try_from(p).ok())
            .and_then(|p| out[a].checked_add(p))
            .ok_or_else(|| node.err(format!("pads {pads:?} are too large")))?;
        list.push((a, b as usize, e as usize));
    }
    if list.is_empty() {
        ctx.alias(node, Value::Runtime { v: x, shape });
        return Ok(());
    }
    let p = Pad {
        pads: list,
        mode,
        neurons: ctx.neuron_axis(x),
        rank,
    };
    ctx.add(node, Op::Pad(p), &[x], None, out)?;
    Ok(())
}

/// Export a slice, a join or a padding as ONNX nodes writing `name`.
pub(crate) fn export(out: &mut Out, name: &str, ins: &[String], op: &Op) -> Result<(), OnnxError> {
    match op {
        Op::Slice(p) => {
            let start = p.start as i64;
            let end = start + p.len as i64 * p.step;
            // Below 0 going backwards means "through index 0".
            let end = if end < 0 { i64::MIN } else { end };
            let mut names = vec![ins[0].clone()];
            for (part, v) in [
                ("starts", start),
                ("ends", end),
                ("axes", p.axis as i64),
                ("steps", p.step),
            ] {
                let n = format!("{name}.{part}");
                out.inits.push(encode_i64(&n, &[1], &[v]));
                names.push(n);
            }
            let i: Vec<&str> = names.iter().map(String::as_str).collect();
            out.node("Slice", name, &i, name, vec![]);
        }
        Op::Join(j) => {
            let i: Vec<&str> = ins.iter().map(String::as_str).collect();
            out.node(
                "Concat",
                name,
                &i,
                name,
                vec![attr_i("axis", j.axis as i64)],
            );
        }
        Op::Pad(p) => {
            // Opset 18 names the padded axes; before it every axis has pads.
            let with_axes = out.opset >= 18 || p.rank == 0;
            let axes: Vec<usize> = if with_axes {
                p.pads.iter().map(|&(a, _, _)| a).collect()
            } else {
                (0..p.rank).collect()
            };
            let of = |a: usize| {
                p.pads
                    .iter()
                    .find(|x| x.0 == a)
                    .copied()
                    .unwrap_or((a, 0, 0))
            };
            let mut pads: Vec<i64> = axes.iter().map(|&a| of(a).1 as i64).collect();
            pads.extend(axes.iter().map(|&a| of(a).2 as i64));
            let axes: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
            let (pn, an, vn) = (
                format!("{name}.pads"),
                format!("{name}.axes"),
                format!("{name}.value"),
            );
            out.inits.push(encode_i64(&pn, &[pads.len()], &pads));
            let (mode, value) = match p.mode {
                PadMode::Constant { value } => ("constant", value as f32),
                PadMode::Edge => ("edge", 0.0),
            };
            out.inits
                .push(crate::tensor::encode_f32(&vn, &[], &[value]));
            let mut inputs = vec![ins[0].as_str(), &pn, &vn];
            if with_axes {
                out.inits.push(encode_i64(&an, &[axes.len()], &axes));
                inputs.push(&an);
            }
            out.node(
                "Pad",
                name,
                &inputs,
                name,
                vec![crate::export::attr_s("mode", mode)],
            );
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.to_string(),
                reason: format!("{} is not a slice, a join or a padding", other.name()),
            })
        }
    }
    Ok(())
}

/// The name of one vertex of a chain that one node becomes: the node's own
/// for the last, `OUTPUT.tag` for the others.
fn chain_name(ctx: &mut Ctx, node: &Node, last: bool, tag: impl std::fmt::Display) -> String {
    if last {
        ctx.vertex_name(node)
    } else {
        ctx.fresh_name(&format!("{}.{tag}", node.output()))
    }
}

/// A concatenation of the channels as `Concat` (axis 1).
pub(crate) fn export_concat(out: &mut Out, name: &str, ins: &[String]) -> Result<(), OnnxError> {
    let i: Vec<&str> = ins.iter().map(String::as_str).collect();
    out.node("Concat", name, &i, name, vec![attr_i("axis", 1)]);
    Ok(())
}
