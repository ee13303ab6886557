//! Normalisation: BatchNormalization (inference), InstanceNormalization,
//! LayerNormalization (over the last axis of `[N, F]`), GroupNormalization.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_f, attr_i, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::{encode_f32, encode_i64};
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

/// torch's group norm below opset 18, three nodes: a `Reshape` of
/// `[N, C, ...]` to `[N, G, -1]`, an `InstanceNormalization` of the groups
/// and a `Reshape` back (the per-channel affine follows as a `Mul` and an
/// `Add`): the triples whose inner values have no other reader, by the
/// index of their last node, with the first two.
pub(crate) fn group_chains(
    nodes: &[crate::proto::NodeProto],
    uses: &HashMap<String, usize>,
) -> HashMap<usize, [usize; 2]> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    let op = |i: usize| nodes[i].op_type.as_deref().unwrap_or_default();
    let single = |name: &str| uses.get(name).copied() == Some(1);
    let mut chains = HashMap::new();
    for (c, n) in nodes.iter().enumerate() {
        if op(c) != "Reshape" {
            continue;
        }
        let Some(x) = n.input.first() else { continue };
        let Some(&b) = producer.get(x.as_str()) else {
            continue;
        };
        if op(b) != "InstanceNormalization" || !single(x) {
            continue;
        }
        let Some(y) = nodes[b].input.first() else {
            continue;
        };
        match producer.get(y.as_str()) {
            Some(&a) if op(a) == "Reshape" && single(y) => {
                chains.insert(c, [a, b]);
            }
            _ => {}
        }
    }
    chains
}

/// Import a group norm written as [`group_chains`]'s three nodes as one
/// [`Op::GroupNorm`] (its channels then change by whole groups), when it is
/// one: the first reshape splits the channels of a `[N, C, ...]` value
/// into `G` groups, the instance norm's scale and bias give each group's
/// affine, the second reshape restores the input's shape. `false` (nothing
/// added) otherwise.
pub(crate) fn decomposed_group(
    ctx: &mut Ctx,
    split: &Node,
    norm: &Node,
    back: &Node,
) -> Result<bool, OnnxError> {
    let Ok(Some(Value::Runtime { v: x, shape })) =
        split.input(0).map(|name| ctx.values.get(name).cloned())
    else {
        return Ok(false);
    };
    if shape.len() < 3 || ctx.neuron_axis(x) != Some(1) {
        return Ok(false);
    }
    let c = shape[1];
    let Ok(Some(target)) = ctx.constant(split, 1) else {
        return Ok(false);
    };
    let t = target.ints();
    let groups = match t.as_slice() {
        [n, g, -1] if (*n == 0 || *n as usize == shape[0] || *n == -1) && *g > 0 => *g as usize,
        _ => return Ok(false),
    };
    if c % groups != 0 {
        return Ok(false);
    }
    let back_to = match ctx.constant(back, 1) {
        Ok(Some(b)) => b.ints(),
        _ => return Ok(false),
    };
    let batch = |d: i64| d == 0 || d == -1 || d as usize == shape[0];
    let same = back_to.len() == shape.len()
        && back_to
            .iter()
            .zip(&shape)
            .enumerate()
            .all(|(i, (&d, &s))| d as usize == s || (i == 0 && batch(d)));
    // Or to `[N, C, -1]`, the affine next (graft's own export below opset
    // 21, which then restores the input's shape).
    let flat = matches!(back_to.as_slice(), [n, k, -1] if batch(*n) && *k as usize == c);
    if !same && !flat {
        return Ok(false);
    }
    let per_group = |k: usize| -> Option<Vec<f32>> {
        let v = ctx.constant(norm, k).ok()??.floats();
        (v.len() == groups).then(|| (0..c).map(|i| v[i / (c / groups)]).collect())
    };
    let (Some(w), Some(b)) = (per_group(1), per_group(2)) else {
        return Ok(false);
    };
    let eps = norm.float("epsilon", 1e-5) as f64;
    let v = ctx.add(
        norm,
        Op::GroupNorm { groups, eps },
        &[x],
        None,
        shape.clone(),
    )?;
    ctx.set(v, "weight", &[c], w)?;
    ctx.set(v, "bias", &[c], b)?;
    if same {
        ctx.alias(back, Value::Runtime { v, shape });
    } else {
        let spatial: usize = shape[2..].iter().product();
        super::shape::reshape_to(ctx, back, v, shape.clone(), vec![shape[0], c, spatial])?;
    }
    Ok(true)
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

/// A group norm as `GroupNormalization` from opset 21 (a scale and bias
/// per channel), and below as torch writes it: a `Reshape` to `[N, G, -1]`,
/// an `InstanceNormalization` of the groups, the per-channel affine on
/// `[N, C, -1]` and a `Reshape` back to the input's shape (`Shape`). The
/// older `GroupNormalization` (opsets 18 to 20) holds one scale per group
/// only, and the checker calls it deprecated; the decomposed form holds
/// graft's per-channel affine at every opset and reads back as one group
/// norm.
pub(crate) fn export_group_norm(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    groups: usize,
    eps: f64,
) -> Result<(), OnnxError> {
    let w = out.param(model, v, name, "weight")?;
    let b = out.param(model, v, name, "bias")?;
    if out.opset >= 21 {
        let attrs = vec![
            attr_i("num_groups", groups as i64),
            attr_f("epsilon", eps as f32),
        ];
        out.node("GroupNormalization", name, &[x, &w, &b], name, attrs);
        return Ok(());
    }
    let c = model.graph().nout(v)?;
    let constant = |out: &mut Out, what: &str, dims: &[i64]| -> String {
        let n = format!("{name}.{what}");
        out.inits.push(encode_i64(&n, &[dims.len()], dims));
        n
    };
    let split = constant(out, "groups", &[0, groups as i64, -1]);
    let flat = constant(out, "channels", &[0, c as i64, -1]);
    let column = constant(out, "column", &[c as i64, 1]);
    let ones = format!("{name}.ones");
    out.inits
        .push(encode_f32(&ones, &[groups], &vec![1.0; groups]));
    let zeros = format!("{name}.zeros");
    out.inits
        .push(encode_f32(&zeros, &[groups], &vec![0.0; groups]));
    let at = |what: &str| format!("{name}.{what}");
    out.node("Reshape", &at("split"), &[x, &split], &at("split"), vec![]);
    out.node(
        "InstanceNormalization",
        &at("norm"),
        &[&at("split"), &ones, &zeros],
        &at("norm"),
        vec![attr_f("epsilon", eps as f32)],
    );
    out.node(
        "Reshape",
        &at("flat"),
        &[&at("norm"), &flat],
        &at("flat"),
        vec![],
    );
    out.node("Reshape", &at("w"), &[&w, &column], &at("w"), vec![]);
    out.node("Reshape", &at("b"), &[&b, &column], &at("b"), vec![]);
    out.node(
        "Mul",
        &at("scaled"),
        &[&at("flat"), &at("w")],
        &at("scaled"),
        vec![],
    );
    out.node(
        "Add",
        &at("shifted"),
        &[&at("scaled"), &at("b")],
        &at("shifted"),
        vec![],
    );
    out.node("Shape", &at("shape"), &[x], &at("shape"), vec![]);
    out.node(
        "Reshape",
        name,
        &[&at("shifted"), &at("shape")],
        name,
        vec![],
    );
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
