//! The attention family: the product of two computed values ([`MatMul`]:
//! queries by keys, attention weights by values; ONNX's `MatMul` of two
//! computed inputs and the batched-product `Einsum` equations), a learned
//! constant repeated over the batch ([`Token`]: a class token joined to
//! the patch tokens) and a reshape of the whole value, batch axis included
//! ([`Regroup`]: multi-head attention folding heads or windows into the
//! batch axis of a file exported at batch size 1).
//!
//! Attention heads are neurons: the head split of a projection's output
//! (`[.., C]` to `[.., H, D]`, a [`Regroup`] with [`HeadSplit::Split`]) has
//! one neuron per head (a core `heads` vertex: head `h` stands for the
//! projection's neurons `h·D .. h·D + D − 1`), the products of queries by
//! keys and of weights by values are invariant over the heads axis (a
//! [`MatMul`] with `heads`), and the merge back ([`HeadSplit::Merge`], also
//! grouped-query attention's repeat of the KV heads) is a depthwise repeat
//! of each head. So whole heads are kept, dropped and added together in
//! every projection. Other products of two computed values and other
//! regroupings of the neuron axis are immutable: their sizes and their
//! inputs' sizes are frozen and reported by vertex name, and the model
//! still loads, runs and is pruned elsewhere. A [`Token`] absorbs: its one
//! parameter follows the neurons it is joined to. Their ONNX import and
//! export live in graft-onnx's `ops/attention.rs`.

use candle_core::{Result, Tensor};
use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

use super::{p, Params};
use crate::op::{Declared, Fill, Op, ParamSpec, Role};

/// `a · b` (or `a · bᵀ`) over the last two axes, the leading axes
/// broadcast numpy-style; both operands computed, of the same rank (at
/// least 3, batch axis included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatMul {
    /// Multiply by the transpose of `b`'s last two axes.
    pub trans_b: bool,
    /// The output's neuron axis (batch axis included), if any: bookkeeping
    /// for the ops that read it when the vertex is frozen, the heads axis
    /// when `heads`.
    pub neurons: Option<usize>,
    /// The operands' rank (batch axis included).
    pub rank: usize,
    /// The neuron axis is a leading axis of both operands and of the output
    /// (attention heads): the product is invariant over it.
    #[serde(default)]
    pub heads: bool,
    /// Attention read along the head dimension (the neurons on the
    /// operands' last axes).
    #[serde(default)]
    pub dims: DimProduct,
}

/// A [`MatMul`] of attention read along the head dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimProduct {
    /// Not one (heads, or frozen).
    #[default]
    No,
    /// Queries by keys: the contracted axis carries both operands'
    /// neurons, which the product ties; the output has no neuron axis
    /// (its vertex's size stands for the shared dimensions).
    Scores,
    /// Attention weights (no neuron axis) by values: the output's last
    /// axis carries the values' neurons.
    Values,
}

impl MatMul {
    /// The size rule: invariant over the heads or the head dimensions
    /// (the weights broadcast over the values' dimensions), else frozen.
    pub(crate) fn declare(&self) -> Declared {
        let (kind, constraints) = match (self.heads, self.dims) {
            (true, _) | (false, DimProduct::Scores) => (SizeKind::Invariant, Vec::new()),
            (false, DimProduct::Values) => (
                SizeKind::Invariant,
                vec![Constraint::Broadcast { input: 0 }],
            ),
            (false, DimProduct::No) => (SizeKind::Immutable, Vec::new()),
        };
        Declared { kind, constraints }
    }

    /// The forward pass.
    pub(crate) fn forward(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        if a.rank() < 2 || a.rank() != b.rank() {
            candle_core::bail!(
                "a product of shapes {:?} and {:?} (equal ranks of at least 2 needed)",
                a.dims(),
                b.dims()
            );
        }
        let r = b.rank();
        let b = if self.trans_b {
            b.transpose(r - 2, r - 1)?
        } else {
            b.clone()
        };
        // The leading axes broadcast, then flattened into one batch of
        // matrices (candle multiplies rank-3 batches reliably).
        let lead =
            crate::broadcast_shape(&a.dims()[..r - 2], &b.dims()[..r - 2]).ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "shapes {:?} and {:?} do not broadcast",
                    a.dims(),
                    b.dims()
                ))
            })?;
        let (m, k, n) = (a.dim(r - 2)?, a.dim(r - 1)?, b.dim(r - 1)?);
        let flat: usize = lead.iter().product();
        let with = |x: &Tensor, rows: usize, cols: usize| -> Result<Tensor> {
            let mut dims = lead.clone();
            dims.extend([rows, cols]);
            x.broadcast_as(dims)?
                .contiguous()?
                .reshape((flat, rows, cols))
        };
        let y = with(a, m, k)?.matmul(&with(&b, k, n)?)?;
        let mut dims = lead;
        dims.extend([m, n]);
        y.reshape(dims)
    }

    /// The per-sample output shape.
    pub(crate) fn infer(
        &self,
        a: &[usize],
        b: &[usize],
    ) -> std::result::Result<Vec<usize>, String> {
        let (m, k) = last_two(a)?;
        let (rows, cols) = last_two(b)?;
        let (k2, n) = if self.trans_b {
            (cols, rows)
        } else {
            (rows, cols)
        };
        if k != k2 || a.len() != b.len() {
            return Err(format!("shapes {a:?} and {b:?} do not multiply"));
        }
        let lead = crate::broadcast_shape(&a[..a.len() - 2], &b[..b.len() - 2])
            .ok_or(format!("shapes {a:?} and {b:?} do not broadcast"))?;
        let mut out = lead;
        out.extend([m, n]);
        Ok(out)
    }

    /// Multiply-accumulates per sample.
    pub(crate) fn macs(&self, a: &[usize], out: &[usize]) -> Option<u64> {
        let k = a.last().copied().unwrap_or(0) as u64;
        out.iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?
            .checked_mul(k)
    }
}

/// True when new output neurons of `v` reach the query side of a product
/// of queries by keys read along the head dimension ([`DimProduct::Scores`])
/// through ops without weights (regroups, rotary slices, stacks, adds,
/// elementwise scales). Such neurons must start at zero: the product of a
/// new query dimension with a new key dimension has no weighted consumer
/// whose zero columns would hide it, so the query's zeros keep the
/// function (the keys' stay random, so the dimension can learn).
pub(crate) fn feeds_query(
    g: &graft_core::Graph,
    op_of: &dyn Fn(graft_core::VertexId) -> Option<Op>,
    v: graft_core::VertexId,
) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![v];
    while let Some(u) = stack.pop() {
        let Ok(ux) = g.vertex(u) else { continue };
        for &o in ux.outputs() {
            let Ok(ox) = g.vertex(o) else { continue };
            if let Some(Op::MatMul(m)) = op_of(o) {
                if m.dims == DimProduct::Scores && ox.inputs().first() == Some(&u) {
                    return true;
                }
            }
            let passes = ox.kind().is_transparent() || ox.maps_neurons();
            if passes && seen.insert(o) {
                stack.push(o);
            }
        }
    }
    false
}

fn last_two(s: &[usize]) -> std::result::Result<(usize, usize), String> {
    match s {
        [.., m, n] => Ok((*m, *n)),
        _ => Err(format!("a product needs two axes per sample, not {s:?}")),
    }
}

/// A learned constant of per-sample shape `shape` repeated over the batch
/// of its input (which supplies only the batch size): a class token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The per-sample shape (with the current nout on the neuron axis).
    pub shape: Vec<usize>,
    /// The neuron axis (batch axis included), if any; the parameter's
    /// entries along it follow the vertex's neurons.
    pub neurons: Option<usize>,
}

impl Token {
    /// The size rule: absorbing (its input's size is free); one fixed
    /// neuron when the value has no neuron axis.
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: SizeKind::Absorb,
            constraints: if self.neurons.is_none() {
                vec![Constraint::Fixed]
            } else {
                Vec::new()
            },
        }
    }

    /// The constant, `value`, of the per-sample shape (new neurons' entries
    /// 0).
    pub(crate) fn params(&self, nout: usize) -> Vec<ParamSpec> {
        let mut shape = self.shape.clone();
        let mut roles = vec![Role::Fixed; shape.len()];
        if let Some(a) = self.neurons.and_then(|a| a.checked_sub(1)) {
            if a < shape.len() {
                shape[a] = nout;
                roles[a] = Role::Out;
            }
        }
        vec![ParamSpec {
            name: "value".into(),
            shape,
            roles,
            new_out: Fill::Value(0.0),
            trainable: true,
        }]
    }

    /// The forward pass: the constant once per sample of `x`.
    pub(crate) fn forward(&self, params: &Params, x: &Tensor) -> Result<Tensor> {
        let v = p(params, "value")?;
        let mut dims = vec![x.dim(0)?];
        dims.extend(v.dims());
        v.unsqueeze(0)?.broadcast_as(dims)?.contiguous()
    }

    /// The per-sample output shape.
    pub(crate) fn infer(&self, nout: usize) -> Vec<usize> {
        let mut s = self.shape.clone();
        if let Some(d) = self
            .neurons
            .and_then(|a| a.checked_sub(1))
            .and_then(|a| s.get_mut(a))
        {
            *d = nout;
        }
        s
    }
}

/// A reshape of the whole value, batch axis included: the first axis takes
/// what the others leave (ONNX's `Reshape` to `[-1, rest...]`). Written for
/// a file exported at batch size 1 whose graph folds the batch axis into
/// others (multi-head attention's batch × heads, Swin's windows): at batch
/// 1 it is that file's reshape exactly. When the neuron axis stays whole
/// (the same size, the same values after it: Swin's windows of
/// channels-last tokens) the regroup is invariant and that axis takes its
/// size from the input at run time; otherwise it is frozen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regroup {
    /// The output's axes after the first (with the current nout on the
    /// neuron axis).
    pub rest: Vec<usize>,
    /// The output's neuron axis (batch axis included), if any.
    pub neurons: Option<usize>,
    /// The input's neuron axis when the neurons stay whole, are split into
    /// heads or merged from them.
    #[serde(default)]
    pub from: Option<usize>,
    /// How the neuron axis passes (when `from` is set).
    #[serde(default)]
    pub heads: HeadSplit,
    /// Where the batch goes when the file's batch size is symbolic and the
    /// regroup does not keep it as the outer factor of the first axis (or
    /// the input holds it merged with the neurons): see [`BatchAt`]. None:
    /// the first axis takes what the others leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchAt>,
}

/// A [`Regroup`] read at batch size 1 from a file whose batch size is
/// symbolic, with the batch carried by output axis `axis` (PyTorch's
/// multi-head attention: `[T, B, E]` to `[T, B·H, D]`, `[B·H, T, D]` to
/// `[B, H, T, D]`). The output is `[first, rest...]` at batch size 1 with
/// axis `axis` multiplied by the number of samples, and the neuron count
/// is read from the values per sample: written this way, the regroup is
/// right at any batch size wherever the batch sits in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAt {
    /// The output axis carrying the batch (0 included).
    pub axis: usize,
    /// The output's first axis at batch size 1.
    pub first: usize,
}

/// How a [`Regroup`] passes the neuron axis on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadSplit {
    /// Whole: the same neurons, one to one (invariant).
    #[default]
    Whole,
    /// Split into `[heads, width]`, the heads axis carrying the neurons:
    /// one neuron per `width` input neurons (a core `heads` vertex).
    Split(usize),
    /// Merged with the `width` values after it: neuron `h` becomes `width`
    /// consecutive neurons (a depthwise repeat; the head merge, and
    /// grouped-query attention's repeat of the KV heads).
    Merge(usize),
    /// Split into `[blocks, width]`, the width axis carrying the neurons:
    /// neuron `k` stands for input neuron `k` of every block (a core
    /// `fold` vertex; the head split read along the head dimension).
    Fold(usize),
    /// Merged with the `blocks` values before it: the neurons repeated
    /// once per block (a core `tile` vertex; the head merge read along the
    /// head dimension).
    Tile(usize),
}

impl Regroup {
    /// True when the neuron axis stays whole (the vertex is invariant).
    pub fn keeps_neurons(&self) -> bool {
        self.from.is_some()
            && self
                .neurons
                .is_some_and(|a| (1..=self.rest.len()).contains(&a))
    }

    /// The size rule: invariant when the neurons stay whole, a head split
    /// or merge when they are regrouped so, else frozen.
    pub(crate) fn declare(&self) -> Declared {
        let (kind, constraints) = match (self.keeps_neurons(), self.heads) {
            (false, _) => (SizeKind::Immutable, Vec::new()),
            (true, HeadSplit::Whole) => (SizeKind::Invariant, Vec::new()),
            (true, HeadSplit::Split(width)) => {
                (SizeKind::Absorb, vec![Constraint::Heads { width }])
            }
            (true, HeadSplit::Merge(width)) => {
                (SizeKind::Absorb, vec![Constraint::depthwise(width)])
            }
            (true, HeadSplit::Fold(blocks)) => {
                (SizeKind::Absorb, vec![Constraint::Fold { blocks }])
            }
            (true, HeadSplit::Tile(blocks)) => {
                (SizeKind::Absorb, vec![Constraint::Tile { blocks }])
            }
        };
        Declared { kind, constraints }
    }

    /// The output's nout for an input of `n` neurons (when `from` is set).
    pub fn nout_for(&self, n: usize) -> std::result::Result<usize, String> {
        match self.heads {
            HeadSplit::Whole => Ok(n),
            HeadSplit::Split(w) if w > 0 && n.is_multiple_of(w) => Ok(n / w),
            HeadSplit::Split(w) => Err(format!("{n} neurons do not split into heads of {w}")),
            HeadSplit::Merge(w) => Ok(n * w),
            HeadSplit::Fold(b) if b > 0 && n.is_multiple_of(b) => Ok(n / b),
            HeadSplit::Fold(b) => Err(format!("{n} neurons do not fold into {b} blocks")),
            HeadSplit::Tile(b) => Ok(n * b),
        }
    }

    /// `rest` with the neuron axis at `n` neurons.
    pub fn rest_at(&self, n: usize) -> Vec<usize> {
        let mut rest = self.rest.clone();
        if let (true, Some(a)) = (self.keeps_neurons(), self.neurons) {
            rest[a - 1] = n;
        }
        rest
    }

    /// The output's first axis for `total` values and these other axes.
    pub fn lead(&self, total: usize, rest: &[usize]) -> std::result::Result<usize, String> {
        let inner: usize = rest.iter().product();
        if inner == 0 || !total.is_multiple_of(inner) {
            return Err(format!("{total} values do not regroup to [-1, {rest:?}]"));
        }
        Ok(total / inner)
    }

    /// The output's axes after the first for an input of full shape `s`
    /// (batch axis included).
    pub fn target(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        match self.from.filter(|_| self.keeps_neurons()) {
            Some(f) => {
                let n = *s.get(f).ok_or(format!("no axis {f} in {s:?}"))?;
                Ok(self.rest_at(self.nout_for(n)?))
            }
            None => Ok(self.rest.clone()),
        }
    }

    /// The forward pass on `rows` samples.
    pub(crate) fn forward(&self, x: &Tensor, rows: usize) -> Result<Tensor> {
        let dims = match self.batch {
            Some(at) => self.spread(at, x.elem_count(), rows),
            None => self.target(x.dims()).and_then(|rest| {
                let mut dims = vec![self.lead(x.elem_count(), &rest)?];
                dims.extend(&rest);
                Ok(dims)
            }),
        };
        x.reshape(dims.map_err(candle_core::Error::Msg)?)
    }

    /// The output's dimensions for `total` values of `rows` samples, the
    /// batch carried by axis `at.axis`: the neuron count is what each
    /// sample's values leave after the other axes.
    pub fn spread(
        &self,
        at: BatchAt,
        total: usize,
        rows: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let bad = || format!("{total} values of {rows} samples do not regroup to {self:?}");
        if rows == 0 || !total.is_multiple_of(rows) {
            return Err(bad());
        }
        let per = total / rows;
        let mut dims = vec![at.first];
        dims.extend(match (self.keeps_neurons(), self.neurons) {
            (true, Some(a)) => {
                let others: usize = at.first
                    * self
                        .rest
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i + 1 != a)
                        .map(|(_, &d)| d)
                        .product::<usize>();
                if others == 0 || !per.is_multiple_of(others) {
                    return Err(bad());
                }
                self.rest_at(per / others)
            }
            _ => self.rest.clone(),
        });
        if dims.iter().product::<usize>() != per {
            return Err(bad());
        }
        let d = dims.get_mut(at.axis).ok_or_else(bad)?;
        *d *= rows;
        Ok(dims)
    }

    /// The per-sample output shape (the input read at batch size 1) at
    /// `nout` neurons.
    pub(crate) fn infer(&self, nout: usize) -> Vec<usize> {
        self.rest_at(nout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn a_batched_product_of_two_values() {
        // a = [[1, 2], [3, 4]], b = [[1, 0], [1, 1]] in one batch entry:
        // a·b = [[3, 2], [7, 4]]; a·bᵀ = [[1, 3], [3, 7]].
        let a = t(&[1., 2., 3., 4.], &[1, 2, 2]);
        let b = t(&[1., 0., 1., 1.], &[1, 2, 2]);
        let m = MatMul {
            trans_b: false,
            neurons: None,
            rank: 3,
            heads: false,
            dims: DimProduct::No,
        };
        let y = m.forward(&a, &b).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![3., 2., 7., 4.]
        );
        let mt = MatMul {
            trans_b: true,
            neurons: None,
            rank: 3,
            heads: false,
            dims: DimProduct::No,
        };
        let y = mt.forward(&a, &b).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 3., 3., 7.]
        );
        assert_eq!(m.declare().kind, SizeKind::Immutable);
        // Heads broadcast: [2, 3, 4] by [1, 4, 5] per sample.
        assert_eq!(m.infer(&[2, 3, 4], &[1, 4, 5]).unwrap(), vec![2, 3, 5]);
        assert_eq!(mt.infer(&[2, 3, 4], &[2, 5, 4]).unwrap(), vec![2, 3, 5]);
        assert_eq!(m.macs(&[2, 3, 4], &[2, 3, 5]), Some(2 * 3 * 5 * 4));
        assert!(m.infer(&[2, 3, 4], &[2, 5, 4]).is_err());
        assert!(m.forward(&a, &t(&[1., 2.], &[2])).is_err());
    }

    #[test]
    fn a_token_repeats_over_the_batch() {
        let tok = Token {
            shape: vec![1, 3],
            neurons: Some(2),
        };
        let mut ps = Params::new();
        ps.insert("value".into(), t(&[1., 2., 3.], &[1, 3]));
        let x = Tensor::zeros((2, 5, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let y = tok.forward(&ps, &x).unwrap();
        assert_eq!(y.dims(), &[2, 1, 3]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 2., 3., 1., 2., 3.]
        );
        let spec = &tok.params(4)[0];
        assert_eq!(spec.shape, vec![1, 4]);
        assert_eq!(spec.roles, vec![Role::Fixed, Role::Out]);
        assert_eq!(tok.infer(4), vec![1, 4]);
        assert_eq!(tok.declare().kind, SizeKind::Absorb);
    }

    #[test]
    fn a_regroup_moves_values_across_the_batch_axis() {
        // [1, 2, 3] -> [-1, 3] = [2, 3], the values in order.
        // Frozen: the neurons (the last axis of 3) do not stay whole.
        let r = Regroup {
            rest: vec![3],
            neurons: Some(1),
            from: None,
            heads: HeadSplit::Whole,
            batch: None,
        };
        let x = t(&[0., 1., 2., 3., 4., 5.], &[1, 2, 3]);
        let y = r.forward(&x, 1).unwrap();
        assert_eq!(y.dims(), &[2, 3]);
        assert_eq!(r.infer(3), vec![3]);
        assert_eq!(r.declare().kind, SizeKind::Immutable);
        let bad = Regroup {
            rest: vec![4],
            neurons: None,
            from: None,
            heads: HeadSplit::Whole,
            batch: None,
        };
        assert!(bad.forward(&x, 1).is_err());
        // Windows of channels-last tokens: [1, 2, 2, C] to [-1, 2, C]
        // keeps C whole, so C follows the input (here 3, then 2).
        let w = Regroup {
            rest: vec![2, 3],
            neurons: Some(2),
            from: Some(3),
            heads: HeadSplit::Whole,
            batch: None,
        };
        assert_eq!(w.declare().kind, SizeKind::Invariant);
        let x = Tensor::arange(0f32, 8., &Device::Cpu)
            .unwrap()
            .reshape((1, 2, 2, 2))
            .unwrap();
        let y = w.forward(&x, 1).unwrap();
        assert_eq!(y.dims(), &[2, 2, 2]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            (0..8).map(|v| v as f32).collect::<Vec<_>>()
        );
        assert_eq!(w.infer(2), vec![2, 2]);
    }

    #[test]
    fn a_regroup_with_the_batch_on_another_axis_spreads_it_there() {
        // torch's `[T, N, E]` viewed as `[T, N·heads, d]`: T = 5, E = 8 in
        // heads of 4, read at batch size 1 as `[5, 2, 4]` with the batch on
        // axis 1 (merged with the heads, the neuron axis).
        let r = Regroup {
            rest: vec![2, 4],
            neurons: Some(1),
            from: Some(2),
            heads: HeadSplit::Split(4),
            batch: Some(BatchAt { axis: 1, first: 5 }),
        };
        // 3 samples of 5 × 8 values: [5, 3·2, 4].
        assert_eq!(
            r.spread(BatchAt { axis: 1, first: 5 }, 120, 3),
            Ok(vec![5, 6, 4])
        );
        // One head left (E = 4): the neuron count is read per sample.
        assert_eq!(
            r.spread(BatchAt { axis: 1, first: 5 }, 60, 3),
            Ok(vec![5, 3, 4])
        );
        let x = Tensor::arange(0f32, 120., &Device::Cpu)
            .unwrap()
            .reshape((5, 3, 8))
            .unwrap();
        let y = r.forward(&x, 3).unwrap();
        assert_eq!(y.dims(), &[5, 6, 4]);
        // The values in order (a reshape): element [0, 1, 0] is x[0, 0, 4].
        assert_eq!(
            y.get(0)
                .unwrap()
                .get(1)
                .unwrap()
                .get(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            4.0
        );
        // Values that are no whole number of samples, or of heads, are
        // errors, not a wrong shape.
        assert!(r.spread(BatchAt { axis: 1, first: 5 }, 121, 3).is_err());
        assert!(r.spread(BatchAt { axis: 1, first: 5 }, 126, 3).is_err());
        assert!(r.forward(&x, 4).is_err());
    }

    #[test]
    fn cost_tracks_values_moved_across_the_batch_axis() {
        // [1, 2, 3] transposed to [2, 1, 3] (the first axis is 2 at batch
        // size 1), then regrouped to [-1, 2, 3] = [1, 2, 3], the neurons
        // (2, with 3 values after them) whole.
        use crate::{Model, Op, Transpose};
        let mut m = Model::new();
        let x = m.input("x", 2).unwrap();
        let tr = Transpose {
            perm: vec![1, 0, 2],
            axis: Some(0),
        };
        let t = m.add("t", Op::Transpose(tr), &[x], None).unwrap();
        let back = Regroup {
            rest: vec![2, 3],
            neurons: Some(1),
            from: Some(0),
            heads: HeadSplit::Whole,
            batch: None,
        };
        let r = m.add("r", Op::Regroup(back), &[t], Some(2)).unwrap();
        let c = m.cost(&[vec![2, 3]]).unwrap();
        assert_eq!(c.shapes[&t], vec![1, 3]);
        assert_eq!(c.leads.get(&t), Some(&2));
        assert_eq!(c.shapes[&r], vec![2, 3]);
        assert!(!c.leads.contains_key(&r));
        assert_eq!(
            m.graph().vertex(r).unwrap().kind(),
            graft_core::SizeKind::Invariant
        );
    }
}
