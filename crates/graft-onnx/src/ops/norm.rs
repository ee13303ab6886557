//! Normalisation: BatchNormalization (inference), InstanceNormalization,
//! LayerNormalization (over the last axis of `[N, F]`), GroupNormalization.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::import::{Ctx, Node};

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
