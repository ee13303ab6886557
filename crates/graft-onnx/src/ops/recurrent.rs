//! LSTM, GRU and RNN (forward direction, default activations, zero or
//! absent initial state, no sequence lengths). ONNX's input is `[T, N, F]`
//! (layout 0) or `[N, T, F]` (layout 1), seen as a view of a graft
//! sequence `[N, F, T]`; the output `Y` becomes a view of a graft
//! `Recurrent` vertex with `sequences`, or `Y_h` the last state. Gate blocks
//! are reordered to PyTorch's order (graft's): LSTM i,o,f,c to i,f,g,o;
//! GRU z,r,h to r,z,n (only `linear_before_reset = 1`, PyTorch's GRU).

use std::collections::HashMap;

use graft_nn::{Cell, Op};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, attr_ints, Out};
use crate::import::{Ctx, Node, Value};
use crate::proto::NodeProto;
use crate::tensor::{encode_f32, encode_i64};
use graft_nn::Model;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("LSTM", |c, n| recurrent(c, n, Cell::Lstm));
    r.insert("GRU", |c, n| recurrent(c, n, Cell::Gru));
    r.insert("RNN", |c, n| recurrent(c, n, Cell::Rnn));
}

/// ONNX gate block `order[k]` becomes graft's block `k`.
fn reorder(vals: &[f32], gates: usize, order: &[usize]) -> Vec<f32> {
    let block = vals.len() / gates;
    order
        .iter()
        .flat_map(|&b| vals[b * block..(b + 1) * block].iter().copied())
        .collect()
}

fn recurrent(ctx: &mut Ctx, node: &Node, cell: Cell) -> Result<(), OnnxError> {
    let gates = cell.gates();
    let order: Vec<usize> = match cell {
        Cell::Lstm => vec![0, 2, 3, 1],
        Cell::Gru => vec![1, 0, 2],
        Cell::Rnn => vec![0],
    };
    if node.string("direction").is_some_and(|d| d != "forward") {
        return Err(node.err("only the forward direction is supported"));
    }
    if node.ints("activations").is_some()
        || node.string("activations").is_some()
        || node.float("clip", 0.0) != 0.0
    {
        return Err(node.err("only the default activations, without clipping"));
    }
    if cell == Cell::Gru && node.int("linear_before_reset", 0) != 1 {
        return Err(node.err("only linear_before_reset = 1 (PyTorch's GRU)"));
    }
    if cell == Cell::Lstm && node.int("input_forget", 0) != 0 {
        return Err(node.err("input_forget is not supported"));
    }
    if node.inputs().get(4).is_some_and(|s| !s.is_empty()) {
        return Err(node.err("sequence lengths are not supported"));
    }
    for k in [5, 6] {
        if let Some(c) = ctx.constant(node, k)? {
            if c.floats().iter().any(|&x| x != 0.0) {
                return Err(node.err("only a zero initial state is supported"));
            }
        }
    }
    if cell == Cell::Lstm && node.inputs().get(7).is_some_and(|s| !s.is_empty()) {
        return Err(node.err("peephole weights are not supported"));
    }
    let layout = node.int("layout", 0);
    let x = ctx.get(node, node.input(0)?)?;
    let (v, shape, xorder) = x
        .view()
        .ok_or_else(|| node.err("the input must be computed"))?;
    // The graft value must be a sequence [N, F, T] seen as [T, N, F]
    // (layout 0) or [N, T, F] (layout 1).
    let want = if layout == 0 {
        vec![Some(2), Some(0), Some(1)]
    } else {
        vec![Some(0), Some(2), Some(1)]
    };
    if shape.len() != 3 || xorder != want {
        return Err(node.err(format!(
            "the input must be a graft sequence [N, F, T] transposed to ONNX's layout {layout}"
        )));
    }
    let w = ctx
        .constant(node, 1)?
        .ok_or_else(|| node.err("needs constant W"))?;
    let r = ctx
        .constant(node, 2)?
        .ok_or_else(|| node.err("needs constant R"))?;
    let hidden = usize::try_from(node.int("hidden_size", 0)).unwrap_or(0);
    let f = shape[1];
    let rows = gates.checked_mul(hidden).unwrap_or(0);
    if w.dims != [1, rows, f] || r.dims != [1, rows, hidden] || hidden == 0 {
        return Err(node.err(format!(
            "W {:?} and R {:?} do not fit {gates} gates of {hidden} units over {f} features",
            w.dims, r.dims
        )));
    }
    let b = match ctx.constant(node, 3)? {
        Some(b) if b.dims == [1, 2 * gates * hidden] => b.floats().to_vec(),
        Some(b) => return Err(node.err(format!("B of shape {:?}", b.dims))),
        None => vec![0.0; 2 * gates * hidden],
    };
    let outs = &node.proto.output;
    let used: Vec<bool> = (0..3)
        .map(|k| {
            outs.get(k)
                .is_some_and(|s| !s.is_empty() && ctx.uses.get(s).copied().unwrap_or(0) > 0)
        })
        .collect();
    let sequences = used[0];
    if sequences && used[1] || used[2] {
        return Err(node.err("only one of Y and Y_h may be used (and not Y_c)"));
    }
    let name = ctx.vertex_name(node);
    let vx = ctx
        .model
        .add(&name, Op::Recurrent { cell, sequences }, &[v], Some(hidden))?;
    let gh = gates * hidden;
    ctx.set(
        vx,
        "weight_ih",
        &[gh, f],
        reorder(&w.floats(), gates, &order),
    )?;
    ctx.set(
        vx,
        "weight_hh",
        &[gh, hidden],
        reorder(&r.floats(), gates, &order),
    )?;
    ctx.set(vx, "bias_ih", &[gh], reorder(&b[..gh], gates, &order))?;
    ctx.set(vx, "bias_hh", &[gh], reorder(&b[gh..], gates, &order))?;
    let n = shape[0];
    if sequences {
        // Y: [T, 1, N, H] (layout 0) or [N, T, 1, H] (layout 1) over graft
        // [N, H, T].
        let y_order = if layout == 0 {
            vec![Some(2), None, Some(0), Some(1)]
        } else {
            vec![Some(0), Some(2), None, Some(1)]
        };
        ctx.values.insert(
            outs[0].clone(),
            Value::from_view(vx, vec![n, hidden, shape[2]], y_order),
        );
    } else if used[1] {
        // Y_h: [1, N, H] (layout 0) or [N, 1, H] (layout 1) over graft [N, H].
        let h_order = if layout == 0 {
            vec![None, Some(0), Some(1)]
        } else {
            vec![Some(0), None, Some(1)]
        };
        ctx.values.insert(
            outs[1].clone(),
            Value::from_view(vx, vec![n, hidden], h_order),
        );
    }
    Ok(())
}

/// A recurrent layer as ONNX's LSTM/GRU/RNN (layout 0, forward):
/// `[N, F, T]` is transposed to `[T, N, F]`, and the output `Y` back to
/// `[N, H, T]` (or `Y_h` squeezed to `[N, H]`). Gate blocks are reordered
/// from PyTorch's order (graft's) to ONNX's: LSTM i,f,g,o to i,o,f,c; GRU
/// r,z,n to z,r,h (with `linear_before_reset`, PyTorch's GRU).
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    out: &mut Out,
    model: &Model,
    v: graft_core::VertexId,
    name: &str,
    x: &str,
    cell: graft_nn::Cell,
    sequences: bool,
    hidden: usize,
) -> Result<(), OnnxError> {
    use graft_nn::Cell;
    let (op, order): (&str, Vec<usize>) = match cell {
        Cell::Lstm => ("LSTM", vec![0, 3, 1, 2]),
        Cell::Gru => ("GRU", vec![1, 0, 2]),
        Cell::Rnn => ("RNN", vec![0]),
    };
    let reorder = |t: graft_nn::Tensor| -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let dims = t.dims().to_vec();
        let rows = dims[0] / order.len();
        let cols: usize = dims[1..].iter().product();
        let vals: Vec<f32> = t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
        let mut outv = Vec::with_capacity(vals.len());
        for &b in &order {
            outv.extend_from_slice(&vals[b * rows * cols..(b + 1) * rows * cols]);
        }
        let mut d = vec![1];
        d.extend(dims);
        Ok((d, outv))
    };
    let (wd, w) = reorder(model.param(v, "weight_ih")?)?;
    let (rd, r) = reorder(model.param(v, "weight_hh")?)?;
    let (_, bi) = reorder(model.param(v, "bias_ih")?)?;
    let (_, bh) = reorder(model.param(v, "bias_hh")?)?;
    let (wn, rn, bn) = (
        format!("{name}.W"),
        format!("{name}.R"),
        format!("{name}.B"),
    );
    out.inits.push(encode_f32(&wn, &wd, &w));
    out.inits.push(encode_f32(&rn, &rd, &r));
    let mut b = bi;
    b.extend(bh);
    out.inits.push(encode_f32(&bn, &[1, b.len()], &b));
    let xt = format!("{name}.X");
    out.node(
        "Transpose",
        &xt,
        &[x],
        &xt,
        vec![attr_ints("perm", vec![2, 0, 1])],
    );
    let mut attrs = vec![attr_i("hidden_size", hidden as i64)];
    if cell == Cell::Gru {
        attrs.push(attr_i("linear_before_reset", 1));
    }
    let (y, yh) = (format!("{name}.Y"), format!("{name}.Y_h"));
    out.nodes.push(NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: vec![xt, wn, rn, bn],
        output: vec![y.clone(), yh.clone()],
        attribute: attrs,
        ..Default::default()
    });
    let axes = |n: &str, a: i64, out: &mut Out| -> String {
        out.inits.push(encode_i64(n, &[1], &[a]));
        n.to_string()
    };
    if sequences {
        let a = axes(&format!("{name}.axes"), 1, out);
        let sq = format!("{name}.Ysq");
        out.node("Squeeze", &sq, &[&y, &a], &sq, vec![]);
        out.node(
            "Transpose",
            &format!("{name}.out"),
            &[&sq],
            name,
            vec![attr_ints("perm", vec![1, 2, 0])],
        );
    } else {
        let a = axes(&format!("{name}.axes"), 0, out);
        out.node("Squeeze", &format!("{name}.out"), &[&yh, &a], name, vec![]);
    }
    Ok(())
}
