//! Shape and plumbing ops: Concat, Flatten, Reshape, Squeeze, Identity,
//! Dropout, Constant.

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::import::{Ctx, Node, Value};
use crate::tensor::decode;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Concat", concat);
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

fn concat(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    // Constants (shape arithmetic of exporters): 1-D concatenation.
    let all_const: Option<Vec<crate::tensor::Const>> = node
        .inputs()
        .iter()
        .map(|n| match ctx.values.get(n) {
            Some(Value::Const(c)) if c.dims.len() <= 1 => Some(c.clone()),
            _ => None,
        })
        .collect();
    if let Some(cs) = all_const.filter(|c| !c.is_empty()) {
        let ints = cs.iter().all(|c| !c.i.is_empty() || c.len() == 0);
        let mut out = crate::tensor::Const {
            dims: vec![0],
            f: Vec::new(),
            i: Vec::new(),
        };
        for c in cs {
            if ints {
                out.i.extend(c.ints());
            } else {
                out.f.extend(c.floats());
            }
        }
        out.dims[0] = out.i.len().max(out.f.len());
        ctx.alias(node, Value::Const(out));
        return Ok(());
    }
    let mut vs = Vec::new();
    let mut shape: Option<Vec<usize>> = None;
    let mut channels = 0;
    for k in 0..node.inputs().len() {
        let (v, s) = ctx.runtime(node, k)?;
        let axis = node.int("axis", 1);
        if axis != 1 && axis != 1 - s.len() as i64 {
            return Err(node.err(format!("concatenation along axis {axis}: only axis 1")));
        }
        if let Some(first) = &shape {
            if first.len() != s.len() || first[2..] != s[2..] {
                return Err(node.err(format!("shapes {first:?} and {s:?} do not concatenate")));
            }
        }
        channels += s[1];
        shape.get_or_insert(s);
        vs.push(v);
    }
    let mut out = shape.ok_or_else(|| node.err("no inputs"))?;
    out[1] = channels;
    ctx.add(node, Op::Concat, &vs, None, out)?;
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
    if node.int("axis", 1) != 1 {
        return Err(node.err("only axis 1 is supported"));
    }
    flatten_to(ctx, node)
}

fn reshape(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if let Some(Value::View { .. }) = ctx.values.get(node.input(0)?) {
        return super::view::reshape_view(ctx, node);
    }
    let (v, s) = ctx.runtime(node, 0)?;
    let total: usize = s.iter().product();
    // Resolve 0 (copy), then -1 (infer).
    let mut dims = super::view::reshape_target(ctx, node, &s)?;
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
    if size != Some(total) || dims.first() != s.first() {
        return Err(node.err(format!(
            "cannot reshape {s:?} to {target:?} (the batch axis must stay)"
        )));
    }
    if dims == s {
        ctx.alias(node, Value::Runtime { v, shape: s });
        return Ok(());
    }
    if dims.len() == 2 && s.len() > 2 {
        return flatten_to(ctx, node);
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
