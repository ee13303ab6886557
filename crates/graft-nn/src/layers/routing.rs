//! The routing family: the `k` largest (or smallest) entries of the last
//! axis ([`TopK`]: a mixture of experts' router choosing experts per token)
//! and rows of a constant table picked by computed indices ([`GatherRows`]:
//! the chosen experts' weight matrices), and [`RoutedLinear`]: a dense
//! layer whose weight matrix each sample picks from such a table (an
//! expert's projection: the gather of its matrix and the product with the
//! token, read as one op). A language model exported with its experts as
//! stacked tables (Mixtral through Hugging Face's batched expert
//! implementation) routes with these. Their ONNX import and export live in
//! graft-onnx's `ops/routing.rs`.
//!
//! Experts are neurons of the router: a top-k reads the router's output
//! freely down to `k` neurons (`Constraint::NinAtLeast`), and each expert
//! table's rows follow those neurons (the table's router input), so
//! dropping an expert drops its router row and its rows in every table.
//! An expert's own width (its MLP neurons) is the routed layers' output
//! and input axes, shared by every expert: the same neurons are kept in
//! each, as in a stacked `[E, F, H]` tensor.

use candle_core::{DType, Result, Tensor};
use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

use super::{p, Params};
use crate::op::{Declared, Fill, ParamSpec, Role};

/// The `k` largest (or smallest) entries along the last axis, sorted (ties:
/// the lower index first, as ONNX's `TopK`): their values, or their
/// indices as float numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopK {
    /// How many entries.
    pub k: usize,
    /// The largest (else the smallest).
    pub largest: bool,
    /// This vertex gives the indices (else the values).
    pub indices: bool,
}

impl TopK {
    /// The size rule: absorbing with one fixed neuron, reading at least
    /// `k` entries.
    pub(crate) fn declare(&self) -> Declared {
        // Its input's size is free down to k (the experts it chooses
        // among); its own output has no neuron axis.
        Declared {
            kind: SizeKind::Absorb,
            constraints: vec![
                Constraint::Fixed,
                Constraint::NinAtLeast {
                    input: 0,
                    min: self.k,
                },
            ],
        }
    }

    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = x
            .rank()
            .checked_sub(1)
            .ok_or_else(|| candle_core::Error::Msg("top-k of a scalar".into()))?;
        let n = x.dim(last)?;
        if self.k == 0 || self.k > n {
            candle_core::bail!("top-{} of {n} entries", self.k);
        }
        // A stable order by value (the lower index first among equals),
        // computed on the host: candle's sort does not promise stability.
        let rows = x.elem_count() / n;
        let vals = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let mut idx = Vec::with_capacity(rows * self.k);
        let mut order: Vec<u32> = Vec::with_capacity(n);
        for r in 0..rows {
            let row = &vals[r * n..(r + 1) * n];
            order.clear();
            order.extend(0..n as u32);
            if self.largest {
                order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
            } else {
                order.sort_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]));
            }
            idx.extend_from_slice(&order[..self.k]);
        }
        let mut dims = x.dims().to_vec();
        dims[last] = self.k;
        let idx = Tensor::from_vec(idx, dims, x.device())?;
        if self.indices {
            idx.to_dtype(x.dtype())
        } else {
            x.contiguous()?.gather(&idx, last)
        }
    }

    /// The per-sample output shape.
    pub(crate) fn infer(&self, x: &[usize]) -> std::result::Result<Vec<usize>, String> {
        let mut s = x.to_vec();
        match s.last_mut() {
            Some(d) if self.k <= *d && self.k > 0 => {
                *d = self.k;
                Ok(s)
            }
            Some(d) => Err(format!("top-{} of {d} entries", self.k)),
            // A value with only the batch axis per sample: the top-k runs
            // along the batch axis itself, which graft does not do.
            None => Err("top-k along the batch axis".into()),
        }
    }
}

/// Rows of a constant table picked by computed indices: ONNX's `GatherND`
/// with indices whose last axis has one entry (`batch_dims` 0), or a
/// `Gather` on axis 0. The output is the indices' shape without that last
/// axis, then a row's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatherRows {
    /// The table's shape (rows first).
    pub table: Vec<usize>,
    /// A second input whose neurons are the table's rows (the router
    /// output, one neuron per expert, whose top-k chose the indices): the
    /// rows are kept, dropped and added with its neurons. The forward pass
    /// does not read it.
    #[serde(default)]
    pub rows_from: bool,
}

impl GatherRows {
    /// The size rule: one fixed neuron (the output has no neuron axis),
    /// its inputs' sizes free.
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: SizeKind::Absorb,
            constraints: vec![Constraint::Fixed],
        }
    }

    /// The table, `table` (trainable: the rows are weights); its rows
    /// follow input 1's neurons when `rows_from`.
    pub(crate) fn params(&self, nin: &[usize]) -> Vec<ParamSpec> {
        let mut roles = vec![Role::Fixed; self.table.len()];
        let mut shape = self.table.clone();
        if self.rows_from {
            if let Some(r) = roles.first_mut() {
                *r = Role::In(1);
            }
            if let (Some(d), Some(&n)) = (shape.first_mut(), nin.get(1)) {
                *d = n;
            }
        }
        vec![ParamSpec {
            name: "table".into(),
            shape,
            roles,
            new_out: Fill::Value(0.0),
            trainable: true,
        }]
    }

    /// Take the table's rows from the router after a plan.
    pub(crate) fn follow(&mut self, v: &graft_core::Vertex) {
        if let (true, Some(&n), Some(d)) = (self.rows_from, v.nin().get(1), self.table.first_mut())
        {
            *d = n;
        }
    }

    /// The forward pass: `ids` of shape `[.., 1]`.
    pub(crate) fn forward(&self, params: &Params, ids: &Tensor) -> Result<Tensor> {
        let t = p(params, "table")?;
        let dims = ids.dims();
        if dims.last() != Some(&1) {
            candle_core::bail!("row indices of shape {dims:?} (the last axis must be 1)");
        }
        let idx = row_indices(ids, t.dim(0)?)?;
        let n = idx.len();
        let picked = t.index_select(&Tensor::from_vec(idx, n, t.device())?, 0)?;
        let mut out = dims[..dims.len() - 1].to_vec();
        out.extend(&t.dims()[1..]);
        picked.reshape(out)
    }

    /// The per-sample output shape for indices of per-sample shape `ids`.
    pub(crate) fn infer(&self, ids: &[usize]) -> std::result::Result<Vec<usize>, String> {
        match ids.split_last() {
            Some((1, lead)) => {
                let mut s = lead.to_vec();
                s.extend(&self.table[1..]);
                Ok(s)
            }
            // Per sample the indices may be just the batch axis's one
            // entry: [N, 1] has per-sample shape [1].
            _ => Err(format!("row indices of per-sample shape {ids:?}")),
        }
    }

    /// Multiply-accumulates: none (a copy).
    pub(crate) fn macs(&self) -> u64 {
        0
    }
}

/// A dense layer whose weights each sample picks from a table by a
/// computed index: `y[n] = T[id[n]] · x[n]` for a table `T` of shape
/// `[E, nout, nin]`, ids of shape `[.., 1]` and `x` of shape
/// `[.., nin, c]` (ONNX: a `GatherND` of the table by the ids, then a
/// `MatMul` by `x`). The output, `[.., nout, c]`, carries its neurons on
/// its second-to-last axis. Inputs: the ids, `x`, and with `rows_from`
/// the router whose neurons the table's rows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedLinear {
    /// The table's rows (experts); with `rows_from`, the router's size.
    pub experts: usize,
    /// Input 2 is the router: the table's rows are its neurons.
    #[serde(default)]
    pub rows_from: bool,
    /// The output's rank, batch axis included (at least 3).
    pub rank: usize,
}

impl RoutedLinear {
    /// The size rule: absorbing; its ids stay as they are (their
    /// producer is a top-k's fixed neuron).
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: SizeKind::Absorb,
            constraints: Vec::new(),
        }
    }

    /// The table `[experts, nout, nin]`: rows following the router (input
    /// 2) when `rows_from`, columns following `x` (input 1).
    pub(crate) fn params(&self, nin: &[usize], nout: usize) -> Vec<ParamSpec> {
        let x = nin.get(1).copied().unwrap_or(1);
        // Roles do not depend on sizes (a layout is read with any).
        let (rows, role) = if self.rows_from {
            (nin.get(2).copied().unwrap_or(self.experts), Role::In(2))
        } else {
            (self.experts, Role::Fixed)
        };
        vec![ParamSpec {
            name: "table".into(),
            shape: vec![rows, nout, x],
            roles: vec![role, Role::Out, Role::In(1)],
            new_out: Fill::Random,
            trainable: true,
        }]
    }

    /// Take the number of experts from the router after a plan.
    pub(crate) fn follow(&mut self, v: &graft_core::Vertex) {
        if let (true, Some(&n)) = (self.rows_from, v.nin().get(2)) {
            self.experts = n;
        }
    }

    /// The output's neuron axis (batch axis included).
    pub(crate) fn neuron_axis(&self) -> usize {
        self.rank.saturating_sub(2)
    }

    /// The forward pass on `ids` (`[.., 1]`) and `x` (`[.., nin, c]`).
    pub(crate) fn forward(&self, params: &Params, ids: &Tensor, x: &Tensor) -> Result<Tensor> {
        let t = p(params, "table")?;
        let (rows, nout, nin) = t.dims3()?;
        let lead = match ids.dims().split_last() {
            Some((1, lead)) => lead.to_vec(),
            _ => candle_core::bail!(
                "row indices of shape {:?} (the last axis must be 1)",
                ids.dims()
            ),
        };
        let xd = x.dims();
        if xd.len() != lead.len() + 2 || xd[..lead.len()] != lead[..] || xd[lead.len()] != nin {
            candle_core::bail!(
                "tokens of shape {xd:?} for indices of shape {:?} and a table of shape {:?}",
                ids.dims(),
                t.dims()
            );
        }
        let cols = xd[lead.len() + 1];
        let idx = row_indices(ids, rows)?;
        let n = idx.len();
        let picked = t.index_select(&Tensor::from_vec(idx, n, t.device())?, 0)?;
        let y = picked.matmul(&x.reshape((n, nin, cols))?.contiguous()?)?;
        let mut out = lead;
        out.extend([nout, cols]);
        y.reshape(out)
    }

    /// The per-sample output shape for ids and tokens of per-sample shapes
    /// `ids` and `x`.
    pub(crate) fn infer(
        &self,
        ids: &[usize],
        x: &[usize],
        nout: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        match (ids.split_last(), x.len()) {
            (Some((1, lead)), r) if r == lead.len() + 2 && x[..lead.len()] == *lead => {
                let mut s = lead.to_vec();
                s.extend([nout, x[r - 1]]);
                Ok(s)
            }
            _ => Err(format!(
                "row indices of per-sample shape {ids:?} for tokens of shape {x:?}"
            )),
        }
    }

    /// Multiply-accumulates per sample: one `nout × nin` product per
    /// column.
    pub(crate) fn macs(&self, x: &[usize], nout: usize) -> Option<u64> {
        x.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))?
            .checked_mul(nout as u64)
    }
}

/// Checked row indices (negative ones count from the end) of a table of
/// `rows` rows.
fn row_indices(ids: &Tensor, rows: usize) -> Result<Vec<u32>> {
    let rows = rows as i64;
    let vals = ids.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let mut idx = Vec::with_capacity(vals.len());
    for x in vals {
        let i = x as i64;
        if !x.is_finite() || x.fract() != 0.0 || i < -rows || i >= rows {
            candle_core::bail!("row index {x} of a table of {rows} rows");
        }
        idx.push(i.rem_euclid(rows.max(1)) as u32);
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn top_k_values_and_indices_with_ties_in_index_order() {
        // Row [0.1, 0.7, 0.7, 0.2]: the two largest are 0.7 at 1 and 0.7
        // at 2 (the lower index first); the smallest two 0.1 (0), 0.2 (3).
        let x = t(&[0.1, 0.7, 0.7, 0.2, 4., 3., 2., 1.], &[2, 4]);
        let top = |largest, indices| {
            TopK {
                k: 2,
                largest,
                indices,
            }
            .forward(&x)
            .unwrap()
        };
        let v = |y: Tensor| y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(v(top(true, true)), vec![1., 2., 0., 1.]);
        assert_eq!(v(top(true, false)), vec![0.7, 0.7, 4., 3.]);
        assert_eq!(v(top(false, true)), vec![0., 3., 3., 2.]);
        let k = TopK {
            k: 2,
            largest: true,
            indices: false,
        };
        assert_eq!(k.infer(&[5, 4]).unwrap(), vec![5, 2]);
        assert!(k.infer(&[1]).is_err());
        assert!(TopK {
            k: 5,
            largest: true,
            indices: false
        }
        .forward(&x)
        .is_err());
        assert_eq!(k.declare().kind, SizeKind::Absorb);
        assert!(k
            .declare()
            .constraints
            .contains(&Constraint::NinAtLeast { input: 0, min: 2 }));
    }

    #[test]
    fn rows_of_a_table_by_computed_indices() {
        // Table of 3 rows of [1, 2]; indices [[2], [0], [-1]].
        let g = GatherRows {
            table: vec![3, 1, 2],
            rows_from: false,
        };
        let mut ps = Params::new();
        ps.insert("table".into(), t(&[0., 1., 10., 11., 20., 21.], &[3, 1, 2]));
        let y = g.forward(&ps, &t(&[2., 0., -1.], &[3, 1])).unwrap();
        assert_eq!(y.dims(), &[3, 1, 2]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![20., 21., 0., 1., 20., 21.]
        );
        assert_eq!(g.infer(&[1]).unwrap(), vec![1, 2]);
        assert!(g.infer(&[2]).is_err());
        assert!(g.forward(&ps, &t(&[3.], &[1, 1])).is_err());
        assert!(g.forward(&ps, &t(&[0.5], &[1, 1])).is_err());
        assert!(g.forward(&ps, &t(&[0., 1.], &[1, 2])).is_err());
        // Rows following a router's neurons: the table's first axis is
        // input 1's size.
        let r = GatherRows {
            table: vec![3, 1, 2],
            rows_from: true,
        };
        let spec = &r.params(&[1, 2])[0];
        assert_eq!(spec.shape, vec![2, 1, 2]);
        assert_eq!(spec.roles[0], Role::In(1));
        // An edge edit may not take its indices or its router away.
        let mut op = crate::op::Op::GatherRows(r);
        assert!(op.input_edited(1, false).is_err());
        assert!(op.input_edited(0, false).is_err());
        assert!(op.input_edited(2, true).is_ok());
    }

    #[test]
    fn an_expert_projection_multiplies_each_token_by_its_experts_matrix() {
        // Two experts of 2x3 matrices; tokens [3, 1] (one column each).
        let r = RoutedLinear {
            experts: 2,
            rows_from: true,
            rank: 3,
        };
        let mut ps = Params::new();
        let table: Vec<f32> = (0..12).map(|i| i as f32).collect();
        ps.insert("table".into(), t(&table, &[2, 2, 3]));
        let ids = t(&[1., 0., -1.], &[3, 1]);
        let x = t(&[1., 0., 0., 0., 1., 0., 1., 1., 1.], &[3, 3, 1]);
        let y = r.forward(&ps, &ids, &x).unwrap();
        assert_eq!(y.dims(), &[3, 2, 1]);
        // Token 0 by expert 1's first column (6, 9); token 1 by expert 0's
        // second column (1, 4); token 2 by expert 1's row sums (21, 30).
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![6., 9., 1., 4., 21., 30.]
        );
        assert_eq!(r.infer(&[1], &[3, 1], 2).unwrap(), vec![2, 1]);
        assert!(r.infer(&[2], &[3, 1], 2).is_err());
        assert!(r.infer(&[1], &[3], 2).is_err());
        assert_eq!(r.macs(&[3, 1], 2), Some(6));
        assert!(r
            .forward(&ps, &t(&[2.], &[1, 1]), &t(&[0.; 3], &[1, 3, 1]))
            .is_err());
        assert!(r.forward(&ps, &ids, &t(&[0.; 6], &[3, 2, 1])).is_err());
        // The table: rows following the router (input 2), the outputs,
        // columns following the tokens (input 1), whatever the sizes given.
        for nin in [&[1usize][..], &[1, 3, 2]] {
            let spec = &r.params(nin, 2)[0];
            assert_eq!(spec.roles, vec![Role::In(2), Role::Out, Role::In(1)]);
        }
        assert_eq!(r.params(&[1, 5, 7], 4)[0].shape, vec![7, 4, 5]);
        let fixed = RoutedLinear {
            rows_from: false,
            ..r
        };
        assert_eq!(fixed.params(&[1, 3], 2)[0].roles[0], Role::Fixed);
        let mut op = crate::op::Op::RoutedLinear(r);
        assert_eq!(op.neuron_axis(), Some(1));
        for k in 0..3 {
            assert!(op.input_edited(k, false).is_err());
        }
    }
}
