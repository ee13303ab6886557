//! Gemm and MatMul with a constant weight (dense layers), and Gather of a
//! constant table by computed ids (embeddings): import, and the
//! embedding's export.

use std::collections::HashMap;

use graft_core::VertexId;
use graft_nn::Op;

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, Out};
use crate::import::{Ctx, Node};
use crate::tensor::Init;
use graft_nn::Model;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Gemm", gemm);
    r.insert("MatMul", matmul);
}

/// `[k, n]` row-major to `[n, k]`.
fn transpose(v: &[f32], k: usize, n: usize) -> Vec<f32> {
    graft_nn::files::transpose_f32(v, k, n)
}

fn gemm(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    if shape.len() != 2 {
        return Err(node.err(format!("input of rank {} (Gemm needs [N, F])", shape.len())));
    }
    if node.int("transA", 0) != 0 {
        return Err(node.err("transA = 1 is not supported"));
    }
    let b = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant weight B"))?;
    if b.dims.len() != 2 {
        return Err(node.err(format!("weight of shape {:?}", b.dims)));
    }
    let (alpha, beta) = (node.float("alpha", 1.0), node.float("beta", 1.0));
    let (out, inp, mut w) = if node.int("transB", 0) != 0 {
        (b.dims[0], b.dims[1], b.floats())
    } else {
        (
            b.dims[1],
            b.dims[0],
            crate::tensor::Floats::new(transpose(&b.floats(), b.dims[0], b.dims[1])),
        )
    };
    if inp != shape[1] {
        return Err(node.err(format!(
            "weight reads {inp} features, the input has {}",
            shape[1]
        )));
    }
    if alpha != 1.0 {
        w = crate::tensor::Floats::new(w.iter().map(|v| v * alpha).collect());
    }
    let bias: Option<Vec<f32>> = match ctx.constant(node, 2)? {
        None => None,
        Some(c) if c.len() == out => Some(c.floats().iter().map(|v| v * beta).collect()),
        Some(c) if c.len() == 1 => Some(vec![c.floats()[0] * beta; out]),
        Some(c) => return Err(node.err(format!("bias of shape {:?} for {out} outputs", c.dims))),
    };
    let op = Op::Dense {
        bias: bias.is_some(),
    };
    let v = ctx.add(node, op, &[x], Some(out), vec![shape[0], out])?;
    ctx.set(v, "weight", &[out, inp], w)?;
    if let Some(b) = bias {
        ctx.set(v, "bias", &[out], b)?;
    }
    Ok(())
}

/// `Gather(weight, ids)` with a constant 2-D weight, computed ids and axis
/// 0: an [`graft_nn::Embedding`] (token embeddings), the neurons on a new
/// last axis.
pub(crate) fn embedding(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let w = ctx
        .constant(node, 0)
        .ok()
        .flatten()
        .ok_or_else(|| node.err("gathering computed values by computed indices"))?;
    if w.dims.len() != 2 || node.int("axis", 0) != 0 {
        return Err(node.err(format!(
            "computed indices into a constant of shape {:?} on axis {}: a 2-D table on axis 0 (an embedding) only",
            w.dims,
            node.int("axis", 0)
        )));
    }
    let (ids, shape) = ctx.runtime(node, 1)?;
    let (vocab, out) = (w.dims[0], w.dims[1]);
    if vocab == 0 || out == 0 {
        return Err(node.err(format!("an empty table of shape {:?}", w.dims)));
    }
    let op = Op::Embedding(graft_nn::Embedding {
        vocab,
        axis: shape.len(),
    });
    let mut oshape = shape;
    oshape.push(out);
    let v = ctx.add(node, op, &[ids], Some(out), oshape)?;
    ctx.set(v, "weight", &[vocab, out], w.floats())?;
    Ok(())
}

/// Export an embedding: `Gather(weight, ids)`, the ids cast to int64 first
/// unless they are a graph input of an integer type (graft computes ids in
/// floats; ONNX gathers by integers).
pub(crate) fn export_embedding(
    out: &mut Out,
    model: &graft_nn::Model,
    v: VertexId,
    name: &str,
    ids: &str,
) -> Result<(), OnnxError> {
    let w = out.param(model, v, name, "weight")?;
    let from = model.graph().vertex(v)?.inputs().first().copied();
    let ids = if from.is_some_and(|u| out.int_inputs.contains(&u)) {
        ids.to_string()
    } else {
        let cast = format!("{name}.ids");
        out.node(
            "Cast",
            &cast,
            &[ids],
            &cast,
            vec![crate::export::attr_i("to", i64::from(crate::tensor::INT64))],
        );
        cast
    };
    out.node(
        "Gather",
        name,
        &[&w, &ids],
        name,
        vec![crate::export::attr_i("axis", 0)],
    );
    Ok(())
}

fn matmul(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    if ctx.constant(node, 1).is_err() {
        // Both operands computed (attention): the attention family.
        return super::attention::matmul(ctx, node);
    }
    let (x, shape) = ctx.runtime(node, 0)?;
    let b = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("only a constant right-hand side (a weight) is supported"))?;
    // A weight applied to the last axis of a higher-rank value (channels
    // last, token sequences): a dense layer on that axis.
    if shape.len() > 2 && b.dims.len() == 2 && shape.last() == Some(&b.dims[0]) {
        let last = shape.len() - 1;
        if ctx.neuron_axis(x) != Some(last) {
            return Err(node.err(format!(
                "a weight on axis {last} of {shape:?}, whose neurons are on axis {:?}",
                ctx.neuron_axis(x)
            )));
        }
        let (inp, out) = (b.dims[0], b.dims[1]);
        let op = Op::LinearLast(graft_nn::LinearLast {
            bias: false,
            axis: last,
        });
        let mut oshape = shape.clone();
        oshape[last] = out;
        let v = ctx.add(node, op, &[x], Some(out), oshape)?;
        // The layer holds the file's [in, out] matrix as it is.
        ctx.set(v, "weight", &[inp, out], b.floats())?;
        return Ok(());
    }
    if shape.len() != 2 || b.dims.len() != 2 || b.dims[0] != shape[1] {
        return Err(node.err(format!(
            "[N, F] times [F, out] needed, got {shape:?} and {:?}",
            b.dims
        )));
    }
    let (inp, out) = (b.dims[0], b.dims[1]);
    let v = ctx.add(
        node,
        Op::Dense { bias: false },
        &[x],
        Some(out),
        vec![shape[0], out],
    )?;
    ctx.set_transposed(v, "weight", &[out, inp], b.floats())?;
    Ok(())
}

/// A dense layer as `Gemm` (weight `[out, in]`, `transB`).
pub(crate) fn export_dense(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    bias: bool,
) -> Result<(), OnnxError> {
    let p = out.weight_bias(model, v, name, bias)?;
    let i: Vec<&str> = std::iter::once(x)
        .chain(p.iter().map(String::as_str))
        .collect();
    out.node("Gemm", name, &i, name, vec![attr_i("transB", 1)]);
    Ok(())
}

/// A masked dense layer as `Gemm` of its masked weight (ONNX has no mask).
pub(crate) fn export_masked_dense(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    learnable: bool,
    bias: bool,
) -> Result<(), OnnxError> {
    // ONNX has no mask: the masked weight is written (a learnable mask is
    // its logits' sign).
    let mask = if learnable {
        let l = model.param(v, "mask_logits")?;
        l.gt(0.0)?.to_dtype(l.dtype())?
    } else {
        model.param(v, "mask")?
    };
    let w = model.param(v, "weight")?.mul(&mask)?;
    let wn = format!("{name}.weight");
    out.inits.push(Init::tensor(&wn, &w));
    let mut i = vec![x, wn.as_str()];
    let b;
    if bias {
        b = out.param(model, v, name, "bias")?;
        i.push(&b);
    }
    out.node("Gemm", name, &i, name, vec![attr_i("transB", 1)]);
    Ok(())
}

/// A dense layer on the last axis as `MatMul` (and `Add` of the bias).
pub(crate) fn export_linear_last(
    out: &mut Out,
    model: &Model,
    v: VertexId,
    name: &str,
    x: &str,
    l: &graft_nn::LinearLast,
) -> Result<(), OnnxError> {
    // MatMul by the weight ([in, out], as the layer holds it),
    // then the bias.
    let wn = out.param(model, v, name, "weight")?;
    if l.bias {
        let mm = format!("{name}.matmul");
        out.node("MatMul", &mm, &[x, &wn], &mm, vec![]);
        let b = out.param(model, v, name, "bias")?;
        out.node("Add", name, &[&mm, &b], name, vec![]);
    } else {
        out.node("MatMul", name, &[x, &wn], name, vec![]);
    }
    Ok(())
}
