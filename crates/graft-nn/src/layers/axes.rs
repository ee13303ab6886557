//! The axes family: ops that move, regroup or reduce axes: [`Transpose`],
//! [`View`] (a reshape that keeps the neuron axis whole: unsqueeze,
//! squeeze, flattening of unit axes), [`Shuffle`] (a channel shuffle: a
//! fixed permutation of the neurons in groups) and [`Reduce`].
//!
//! Each value has a neuron axis (the one the core's sizes count) or none.
//! These ops say where it goes: a transpose moves it, a view keeps it whole
//! at a new position, a reduction over other axes keeps it, and a reduction
//! over it removes it (the result is one fixed neuron, and the input's size
//! is free). Their size rules, forward passes and shape rules are here;
//! their ONNX import and export live in graft-onnx's `ops/axes.rs`.

use candle_core::{Result, Tensor};
use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

use crate::op::Declared;

/// A permutation of the axes (batch axis included; it stays first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transpose {
    /// Output axis `i` is input axis `perm[i]`.
    pub perm: Vec<usize>,
    /// The output's neuron axis, if it has one.
    pub axis: Option<usize>,
}

impl Transpose {
    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.permute(self.perm.clone())?.contiguous()
    }

    /// The per-sample output shape. A permutation that moves the batch
    /// axis (a file exported at batch size 1 that folds it into others) is
    /// read at batch size 1.
    pub(crate) fn infer(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        let mut full = vec![1];
        full.extend(s);
        let mut seen = vec![false; full.len()];
        if self.perm.len() != full.len()
            || self
                .perm
                .iter()
                .any(|&a| a >= full.len() || std::mem::replace(&mut seen[a], true))
        {
            return Err(format!(
                "permutation {:?} for a value of per-sample shape {s:?}",
                self.perm
            ));
        }
        Ok(self.perm[1..].iter().map(|&a| full[a]).collect())
    }
}

/// One per-sample dimension of a [`View`]'s target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewDim {
    /// A fixed size.
    Fixed(usize),
    /// The neuron axis: its size is the input's neuron count.
    Neurons,
}

/// A reshape that keeps the neuron axis whole (its size may move to
/// another position; unit axes come and go around it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// The per-sample target shape (the batch axis is kept).
    pub dims: Vec<ViewDim>,
    /// The input's neuron axis (batch axis included), if it has one.
    pub from: Option<usize>,
}

impl View {
    /// The output's neuron axis (batch axis included).
    pub fn axis(&self) -> Option<usize> {
        self.dims
            .iter()
            .position(|d| *d == ViewDim::Neurons)
            .map(|a| a + 1)
    }

    fn target(&self, neurons: usize) -> Vec<usize> {
        self.dims
            .iter()
            .map(|d| match d {
                ViewDim::Fixed(n) => *n,
                ViewDim::Neurons => neurons,
            })
            .collect()
    }

    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let neurons = match self.from {
            Some(a) => x.dim(a)?,
            None => 1,
        };
        let mut dims = vec![x.dim(0)?];
        dims.extend(self.target(neurons));
        x.reshape(dims)
    }

    /// The per-sample output shape at `nout` neurons.
    pub(crate) fn infer(
        &self,
        s: &[usize],
        nout: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let out = self.target(nout);
        let (a, b): (usize, usize) = (s.iter().product(), out.iter().product());
        if a != b {
            return Err(format!("cannot view {s:?} as {out:?}"));
        }
        Ok(out)
    }
}

/// A reduction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reducer {
    /// Mean.
    Mean,
    /// Sum.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Product.
    Prod,
    /// √Σx².
    L2,
    /// Σ|x|.
    L1,
    /// Σx².
    SumSquare,
    /// ln Σ eˣ.
    LogSumExp,
}

impl Reducer {
    /// The ONNX operator.
    pub fn onnx_name(self) -> &'static str {
        match self {
            Reducer::Mean => "ReduceMean",
            Reducer::Sum => "ReduceSum",
            Reducer::Max => "ReduceMax",
            Reducer::Min => "ReduceMin",
            Reducer::Prod => "ReduceProd",
            Reducer::L2 => "ReduceL2",
            Reducer::L1 => "ReduceL1",
            Reducer::SumSquare => "ReduceSumSquare",
            Reducer::LogSumExp => "ReduceLogSumExp",
        }
    }
}

/// A channel shuffle (ShuffleNet): the neuron axis seen as
/// `[groups, width]` is transposed to `[width, groups]`, so output neuron
/// `k · groups + g` is input neuron `g · width + k`. ONNX writes it as a
/// Reshape, a Transpose and a Reshape; graft reads the three as one op so
/// the neurons stay tied through it (`Constraint::Shuffle`): sizes change
/// by whole rows of `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shuffle {
    /// Number of groups, at least 1.
    pub groups: usize,
    /// The neuron axis (batch axis included; never 0).
    pub axis: usize,
}

impl Shuffle {
    /// The size rule: a one-to-one map of neurons in rows of `groups`.
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: SizeKind::Absorb,
            constraints: vec![Constraint::Shuffle {
                groups: self.groups,
            }],
        }
    }

    /// The forward pass (the width comes from the tensor, so a pruned or
    /// widened model needs no change here).
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let c = *dims.get(self.axis).ok_or_else(|| {
            candle_core::Error::Msg(format!("shuffle on axis {} of shape {dims:?}", self.axis))
        })?;
        if self.groups == 0 || !c.is_multiple_of(self.groups) {
            candle_core::bail!("{c} neurons do not split into {} groups", self.groups);
        }
        let mut split = dims[..self.axis].to_vec();
        split.extend([self.groups, c / self.groups]);
        split.extend(&dims[self.axis + 1..]);
        x.reshape(split)?
            .transpose(self.axis, self.axis + 1)?
            .contiguous()?
            .reshape(dims)
    }

    /// The per-sample output shape (the input's).
    pub(crate) fn infer(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        match s.get(self.axis.wrapping_sub(1)) {
            Some(&c) if self.groups > 0 && c.is_multiple_of(self.groups) => Ok(s.to_vec()),
            _ => Err(format!(
                "a shuffle in {} groups on axis {} of per-sample shape {s:?}",
                self.groups, self.axis
            )),
        }
    }
}

/// A reduction over some axes (never the batch axis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reduce {
    /// The function.
    pub f: Reducer,
    /// The reduced axes (batch axis included, so never 0), ascending.
    pub axes: Vec<usize>,
    /// Keep the reduced axes with size 1.
    pub keepdims: bool,
    /// The input's neuron axis, if it has one.
    pub from: Option<usize>,
}

impl Reduce {
    /// True when the neuron axis is reduced away: the output is one fixed
    /// neuron and the input's size is free.
    pub fn over_neurons(&self) -> bool {
        self.from.is_some_and(|a| self.axes.contains(&a))
    }

    /// The output's neuron axis.
    pub fn axis(&self) -> Option<usize> {
        let a = self.from.filter(|_| !self.over_neurons())?;
        if self.keepdims {
            Some(a)
        } else {
            Some(a - self.axes.iter().filter(|&&r| r < a).count())
        }
    }

    /// The size rule.
    pub(crate) fn declare(&self) -> Declared {
        if self.over_neurons() {
            Declared {
                kind: SizeKind::Absorb,
                constraints: vec![Constraint::Fixed],
            }
        } else {
            Declared {
                kind: SizeKind::Invariant,
                constraints: Vec::new(),
            }
        }
    }

    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        // Reduce from the last axis down, keeping dims, so indices stay put.
        for &a in self.axes.iter().rev() {
            y = match self.f {
                Reducer::Mean => y.mean_keepdim(a)?,
                Reducer::Sum => y.sum_keepdim(a)?,
                Reducer::Max => y.max_keepdim(a)?,
                Reducer::Min => y.min_keepdim(a)?,
                Reducer::Prod => prod_keepdim(&y, a)?,
                Reducer::L2 | Reducer::SumSquare => y.sqr()?.sum_keepdim(a)?,
                Reducer::L1 => y.abs()?.sum_keepdim(a)?,
                Reducer::LogSumExp => {
                    let m = y.max_keepdim(a)?;
                    y.broadcast_sub(&m)?.exp()?.sum_keepdim(a)?.log()?.add(&m)?
                }
            };
        }
        if self.f == Reducer::L2 {
            y = y.sqrt()?;
        }
        if !self.keepdims {
            for &a in self.axes.iter().rev() {
                y = y.squeeze(a)?;
            }
        }
        Ok(y)
    }

    /// The per-sample output shape.
    pub(crate) fn infer(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        let mut out = Vec::new();
        for (i, &d) in s.iter().enumerate() {
            if !self.axes.contains(&(i + 1)) {
                out.push(d);
            } else if self.keepdims {
                out.push(1);
            }
        }
        if self.axes.iter().any(|&a| a == 0 || a > s.len()) {
            return Err(format!("axes {:?} for per-sample shape {s:?}", self.axes));
        }
        Ok(out)
    }
}

/// Softmax along one axis (any layout). Over the neuron axis it is not
/// neuron-separable (a neuron added or removed changes every output), but
/// sizes stay tied one to one: invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Softmax {
    /// The normalised axis (batch axis included; never 0).
    pub axis: usize,
    /// The value's neuron axis, if it has one.
    pub from: Option<usize>,
}

impl Softmax {
    /// The forward pass: exp(x − max) / Σ exp(x − max) along the axis.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = x.max_keepdim(self.axis)?;
        let e = x.broadcast_sub(&m)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(self.axis)?)
    }
}

/// Product along an axis, by logarithms of magnitudes and a sign count
/// (candle has no product reduction).
fn prod_keepdim(x: &Tensor, a: usize) -> Result<Tensor> {
    let mag = x.abs()?.log()?.sum_keepdim(a)?.exp()?;
    let negatives = x.lt(0.0)?.to_dtype(x.dtype())?.sum_keepdim(a)?;
    // (−1)^k = 1 − 2·(k mod 2).
    let odd = negatives
        .sub(&negatives.affine(0.5, 0.0)?.floor()?.affine(2.0, 0.0)?)?
        .affine(-2.0, 1.0)?;
    let zero = x.eq(0.0)?.to_dtype(x.dtype())?.max_keepdim(a)?;
    mag.mul(&odd)?.mul(&zero.affine(-1.0, 1.0)?)
}

#[cfg(test)]
mod shuffle_tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_shuffle_interleaves_the_groups() {
        // 6 channels in 2 groups [0 1 2 | 3 4 5] come out as 0 3 1 4 2 5.
        let s = Shuffle { groups: 2, axis: 1 };
        let x = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((1, 6, 1))
            .unwrap();
        let y: Vec<f32> = s
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, [0., 3., 1., 4., 2., 5.]);
        assert_eq!(s.infer(&[6, 1]).unwrap(), vec![6, 1]);
        assert!(s.infer(&[5, 1]).is_err());
        assert!(s
            .forward(&Tensor::zeros((1, 5), candle_core::DType::F32, &Device::Cpu).unwrap())
            .is_err());
        assert_eq!(
            s.declare().constraints,
            vec![Constraint::Shuffle { groups: 2 }]
        );
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
    fn a_reduction_over_the_neurons_frees_the_input() {
        // A layer norm's mean over the last axis of [N, T, C].
        let r = Reduce {
            f: Reducer::Mean,
            axes: vec![2],
            keepdims: true,
            from: Some(2),
        };
        assert!(r.over_neurons());
        assert_eq!(r.axis(), None);
        assert_eq!(r.declare().kind, SizeKind::Absorb);
        assert_eq!(r.infer(&[4, 6]).unwrap(), vec![4, 1]);
        // Spatial mean of [N, C, H, W] without keepdims: neurons stay on 1.
        let s = Reduce {
            f: Reducer::Mean,
            axes: vec![2, 3],
            keepdims: false,
            from: Some(1),
        };
        assert_eq!(s.axis(), Some(1));
        assert_eq!(s.declare().kind, SizeKind::Invariant);
        assert_eq!(s.infer(&[8, 3, 3]).unwrap(), vec![8]);
    }

    #[test]
    fn reductions_compute_what_they_say() {
        // [[1, -2, 3], [0, 4, -1]] along axis 1.
        let x = t(&[1., -2., 3., 0., 4., -1.], &[2, 3]);
        let run = |f| {
            Reduce {
                f,
                axes: vec![1],
                keepdims: false,
                from: None,
            }
            .forward(&x)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
        };
        assert_eq!(run(Reducer::Sum), vec![2., 3.]);
        assert_eq!(run(Reducer::Max), vec![3., 4.]);
        assert_eq!(run(Reducer::Min), vec![-2., -1.]);
        assert_eq!(run(Reducer::L1), vec![6., 5.]);
        assert_eq!(run(Reducer::SumSquare), vec![14., 17.]);
        // 1·(−2)·3 = −6; 0·4·(−1) = 0.
        let p = run(Reducer::Prod);
        assert!((p[0] + 6.0).abs() < 1e-5 && p[1] == 0.0, "{p:?}");
        let l2 = run(Reducer::L2);
        assert!((l2[0] - 14f32.sqrt()).abs() < 1e-6);
        // ln(e + e⁻² + e³) = 3.1328...
        let lse = run(Reducer::LogSumExp);
        let want = (1f32.exp() + (-2f32).exp() + 3f32.exp()).ln();
        assert!((lse[0] - want).abs() < 1e-5);
    }

    #[test]
    fn a_softmax_along_the_last_axis() {
        // softmax([0, ln 3]) = (1/4, 3/4) on each row.
        let x = t(&[0., 3f32.ln(), 0., 3f32.ln()], &[1, 2, 2]);
        let y = Softmax {
            axis: 2,
            from: Some(1),
        }
        .forward(&x)
        .unwrap();
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        for (a, b) in v.iter().zip([0.25, 0.75, 0.25, 0.75]) {
            assert!((a - b).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn a_view_follows_the_neuron_count() {
        // [N, C] -> [N, C, 1, 1] (an SE block's squeeze, unsqueezed).
        let v = View {
            dims: vec![ViewDim::Neurons, ViewDim::Fixed(1), ViewDim::Fixed(1)],
            from: Some(1),
        };
        assert_eq!(v.axis(), Some(1));
        let y = v.forward(&t(&[1., 2., 3., 4., 5., 6.], &[2, 3])).unwrap();
        assert_eq!(y.dims(), &[2, 3, 1, 1]);
        // After pruning to 2 neurons the same view gives [N, 2, 1, 1].
        let y = v.forward(&t(&[1., 2., 3., 4.], &[2, 2])).unwrap();
        assert_eq!(y.dims(), &[2, 2, 1, 1]);
        assert_eq!(v.infer(&[2], 2).unwrap(), vec![2, 1, 1]);
    }

    #[test]
    fn a_transpose_moves_the_axes() {
        let tr = Transpose {
            perm: vec![0, 2, 3, 1],
            axis: Some(3),
        };
        assert_eq!(tr.infer(&[8, 4, 5]).unwrap(), vec![4, 5, 8]);
        let x = t(&(0..8).map(|i| i as f32).collect::<Vec<_>>(), &[1, 2, 2, 2]);
        let y = tr.forward(&x).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2, 2]);
        // y[0, h, w, c] = x[0, c, h, w]: y[0,0,1,1] = x[0,1,0,1] = 5.
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v[3], 5.0);
        // Moving the batch axis is read at batch size 1: [1, 3] to [3, 1].
        let moved = Transpose {
            perm: vec![1, 0],
            axis: None,
        };
        assert_eq!(moved.infer(&[3]).unwrap(), vec![1]);
        // Not a permutation, or of another rank: errors.
        for perm in [vec![0, 0], vec![0, 1, 2], vec![0, 2]] {
            assert!(Transpose { perm, axis: None }.infer(&[3]).is_err());
        }
    }
}
