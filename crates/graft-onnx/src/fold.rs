//! Constant folding at import: a node whose inputs are all known at import
//! time (initializers, `Constant` nodes, shapes of computed values, and
//! whatever was folded before) is evaluated once here and becomes a
//! constant, so the shape arithmetic exporters write around reshapes,
//! class tokens and masks (Shape, Gather, Concat, Cast, Range,
//! ConstantOfShape, Equal, Where, Mod, Slice, ...) never blocks a model.
//!
//! Values are computed in f64 (exact for the integers shapes hold) and
//! stored back as integers when the ONNX result type is an integer or a
//! boolean. Written by hand: no maintained crate evaluates ONNX nodes on
//! host constants without pulling in a whole runtime.

use crate::error::OnnxError;
use crate::import::Node;
use crate::tensor::{Const, Floats};

/// The ONNX ops the folder evaluates.
pub(crate) const FOLDABLE: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Min",
    "Max",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "And",
    "Or",
    "Xor",
    "Not",
    "Neg",
    "Abs",
    "Sqrt",
    "Reciprocal",
    "Exp",
    "Log",
    "Floor",
    "Ceil",
    "Sign",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Cast",
    "CastLike",
    "Identity",
    "Where",
    "Clip",
    "Shape",
    "Size",
    "Gather",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Flatten",
    "Expand",
    "Tile",
    "Slice",
    "Transpose",
    "ConstantOfShape",
    "Range",
    "ReduceSum",
    "ReduceProd",
    "ReduceMax",
    "ReduceMin",
    "ReduceMean",
    "IsNaN",
    "IsInf",
    "NonZero",
    "ScatterND",
    "GatherND",
    "GatherElements",
    "Sin",
    "Cos",
    "MatMul",
];

/// The most values a folded constant may hold (a guard against shapes in
/// a malformed file asking for gigabytes).
const MAX_VALUES: usize = 1 << 26;

/// A host tensor: dims, values as f64, and whether it is integer-typed.
#[derive(Debug, Clone)]
struct T {
    dims: Vec<usize>,
    v: Vec<f64>,
    int: bool,
}

impl T {
    fn from(c: &Const) -> T {
        let int = !c.i.is_empty() || (c.f.is_empty() && c.len() == 0);
        let v = if c.i.is_empty() {
            c.f.iter().map(|&x| x as f64).collect()
        } else {
            c.i.iter().map(|&x| x as f64).collect()
        };
        T {
            dims: c.dims.clone(),
            v,
            int,
        }
    }
    fn into_const(self) -> Const {
        if self.int {
            Const {
                dims: self.dims,
                f: Floats::default(),
                i: self.v.iter().map(|&x| x as i64).collect(),
            }
        } else {
            Const {
                dims: self.dims,
                f: Floats::new(self.v.iter().map(|&x| x as f32).collect()),
                i: Vec::new(),
            }
        }
    }
    fn ints(&self) -> Vec<i64> {
        self.v.iter().map(|&x| x as i64).collect()
    }
    fn scalar(v: f64, int: bool) -> T {
        T {
            dims: Vec::new(),
            v: vec![v],
            int,
        }
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn count(node: &Node, dims: &[usize]) -> Result<usize, OnnxError> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_VALUES)
        .ok_or_else(|| node.err(format!("a constant of shape {dims:?} is too large to fold")))
}

/// Numpy broadcasting of any number of tensors to one shape: the values of
/// each, laid out on the common shape.
fn broadcast(node: &Node, ts: &[&T]) -> Result<(Vec<usize>, Vec<Vec<f64>>), OnnxError> {
    let mut dims: Vec<usize> = Vec::new();
    for t in ts {
        dims = graft_nn::broadcast_shape(&dims, &t.dims).ok_or_else(|| {
            node.err(format!("shapes {dims:?} and {:?} do not broadcast", t.dims))
        })?;
    }
    let n = count(node, &dims)?;
    let out_strides = strides(&dims);
    let mut vals = Vec::with_capacity(ts.len());
    for t in ts {
        let off = dims.len() - t.dims.len();
        let ts_strides = strides(&t.dims);
        let mut v = Vec::with_capacity(n);
        for flat in 0..n {
            let mut src = 0;
            for (k, (&d, &s)) in t.dims.iter().zip(&ts_strides).enumerate() {
                let idx = (flat / out_strides[k + off]) % dims[k + off];
                if d != 1 {
                    src += idx * s;
                }
            }
            v.push(t.v[src]);
        }
        vals.push(v);
    }
    Ok((dims, vals))
}

fn elementwise(
    node: &Node,
    ts: &[&T],
    int: bool,
    f: impl Fn(&[f64]) -> f64,
) -> Result<T, OnnxError> {
    let (dims, vals) = broadcast(node, ts)?;
    let n: usize = dims.iter().product();
    let mut args = vec![0.0; ts.len()];
    let v = (0..n)
        .map(|i| {
            for (a, col) in args.iter_mut().zip(&vals) {
                *a = col[i];
            }
            f(&args)
        })
        .collect();
    Ok(T { dims, v, int })
}

fn axis(node: &Node, a: i64, rank: usize) -> Result<usize, OnnxError> {
    let r = rank as i64;
    let x = if a < 0 { a.saturating_add(r) } else { a };
    if !(0..r).contains(&x) {
        return Err(node.err(format!("axis {a} out of range for rank {rank}")));
    }
    Ok(x as usize)
}

/// Axes from the attribute (older opsets) or input `k` (newer ones).
fn axes_of(node: &Node, ins: &[Option<T>], k: usize) -> Option<Vec<i64>> {
    node.ints("axes")
        .or_else(|| ins.get(k).and_then(|t| t.as_ref()).map(|t| t.ints()))
}

/// Gather along `ax` of `t` at `idx` (any shape of indices).
fn gather(node: &Node, t: &T, idx: &T, ax: usize) -> Result<T, OnnxError> {
    if ax >= t.dims.len() {
        return Err(node.err(format!("axis {ax} out of range for rank {}", t.dims.len())));
    }
    let n_ax = t.dims[ax] as i64;
    let outer: usize = t.dims[..ax].iter().product();
    let inner: usize = t.dims[ax + 1..].iter().product();
    let mut dims = t.dims[..ax].to_vec();
    dims.extend(&idx.dims);
    dims.extend(&t.dims[ax + 1..]);
    count(node, &dims)?;
    let mut v = Vec::new();
    for o in 0..outer {
        for &i in &idx.ints() {
            let j = if i < 0 { i + n_ax } else { i };
            if !(0..n_ax).contains(&j) {
                return Err(node.err(format!("index {i} out of range {n_ax}")));
            }
            let base = (o * t.dims[ax] + j as usize) * inner;
            v.extend_from_slice(&t.v[base..base + inner]);
        }
    }
    Ok(T {
        dims,
        v,
        int: t.int,
    })
}

/// The flat offset in `t` of the index tuple `tuple` (a prefix of `t`'s
/// axes; negative entries count from the end) and the size of the slab it
/// names.
fn nd_offset(node: &Node, t: &T, tuple: &[f64]) -> Result<(usize, usize), OnnxError> {
    if tuple.len() > t.dims.len() {
        return Err(node.err(format!(
            "index tuples of {} for a tensor of rank {}",
            tuple.len(),
            t.dims.len()
        )));
    }
    let st = strides(&t.dims);
    let mut off = 0;
    for (k, &i) in tuple.iter().enumerate() {
        let d = t.dims[k] as i64;
        let i = i as i64;
        let j = if i < 0 { i + d } else { i };
        if !(0..d).contains(&j) {
            return Err(node.err(format!("index {i} out of range {d} on axis {k}")));
        }
        off += j as usize * st[k];
    }
    let slab = t.dims[tuple.len()..].iter().product();
    Ok((off, slab))
}

/// ONNX ScatterND without reduction: `data` with the slabs named by the
/// index tuples (the last axis of `idx`) replaced by `updates`.
fn scatter_nd(node: &Node, data: &T, idx: &T, upd: &T) -> Result<T, OnnxError> {
    if let Some(r) = node.string("reduction").filter(|r| r != "none") {
        return Err(node.err(format!("reduction {r} is not supported")));
    }
    let q = *idx.dims.last().ok_or_else(|| node.err("scalar indices"))?;
    let n: usize = idx.dims[..idx.dims.len() - 1].iter().product();
    let mut out = data.clone();
    out.int = data.int;
    for t in 0..n {
        let (off, slab) = nd_offset(node, data, &idx.v[t * q..t * q + q])?;
        let src = upd
            .v
            .get(t * slab..(t + 1) * slab)
            .ok_or_else(|| node.err(format!("updates of shape {:?} too small", upd.dims)))?;
        out.v[off..off + slab].copy_from_slice(src);
    }
    Ok(out)
}

/// ONNX GatherND with `batch_dims` 0: the slabs named by the index tuples.
fn gather_nd(node: &Node, data: &T, idx: &T) -> Result<T, OnnxError> {
    if node.int("batch_dims", 0) != 0 {
        return Err(node.err("batch_dims other than 0 is not supported"));
    }
    let q = *idx.dims.last().ok_or_else(|| node.err("scalar indices"))?;
    let n: usize = idx.dims[..idx.dims.len() - 1].iter().product();
    let mut dims = idx.dims[..idx.dims.len() - 1].to_vec();
    dims.extend(data.dims.get(q..).unwrap_or(&[]));
    count(node, &dims)?;
    let mut v = Vec::new();
    for t in 0..n {
        let (off, slab) = nd_offset(node, data, &idx.v[t * q..t * q + q])?;
        v.extend_from_slice(&data.v[off..off + slab]);
    }
    Ok(T {
        dims,
        v,
        int: data.int,
    })
}

/// ONNX GatherElements: `out[i][j][k] = data[idx[i][j][k]][j][k]` (for
/// axis 0; the index replaces the coordinate on `ax`). Indices may be
/// negative (from the end); each is checked.
fn gather_elements(node: &Node, data: &T, idx: &T, ax: usize) -> Result<T, OnnxError> {
    let r = data.dims.len();
    if idx.dims.len() != r {
        return Err(node.err(format!(
            "indices of rank {} for data of rank {r}",
            idx.dims.len()
        )));
    }
    if (0..r).any(|a| a != ax && idx.dims[a] > data.dims[a]) {
        return Err(node.err(format!(
            "indices of shape {:?} exceed data of shape {:?}",
            idx.dims, data.dims
        )));
    }
    count(node, &idx.dims)?;
    let stride = |dims: &[usize], a: usize| dims[a + 1..].iter().product::<usize>();
    let n_ax = data.dims[ax] as i64;
    let mut v = Vec::with_capacity(idx.v.len());
    for (flat, &raw) in idx.v.iter().enumerate() {
        let i = raw as i64;
        let j = if i < 0 { i + n_ax } else { i };
        if !(0..n_ax).contains(&j) {
            return Err(node.err(format!("index {i} out of range {n_ax}")));
        }
        // The coordinates of `flat` in idx's shape, with axis `ax` replaced.
        let mut off = 0usize;
        let mut rest = flat;
        for a in 0..r {
            let c = rest / stride(&idx.dims, a);
            rest %= stride(&idx.dims, a);
            let c = if a == ax { j as usize } else { c };
            off += c * stride(&data.dims, a);
        }
        v.push(data.v[off]);
    }
    Ok(T {
        dims: idx.dims.clone(),
        v,
        int: data.int,
    })
}

/// Numpy matmul of two constants (batch axes broadcast; rank-1 operands
/// promoted and their unit axis dropped afterwards).
fn matmul(node: &Node, a: &T, b: &T) -> Result<T, OnnxError> {
    let (ra, rb) = (a.dims.len(), b.dims.len());
    if ra == 0 || rb == 0 {
        return Err(node.err("matmul of a scalar"));
    }
    let ad = if ra == 1 {
        vec![1, a.dims[0]]
    } else {
        a.dims.clone()
    };
    let bd = if rb == 1 {
        vec![b.dims[0], 1]
    } else {
        b.dims.clone()
    };
    let (m, k) = (ad[ad.len() - 2], ad[ad.len() - 1]);
    let (k2, n) = (bd[bd.len() - 2], bd[bd.len() - 1]);
    if k != k2 {
        return Err(node.err(format!(
            "shapes {:?} and {:?} do not multiply",
            a.dims, b.dims
        )));
    }
    let batch =
        graft_nn::broadcast_shape(&ad[..ad.len() - 2], &bd[..bd.len() - 2]).ok_or_else(|| {
            node.err(format!(
                "shapes {:?} and {:?} do not broadcast",
                a.dims, b.dims
            ))
        })?;
    let mut dims = batch.clone();
    dims.extend([m, n]);
    count(node, &dims)?;
    // Lay both operands out on the broadcast batch.
    let expand = |t: &T, d: &[usize], rows: usize, cols: usize| -> Result<Vec<f64>, OnnxError> {
        let mut full = batch.clone();
        full.extend([rows, cols]);
        let src = T {
            dims: d.to_vec(),
            v: t.v.clone(),
            int: t.int,
        };
        let n = count(node, &full)?;
        let shape = T {
            dims: full,
            v: vec![0.0; n],
            int: t.int,
        };
        Ok(broadcast(node, &[&src, &shape])?.1.remove(0))
    };
    let (av, bv) = (expand(a, &ad, m, k)?, expand(b, &bd, k, n)?);
    let nb: usize = batch.iter().product();
    let mut v = vec![0.0; nb * m * n];
    for t in 0..nb {
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for l in 0..k {
                    s += av[t * m * k + i * k + l] * bv[t * k * n + l * n + j];
                }
                v[t * m * n + i * n + j] = s;
            }
        }
    }
    if ra == 1 {
        dims.remove(dims.len() - 2);
    }
    if rb == 1 {
        dims.pop();
    }
    Ok(T {
        dims,
        v,
        int: a.int && b.int,
    })
}

/// Reshape target with 0 (copy) and -1 (infer) resolved.
fn reshape_dims(
    node: &Node,
    from: &[usize],
    to: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, OnnxError> {
    let total: usize = from.iter().product();
    let mut dims: Vec<i64> = to
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if d == 0 && !allowzero {
                from.get(i).map(|&x| x as i64).unwrap_or(0)
            } else {
                d
            }
        })
        .collect();
    if dims.iter().filter(|&&d| d == -1).count() > 1 || dims.iter().any(|&d| d < -1) {
        return Err(node.err(format!("cannot reshape {from:?} to {to:?}")));
    }
    if let Some(p) = dims.iter().position(|&d| d == -1) {
        let known = dims
            .iter()
            .filter(|&&d| d != -1)
            .try_fold(1i64, |a, &d| a.checked_mul(d))
            .unwrap_or(0);
        if known <= 0 || total as i64 % known != 0 {
            return Err(node.err(format!("cannot reshape {from:?} to {to:?}")));
        }
        dims[p] = total as i64 / known;
    }
    let out: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    if out.iter().product::<usize>() != total {
        return Err(node.err(format!("cannot reshape {from:?} to {to:?}")));
    }
    Ok(out)
}

fn transpose(t: &T, perm: &[usize]) -> T {
    let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    let src = strides(&t.dims);
    let out = strides(&dims);
    let n = t.v.len();
    let v = (0..n)
        .map(|flat| {
            let mut s = 0;
            for (k, &p) in perm.iter().enumerate() {
                s += ((flat / out[k]) % dims[k]) * src[p];
            }
            t.v[s]
        })
        .collect();
    T {
        dims,
        v,
        int: t.int,
    }
}

/// Evaluate `node` on constant inputs (`None` for an absent optional
/// input). `None` when graft does not fold this op.
pub(crate) fn fold(node: &Node, ins: &[Option<Const>]) -> Option<Result<Vec<Const>, OnnxError>> {
    if !FOLDABLE.contains(&node.op.as_str()) {
        return None;
    }
    let ts: Vec<Option<T>> = ins.iter().map(|c| c.as_ref().map(T::from)).collect();
    Some(eval(node, &ts).map(|outs| outs.into_iter().map(T::into_const).collect()))
}

fn eval(node: &Node, ins: &[Option<T>]) -> Result<Vec<T>, OnnxError> {
    let arg = |k: usize| -> Result<&T, OnnxError> {
        ins.get(k)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| node.err(format!("needs input {k}")))
    };
    let all: Vec<&T> = ins.iter().flatten().collect();
    let bin = |f: fn(f64, f64) -> f64, int_out: Option<bool>| -> Result<Vec<T>, OnnxError> {
        let (a, b) = (arg(0)?, arg(1)?);
        let int = int_out.unwrap_or(a.int && b.int);
        let r = elementwise(node, &[a, b], int, |x| f(x[0], x[1]))?;
        Ok(vec![r])
    };
    let un = |f: fn(f64) -> f64| -> Result<Vec<T>, OnnxError> {
        let a = arg(0)?;
        let r = elementwise(node, &[a], a.int, |x| f(x[0]))?;
        Ok(vec![r])
    };
    let b2f = |b: bool| if b { 1.0 } else { 0.0 };
    let op = node.op.as_str();
    let out = match op {
        "Add" => bin(|a, b| a + b, None)?,
        "Sub" => bin(|a, b| a - b, None)?,
        "Mul" => bin(|a, b| a * b, None)?,
        "Div" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let int = a.int && b.int;
            vec![elementwise(node, &[a, b], int, |x| {
                if int {
                    if x[1] == 0.0 {
                        0.0
                    } else {
                        (x[0] / x[1]).trunc()
                    }
                } else {
                    x[0] / x[1]
                }
            })?]
        }
        "Pow" => bin(f64::powf, Some(arg(0)?.int))?,
        "Mod" => {
            let fmod = node.int("fmod", 0) != 0;
            let (a, b) = (arg(0)?, arg(1)?);
            vec![elementwise(node, &[a, b], a.int && b.int, |x| {
                if x[1] == 0.0 {
                    0.0
                } else if fmod {
                    x[0] % x[1]
                } else {
                    // The sign of the divisor, as Python's %.
                    x[0] - x[1] * (x[0] / x[1]).floor()
                }
            })?]
        }
        "Min" | "Max" => {
            let int = all.iter().all(|t| t.int);
            let max = op == "Max";
            vec![elementwise(node, &all, int, |x| {
                x.iter()
                    .copied()
                    .fold(if max { f64::MIN } else { f64::MAX }, |a, b| {
                        if max {
                            a.max(b)
                        } else {
                            a.min(b)
                        }
                    })
            })?]
        }
        "Equal" => bin(|a, b| if a == b { 1.0 } else { 0.0 }, Some(true))?,
        "Less" => bin(|a, b| if a < b { 1.0 } else { 0.0 }, Some(true))?,
        "LessOrEqual" => bin(|a, b| if a <= b { 1.0 } else { 0.0 }, Some(true))?,
        "Greater" => bin(|a, b| if a > b { 1.0 } else { 0.0 }, Some(true))?,
        "GreaterOrEqual" => bin(|a, b| if a >= b { 1.0 } else { 0.0 }, Some(true))?,
        "And" => bin(
            |a, b| if a != 0.0 && b != 0.0 { 1.0 } else { 0.0 },
            Some(true),
        )?,
        "Or" => bin(
            |a, b| if a != 0.0 || b != 0.0 { 1.0 } else { 0.0 },
            Some(true),
        )?,
        "Xor" => bin(
            |a, b| if (a != 0.0) != (b != 0.0) { 1.0 } else { 0.0 },
            Some(true),
        )?,
        "Not" => un(|a| if a == 0.0 { 1.0 } else { 0.0 })?,
        "Neg" => un(|a| -a)?,
        "Abs" => un(f64::abs)?,
        "Sqrt" => un(f64::sqrt)?,
        "Reciprocal" => un(|a| 1.0 / a)?,
        "Exp" => un(f64::exp)?,
        "Sin" => un(f64::sin)?,
        "Cos" => un(f64::cos)?,
        "Log" => un(f64::ln)?,
        "Floor" => un(f64::floor)?,
        "Ceil" => un(f64::ceil)?,
        "Sign" => un(|a| {
            if a > 0.0 {
                1.0
            } else if a < 0.0 {
                -1.0
            } else {
                0.0
            }
        })?,
        "Relu" => un(|a| a.max(0.0))?,
        "Sigmoid" => un(|a| 1.0 / (1.0 + (-a).exp()))?,
        "Tanh" => un(f64::tanh)?,
        "IsNaN" => {
            let a = arg(0)?;
            vec![elementwise(node, &[a], true, |x| b2f(x[0].is_nan()))?]
        }
        "NonZero" => {
            // The indices of the nonzero elements, `[rank, count]`, in
            // row-major order (the legacy exporter's as_strided builds its
            // element indices from NonZero of a constant of ones).
            let a = arg(0)?;
            let rank = a.dims.len().max(1);
            let at = strides(&a.dims);
            let hits: Vec<usize> = (0..a.v.len()).filter(|&k| a.v[k] != 0.0).collect();
            let mut v = vec![0.0; rank * hits.len()];
            for (j, &k) in hits.iter().enumerate() {
                for (d, &st) in at.iter().enumerate() {
                    v[d * hits.len() + j] = ((k / st) % a.dims[d]) as f64;
                }
            }
            vec![T {
                dims: vec![rank, hits.len()],
                v,
                int: true,
            }]
        }
        "IsInf" => {
            let a = arg(0)?;
            let (pos, neg) = (
                node.int("detect_positive", 1) != 0,
                node.int("detect_negative", 1) != 0,
            );
            vec![elementwise(node, &[a], true, |x| {
                b2f((pos && x[0] == f64::INFINITY) || (neg && x[0] == f64::NEG_INFINITY))
            })?]
        }
        "Cast" => {
            let a = arg(0)?;
            let int = crate::tensor::is_int_type(node.int("to", 1));
            let v = if int {
                a.v.iter()
                    .map(|x| if x.is_finite() { x.trunc() } else { 0.0 })
                    .collect()
            } else {
                a.v.clone()
            };
            vec![T {
                dims: a.dims.clone(),
                v,
                int,
            }]
        }
        "CastLike" => {
            let (a, like) = (arg(0)?, arg(1)?);
            vec![T {
                dims: a.dims.clone(),
                v: if like.int {
                    a.v.iter().map(|x| x.trunc()).collect()
                } else {
                    a.v.clone()
                },
                int: like.int,
            }]
        }
        "Identity" => vec![arg(0)?.clone()],
        "Where" => {
            let (c, a, b) = (arg(0)?, arg(1)?, arg(2)?);
            vec![elementwise(node, &[c, a, b], a.int && b.int, |x| {
                if x[0] != 0.0 {
                    x[1]
                } else {
                    x[2]
                }
            })?]
        }
        "Clip" => {
            let a = arg(0)?;
            let lo = match ins.get(1).and_then(|t| t.as_ref()) {
                Some(t) => t.v.first().copied().unwrap_or(f64::MIN),
                None => node.float("min", f32::MIN) as f64,
            };
            let hi = match ins.get(2).and_then(|t| t.as_ref()) {
                Some(t) => t.v.first().copied().unwrap_or(f64::MAX),
                None => node.float("max", f32::MAX) as f64,
            };
            vec![elementwise(node, &[a], a.int, |x| x[0].max(lo).min(hi))?]
        }
        "Shape" => {
            let a = arg(0)?;
            let (start, end) = shape_range(node, a.dims.len());
            let v: Vec<f64> = a.dims[start..end].iter().map(|&d| d as f64).collect();
            vec![T {
                dims: vec![v.len()],
                v,
                int: true,
            }]
        }
        "Size" => vec![T::scalar(arg(0)?.v.len() as f64, true)],
        "ScatterND" => vec![scatter_nd(node, arg(0)?, arg(1)?, arg(2)?)?],
        "GatherND" => vec![gather_nd(node, arg(0)?, arg(1)?)?],
        "GatherElements" => {
            let (t, idx) = (arg(0)?, arg(1)?);
            let ax = axis(node, node.int("axis", 0), t.dims.len())?;
            vec![gather_elements(node, t, idx, ax)?]
        }
        "MatMul" => vec![matmul(node, arg(0)?, arg(1)?)?],
        "Gather" => {
            let (t, idx) = (arg(0)?, arg(1)?);
            let ax = axis(node, node.int("axis", 0), t.dims.len())?;
            vec![gather(node, t, idx, ax)?]
        }
        "Concat" => {
            let first = all.first().ok_or_else(|| node.err("no inputs"))?;
            let rank = first.dims.len();
            let ax = axis(node, node.int("axis", 0), rank)?;
            let mut dims = first.dims.clone();
            dims[ax] = 0;
            for t in &all {
                if t.dims.len() != rank
                    || t.dims
                        .iter()
                        .enumerate()
                        .any(|(i, &d)| i != ax && d != first.dims[i])
                {
                    return Err(node.err(format!(
                        "shapes {:?} and {:?} do not concatenate on axis {ax}",
                        first.dims, t.dims
                    )));
                }
                dims[ax] += t.dims[ax];
            }
            count(node, &dims)?;
            let outer: usize = dims[..ax].iter().product();
            let mut v = Vec::new();
            for o in 0..outer {
                for t in &all {
                    let chunk: usize = t.dims[ax..].iter().product();
                    v.extend_from_slice(&t.v[o * chunk..(o + 1) * chunk]);
                }
            }
            vec![T {
                dims,
                v,
                int: all.iter().all(|t| t.int),
            }]
        }
        "Unsqueeze" => {
            let a = arg(0)?;
            let add = axes_of(node, ins, 1).ok_or_else(|| node.err("needs axes"))?;
            let rank = a.dims.len() + add.len();
            let mut at: Vec<usize> = add
                .iter()
                .map(|&x| axis(node, x, rank))
                .collect::<Result<_, _>>()?;
            at.sort_unstable();
            let mut dims = a.dims.clone();
            for p in at {
                dims.insert(p.min(dims.len()), 1);
            }
            vec![T { dims, ..a.clone() }]
        }
        "Squeeze" => {
            let a = arg(0)?;
            let rank = a.dims.len();
            let drop: Vec<usize> = match axes_of(node, ins, 1) {
                Some(x) => x
                    .iter()
                    .map(|&x| axis(node, x, rank))
                    .collect::<Result<_, _>>()?,
                None => (0..rank).filter(|&i| a.dims[i] == 1).collect(),
            };
            if drop.iter().any(|&i| a.dims[i] != 1) {
                return Err(node.err(format!("squeezing axes {drop:?} of shape {:?}", a.dims)));
            }
            let dims = a
                .dims
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, &d)| d)
                .collect();
            vec![T { dims, ..a.clone() }]
        }
        "Reshape" => {
            let (a, to) = (arg(0)?, arg(1)?);
            let dims = reshape_dims(node, &a.dims, &to.ints(), node.int("allowzero", 0) != 0)?;
            vec![T { dims, ..a.clone() }]
        }
        "Flatten" => {
            let a = arg(0)?;
            let ax = axis(node, node.int("axis", 1), a.dims.len() + 1)?;
            let dims = vec![a.dims[..ax].iter().product(), a.dims[ax..].iter().product()];
            vec![T { dims, ..a.clone() }]
        }
        "Expand" => {
            let (a, to) = (arg(0)?, arg(1)?);
            let shape = T {
                dims: to.ints().iter().map(|&d| d.max(0) as usize).collect(),
                v: Vec::new(),
                int: a.int,
            };
            let dims = graft_nn::broadcast_shape(&a.dims, &shape.dims).ok_or_else(|| {
                node.err(format!("cannot expand {:?} to {:?}", a.dims, shape.dims))
            })?;
            let ones = T {
                dims: dims.clone(),
                v: vec![0.0; count(node, &dims)?],
                int: a.int,
            };
            vec![elementwise(node, &[a, &ones], a.int, |x| x[0])?]
        }
        "Tile" => {
            let (a, reps) = (arg(0)?, arg(1)?);
            let reps = reps.ints();
            if reps.len() != a.dims.len() || reps.iter().any(|&r| r < 0) {
                return Err(node.err(format!("repeats {reps:?} for shape {:?}", a.dims)));
            }
            let dims: Vec<usize> = a
                .dims
                .iter()
                .zip(&reps)
                .map(|(&d, &r)| d * r as usize)
                .collect();
            let n = count(node, &dims)?;
            let (out, src) = (strides(&dims), strides(&a.dims));
            let v = (0..n)
                .map(|flat| {
                    let mut s = 0;
                    for k in 0..dims.len() {
                        s += (((flat / out[k]) % dims[k]) % a.dims[k]) * src[k];
                    }
                    a.v[s]
                })
                .collect();
            vec![T {
                dims,
                v,
                int: a.int,
            }]
        }
        "Slice" => vec![slice(node, ins)?],
        "Transpose" => {
            let a = arg(0)?;
            let rank = a.dims.len();
            let perm: Vec<usize> = match node.ints("perm") {
                Some(p) => p
                    .iter()
                    .map(|&x| axis(node, x, rank))
                    .collect::<Result<_, _>>()?,
                None => (0..rank).rev().collect(),
            };
            let mut seen = vec![false; rank];
            for &p in &perm {
                if std::mem::replace(&mut seen[p], true) {
                    return Err(node.err(format!("perm {perm:?} is not a permutation")));
                }
            }
            if perm.len() != rank {
                return Err(node.err(format!("perm {perm:?} for rank {rank}")));
            }
            vec![transpose(a, &perm)]
        }
        "ConstantOfShape" => {
            let to = arg(0)?.ints();
            if to.iter().any(|&d| d < 0) {
                return Err(node.err(format!("negative dimension in {to:?}")));
            }
            let dims: Vec<usize> = to.iter().map(|&d| d as usize).collect();
            let n = count(node, &dims)?;
            let (value, int) = match node.tensor("value") {
                Some(t) => {
                    let c = T::from(&crate::tensor::decode(t)?);
                    (c.v.first().copied().unwrap_or(0.0), c.int)
                }
                None => (0.0, false),
            };
            vec![T {
                dims,
                v: vec![value; n],
                int,
            }]
        }
        "Range" => {
            let (s, l, d) = (arg(0)?, arg(1)?, arg(2)?);
            let (Some(&start), Some(&limit), Some(&delta)) =
                (s.v.first(), l.v.first(), d.v.first())
            else {
                return Err(node.err("start, limit and delta must each hold one value"));
            };
            if delta == 0.0 {
                return Err(node.err("delta 0"));
            }
            let n = ((limit - start) / delta).ceil().max(0.0);
            if n > MAX_VALUES as f64 {
                return Err(node.err(format!("a range of {n} values is too large to fold")));
            }
            let v: Vec<f64> = (0..n as usize).map(|k| start + k as f64 * delta).collect();
            vec![T {
                dims: vec![v.len()],
                v,
                int: s.int,
            }]
        }
        "ReduceSum" | "ReduceProd" | "ReduceMax" | "ReduceMin" | "ReduceMean" => {
            vec![reduce(node, ins)?]
        }
        other => return Err(node.err(format!("{other} is not folded"))),
    };
    Ok(out)
}

fn slice(node: &Node, ins: &[Option<T>]) -> Result<T, OnnxError> {
    let a = ins[0].as_ref().ok_or_else(|| node.err("needs input 0"))?;
    let rank = a.dims.len();
    let get = |k: usize, attr: &str| -> Option<Vec<i64>> {
        ins.get(k)
            .and_then(|t| t.as_ref())
            .map(|t| t.ints())
            .or_else(|| node.ints(attr))
    };
    let starts = get(1, "starts").ok_or_else(|| node.err("needs starts"))?;
    let ends = get(2, "ends").ok_or_else(|| node.err("needs ends"))?;
    let axes = get(3, "axes").unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = get(4, "").unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(node.err("starts, ends, axes and steps differ in length"));
    }
    // Per axis: the indices kept.
    let mut keep: Vec<Vec<usize>> = a.dims.iter().map(|&d| (0..d).collect()).collect();
    for k in 0..starts.len() {
        let ax = axis(node, axes[k], rank)?;
        let d = a.dims[ax] as i64;
        let step = steps[k];
        if step == 0 {
            return Err(node.err("step 0"));
        }
        let norm = |x: i64| if x < 0 { x + d } else { x };
        let (s, e) = (norm(starts[k]), norm(ends[k]));
        let idx: Vec<usize> = if step > 0 {
            let (s, e) = (s.clamp(0, d), e.clamp(0, d));
            (s..e).step_by(step as usize).map(|i| i as usize).collect()
        } else {
            let (s, e) = (s.clamp(-1, d - 1), e.clamp(-1, d - 1));
            let mut v = Vec::new();
            let mut i = s;
            while i > e {
                v.push(i as usize);
                i += step;
            }
            v
        };
        keep[ax] = idx;
    }
    let dims: Vec<usize> = keep.iter().map(Vec::len).collect();
    let n = count(node, &dims)?;
    let (out, src) = (strides(&dims), strides(&a.dims));
    let v = (0..n)
        .map(|flat| {
            let mut s = 0;
            for k in 0..dims.len() {
                s += keep[k][(flat / out[k]) % dims[k]] * src[k];
            }
            a.v[s]
        })
        .collect();
    Ok(T {
        dims,
        v,
        int: a.int,
    })
}

fn reduce(node: &Node, ins: &[Option<T>]) -> Result<T, OnnxError> {
    let a = ins[0].as_ref().ok_or_else(|| node.err("needs input 0"))?;
    let rank = a.dims.len();
    let keep = node.int("keepdims", 1) != 0;
    let axes: Vec<usize> = match axes_of(node, ins, 1) {
        Some(x) if !x.is_empty() => x
            .iter()
            .map(|&x| axis(node, x, rank))
            .collect::<Result<_, _>>()?,
        _ if node.int("noop_with_empty_axes", 0) != 0 => return Ok(a.clone()),
        _ => (0..rank).collect(),
    };
    let out_dims: Vec<usize> = a
        .dims
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect();
    let n: usize = out_dims.iter().product();
    let (init, f): (f64, fn(f64, f64) -> f64) = match node.op.as_str() {
        "ReduceSum" | "ReduceMean" => (0.0, |a, b| a + b),
        "ReduceProd" => (1.0, |a, b| a * b),
        "ReduceMax" => (f64::MIN, f64::max),
        _ => (f64::MAX, f64::min),
    };
    let mut acc = vec![init; n];
    let (src, out) = (strides(&a.dims), strides(&out_dims));
    for (flat, &x) in a.v.iter().enumerate() {
        let mut o = 0;
        for k in 0..rank {
            let i = (flat / src[k]) % a.dims[k];
            if !axes.contains(&k) {
                o += i * out[k];
            }
        }
        acc[o] = f(acc[o], x);
    }
    if node.op == "ReduceMean" {
        let m: usize = axes.iter().map(|&k| a.dims[k]).product();
        for x in &mut acc {
            *x /= m.max(1) as f64;
        }
    }
    let dims = if keep {
        out_dims
    } else {
        a.dims
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect()
    };
    Ok(T {
        dims,
        v: acc,
        int: a.int,
    })
}

/// The axes a `Shape` node gives of a value of rank `rank`: its `start`
/// and `end` attributes (opset 15; negative from the end, clamped to the
/// rank, an empty range when they cross).
pub(crate) fn shape_range(node: &Node, rank: usize) -> (usize, usize) {
    let r = rank as i64;
    let clampi = |x: i64| (if x < 0 { x.saturating_add(r) } else { x }).clamp(0, r) as usize;
    let start = clampi(node.int("start", 0));
    let end = clampi(node.int("end", r));
    (start, end.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::NodeProto;

    fn node(op: &str) -> NodeProto {
        NodeProto {
            op_type: Some(op.into()),
            name: Some(format!("n_{op}")),
            ..Default::default()
        }
    }

    fn ints(dims: &[usize], v: &[i64]) -> Option<Const> {
        Some(Const {
            dims: dims.to_vec(),
            f: Floats::default(),
            i: v.to_vec(),
        })
    }

    fn run(op: &str, ins: &[Option<Const>]) -> Result<Vec<Const>, OnnxError> {
        let p = node(op);
        let n = Node {
            proto: &p,
            name: p.name.clone().unwrap_or_default(),
            op: op.into(),
        };
        fold(&n, ins).expect("a foldable op")
    }

    fn floats(dims: &[usize], v: &[f32]) -> Option<Const> {
        Some(Const {
            dims: dims.to_vec(),
            f: Floats::new(v.to_vec()),
            i: Vec::new(),
        })
    }

    #[test]
    fn gather_elements_sin_and_cos_fold() {
        // Axis 0: out[i][j] = data[idx[i][j]][j] on [[1, 2], [3, 4]]:
        // idx [[1, 0], [-2, 1]] -> [[3, 2], [1, 4]].
        let data = ints(&[2, 2], &[1, 2, 3, 4]);
        let g = run(
            "GatherElements",
            &[data.clone(), ints(&[2, 2], &[1, 0, -2, 1])],
        )
        .unwrap()
        .remove(0);
        assert_eq!(
            (g.dims.clone(), g.i.clone()),
            (vec![2, 2], vec![3, 2, 1, 4])
        );
        // A smaller index tensor (BERT's token types: a [1, 64] buffer read
        // at [1, 16]): on axis 0, out[0][j] = data[idx[0][j]][j].
        let row = ints(&[1, 4], &[7, 8, 9, 10]);
        let g = run("GatherElements", &[row, ints(&[1, 2], &[0, 0])])
            .unwrap()
            .remove(0);
        assert_eq!((g.dims.clone(), g.i.clone()), (vec![1, 2], vec![7, 8]));
        let bad = run("GatherElements", &[data, ints(&[1, 1], &[2])]).unwrap_err();
        assert!(bad.to_string().contains("out of range"), "{bad}");
        let s = run("Sin", &[floats(&[2], &[0., std::f32::consts::FRAC_PI_2])]).unwrap();
        let c = run("Cos", &[floats(&[1], &[0.])]).unwrap();
        assert!((s[0].f[0]).abs() < 1e-7 && (s[0].f[1] - 1.).abs() < 1e-7);
        assert!((c[0].f[0] - 1.).abs() < 1e-7);
    }

    #[test]
    fn scatter_and_gather_by_index_tuples_fold() {
        // data [[0, 0], [0, 0]]; row 1 set to (5, 6), then entry (0, 1) to 7.
        let data = floats(&[2, 2], &[0.; 4]);
        let rows = run(
            "ScatterND",
            &[data, ints(&[1, 1], &[1]), floats(&[1, 2], &[5., 6.])],
        )
        .unwrap()
        .remove(0);
        assert_eq!(*rows.f, vec![0., 0., 5., 6.]);
        let one = run(
            "ScatterND",
            &[
                Some(rows.clone()),
                ints(&[1, 2], &[0, 1]),
                floats(&[1], &[7.]),
            ],
        )
        .unwrap()
        .remove(0);
        assert_eq!(*one.f, vec![0., 7., 5., 6.]);
        // GatherND of rows 1 and 0, then of entry (-1, 0).
        let g = run("GatherND", &[Some(one.clone()), ints(&[2, 1], &[1, 0])])
            .unwrap()
            .remove(0);
        assert_eq!(
            (g.dims.clone(), g.f.to_vec()),
            (vec![2, 2], vec![5., 6., 0., 7.])
        );
        let e = run("GatherND", &[Some(one.clone()), ints(&[1, 2], &[-1, 0])])
            .unwrap()
            .remove(0);
        assert_eq!(*e.f, vec![5.]);
        // Out of range: an error naming the node, not a panic.
        assert!(run("GatherND", &[Some(one), ints(&[1, 1], &[2])]).is_err());
        assert!(run(
            "ScatterND",
            &[
                floats(&[2], &[0., 0.]),
                ints(&[1, 1], &[0]),
                floats(&[0], &[])
            ]
        )
        .is_err());
    }

    #[test]
    fn products_of_constants_fold() {
        // [[1, 2], [3, 4]] · [[1, 0], [1, 1]] = [[3, 2], [7, 4]]; a batch of
        // two left operands shares the right one; a vector on the right
        // drops its axis.
        let a = floats(&[2, 2], &[1., 2., 3., 4.]);
        let b = floats(&[2, 2], &[1., 0., 1., 1.]);
        let y = run("MatMul", &[a, b.clone()]).unwrap().remove(0);
        assert_eq!(*y.f, vec![3., 2., 7., 4.]);
        let a2 = floats(&[2, 1, 2], &[1., 2., 3., 4.]);
        let y = run("MatMul", &[a2, b]).unwrap().remove(0);
        assert_eq!(
            (y.dims.clone(), y.f.to_vec()),
            (vec![2, 1, 2], vec![3., 2., 7., 4.])
        );
        let v = floats(&[2], &[1., 1.]);
        let y = run("MatMul", &[floats(&[2, 2], &[1., 2., 3., 4.]), v])
            .unwrap()
            .remove(0);
        assert_eq!((y.dims.clone(), y.f.to_vec()), (vec![2], vec![3., 7.]));
        assert!(run(
            "MatMul",
            &[floats(&[2, 3], &[0.; 6]), floats(&[2, 3], &[0.; 6])]
        )
        .is_err());
    }

    #[test]
    fn shape_arithmetic_folds() {
        // Shape of [2, 3, 4] gathered at 0, concatenated with -1, then a
        // reshape target: [2, -1] of a [2, 12] constant.
        let x = Some(Const {
            dims: vec![2, 3, 4],
            f: Floats::new(vec![0.0; 24]),
            i: Vec::new(),
        });
        let shape = run("Shape", &[x]).unwrap().remove(0);
        assert_eq!(shape.i, vec![2, 3, 4]);
        let first = run("Gather", &[Some(shape), ints(&[], &[0])])
            .unwrap()
            .remove(0);
        assert_eq!((first.dims.clone(), first.i.clone()), (vec![], vec![2]));
        let range = run(
            "Range",
            &[ints(&[], &[1]), ints(&[], &[7]), ints(&[], &[2])],
        )
        .unwrap();
        assert_eq!(range[0].i, vec![1, 3, 5]);
        // Python's modulo takes the divisor's sign.
        let m = run("Mod", &[ints(&[2], &[-7, 7]), ints(&[], &[3])]).unwrap();
        assert_eq!(m[0].i, vec![2, 1]);
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        // An empty range bound, an axis far out of range, a scalar
        // squeezed, a reshape whose known dimensions overflow.
        let empty = ints(&[0], &[]);
        assert!(run("Range", &[empty.clone(), ints(&[], &[3]), ints(&[], &[1])]).is_err());
        let v = ints(&[3], &[1, 2, 3]);
        let mut p = node("Gather");
        p.attribute.push(crate::export::attr_i("axis", i64::MIN));
        let n = Node {
            proto: &p,
            name: "g".into(),
            op: "Gather".into(),
        };
        assert!(fold(&n, &[v.clone(), ints(&[], &[0])]).unwrap().is_err());
        assert!(run("Squeeze", &[ints(&[], &[1]), ints(&[1], &[0])]).is_err());
        let huge = ints(&[3], &[i64::MAX, i64::MAX, -1]);
        assert!(run("Reshape", &[v, huge]).is_err());
    }
}
