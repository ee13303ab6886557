//! Normalisation: BatchNormalization (inference), InstanceNormalization,
//! LayerNormalization (over the last axis of `[N, F]`), GroupNormalization.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_f, attr_i, Out};
use crate::import::{Ctx, Node};
use crate::tensor::encode_f32;
use graft_core::VertexId;
use graft_nn::Model;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("BatchNormalization", batch);
    r.insert("InstanceNormalization", instance);
    r.insert("LayerNormalization", layer);
    r.insert("GroupNormalization", group);
}

/// Constant input `k` with exactly `n` values.
fn vector(ctx: &Ctx, node: &Node, k: usize, n: usize) -> Result<Vec<f32>, OnnxError> {
    let c = ctx
        .constant(node, k)?
        .ok_or_else(|| node.err(format!("needs constant input {k}")))?;
    if c.len() != n {
        return Err(node.err(format!("input {k} has {} values for {n} channels", c.len())));
    }
    Ok(c.floats().to_vec())
}

fn batch(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if node.int("training_mode", 0) != 0 {
        return Err(node.err("training_mode = 1 is not supported"));
    }
    let (x, shape) = ctx.runtime(node, 0)?;
    let c = shape[1];
    let eps = node.float("epsilon", 1e-5) as f64;
    let momentum = 1.0 - node.float("momentum", 0.9) as f64;
    let v = ctx.add(node, Op::BatchNorm { eps, momentum }, &[x], None, shape)?;
    for (k, p) in ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .enumerate()
    {
        let vals = vector(ctx, node, k + 1, c)?;
        ctx.set(v, p, &[c], vals)?;
    }
    Ok(())
}

fn affine(
    ctx: &mut Ctx,
    node: &Node,
    op: Op,
    shape: Vec<usize>,
    x: graft_core::VertexId,
) -> Result<(), OnnxError> {
    let c = shape[1];
    let w = vector(ctx, node, 1, c)?;
    let b = vector(ctx, node, 2, c)?;
    let v = ctx.add(node, op, &[x], None, shape)?;
    ctx.set(v, "weight", &[c], w)?;
    ctx.set(v, "bias", &[c], b)?;
    Ok(())
}

fn instance(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let eps = node.float("epsilon", 1e-5) as f64;
    affine(ctx, node, Op::InstanceNorm { eps }, shape, x)
}

fn layer(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let axis = node.int("axis", -1);
    // Over the last axis of a higher-rank value whose neurons are there
    // (channels last, token sequences).
    let last = shape.len() - 1;
    if shape.len() > 2 && (axis == -1 || axis == last as i64) && ctx.neuron_axis(x) == Some(last) {
        let eps = node.float("epsilon", 1e-5) as f64;
        let c = shape[last];
        let take = |ctx: &Ctx, k: usize, fill: f32| -> Result<Vec<f32>, OnnxError> {
            match ctx.constant(node, k)? {
                Some(t) if t.len() == c => Ok(t.floats().to_vec()),
                Some(t) => {
                    Err(node.err(format!("input {k} of shape {:?} for {c} neurons", t.dims)))
                }
                None => Ok(vec![fill; c]),
            }
        };
        let (w, b) = (take(ctx, 1, 1.0)?, take(ctx, 2, 0.0)?);
        let op = Op::LayerNormLast(graft_nn::LayerNormLast { eps, axis: last });
        let v = ctx.add(node, op, &[x], None, shape)?;
        ctx.set(v, "weight", &[c], w)?;
        ctx.set(v, "bias", &[c], b)?;
        return Ok(());
    }
    if shape.len() != 2 || !(axis == -1 || axis == 1) {
        return Err(node.err(format!(
            "only over the features of [N, F] (axis {axis}, shape {shape:?})"
        )));
    }
    let eps = node.float("epsilon", 1e-5) as f64;
    affine(ctx, node, Op::LayerNorm { eps }, shape, x)
}

fn group(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let c = shape[1];
    let groups = node.int("num_groups", 0) as usize;
    if groups == 0 || c % groups != 0 {
        return Err(node.err(format!("{groups} groups for {c} channels")));
    }
    let eps = node.float("epsilon", 1e-5) as f64;
    // Opset 18 to 20 give one scale per group, 21 one per channel.
    let expand = |ctx: &Ctx, k: usize| -> Result<Vec<f32>, OnnxError> {
        let v = ctx
            .constant(node, k)?
            .ok_or_else(|| node.err(format!("needs constant input {k}")))?
            .floats();
        match v.len() {
            n if n == c => Ok(v.to_vec()),
            n if n == groups => Ok((0..c).map(|i| v[i / (c / groups)]).collect()),
            n => Err(node.err(format!("input {k} has {n} values for {c} channels"))),
        }
    };
    let w = expand(ctx, 1)?;
    let b = expand(ctx, 2)?;
    let v = ctx.add(node, Op::GroupNorm { groups, eps }, &[x], None, shape)?;
    ctx.set(v, "weight", &[c], w)?;
    ctx.set(v, "bias", &[c], b)?;
    Ok(())
}

/// A batch norm as `BatchNormalization` (ONNX's momentum is 1 − PyTorch's).
pub(crate) fn export_batch_norm(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    eps: f64,
    momentum: f64,
) -> Result<(), OnnxError> {
    let p: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
        .iter()
        .map(|p| out.param(model, v, name, p))
        .collect::<Result<_, _>>()?;
    let i: Vec<&str> = std::iter::once(x)
        .chain(p.iter().map(String::as_str))
        .collect();
    let attrs = vec![
        attr_f("epsilon", eps as f32),
        attr_f("momentum", (1.0 - momentum) as f32),
    ];
    out.node("BatchNormalization", name, &i, name, attrs);
    Ok(())
}

/// A layer norm over the channels (`layer`) or an instance norm.
pub(crate) fn export_norm(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    layer: bool,
    eps: f64,
) -> Result<(), OnnxError> {
    let (onnx_op, mut attrs) = if layer {
        out.require(name, "LayerNormalization", 17)?;
        ("LayerNormalization", vec![attr_i("axis", 1)])
    } else {
        ("InstanceNormalization", vec![])
    };
    let w = out.param(model, v, name, "weight")?;
    let b = out.param(model, v, name, "bias")?;
    attrs.push(attr_f("epsilon", eps as f32));
    out.node(onnx_op, name, &[x, &w, &b], name, attrs);
    Ok(())
}

/// A group norm as `GroupNormalization` (opset 18; per-channel affine from 21).
pub(crate) fn export_group_norm(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    groups: usize,
    eps: f64,
) -> Result<(), OnnxError> {
    let (w, b) = group_affine(out, model, v, name, groups)?;
    let attrs = vec![
        attr_i("num_groups", groups as i64),
        attr_f("epsilon", eps as f32),
    ];
    out.node("GroupNormalization", name, &[x, &w, &b], name, attrs);
    Ok(())
}

/// A layer norm over the last axis as `LayerNormalization` (axis −1).
pub(crate) fn export_layer_norm_last(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    l: &graft_nn::LayerNormLast,
) -> Result<(), OnnxError> {
    out.require(name, "LayerNormalization", 17)?;
    let w = out.param(model, v, name, "weight")?;
    let b = out.param(model, v, name, "bias")?;
    out.node(
        "LayerNormalization",
        name,
        &[x, &w, &b],
        name,
        vec![attr_i("axis", -1), attr_f("epsilon", l.eps as f32)],
    );
    Ok(())
}

/// GroupNormalization's scale and bias: one per channel from opset 21;
/// one per group at 18 to 20, which holds graft's per-channel affine only
/// when it is constant within each group.
pub(crate) fn group_affine(
    out: &mut Out,
    model: &Model,
    v: graft_core::VertexId,
    name: &str,
    groups: usize,
) -> Result<(String, String), OnnxError> {
    out.require(name, "GroupNormalization", 18)?;
    if out.opset >= 21 {
        let w = out.param(model, v, name, "weight")?;
        let b = out.param(model, v, name, "bias")?;
        return Ok((w, b));
    }
    let mut names = Vec::new();
    for p in ["weight", "bias"] {
        let t = model.param(v, p)?;
        let vals: Vec<f32> = t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
        let per = vals.len() / groups.max(1);
        let chunks: Vec<&[f32]> = vals.chunks(per.max(1)).collect();
        if per == 0 || chunks.iter().any(|c| c.iter().any(|&x| x != c[0])) {
            return Err(OnnxError::OpsetTooLow {
                vertex: name.into(),
                op: "GroupNormalization with a per-channel scale or bias".into(),
                opset: out.opset,
                needs: 21,
            });
        }
        let per_group: Vec<f32> = chunks.iter().map(|c| c[0]).collect();
        let n = format!("{name}.{p}");
        out.inits
            .push(encode_f32(&n, &[per_group.len()], &per_group));
        names.push(n);
    }
    Ok((names[0].clone(), names[1].clone()))
}
