//! Add, Sub, Mul, Div: of two computed values of one shape, or by a scalar
//! constant (a scaling).

use std::collections::HashMap;

use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::import::{Ctx, Node, Value};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Add", |c, n| binary(c, n, Op::Add));
    r.insert("Sub", |c, n| binary(c, n, Op::Sub));
    r.insert("Mul", |c, n| binary(c, n, Op::Mul));
    r.insert("Div", |c, n| binary(c, n, Op::Identity));
}

fn binary(ctx: &mut Ctx, node: &Node, op: Op) -> Result<(), OnnxError> {
    let ins = node.inputs();
    if ins.len() != 2 {
        return Err(node.err("needs two inputs"));
    }
    let a = ctx.get(node, &ins[0])?;
    let b = ctx.get(node, &ins[1])?;
    let is_div = node.op == "Div";
    match (a, b) {
        (Value::Runtime { v: x, shape: sx }, Value::Runtime { v: y, shape: sy }) if !is_div => {
            if sx != sy {
                return Err(node.err(format!("shapes {sx:?} and {sy:?} differ (no broadcasting)")));
            }
            ctx.add(node, op, &[x, y], None, sx)?;
            Ok(())
        }
        (Value::Runtime { v, shape }, Value::Const(c)) if c.len() == 1 => {
            let k = c.floats()[0] as f64;
            let factor = match node.op.as_str() {
                "Mul" => k,
                "Div" => 1.0 / k,
                _ if k == 0.0 => {
                    ctx.alias(node, Value::Runtime { v, shape });
                    return Ok(());
                }
                _ => return Err(node.err("adding a constant is not supported")),
            };
            ctx.add(node, Op::Scale { factor }, &[v], None, shape)?;
            Ok(())
        }
        (Value::Const(c), Value::Runtime { v, shape }) if c.len() == 1 && node.op == "Mul" => {
            let factor = c.floats()[0] as f64;
            ctx.add(node, Op::Scale { factor }, &[v], None, shape)?;
            Ok(())
        }
        _ => {
            Err(node.err("only two computed values of one shape, or a value and a scalar constant"))
        }
    }
}
