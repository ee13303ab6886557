//! The attention family in ONNX: `MatMul` of two computed values and the
//! batched-product `Einsum` equations (graft's [`MatMul`]), constants
//! joined to computed values (a class token: graft's [`Token`]) and
//! reshapes that move values across the batch axis (graft's [`Regroup`]),
//! import and export side by side. Graft's side is `graft_nn`'s
//! `layers/attention.rs`.

use std::collections::HashMap;

use graft_core::VertexId;
use graft_nn::{DimProduct, HeadSplit, MatMul, Op, Regroup, Token};

use super::Importer;
use crate::error::OnnxError;
use crate::export::Out;
use crate::import::{Ctx, Node};
use crate::tensor::{encode_f32, encode_i64, Const};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Einsum", einsum);
}

/// The output's neuron axis of `a · b` (or `a · bᵀ`) of rank `rank`: the
/// last axis when it carries `b`'s neurons (attention weights by values),
/// the row axis when it carries `a`'s, else none.
fn product_neurons(
    ctx: &Ctx,
    a: VertexId,
    b: VertexId,
    rank: usize,
    trans_b: bool,
) -> Option<usize> {
    let (last, rows) = (rank - 1, rank - 2);
    let from_b = if trans_b { rows } else { last };
    if ctx.neuron_axis(b) == Some(from_b) {
        Some(last)
    } else if ctx.neuron_axis(a) == Some(rows) {
        Some(rows)
    } else {
        None
    }
}

/// Add a frozen product of two computed values for `node`.
fn product(
    ctx: &mut Ctx,
    node: &Node,
    (a, sa): (VertexId, Vec<usize>),
    (b, sb): (VertexId, Vec<usize>),
    trans_b: bool,
) -> Result<(), OnnxError> {
    let r = sa.len();
    if r < 3 || sb.len() != r {
        return Err(node.err(format!(
            "a product of computed values of shapes {sa:?} and {sb:?}: equal ranks of at least 3 (batch axis included) are supported"
        )));
    }
    let (m, k) = (sa[r - 2], sa[r - 1]);
    let (k2, n) = if trans_b {
        (sb[r - 1], sb[r - 2])
    } else {
        (sb[r - 2], sb[r - 1])
    };
    if k != k2 {
        return Err(node.err(format!("shapes {sa:?} and {sb:?} do not multiply")));
    }
    let mut out = graft_nn::broadcast_shape(&sa[..r - 2], &sb[..r - 2])
        .ok_or_else(|| node.err(format!("shapes {sa:?} and {sb:?} do not broadcast")))?;
    if out.first() != sa.first() {
        return Err(node.err(format!(
            "shapes {sa:?} and {sb:?} broadcast over the batch axis"
        )));
    }
    out.extend([m, n]);
    // Attention heads: the same leading axis carries both operands'
    // neurons (one per head), and the output's.
    let heads = ctx
        .neuron_axis(a)
        .filter(|&x| x >= 1 && x < r - 2 && ctx.neuron_axis(b) == Some(x) && sa[x] == sb[x]);
    let dims = if ctx.head_dims && heads.is_none() {
        dim_product(ctx, a, b, r, trans_b)
    } else {
        DimProduct::No
    };
    let neurons = match dims {
        DimProduct::Scores => None,
        DimProduct::Values => Some(r - 1),
        DimProduct::No => heads.or_else(|| product_neurons(ctx, a, b, r, trans_b)),
    };
    // Queries by keys: the vertex's size stands for the shared dimensions.
    let nout = match dims {
        DimProduct::Scores => k,
        DimProduct::Values | DimProduct::No => neurons.map_or(1, |x| out[x]),
    };
    let op = Op::MatMul(MatMul {
        trans_b,
        neurons,
        rank: r,
        heads: heads.is_some(),
        dims,
    });
    ctx.add(node, op, &[a, b], Some(nout), out)?;
    Ok(())
}

/// Attention read along the head dimension: queries by keys when the
/// contracted axis carries both operands' neurons, weights by values when
/// `a` has no neurons and `b`'s are the output's columns.
fn dim_product(ctx: &Ctx, a: VertexId, b: VertexId, rank: usize, trans_b: bool) -> DimProduct {
    let (last, rows) = (rank - 1, rank - 2);
    let (b_inner, b_cols) = if trans_b { (last, rows) } else { (rows, last) };
    match (ctx.neuron_axis(a), ctx.neuron_axis(b)) {
        (Some(x), Some(y)) if x == last && y == b_inner => DimProduct::Scores,
        (None, Some(y)) if y == b_cols => DimProduct::Values,
        _ => DimProduct::No,
    }
}

/// `MatMul` whose right-hand side is computed (called by the linear
/// family's importer).
pub(crate) fn matmul(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let a = ctx.runtime(node, 0)?;
    let b = ctx.runtime(node, 1)?;
    product(ctx, node, a, b, false)
}

/// The terms of an einsum equation without spaces: inputs and output.
fn parse_equation(eq: &str) -> Option<(Vec<Vec<char>>, Vec<char>)> {
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = eq.split_once("->")?;
    let ins: Vec<Vec<char>> = lhs.split(',').map(|t| t.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let letters = |t: &[char]| t.iter().all(|c| c.is_ascii_alphabetic());
    let unique = |t: &[char]| {
        let mut s = t.to_vec();
        s.sort_unstable();
        s.dedup();
        s.len() == t.len()
    };
    if ins.iter().chain([&out]).all(|t| letters(t) && unique(t)) {
        Some((ins, out))
    } else {
        None
    }
}

/// Whether `a, b -> out` is a batched product: the same leading letters in
/// all three, then `ik, kj -> ij` (false) or `ik, jk -> ij` (true).
fn batched_product(a: &[char], b: &[char], out: &[char]) -> Option<bool> {
    let r = a.len();
    if r < 2 || b.len() != r || out.len() != r || a[..r - 2] != b[..r - 2] {
        return None;
    }
    if out[..r - 2] != a[..r - 2] {
        return None;
    }
    let (i, k) = (a[r - 2], a[r - 1]);
    let (oi, j) = (out[r - 2], out[r - 1]);
    if oi != i || j == k || j == i || k == i {
        return None;
    }
    match (b[r - 2], b[r - 1]) {
        (x, y) if x == k && y == j => Some(false),
        (x, y) if x == j && y == k => Some(true),
        _ => None,
    }
}

fn einsum(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let eq = node
        .string("equation")
        .ok_or_else(|| node.err("needs an equation"))?;
    let unsupported = || {
        node.err(format!(
            "equation `{eq}`: only batched products of two values (`...ik, ...kj -> ...ij` or `...ik, ...jk -> ...ij`, explicit letters) are supported"
        ))
    };
    let (ins, out) = parse_equation(&eq).ok_or_else(unsupported)?;
    let [a, b] = ins.as_slice() else {
        return Err(unsupported());
    };
    let trans_b = batched_product(a, b, &out).ok_or_else(unsupported)?;
    let x = ctx.runtime(node, 0)?;
    let y = ctx.runtime(node, 1)?;
    if x.1.len() != a.len() || y.1.len() != b.len() {
        return Err(node.err(format!(
            "equation `{eq}` for inputs of shapes {:?} and {:?}",
            x.1, y.1
        )));
    }
    product(ctx, node, x, y, trans_b)
}

/// A vertex repeating constant `c` (its first axis of size 1 the batch
/// axis) over the batch of `like`, whose neurons lie on axis `neurons`:
/// for a `Concat` that joins a constant (a class token) to computed
/// values.
pub(crate) fn token(
    ctx: &mut Ctx,
    node: &Node,
    k: usize,
    c: &Const,
    like: VertexId,
    neurons: Option<usize>,
) -> Result<(VertexId, Vec<usize>), OnnxError> {
    if c.dims.first() != Some(&1) {
        return Err(node.err(format!(
            "input {k} is a constant of shape {:?}: graft joins constants with one entry on the batch axis",
            c.dims
        )));
    }
    let shape = c.dims[1..].to_vec();
    let nout = neurons
        .and_then(|a| a.checked_sub(1))
        .and_then(|a| shape.get(a))
        .copied()
        .unwrap_or(1);
    let op = Op::Token(Token {
        shape: shape.clone(),
        neurons,
    });
    let base = if node.name.is_empty() {
        node.output()
    } else {
        &node.name
    };
    let name = ctx.fresh_name(&format!("{base}.token{k}"));
    let v = ctx.model.add(&name, op, &[like], Some(nout))?;
    ctx.set(v, "value", &shape, c.floats())?;
    Ok((v, c.dims.clone()))
}

/// A [`Regroup`] of computed `x` (full shape `s`) to `dims` (batch axis
/// included) and its nout: invariant when `x`'s neuron axis stays whole
/// (the same size with the same number of values after it), a head merge
/// when it merges with the axis after it (GPT-2's `[N, T, H, D]` to
/// `[N·T, H·D]`), a head split when it splits into heads and their width,
/// else frozen with its neurons on the last axis.
pub(crate) fn regroup_op(ctx: &Ctx, x: VertexId, s: &[usize], dims: &[usize]) -> (Op, usize) {
    let inner = |d: &[usize], a: usize| d[a + 1..].iter().product::<usize>();
    // The neurons kept whole wherever they land, else split or merged.
    let whole = |a: usize| {
        (1..dims.len())
            .find(|&b| dims[b] == s[a] && inner(dims, b) == inner(s, a))
            .map(|b| (a, b, HeadSplit::Whole))
    };
    let found = ctx.neuron_axis(x).filter(|&a| a < s.len()).and_then(|a| {
        whole(a).or_else(|| {
            (1..dims.len()).find_map(|b| {
                if ctx.heads
                    && a + 1 < s.len()
                    && s[a + 1] > 1
                    && dims[b] == s[a] * s[a + 1]
                    && inner(dims, b) == inner(s, a + 1)
                {
                    Some((a, b, HeadSplit::Merge(s[a + 1])))
                } else if ctx.heads
                    && b + 1 < dims.len()
                    && dims[b + 1] > 1
                    && dims[b] * dims[b + 1] == s[a]
                    && inner(dims, b + 1) == inner(s, a)
                {
                    Some((a, b, HeadSplit::Split(dims[b + 1])))
                } else if ctx.head_dims
                    && a >= 2
                    && s[a - 1] > 1
                    && dims[b] == s[a - 1] * s[a]
                    && inner(dims, b) == inner(s, a)
                {
                    Some((a, b, HeadSplit::Tile(s[a - 1])))
                } else if ctx.head_dims
                    && b >= 2
                    && dims[b - 1] > 1
                    && dims[b - 1] * dims[b] == s[a]
                    && inner(dims, b) == inner(s, a)
                {
                    Some((a, b, HeadSplit::Fold(dims[b - 1])))
                } else {
                    None
                }
            })
        })
    });
    let (neurons, from, heads) = match found {
        Some((a, b, h)) => (Some(b), Some(a), h),
        None => (
            dims.len().checked_sub(1).filter(|&l| l > 0),
            None,
            HeadSplit::Whole,
        ),
    };
    let nout = neurons.map_or(1, |b| dims[b]);
    let op = Op::Regroup(Regroup {
        rest: dims[1..].to_vec(),
        neurons,
        from,
        heads,
        batch: None,
    });
    (op, nout)
}

/// A reshape of `x` (full shape `s`, batch axis kept) to `dims` that splits
/// its neuron axis into `[heads, width]` (the heads carrying the neurons:
/// attention's head split) or merges it with the axis after it (the head
/// merge, grouped-query attention's repeat of the KV heads): the
/// [`Regroup`] and its nout.
pub(crate) fn head_regroup(
    ctx: &Ctx,
    x: VertexId,
    s: &[usize],
    dims: &[usize],
) -> Option<(Op, usize)> {
    let from = ctx.neuron_axis(x).filter(|&a| a >= 1 && a < s.len())?;
    if ctx.head_dims {
        return dim_regroup(from, s, dims);
    }
    if !ctx.heads {
        return None;
    }
    // Unit axes of the input (a batch of one beside the heads) take no
    // part: the split or merge is read on the others.
    let keep = |i: usize| i == 0 || i == from || s[i] != 1;
    let a = (0..from).filter(|&i| keep(i)).count();
    let s: Vec<usize> = (0..s.len()).filter(|&i| keep(i)).map(|i| s[i]).collect();
    let (heads, nout) = if dims.len() == s.len() + 1
        && dims[..a] == s[..a]
        && dims[a + 2..] == s[a + 1..]
        && dims[a] > 1
        && dims[a + 1] > 1
        && dims[a] * dims[a + 1] == s[a]
    {
        // (One head of the whole width is a unit axis, kept as a view.)
        (HeadSplit::Split(dims[a + 1]), dims[a])
    } else if dims.len() + 1 == s.len()
        && a + 1 < s.len()
        && dims[..a] == s[..a]
        && dims[a + 1..] == s[a + 2..]
        && s[a + 1] > 1
        && dims[a] == s[a] * s[a + 1]
    {
        (HeadSplit::Merge(s[a + 1]), dims[a])
    } else {
        return None;
    };
    let op = Op::Regroup(Regroup {
        rest: dims[1..].to_vec(),
        neurons: Some(a),
        from: Some(from),
        heads,
        batch: None,
    });
    Some((op, nout))
}

/// The outputs of Reshape nodes read only by selections (a Gather, Slice
/// or Split, through transposes and unit axes): a fused projection's
/// neuron axis split into its parts (torchvision's attention:
/// `[.., 3·E]` to `[.., 3, E]`, then the query, key and value picked), not
/// into heads, which products read.
pub(crate) fn selected_reshapes(
    nodes: &[crate::proto::NodeProto],
) -> std::collections::HashSet<String> {
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for x in &n.input {
            readers.entry(x.as_str()).or_default().push(i);
        }
    }
    // Every reader of `value` (and of what passes it on) selects from it.
    fn selected(
        value: &str,
        nodes: &[crate::proto::NodeProto],
        readers: &HashMap<&str, Vec<usize>>,
        depth: usize,
    ) -> bool {
        let Some(rs) = readers.get(value) else {
            return false;
        };
        depth < 8
            && rs.iter().all(|&r| {
                let n = &nodes[r];
                match n.op_type.as_deref().unwrap_or_default() {
                    "Gather" | "Slice" | "Split" => {
                        n.input.first().map(String::as_str) == Some(value)
                    }
                    "Unsqueeze" | "Squeeze" | "Transpose" | "Identity" => n
                        .output
                        .first()
                        .is_some_and(|o| selected(o, nodes, readers, depth + 1)),
                    _ => false,
                }
            })
    }
    nodes
        .iter()
        .enumerate()
        .filter(|&(_, n)| n.op_type.as_deref() == Some("Reshape"))
        .filter_map(|(_, n)| n.output.first())
        .filter(|o| selected(o, nodes, &readers, 0))
        .cloned()
        .collect()
}

/// A fused projection's neuron axis split into `[parts, heads, width]`
/// (timm's attention: `[.., 3·H·D]` to `[.., 3, H, D]`, the parts the
/// query, key and value), or into `[parts, width]` when the parts are
/// then picked ([`selected_reshapes`]: a fold). Read as heads: a fold of the parts (every part
/// keeps the same neurons) then a head split, so that the query, key and
/// value keep and drop the same heads; read along the head dimension: one
/// fold of every part's heads (the same dimensions in each). False when
/// the reshape is not one. With `at`, the output's axis `at` carries a
/// symbolic batch ([`graft_nn::BatchAt`]), and so does the fold before a
/// split where the input's batch axis lands in it.
pub(crate) fn fused_head_split(
    ctx: &mut Ctx,
    node: &Node,
    x: VertexId,
    s: &[usize],
    dims: &[usize],
    at: Option<usize>,
) -> Result<bool, OnnxError> {
    let Some(a) = ctx.neuron_axis(x).filter(|&a| a >= 1 && a < s.len()) else {
        return Ok(false);
    };
    let batch = at.map(|axis| graft_nn::BatchAt {
        axis,
        first: dims[0],
    });
    // Only split into its parts, which are then picked: a fold of the
    // parts, the neurons staying on the width.
    let parts_only = ctx.selected.contains(node.output())
        && dims.len() == s.len() + 1
        && dims[..a] == s[..a]
        && dims[a + 2..] == s[a + 1..]
        && dims[a] > 1
        && dims[a] * dims[a + 1] == s[a];
    if parts_only && (ctx.heads || ctx.head_dims) {
        let op = Op::Regroup(Regroup {
            rest: dims[1..].to_vec(),
            neurons: Some(a + 1),
            from: Some(a),
            heads: HeadSplit::Fold(dims[a]),
            batch,
        });
        ctx.add(node, op, &[x], Some(dims[a + 1]), dims.to_vec())?;
        return Ok(true);
    }
    let fits = (ctx.heads || ctx.head_dims)
        && dims.len() == s.len() + 2
        && dims[..a] == s[..a]
        && dims[a + 3..] == s[a + 1..]
        && dims[a] > 1
        && dims[a + 2] > 1
        && dims[a] * dims[a + 1] * dims[a + 2] == s[a];
    if !fits {
        return Ok(false);
    }
    let (parts, heads, width) = (dims[a], dims[a + 1], dims[a + 2]);
    if ctx.head_dims {
        let op = Op::Regroup(Regroup {
            rest: dims[1..].to_vec(),
            neurons: Some(a + 2),
            from: Some(a),
            heads: HeadSplit::Fold(parts * heads),
            batch,
        });
        ctx.add(node, op, &[x], Some(width), dims.to_vec())?;
        return Ok(true);
    }
    let mut mid = s[..a].to_vec();
    mid.extend([parts, heads * width]);
    mid.extend(&s[a + 1..]);
    // The input's batch axis, past the neuron axis split in two.
    let mid_batch = match at {
        Some(_) => {
            let b = ctx.batch_axis(x);
            Some(graft_nn::BatchAt {
                axis: b + usize::from(b > a),
                first: mid[0],
            })
        }
        None => None,
    };
    let fold = Op::Regroup(Regroup {
        rest: mid[1..].to_vec(),
        neurons: Some(a + 1),
        from: Some(a),
        heads: HeadSplit::Fold(parts),
        batch: mid_batch,
    });
    let name = ctx.fresh_name(&format!("{}.parts", ctx.vertex_base(node)));
    let f = ctx.model.add(&name, fold, &[x], Some(heads * width))?;
    let split = Op::Regroup(Regroup {
        rest: dims[1..].to_vec(),
        neurons: Some(a + 1),
        from: Some(a + 1),
        heads: HeadSplit::Split(width),
        batch,
    });
    ctx.add(node, split, &[f], Some(heads), dims.to_vec())?;
    Ok(true)
}

/// [`head_regroup`] read along the head dimension: the neuron axis `a` of
/// `s` split into `[blocks, width]` with the width carrying the neurons (a
/// fold), or merged with the axis before it (a tile).
fn dim_regroup(a: usize, s: &[usize], dims: &[usize]) -> Option<(Op, usize)> {
    let (heads, neurons, nout) = if dims.len() == s.len() + 1
        && dims[..a] == s[..a]
        && dims[a + 2..] == s[a + 1..]
        && dims[a] > 1
        && dims[a] * dims[a + 1] == s[a]
    {
        (HeadSplit::Fold(dims[a]), a + 1, dims[a + 1])
    } else if dims.len() + 1 == s.len()
        && a >= 2
        && dims[..a - 1] == s[..a - 1]
        && dims[a..] == s[a + 1..]
        && s[a - 1] > 1
        && dims[a - 1] == s[a - 1] * s[a]
    {
        (HeadSplit::Tile(s[a - 1]), a - 1, dims[a - 1])
    } else {
        return None;
    };
    let op = Op::Regroup(Regroup {
        rest: dims[1..].to_vec(),
        neurons: Some(neurons),
        from: Some(a),
        heads,
        batch: None,
    });
    Some((op, nout))
}

/// A reshape of computed `x` (full shape `s`) to `dims` for `node` that
/// moves values across the batch axis or regroups the neuron axis with
/// others (see [`regroup_op`]).
pub(crate) fn regroup(
    ctx: &mut Ctx,
    node: &Node,
    x: VertexId,
    s: &[usize],
    dims: Vec<usize>,
) -> Result<(), OnnxError> {
    let (op, nout) = regroup_op(ctx, x, s, &dims);
    ctx.add(node, op, &[x], Some(nout), dims)?;
    Ok(())
}

/// Export a product, a token or a regroup as ONNX nodes writing `name`.
pub(crate) fn export(
    out: &mut Out,
    model: &graft_nn::Model,
    v: VertexId,
    name: &str,
    ins: &[String],
    op: &Op,
) -> Result<(), OnnxError> {
    let input = |k: usize| {
        ins.get(k).cloned().ok_or_else(|| OnnxError::Export {
            vertex: name.to_string(),
            reason: format!("needs input {k}"),
        })
    };
    match op {
        Op::MatMul(m) => {
            let (a, mut b) = (input(0)?, input(1)?);
            if m.trans_b {
                let t = format!("{name}.bt");
                let r = m.rank.max(2);
                let mut perm: Vec<i64> = (0..r as i64).collect();
                perm.swap(r - 2, r - 1);
                out.node(
                    "Transpose",
                    &t,
                    &[&b],
                    &t,
                    vec![crate::export::attr_ints("perm", perm)],
                );
                b = t;
            }
            out.node("MatMul", name, &[&a, &b], name, vec![]);
        }
        Op::Token(_) => {
            // Expand([1, ...shape], [batch of x, ...shape]).
            let x = input(0)?;
            let t = model.param(v, "value")?;
            let vals: Vec<f32> = t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
            let mut dims = vec![1];
            dims.extend(t.dims());
            let value = format!("{name}.value");
            out.inits.push(encode_f32(&value, &dims, &vals));
            let shape = format!("{name}.shape");
            out.node("Shape", &shape, &[&x], &shape, vec![]);
            let (s0, e0, batch) = (
                format!("{name}.start"),
                format!("{name}.end"),
                format!("{name}.batch"),
            );
            out.inits.push(encode_i64(&s0, &[1], &[0]));
            out.inits.push(encode_i64(&e0, &[1], &[1]));
            out.node("Slice", &batch, &[&shape, &s0, &e0], &batch, vec![]);
            let rest = format!("{name}.rest");
            let r: Vec<i64> = t.dims().iter().map(|&d| d as i64).collect();
            out.inits.push(encode_i64(&rest, &[r.len()], &r));
            let to = format!("{name}.to");
            out.node(
                "Concat",
                &to,
                &[&batch, &rest],
                &to,
                vec![crate::export::attr_i("axis", 0)],
            );
            out.node("Expand", name, &[&value, &to], name, vec![]);
        }
        Op::Regroup(r) => {
            let x = input(0)?;
            let s = format!("{name}.shape");
            let nout = model.graph().nout(v)?;
            // The axis carrying the batch takes what the others leave.
            let at = r.batch.unwrap_or(graft_nn::BatchAt { axis: 0, first: 0 });
            let mut dims = vec![at.first as i64];
            dims.extend(r.rest_at(nout).iter().map(|&d| d as i64));
            if let Some(d) = dims.get_mut(at.axis) {
                *d = -1;
            }
            out.inits.push(encode_i64(&s, &[dims.len()], &dims));
            out.node("Reshape", name, &[&x, &s], name, vec![]);
        }
        other => {
            return Err(OnnxError::Export {
                vertex: name.to_string(),
                reason: format!("{} is not a product, a token or a regroup", other.name()),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(eq: &str) -> Option<bool> {
        let (ins, out) = parse_equation(eq)?;
        let [a, b] = ins.as_slice() else { return None };
        batched_product(a, b, &out)
    }

    #[test]
    fn batched_product_equations_are_recognised() {
        // MaxViT's two equations: by the keys' transpose, then by values.
        assert_eq!(terms("B G H I D, B G H J D -> B G H I J"), Some(true));
        assert_eq!(terms("B G H I J, B G H J D -> B G H I D"), Some(false));
        assert_eq!(terms("bij,bjk->bik"), Some(false));
        // Not batched products: a trace, a sum over a batch letter,
        // transposed outputs, repeated letters, ellipses, three operands.
        assert_eq!(terms("bii,bij->bij"), None);
        assert_eq!(terms("bij,bjk->ik"), None);
        assert_eq!(terms("bij,bjk->bki"), None);
        assert_eq!(terms("...ij,...jk->...ik"), None);
        assert_eq!(terms("bij,bjk,bkl->bil"), None);
        assert_eq!(terms("bij,cjk->bik"), None);
        assert!(parse_equation("bij,bjk").is_none());
    }
}
