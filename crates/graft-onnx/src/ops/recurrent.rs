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
use crate::import::{Ctx, Node, Value};

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
