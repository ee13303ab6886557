//! Conditionals: `If` (a batch-level condition; both branches are
//! subgraphs) and `Where` (per-sample mask-and-merge), each on a
//! `Greater(control, threshold)` test, import as graft's [`Op::Cond`] with a
//! threshold rule. The other dynamic vertices export in mask-and-merge
//! forms that are not read back (see docs/onnx-dynamic.md).

use std::collections::HashMap;

use graft_nn::{Op, Rule};

use super::Importer;
use crate::error::OnnxError;
use crate::import::{Ctx, Node, Value};
use crate::proto::GraphProto;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Greater", greater);
    r.insert("If", if_);
    r.insert("Where", where_);
}

/// `Greater(control, scalar)`: a test on a one-column control, kept until
/// an `If` or `Where` reads it.
fn greater(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let t = ctx
        .constant(node, 1)?
        .filter(|c| c.len() == 1)
        .ok_or_else(|| node.err("compares with a scalar constant only"))?;
    let a = ctx.get(node, node.input(0)?)?;
    let (v, shape, order) = a
        .view()
        .ok_or_else(|| node.err("the compared value must be computed"))?;
    // A control [N, 1], possibly seen with extra unit axes.
    if shape.len() != 2 || shape[1] != 1 || order.iter().flatten().count() != 2 {
        return Err(node.err(format!(
            "only a one-column control is tested (shape {shape:?})"
        )));
    }
    ctx.alias(
        node,
        Value::Test {
            v,
            threshold: t.floats()[0] as f64,
        },
    );
    Ok(())
}

fn test_of(ctx: &Ctx, node: &Node) -> Result<(graft_core::VertexId, f64), OnnxError> {
    match ctx.get(node, node.input(0)?)? {
        Value::Test { v, threshold } => Ok((v, threshold)),
        _ => Err(node.err("the condition must be Greater(control, constant)")),
    }
}

fn if_(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (c, threshold) = test_of(ctx, node)?;
    let mut branches = Vec::new();
    for key in ["then_branch", "else_branch"] {
        let g = node
            .graph(key)
            .ok_or_else(|| node.err(format!("no {key}")))?;
        branches.push(subgraph(ctx, node, g)?);
    }
    let (a, shape) = branches[0].clone();
    let (b, other) = branches[1].clone();
    if shape != other {
        return Err(node.err(format!("branch shapes {shape:?} and {other:?} differ")));
    }
    let op = Op::Cond {
        rule: Rule::Threshold { threshold },
        batch: true,
    };
    ctx.add(node, op, &[c, a, b], None, shape)?;
    Ok(())
}

/// Import a branch's nodes into the model; its output value.
fn subgraph(
    ctx: &mut Ctx,
    node: &Node,
    g: &GraphProto,
) -> Result<(graft_core::VertexId, Vec<usize>), OnnxError> {
    let reg = super::registry();
    let out = g
        .output
        .first()
        .and_then(|o| o.name.clone())
        .ok_or_else(|| node.err("a branch without an output"))?;
    for t in &g.initializer {
        ctx.values.insert(
            t.name.clone().unwrap_or_default(),
            Value::Const(crate::tensor::decode(t)?),
        );
    }
    for n in &g.node {
        let sub = Node {
            proto: n,
            name: n.name.clone().unwrap_or_default(),
            op: n.op_type.clone().unwrap_or_default(),
        };
        // The branch's result, named by an Identity: the value itself.
        if sub.op == "Identity" && sub.output() == out {
            let v = ctx.get(&sub, sub.input(0)?)?;
            ctx.alias(&sub, v);
            continue;
        }
        let f = reg
            .get(sub.op.as_str())
            .ok_or_else(|| OnnxError::Unsupported {
                ops: vec![(sub.op.clone(), vec![sub.name.clone()])],
            })?;
        f(ctx, &sub)?;
    }
    match ctx.values.get(&out) {
        Some(Value::Runtime { v, shape }) => Ok((*v, shape.clone())),
        _ => Err(node.err(format!("branch output `{out}` is not a computed value"))),
    }
}

fn where_(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (c, threshold) = test_of(ctx, node)?;
    let (a, sa) = ctx.runtime(node, 1)?;
    let (b, sb) = ctx.runtime(node, 2)?;
    if sa != sb {
        return Err(node.err(format!("shapes {sa:?} and {sb:?} differ")));
    }
    let op = Op::Cond {
        rule: Rule::Threshold { threshold },
        batch: false,
    };
    ctx.add(node, op, &[c, a, b], None, sa)?;
    Ok(())
}
