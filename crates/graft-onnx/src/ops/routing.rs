//! The routing family in ONNX: `TopK` of a computed value (graft's
//! [`TopK`], one vertex per output: the values and the indices) and
//! `GatherND` of a constant table by computed indices (graft's
//! [`GatherRows`]), import and export side by side. A mixture of experts
//! exported with its experts as stacked tables routes with them (Mixtral:
//! the router's softmax, its top 2 experts per token, their weight
//! matrices gathered and multiplied). A gather whose indices a top-k chose
//! among a router's experts gets the router as a second input, so the
//! table's rows follow the experts. A gather whose only reader is a
//! `MatMul` of the gathered matrices by tokens is read with it as one op,
//! graft's [`RoutedLinear`] (an expert's projection), so the experts' own
//! width is neurons like any dense layer's. Graft's side is `graft_nn`'s
//! `layers/routing.rs`.

use std::collections::HashMap;

use graft_core::VertexId;
use graft_nn::{GatherRows, Op, RoutedLinear, TopK};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, Out};
use crate::import::{Ctx, Node, Value};
use crate::proto::NodeProto;
use crate::tensor::{encode_i64, INT64};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("TopK", top_k);
    r.insert("GatherND", gather_nd);
}

fn top_k(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, s) = ctx.runtime(node, 0)?;
    let k = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs a constant K"))?
        .ints();
    let k = match k.as_slice() {
        [k] if *k > 0 => *k as usize,
        _ => return Err(node.err(format!("K {k:?}: one positive number needed"))),
    };
    let rank = s.len();
    let axis = node.int("axis", -1);
    let last = if axis < 0 { axis + rank as i64 } else { axis };
    if rank < 2 || last != rank as i64 - 1 {
        return Err(node.err(format!(
            "axis {axis} of rank {rank}: graft takes the top-k of the last axis (not the batch axis)"
        )));
    }
    if s[rank - 1] < k {
        return Err(node.err(format!("K {k} of {} entries", s[rank - 1])));
    }
    let largest = node.int("largest", 1) != 0;
    let mut shape = s.clone();
    shape[rank - 1] = k;
    for (j, out) in node.proto.output.iter().enumerate().take(2) {
        // An output nothing reads (graft writes both outputs of each of its
        // top-k vertices) gets no vertex.
        if out.is_empty() || ctx.uses.get(out).copied().unwrap_or(0) == 0 {
            continue;
        }
        let op = Op::TopK(TopK {
            k,
            largest,
            indices: j == 1,
        });
        let name = ctx.fresh_name(out);
        let v = ctx.model.add(&name, op, &[x], Some(1))?;
        ctx.values.insert(
            out.clone(),
            Value::Runtime {
                v,
                shape: shape.clone(),
            },
        );
    }
    Ok(())
}

fn gather_nd(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let table = ctx.constant(node, 0)?.ok_or_else(|| {
        node.err("gathers from a computed value: graft gathers rows of constant tables")
    })?;
    let (ids, s) = ctx.runtime(node, 1)?;
    if node.int("batch_dims", 0) != 0 || s.last() != Some(&1) || table.dims.is_empty() {
        return Err(node.err(format!(
            "indices of shape {s:?} into a table of shape {:?}: graft gathers whole rows (indices ending in an axis of 1, batch_dims 0)",
            table.dims
        )));
    }
    let mut out = s[..s.len() - 1].to_vec();
    out.extend(&table.dims[1..]);
    // Indices a top-k chose among as many neurons as the table has rows
    // (a router's experts): the rows follow those neurons.
    let router = chosen_among(ctx, ids)
        .filter(|&r| ctx.model.graph().nout(r).ok() == table.dims.first().copied());
    let op = Op::GatherRows(GatherRows {
        table: table.dims.clone(),
        rows_from: router.is_some(),
    });
    let inputs: Vec<VertexId> = std::iter::once(ids).chain(router).collect();
    let v = ctx.add(node, op, &inputs, Some(1), out)?;
    ctx.set(v, "table", &table.dims, table.floats())?;
    Ok(())
}

/// `GatherND` nodes whose only reader is a `MatMul` taking the gathered
/// matrices as its left operand (an expert's projection): keyed by the
/// `MatMul`'s position, the gather's as the value. The gather waits for
/// the product, which [`routed_linear`] reads with it.
pub(crate) fn routed_chains(
    nodes: &[crate::proto::NodeProto],
    uses: &HashMap<String, usize>,
) -> HashMap<usize, usize> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    let op = |i: usize| nodes[i].op_type.as_deref().unwrap_or_default();
    let mut chains = HashMap::new();
    for (m, n) in nodes.iter().enumerate() {
        if op(m) != "MatMul" {
            continue;
        }
        let Some(a) = n.input.first() else {
            continue;
        };
        if let Some(&gi) = producer.get(a.as_str()) {
            if op(gi) == "GatherND" && gi < m && uses.get(a.as_str()).copied() == Some(1) {
                chains.insert(m, gi);
            }
        }
    }
    chains
}

/// Read a `GatherND` of a constant table `[E, nout, nin]` by ids
/// (`[.., 1]`) and the `MatMul` of the gathered matrices by tokens
/// (`[.., nin, c]`, their neurons on the `nin` axis) as one
/// [`RoutedLinear`]. False when the pair is not one (the caller imports
/// both nodes as they are).
pub(crate) fn routed_linear(
    ctx: &mut Ctx,
    gather: &Node,
    matmul: &Node,
) -> Result<bool, OnnxError> {
    let Ok(Some(table)) = ctx.constant(gather, 0) else {
        return Ok(false);
    };
    if table.dims.len() != 3 || gather.int("batch_dims", 0) != 0 {
        return Ok(false);
    }
    // Constant ids or tokens: not an expert's projection (the nodes fold
    // or fail on their own).
    let Ok((ids, s)) = ctx.runtime(gather, 1) else {
        return Ok(false);
    };
    let Some((1, lead)) = s.split_last() else {
        return Ok(false);
    };
    let lead = lead.to_vec();
    let Ok((x, sx)) = ctx.runtime(matmul, 1) else {
        return Ok(false);
    };
    let (experts, nout, nin) = (table.dims[0], table.dims[1], table.dims[2]);
    let fits = sx.len() == lead.len() + 2
        && sx[..lead.len()] == lead[..]
        && sx[lead.len()] == nin
        && ctx.neuron_axis(x) == Some(lead.len());
    if !fits {
        return Ok(false);
    }
    let router =
        chosen_among(ctx, ids).filter(|&r| ctx.model.graph().nout(r).ok() == Some(experts));
    let op = Op::RoutedLinear(RoutedLinear {
        experts,
        rows_from: router.is_some(),
        rank: sx.len(),
    });
    let mut out = lead;
    out.extend([nout, sx[sx.len() - 1]]);
    let inputs: Vec<VertexId> = [ids, x].into_iter().chain(router).collect();
    let v = ctx.add(matmul, op, &inputs, Some(nout), out)?;
    ctx.set(v, "table", &table.dims, table.floats())?;
    Ok(true)
}

/// The value a top-k chose the indices `v` among, when `v` is a top-k's
/// indices passed on by reshapes and transposes.
fn chosen_among(ctx: &Ctx, mut v: VertexId) -> Option<VertexId> {
    let m = &ctx.model;
    loop {
        let first = m.graph().vertex(v).ok()?.inputs().first().copied();
        match m.layer(v).map(|l| &l.op)? {
            Op::TopK(t) if t.indices => return first,
            Op::Regroup(_) | Op::View(_) | Op::Transpose(_) | Op::Identity => v = first?,
            _ => return None,
        }
    }
}

/// Export a top-k, a gather of rows or an expert's projection as ONNX
/// nodes writing `name`, reading `ins`.
pub(crate) fn export(
    out: &mut Out,
    model: &graft_nn::Model,
    v: VertexId,
    name: &str,
    ins: &[String],
    op: &Op,
) -> Result<(), OnnxError> {
    let x = ins.first().map_or("", String::as_str);
    match op {
        Op::TopK(t) => {
            let k = format!("{name}.k");
            out.inits.push(encode_i64(&k, &[1], &[t.k as i64]));
            // Both outputs are written; the one this vertex is not is left
            // unread.
            let (values, indices) = if t.indices {
                (format!("{name}.values"), format!("{name}.i64"))
            } else {
                (name.to_string(), format!("{name}.indices"))
            };
            out.nodes.push(NodeProto {
                op_type: Some("TopK".into()),
                name: Some(format!("{name}.topk")),
                input: vec![x.to_string(), k],
                output: vec![values, indices.clone()],
                attribute: vec![
                    attr_i("axis", -1),
                    attr_i("largest", i64::from(t.largest)),
                    attr_i("sorted", 1),
                ],
                ..Default::default()
            });
            if t.indices {
                out.node(
                    "Cast",
                    name,
                    &[&indices],
                    name,
                    vec![attr_i("to", i64::from(crate::tensor::FLOAT))],
                );
            }
        }
        Op::GatherRows(_) => {
            let table = out.param(model, v, name, "table")?;
            let ids = int_ids(out, name, x);
            out.node("GatherND", name, &[&table, &ids], name, Vec::new());
        }
        Op::RoutedLinear(_) => {
            let table = out.param(model, v, name, "table")?;
            let tokens = ins.get(1).ok_or_else(|| OnnxError::Export {
                vertex: name.into(),
                reason: "an expert's projection without its tokens".into(),
            })?;
            let ids = int_ids(out, name, x);
            let rows = format!("{name}.rows");
            out.node("GatherND", &rows, &[&table, &ids], &rows, Vec::new());
            out.node("MatMul", name, &[&rows, tokens], name, Vec::new());
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.into(),
                reason: format!("{} is not of the routing family", other.name()),
            })
        }
    }
    Ok(())
}

/// graft's float row ids `x` cast to ONNX's int64 indices, as `NAME.ids`.
fn int_ids(out: &mut Out, name: &str, x: &str) -> String {
    let ids = format!("{name}.ids");
    out.node(
        "Cast",
        &ids,
        &[x],
        &ids,
        vec![attr_i("to", i64::from(INT64))],
    );
    ids
}
