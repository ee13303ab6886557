//! The axes family in ONNX: reductions (ReduceMean, ReduceSum, ReduceMax,
//! ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
//! ReduceLogSumExp) on computed values, channel shuffles (a Reshape that
//! splits the neuron axis into groups, a Transpose of the two, a Reshape
//! back: read as one [`graft_nn::Shuffle`]), and the export of graft's
//! transposes, views, shuffles and reductions. Transposes, squeezes and unsqueezes
//! are read lazily as views (`view.rs`) and become vertices when a
//! computing op reads them (`Ctx::runtime`). Graft's side is `graft_nn`'s
//! `layers/axes.rs`.

use std::collections::HashMap;

use graft_nn::{Op, Reduce, Reducer, Shuffle, ViewDim};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_i, attr_ints, Out};
use crate::import::{Ctx, Node, Value};
use crate::tensor::encode_i64;

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("ReduceMean", |c, n| reduce(c, n, Reducer::Mean));
    r.insert("ReduceSum", |c, n| reduce(c, n, Reducer::Sum));
    r.insert("ReduceMax", |c, n| reduce(c, n, Reducer::Max));
    r.insert("ReduceMin", |c, n| reduce(c, n, Reducer::Min));
    r.insert("ReduceProd", |c, n| reduce(c, n, Reducer::Prod));
    r.insert("ReduceL1", |c, n| reduce(c, n, Reducer::L1));
    r.insert("ReduceL2", |c, n| reduce(c, n, Reducer::L2));
    r.insert("ReduceSumSquare", |c, n| reduce(c, n, Reducer::SumSquare));
    r.insert("ReduceLogSumExp", |c, n| reduce(c, n, Reducer::LogSumExp));
}

fn reduce(ctx: &mut Ctx, node: &Node, f: Reducer) -> Result<(), OnnxError> {
    let name = node.input(0)?;
    let val = ctx.get(node, name)?;
    let onnx_rank = match &val {
        Value::Runtime { shape, .. } => shape.len(),
        Value::View { order, .. } => order.len(),
        Value::Const(_) | Value::Test { .. } | Value::Flat { .. } => {
            return Err(node.err("reduces a value graft does not compute"))
        }
    };
    let given = match node.ints("axes") {
        Some(a) => Some(a),
        None => ctx.constant(node, 1)?.map(|c| c.ints()),
    };
    let mut axes: Vec<usize> = match given {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&x| {
                let r = onnx_rank as i64;
                let y = if x < 0 { x + r } else { x };
                if (0..r).contains(&y) {
                    Ok(y as usize)
                } else {
                    Err(node.err(format!("axis {x} out of range for rank {r}")))
                }
            })
            .collect::<Result<_, _>>()?,
        _ if node.int("noop_with_empty_axes", 0) != 0 => {
            ctx.alias(node, val);
            return Ok(());
        }
        _ => (0..onnx_rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    if axes.contains(&0) {
        return Err(node.err("a reduction over the batch axis is not supported"));
    }
    let keepdims = node.int("keepdims", 1) != 0;
    // A mean over every spatial axis of [N, C, ...] is graft's global
    // average pool (as before, so older files read back the same); with
    // keepdims the unit axes are a view.
    if let Value::Runtime { v, shape } = &val {
        let spatial: Vec<usize> = (2..onnx_rank).collect();
        if f == Reducer::Mean && onnx_rank >= 3 && axes == spatial && ctx.neuron_axis(*v) == Some(1)
        {
            let w = ctx.add(
                node,
                Op::GlobalAvgPool,
                &[*v],
                None,
                vec![shape[0], shape[1]],
            )?;
            if keepdims {
                let mut order = vec![Some(0), Some(1)];
                order.extend(std::iter::repeat_n(None, onnx_rank - 2));
                ctx.alias(node, Value::from_view(w, vec![shape[0], shape[1]], order));
            }
            return Ok(());
        }
    }
    let (x, shape) = ctx.runtime(node, 0)?;
    let r = Reduce {
        f,
        axes: axes.clone(),
        keepdims,
        from: ctx.neuron_axis(x),
    };
    let out: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    ctx.add(node, Op::Reduce(r), &[x], None, out)?;
    Ok(())
}

/// Candidate channel shuffles: for each Reshape C reading a Transpose B
/// reading a Reshape A, where A's output is read only by B and B's only by
/// C, the indices `(c, [a, b])`. A and B are imported only if C turns out
/// not to be a shuffle ([`shuffle`] decides on the shapes).
pub(crate) fn shuffle_chains(
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
        let Some(&b) = n.input.first().and_then(|x| producer.get(x.as_str())) else {
            continue;
        };
        if op(b) != "Transpose" || !single(&n.input[0]) {
            continue;
        }
        let Some(&a) = nodes[b]
            .input
            .first()
            .and_then(|x| producer.get(x.as_str()))
        else {
            continue;
        };
        // A node ends at most one chain or starts one: in a run of
        // Reshape-Transpose-Reshape-Transpose-Reshape (attention heads
        // split and merged) the first chain is the candidate.
        if op(a) == "Reshape"
            && single(&nodes[b].input[0])
            && nodes[a].output.len() == 1
            && !chains.contains_key(&a)
        {
            chains.insert(c, [a, b]);
        }
    }
    chains
}

/// A Reshape target with 0 (copy) and -1 (infer) resolved against `from`.
fn resolved_target(ctx: &Ctx, node: &Node, from: &[usize]) -> Option<Vec<usize>> {
    let mut dims = super::view::reshape_target(ctx, node, from).ok()?;
    let total = from.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    if let Some(p) = dims.iter().position(|&d| d == -1) {
        let known: i64 = dims.iter().filter(|&&d| d != -1).product();
        if known <= 0 || total as i64 % known != 0 {
            return None;
        }
        dims[p] = total as i64 / known;
    }
    dims.iter().map(|&d| usize::try_from(d).ok()).collect()
}

/// Read Reshape `a`, Transpose `b`, Reshape `c` as one channel shuffle when
/// they are one: `a` splits the neuron axis into `[groups, width]` (and may
/// regroup the axes after it), `b` swaps those two axes and nothing else,
/// `c` restores the input's shape.
/// False (nothing imported) when they are something else.
pub(crate) fn shuffle(ctx: &mut Ctx, a: &Node, b: &Node, c: &Node) -> Result<bool, OnnxError> {
    let Some(Value::Runtime { v, shape: s }) = ctx.values.get(a.input(0)?).cloned() else {
        return Ok(false);
    };
    let Some(axis) = ctx.neuron_axis(v).filter(|&x| x >= 1 && x < s.len()) else {
        return Ok(false);
    };
    let Some(split) = resolved_target(ctx, a, &s) else {
        return Ok(false);
    };
    let (groups, width) = match split.get(axis..axis + 2) {
        Some(&[g, w]) => (g, w),
        _ => return Ok(false),
    };
    // The axes after the neurons may be regrouped (graft writes them
    // flattened), as long as they hold the same elements.
    let same_rest =
        split[axis + 2..].iter().product::<usize>() == s[axis + 1..].iter().product::<usize>();
    if split[..axis] != s[..axis] || groups * width != s[axis] || groups < 2 || !same_rest {
        return Ok(false);
    }
    let mut swap: Vec<i64> = (0..split.len() as i64).collect();
    swap.swap(axis, axis + 1);
    if b.ints("perm") != Some(swap) {
        return Ok(false);
    }
    let mut swapped = split.clone();
    swapped.swap(axis, axis + 1);
    if resolved_target(ctx, c, &swapped).as_deref() != Some(&s[..]) {
        return Ok(false);
    }
    ctx.add(c, Op::Shuffle(Shuffle { groups, axis }), &[v], None, s)?;
    Ok(true)
}

/// A Reshape-Transpose-Reshape chain that folds the leading axes into the
/// batch axis, transposes the others and unfolds them again (PyTorch's
/// batched product of a transposed 4-D value: `k.transpose(-2, -1)` as
/// `[B, H, N, D]` to `[B·H, N, D]`, transposed, back to `[B, H, D, N]`):
/// one transpose of the first reshape's input, bound to the last's output.
/// False when the chain is not one.
pub(crate) fn folded_transpose(
    ctx: &mut Ctx,
    a: &Node,
    b: &Node,
    c: &Node,
) -> Result<bool, OnnxError> {
    let Some((v, shape, order)) = ctx.values.get(a.input(0)?).and_then(Value::view) else {
        return Ok(false);
    };
    let s = Value::onnx_dims(&shape, &order);
    let Some(folded) = resolved_target(ctx, a, &s) else {
        return Ok(false);
    };
    let r = folded.len();
    if r < 2 || s.len() <= r {
        return Ok(false);
    }
    let k = s.len() - r + 1;
    if folded[1..] != s[k..] || folded[0] != s[..k].iter().product::<usize>() {
        return Ok(false);
    }
    let Some(perm) = b.ints("perm") else {
        return Ok(false);
    };
    let mut seen = vec![false; r];
    let valid = perm.len() == r
        && perm.first() == Some(&0)
        && perm.iter().all(|&p| {
            let fresh = (0..r as i64).contains(&p) && !seen[p as usize];
            if fresh {
                seen[p as usize] = true;
            }
            fresh
        });
    if !valid {
        return Ok(false);
    }
    let transposed: Vec<usize> = perm.iter().map(|&p| folded[p as usize]).collect();
    let mut unfolded = s[..k].to_vec();
    unfolded.extend(&transposed[1..]);
    if resolved_target(ctx, c, &transposed).as_deref() != Some(&unfolded[..]) {
        return Ok(false);
    }
    let full = (0..k).chain(perm[1..].iter().map(|&p| p as usize + k - 1));
    let new: Vec<Option<usize>> = full.map(|p| order[p]).collect();
    ctx.alias(c, Value::from_view(v, shape, new));
    Ok(true)
}

/// The opset whose reductions take their axes as an input rather than an
/// attribute (ReduceSum from 13, the others from 18).
fn axes_as_input(f: Reducer, opset: i64) -> bool {
    opset >= 18 || (f == Reducer::Sum && opset >= 13)
}

/// Export a transpose, view or reduction as ONNX nodes writing `name`.
pub(crate) fn export(
    out: &mut Out,
    name: &str,
    x: &str,
    op: &Op,
    nout: usize,
    opset: i64,
) -> Result<(), OnnxError> {
    match op {
        Op::Transpose(t) => {
            let perm = t.perm.iter().map(|&p| p as i64).collect();
            out.node("Transpose", name, &[x], name, vec![attr_ints("perm", perm)]);
        }
        Op::View(v) => {
            // 0 copies the batch axis.
            let mut dims = vec![0i64];
            dims.extend(v.dims.iter().map(|d| match d {
                ViewDim::Fixed(n) => *n as i64,
                ViewDim::Neurons => nout as i64,
            }));
            let s = format!("{name}.shape");
            out.inits.push(encode_i64(&s, &[dims.len()], &dims));
            out.node("Reshape", name, &[x, &s], name, vec![]);
        }
        Op::Shuffle(sh) => {
            // Split the neuron axis into [groups, width] (0 copies the axes
            // before it, -1 takes the rest), swap the two, then reshape
            // back to the input's own shape.
            let mut split = vec![0i64; sh.axis];
            split.extend([sh.groups as i64, (nout / sh.groups.max(1)) as i64, -1]);
            let mut perm: Vec<i64> = (0..split.len() as i64).collect();
            perm.swap(sh.axis, sh.axis + 1);
            let (to, shape) = (format!("{name}.split"), format!("{name}.shape"));
            let (grouped, swapped) = (format!("{name}.grouped"), format!("{name}.swapped"));
            out.inits.push(encode_i64(&to, &[split.len()], &split));
            out.node("Shape", &shape, &[x], &shape, vec![]);
            out.node("Reshape", &grouped, &[x, &to], &grouped, vec![]);
            out.node(
                "Transpose",
                &swapped,
                &[&grouped],
                &swapped,
                vec![attr_ints("perm", perm)],
            );
            out.node("Reshape", name, &[&swapped, &shape], name, vec![]);
        }
        Op::Reduce(r) => {
            let axes: Vec<i64> = r.axes.iter().map(|&a| a as i64).collect();
            let keep = attr_i("keepdims", i64::from(r.keepdims));
            if axes_as_input(r.f, opset) {
                let a = format!("{name}.axes");
                out.inits.push(encode_i64(&a, &[axes.len()], &axes));
                out.node(r.f.onnx_name(), name, &[x, &a], name, vec![keep]);
            } else {
                out.node(
                    r.f.onnx_name(),
                    name,
                    &[x],
                    name,
                    vec![attr_ints("axes", axes), keep],
                );
            }
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.to_string(),
                reason: format!("{} is not an axes op", other.name()),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::NodeProto;

    fn node(op: &str, input: &str, output: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(output.into()),
            input: vec![input.into()],
            output: vec![output.into()],
            ..Default::default()
        }
    }

    #[test]
    fn a_reshape_ends_one_candidate_chain_without_starting_another() {
        // x -> R1 -> T1 -> R2 -> T2 -> R3 (heads split, moved and merged):
        // R2 ends the chain (R1, T1); R3's chain would start at R2, which
        // would then never be imported, so it is not a candidate.
        let nodes = vec![
            node("Reshape", "x", "r1"),
            node("Transpose", "r1", "t1"),
            node("Reshape", "t1", "r2"),
            node("Transpose", "r2", "t2"),
            node("Reshape", "t2", "r3"),
        ];
        let uses: HashMap<String, usize> = ["x", "r1", "t1", "r2", "t2", "r3"]
            .iter()
            .map(|n| (n.to_string(), 1))
            .collect();
        let chains = shuffle_chains(&nodes, &uses);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains.get(&2), Some(&[0, 1]));
    }
}
