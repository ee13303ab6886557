//! Pointwise activations.

use std::collections::HashMap;

use graft_nn::{Activation, Binary, ConstOperand, Elementwise, Op, Operand};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_f, attr_i, Out};
use crate::import::{Ctx, Node};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Relu", |c, n| act(c, n, Activation::Relu));
    r.insert("Sigmoid", |c, n| act(c, n, Activation::Sigmoid));
    r.insert("Tanh", |c, n| act(c, n, Activation::Tanh));
    r.insert("HardSwish", |c, n| act(c, n, Activation::HardSwish));
    r.insert("LeakyRelu", |c, n| {
        let slope = n.float("alpha", 0.01) as f64;
        act(c, n, Activation::LeakyRelu { slope })
    });
    r.insert("Elu", |c, n| {
        let alpha = n.float("alpha", 1.0) as f64;
        act(c, n, Activation::Elu { alpha })
    });
    r.insert("Selu", selu);
    r.insert("Gelu", |c, n| match n.string("approximate").as_deref() {
        None | Some("none") => act(c, n, Activation::Gelu),
        Some(other) => Err(n.err(format!("approximate = {other} is not supported"))),
    });
    r.insert("Softmax", softmax);
    r.insert("HardSigmoid", |c, n| {
        let alpha = n.float("alpha", 0.2) as f64;
        let beta = n.float("beta", 0.5) as f64;
        act(c, n, Activation::HardSigmoid { alpha, beta })
    });
    r.insert("Clip", clip);
}

fn act(ctx: &mut Ctx, node: &Node, f: Activation) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let op = match ctx.neuron_axis(x) {
        Some(1) => Op::Activation(f),
        axis => Op::ActivationAt { f, axis },
    };
    ctx.add(node, op, &[x], None, shape)?;
    Ok(())
}

fn selu(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (a, g) = (
        node.float("alpha", 1.673_263_2),
        node.float("gamma", 1.050_701),
    );
    if (a - 1.673_263_2).abs() > 1e-5 || (g - 1.050_701).abs() > 1e-5 {
        return Err(node.err("only the standard SELU constants are supported"));
    }
    act(ctx, node, Activation::Selu)
}

fn softmax(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let axis = node.int("axis", -1);
    let rank = shape.len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if !(1..rank).contains(&a) {
        return Err(node.err(format!("softmax over axis {axis} of {shape:?}")));
    }
    let from = ctx.neuron_axis(x);
    if a == 1 && rank == 2 && from == Some(1) {
        return act(ctx, node, Activation::Softmax);
    }
    let op = Op::SoftmaxAxis(graft_nn::Softmax {
        axis: a as usize,
        from,
    });
    ctx.add(node, op, &[x], None, shape)?;
    Ok(())
}

fn clip(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let scalar = |k: usize, attr: &str, default: f32| -> Result<f32, OnnxError> {
        match ctx.constant(node, k)? {
            Some(c) if c.len() == 1 => Ok(c.floats()[0]),
            Some(c) => Err(node.err(format!("clip bound of shape {:?}", c.dims))),
            None => Ok(node.float(attr, default)),
        }
    };
    let (lo, hi) = (
        scalar(1, "min", f32::NEG_INFINITY)?,
        scalar(2, "max", f32::INFINITY)?,
    );
    match (lo, hi) {
        (0.0, 6.0) => act(ctx, node, Activation::Relu6),
        (0.0, h) if h.is_infinite() => act(ctx, node, Activation::Relu),
        _ if lo.is_nan() || hi.is_nan() => Err(node.err(format!("clip to [{lo}, {hi}]"))),
        _ => {
            // max(x, lo), then min(·, hi): elementwise ops with a scalar.
            let (mut x, shape) = ctx.runtime(node, 0)?;
            let steps: Vec<(Binary, f32)> = [(Binary::Max, lo), (Binary::Min, hi)]
                .into_iter()
                .filter(|(_, b)| b.is_finite())
                .collect();
            for (k, &(f, b)) in steps.iter().enumerate() {
                let e = Elementwise {
                    f,
                    operands: vec![Operand::Input(0), Operand::Const(0)],
                    consts: vec![ConstOperand {
                        shape: Vec::new(),
                        follows: None,
                    }],
                    free: Vec::new(),
                    axis: ctx.neuron_axis(x),
                    frozen: false,
                };
                let name = if k + 1 == steps.len() {
                    ctx.vertex_name(node)
                } else {
                    ctx.fresh_name(&format!("{}.max", node.output()))
                };
                let v = ctx.model.add(&name, Op::Elementwise(e), &[x], None)?;
                ctx.set(v, &Elementwise::const_name(0), &[], vec![b])?;
                x = v;
            }
            ctx.alias(node, crate::import::Value::Runtime { v: x, shape });
            Ok(())
        }
    }
}

/// An activation as its ONNX op (ReLU6 as `Clip`).
pub(crate) fn export_activation(
    out: &mut Out,
    name: &str,
    x: &str,
    f: &Activation,
) -> Result<(), OnnxError> {
    let (op, attrs) = match f {
        Activation::Relu => ("Relu", vec![]),
        Activation::LeakyRelu { slope } => ("LeakyRelu", vec![attr_f("alpha", *slope as f32)]),
        Activation::Elu { alpha } => ("Elu", vec![attr_f("alpha", *alpha as f32)]),
        Activation::Selu => ("Selu", vec![]),
        Activation::Gelu => {
            out.require(name, "Gelu", 20)?;
            ("Gelu", vec![])
        }
        Activation::Sigmoid => ("Sigmoid", vec![]),
        Activation::Tanh => ("Tanh", vec![]),
        Activation::Softmax => ("Softmax", vec![attr_i("axis", 1)]),
        Activation::HardSwish => {
            out.require(name, "HardSwish", 14)?;
            ("HardSwish", vec![])
        }
        Activation::HardSigmoid { alpha, beta } => (
            "HardSigmoid",
            vec![attr_f("alpha", *alpha as f32), attr_f("beta", *beta as f32)],
        ),
        Activation::Relu6 => {
            let lo = out.scalar(&format!("{name}.min"), 0.0);
            let hi = out.scalar(&format!("{name}.max"), 6.0);
            out.node("Clip", name, &[x, &lo, &hi], name, vec![]);
            return Ok(());
        }
    };
    out.node(op, name, &[x], name, attrs);
    Ok(())
}

/// A softmax over any axis as `Softmax`.
pub(crate) fn export_softmax_axis(
    out: &mut Out,
    name: &str,
    x: &str,
    sm: &graft_nn::Softmax,
) -> Result<(), OnnxError> {
    out.node(
        "Softmax",
        name,
        &[x],
        name,
        vec![attr_i("axis", sm.axis as i64)],
    );
    Ok(())
}
