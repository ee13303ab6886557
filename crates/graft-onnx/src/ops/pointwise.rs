//! The pointwise family in ONNX: unary math ops (Erf, Sqrt, ...) and the
//! broadcasting binary ops (Add, Sub, Mul, Div, Pow, Min, Max), import and
//! export side by side. Graft's side (size rule, forward, parameters) is
//! `graft_nn`'s `layers/pointwise.rs`.
//!
//! Two computed values of one shape with channels on axis 1 keep graft's
//! original merge ops (add, sub, mul), and a scalar factor its `scale`, so
//! files graft wrote before read back the same. Everything else becomes an
//! [`Elementwise`] vertex: each computed operand is tied to the output when
//! its neuron axis lines up with the output's at full size, and broadcast
//! (free) when it has size 1 there; constant operands become parameters
//! whose axis on the output's neuron axis follows the neurons. An operand
//! whose neurons would land on another axis makes the vertex immutable
//! (its sizes are frozen), never a refusal.

use std::collections::HashMap;

use graft_nn::{Binary, ConstOperand, Elementwise, Model, Op, Operand, Unary};

use super::Importer;
use crate::error::OnnxError;
use crate::export::Out;
use crate::import::{Ctx, Node, Value};
use crate::tensor::encode_f32;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Add", |c, n| binary(c, n, Binary::Add));
    r.insert("Sub", |c, n| binary(c, n, Binary::Sub));
    r.insert("Mul", |c, n| binary(c, n, Binary::Mul));
    r.insert("Div", |c, n| binary(c, n, Binary::Div));
    r.insert("Pow", |c, n| binary(c, n, Binary::Pow));
    r.insert("Min", |c, n| binary(c, n, Binary::Min));
    r.insert("Max", |c, n| binary(c, n, Binary::Max));
    for f in Unary::ALL {
        r.insert(f.onnx_name(), unary_importer(f));
    }
    r.insert("Cast", cast);
}

fn unary_importer(f: Unary) -> Importer {
    macro_rules! arm {
        ($($v:ident),*) => {
            match f {
                $(Unary::$v => |c, n| unary(c, n, Unary::$v),)*
            }
        };
    }
    arm!(
        Erf, Sqrt, Reciprocal, Neg, Abs, Log, Exp, Floor, Ceil, Round, Sin, Cos, Sign, Softplus,
        Softsign, Silu, Mish
    )
}

fn unary(ctx: &mut Ctx, node: &Node, f: Unary) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let axis = ctx.neuron_axis(x);
    ctx.add(node, Op::Unary { f, axis }, &[x], None, shape)?;
    Ok(())
}

/// A cast of a computed float value to a float type is the identity; graft
/// computes in floats only, so a cast of a computed value to integers or
/// booleans is refused (casts of constants are folded at import).
fn cast(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let to = node.int("to", 1);
    let val = ctx.get(node, node.input(0)?)?;
    // Indices graft computed (a top-k's, through reshapes) are whole
    // numbers: cast to an integer type they stay what they are.
    let whole = matches!(to, 6 | 7)
        && val
            .view()
            .is_some_and(|(v, _, _)| holds_indices(&ctx.model, v));
    if !whole && !matches!(to, 1 | 10 | 11 | 16) {
        return Err(node.err(format!(
            "a computed value cast to data type {to}: graft computes in floats only"
        )));
    }
    ctx.alias(node, val);
    Ok(())
}

/// True when vertex `v` computes indices: a top-k's, or one passed on
/// unchanged by reshapes and transposes.
fn holds_indices(m: &graft_nn::Model, mut v: graft_core::VertexId) -> bool {
    loop {
        match m.layer(v).map(|l| &l.op) {
            Some(Op::TopK(t)) => return t.indices,
            Some(Op::Regroup(_) | Op::View(_) | Op::Transpose(_) | Op::Identity) => {
                match m
                    .graph()
                    .vertex(v)
                    .ok()
                    .and_then(|x| x.inputs().first().copied())
                {
                    Some(u) => v = u,
                    None => return false,
                }
            }
            _ => return false,
        }
    }
}

/// An operand as the importer sees it.
enum Arg {
    /// A computed value: vertex, ONNX shape, neuron axis.
    Runtime(graft_core::VertexId, Vec<usize>, Option<usize>),
    /// A constant: shape, values.
    Const(Vec<usize>, crate::tensor::Floats),
}

fn binary(ctx: &mut Ctx, node: &Node, f: Binary) -> Result<(), OnnxError> {
    let mut args = Vec::new();
    for k in 0..node.inputs().len() {
        let name = node.input(k)?;
        args.push(match ctx.get(node, name)? {
            Value::Const(c) => Arg::Const(c.dims.clone(), c.floats()),
            _ => {
                let (v, s) = ctx.runtime(node, k)?;
                let a = ctx.neuron_axis(v);
                Arg::Runtime(v, s, a)
            }
        });
    }
    if args.len() < 2 {
        return Err(node.err("needs two inputs"));
    }
    if legacy(ctx, node, f, &args)? {
        return Ok(());
    }
    general(ctx, node, f, &args)
}

/// graft's own merge and scale ops, for the layouts they were made for.
fn legacy(ctx: &mut Ctx, node: &Node, f: Binary, args: &[Arg]) -> Result<bool, OnnxError> {
    match (&args[0], &args[1]) {
        (Arg::Runtime(x, sx, Some(1)), Arg::Runtime(y, sy, Some(1))) if sx == sy => {
            let op = match f {
                Binary::Add => Op::Add,
                Binary::Sub => Op::Sub,
                Binary::Mul => Op::Mul,
                _ => return Ok(false),
            };
            ctx.add(node, op, &[*x, *y], None, sx.clone())?;
            Ok(true)
        }
        (Arg::Runtime(v, shape, Some(1)), Arg::Const(dims, vals)) if vals.len() == 1 => {
            let k = vals[0] as f64;
            let rank_kept = dims.len() <= shape.len();
            let factor = match f {
                Binary::Mul if rank_kept => k,
                Binary::Div if rank_kept && k != 0.0 => 1.0 / k,
                Binary::Add | Binary::Sub if k == 0.0 && rank_kept => {
                    ctx.alias(
                        node,
                        Value::Runtime {
                            v: *v,
                            shape: shape.clone(),
                        },
                    );
                    return Ok(true);
                }
                _ => return Ok(false),
            };
            ctx.add(node, Op::Scale { factor }, &[*v], None, shape.clone())?;
            Ok(true)
        }
        (Arg::Const(dims, vals), Arg::Runtime(v, shape, Some(1)))
            if vals.len() == 1 && f == Binary::Mul && dims.len() <= shape.len() =>
        {
            let factor = vals[0] as f64;
            ctx.add(node, Op::Scale { factor }, &[*v], None, shape.clone())?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Where each operand's neurons land on the output.
struct Layout {
    out: Vec<usize>,
    axis: Option<usize>,
    free: Vec<usize>,
    frozen: bool,
}

fn layout(node: &Node, args: &[Arg]) -> Result<Layout, OnnxError> {
    let mut out: Vec<usize> = Vec::new();
    for a in args {
        let s = match a {
            Arg::Runtime(_, s, _) => s,
            Arg::Const(d, _) => d,
        };
        out = graft_nn::broadcast_shape(&out, s)
            .ok_or_else(|| node.err(format!("shapes {out:?} and {s:?} do not broadcast")))?;
    }
    let rank = out.len();
    // The output's neuron axis: where the first computed operand with a
    // neuron axis puts it.
    let mut axis = None;
    let mut frozen = false;
    for a in args {
        if let Arg::Runtime(_, s, Some(ax)) = a {
            let at = ax + rank - s.len();
            if s[*ax] == out[at] {
                axis = Some(at);
                break;
            }
        }
    }
    let mut free = Vec::new();
    let mut k = 0;
    for a in args {
        let Arg::Runtime(_, s, ax) = a else { continue };
        let off = rank - s.len();
        let size_at = |i: Option<usize>| i.and_then(|i| i.checked_sub(off)).map(|j| s[j]);
        match (axis, ax) {
            (Some(o), Some(a)) if a + off == o && s[*a] == out[o] => {}
            (Some(o), _) if size_at(Some(o)).unwrap_or(1) == 1 && out[o] != 1 => free.push(k),
            (Some(_), _) => frozen = true,
            (None, _) => free.push(k),
        }
        k += 1;
    }
    Ok(Layout {
        out,
        axis,
        free,
        frozen,
    })
}

fn general(ctx: &mut Ctx, node: &Node, f: Binary, args: &[Arg]) -> Result<(), OnnxError> {
    let lay = layout(node, args)?;
    let rank = lay.out.len();
    let mut operands = Vec::new();
    let mut consts = Vec::new();
    let mut inputs = Vec::new();
    let mut values = Vec::new();
    for a in args {
        match a {
            Arg::Runtime(v, _, _) => {
                operands.push(Operand::Input(inputs.len()));
                inputs.push(*v);
            }
            Arg::Const(dims, vals) => {
                let off = rank - dims.len();
                let follows = lay
                    .axis
                    .and_then(|o| o.checked_sub(off))
                    .filter(|&j| dims[j] == lay.out[j + off] && dims[j] > 1);
                operands.push(Operand::Const(consts.len()));
                consts.push(ConstOperand {
                    shape: dims.clone(),
                    follows,
                });
                values.push((dims.clone(), vals.clone()));
            }
        }
    }
    if inputs.is_empty() {
        return Err(node.err("no computed input (constants are folded)"));
    }
    let (free, frozen) = if lay.frozen {
        (Vec::new(), true)
    } else {
        (lay.free, false)
    };
    let e = Elementwise {
        f,
        operands,
        consts,
        free,
        axis: lay.axis,
        frozen,
    };
    let nout = lay.axis.map_or(1, |a| lay.out[a]);
    let v = ctx.add(node, Op::Elementwise(e), &inputs, Some(nout), lay.out)?;
    for (k, (dims, vals)) in values.into_iter().enumerate() {
        ctx.set(v, &Elementwise::const_name(k), &dims, vals)?;
    }
    Ok(())
}

/// `Expand` of a computed value: numpy broadcasting to a constant shape, as
/// an [`Elementwise`] sum with zeros of that shape (batch axis 1, so the
/// value keeps its batch). A neuron axis of size 1 stretched wider makes
/// the vertex immutable (the layout rule of every broadcast).
pub(crate) fn expand(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    let to = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant shape"))?
        .ints();
    if to.iter().any(|&d| d < 0) {
        return Err(node.err(format!("negative dimension in {to:?}")));
    }
    let to: Vec<usize> = to.iter().map(|&d| d as usize).collect();
    let out = graft_nn::broadcast_shape(&shape, &to)
        .ok_or_else(|| node.err(format!("cannot expand {shape:?} to {to:?}")))?;
    if out == shape {
        ctx.alias(node, Value::Runtime { v: x, shape });
        return Ok(());
    }
    if out.first() != shape.first() {
        return Err(node.err(format!(
            "expanding {shape:?} to {out:?} changes the batch axis"
        )));
    }
    let mut zeros = out.clone();
    zeros[0] = 1;
    let n: usize = zeros.iter().product();
    if n > 1 << 26 {
        return Err(node.err(format!("expanding to {out:?} is too large")));
    }
    let axis = ctx.neuron_axis(x);
    let args = [
        Arg::Runtime(x, shape, axis),
        Arg::Const(zeros, crate::tensor::Floats::new(vec![0.0; n])),
    ];
    general(ctx, node, Binary::Add, &args)
}

/// Export a unary or elementwise vertex as ONNX nodes writing `name`.
pub(crate) fn export(
    out: &mut Out,
    model: &Model,
    v: graft_core::VertexId,
    name: &str,
    ins: &[String],
    op: &Op,
) -> Result<(), OnnxError> {
    match op {
        Op::Unary { f: Unary::Silu, .. } => {
            let s = format!("{name}.sigmoid");
            out.node("Sigmoid", &s, &[&ins[0]], &s, vec![]);
            out.node("Mul", name, &[&ins[0], &s], name, vec![]);
        }
        Op::Unary { f: Unary::Mish, .. } => {
            // x · tanh(softplus(x)): Mish is opset 18 and later.
            let sp = format!("{name}.softplus");
            let th = format!("{name}.tanh");
            out.node("Softplus", &sp, &[&ins[0]], &sp, vec![]);
            out.node("Tanh", &th, &[&sp], &th, vec![]);
            out.node("Mul", name, &[&ins[0], &th], name, vec![]);
        }
        Op::Unary { f, .. } => out.node(f.onnx_name(), name, &[&ins[0]], name, vec![]),
        Op::Elementwise(e) => {
            let mut names = Vec::new();
            for o in &e.operands {
                names.push(match *o {
                    graft_nn::Operand::Input(k) => ins[k].clone(),
                    graft_nn::Operand::Const(k) => {
                        let p = Elementwise::const_name(k);
                        let t = model.param(v, &p)?;
                        let vals: Vec<f32> =
                            t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
                        let n = format!("{name}.{p}");
                        out.inits.push(encode_f32(&n, t.dims(), &vals));
                        n
                    }
                });
            }
            // ONNX's Min and Max are variadic, the others binary: a chain.
            // One operand left (an edge edit removed the others): the
            // identity.
            if names.len() == 1 {
                out.node("Identity", name, &[&names[0]], name, vec![]);
                return Ok(());
            }
            let mut acc = names[0].clone();
            for (k, y) in names.iter().enumerate().skip(1) {
                let o = if k + 1 == names.len() {
                    name.to_string()
                } else {
                    format!("{name}.{k}")
                };
                out.node(e.f.onnx_name(), &o, &[&acc, y], &o, vec![]);
                acc = o;
            }
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.to_string(),
                reason: format!("{} is not a pointwise op", other.name()),
            })
        }
    }
    Ok(())
}

/// An n-ary add, subtract or multiply as a chain of binary ONNX ops.
pub(crate) fn export_sum(
    out: &mut Out,
    name: &str,
    x: &str,
    ins: &[String],
    onnx_op: &str,
) -> Result<(), OnnxError> {
    // ONNX's elementwise ops are binary: a chain for more inputs.
    let mut acc = ins[0].clone();
    for (k, y) in ins.iter().enumerate().skip(1) {
        let o = if k + 1 == ins.len() {
            name.to_string()
        } else {
            format!("{name}.{k}")
        };
        out.node(onnx_op, &o, &[&acc, y], &o, vec![]);
        acc = o;
    }
    if ins.len() == 1 {
        out.node("Identity", name, &[x], name, vec![]);
    }
    Ok(())
}

/// Multiplication by a constant as `Mul`.
pub(crate) fn export_scale(
    out: &mut Out,
    name: &str,
    x: &str,
    factor: f64,
) -> Result<(), OnnxError> {
    let k = out.scalar(&format!("{name}.factor"), factor as f32);
    out.node("Mul", name, &[x, &k], name, vec![]);
    Ok(())
}
