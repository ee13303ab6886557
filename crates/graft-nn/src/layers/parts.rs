//! The parts family: a [`Slice`] of a value along one axis, and a [`Join`]
//! of values along one axis (a concatenation in any layout).
//!
//! Along an axis that is not the neuron axis both leave the neurons alone:
//! a slice is invariant, and a join ties the neurons of all its inputs (a
//! class token joined to the patch tokens along the sequence axis). Along
//! the neuron axis a join stacks its inputs' neurons (the core's stack),
//! and a slice takes a contiguous part of them: the core's slice relation
//! (`Constraint::Slice`), the inverse of a stack, so pruning inside the
//! part prunes the producer there and plans move the part's start. A
//! strided or reversed slice of the neurons is immutable (its size and its
//! input's are frozen, reported by name) rather than a refusal.
//! Their ONNX import and export live in graft-onnx's `ops/parts.rs`.

use candle_core::{Result, Tensor};
use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

use crate::op::Declared;

/// Every `step`-th entry of `axis` from `start`, `len` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// The axis (batch axis included; never 0).
    pub axis: usize,
    /// First index taken.
    pub start: usize,
    /// How many are taken.
    pub len: usize,
    /// Distance between taken indices (negative: backwards).
    pub step: i64,
    /// The value's neuron axis, if it has one.
    pub neurons: Option<usize>,
}

impl Slice {
    /// True when the slice cuts the neuron axis.
    pub fn cuts_neurons(&self) -> bool {
        self.neurons == Some(self.axis)
    }

    /// The size rule: a contiguous part of the neurons is a core slice
    /// (its neurons are the producer's, pruned and grown with them); a
    /// strided or reversed one is frozen; a slice of another axis keeps the
    /// neurons one to one.
    pub(crate) fn declare(&self) -> Declared {
        match (self.cuts_neurons(), self.step) {
            (true, 1) => Declared {
                kind: SizeKind::Absorb,
                constraints: vec![Constraint::Slice { start: self.start }],
            },
            (true, _) => Declared {
                kind: SizeKind::Immutable,
                constraints: Vec::new(),
            },
            (false, _) => Declared {
                kind: SizeKind::Invariant,
                constraints: Vec::new(),
            },
        }
    }

    /// Take the part the graph now says (after a plan moved or resized it).
    pub(crate) fn follow(&mut self, v: &graft_core::Vertex) {
        if let (true, 1, Some(start)) = (self.cuts_neurons(), self.step, v.slice_start()) {
            self.start = start;
            self.len = v.nout();
        }
    }

    fn indices(&self) -> Vec<u32> {
        (0..self.len)
            .map(|k| (self.start as i64 + k as i64 * self.step) as u32)
            .collect()
    }

    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let last = self.start as i64 + (self.len as i64 - 1).max(0) * self.step;
        let n = x.dim(self.axis)? as i64;
        if self.len == 0 || !(0..n).contains(&(self.start as i64)) || !(0..n).contains(&last) {
            candle_core::bail!(
                "slice of {} from {} by {} on axis {} of shape {:?}",
                self.len,
                self.start,
                self.step,
                self.axis,
                x.dims()
            );
        }
        if self.step == 1 {
            return x.narrow(self.axis, self.start, self.len);
        }
        let idx = Tensor::new(self.indices(), x.device())?;
        x.index_select(&idx, self.axis)
    }

    /// The per-sample output shape. A part of the neurons is as long as
    /// the graph says (`nout`), which a plan may have changed before the op
    /// takes it (`follow`): shapes of a planned graph are measured before
    /// the plan is applied.
    pub(crate) fn infer(
        &self,
        s: &[usize],
        nout: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let mut out = s.to_vec();
        let d = out
            .get_mut(self.axis.wrapping_sub(1))
            .ok_or(format!("axis {} for per-sample shape {s:?}", self.axis))?;
        let len = if self.cuts_neurons() && self.step == 1 {
            nout
        } else {
            self.len
        };
        if self.step == 1 && len > *d {
            return Err(format!("a part of {len} from {d} on axis {}", self.axis));
        }
        *d = len;
        Ok(out)
    }
}

/// A concatenation along any axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// The axis (batch axis included; never 0).
    pub axis: usize,
    /// The inputs' (and output's) neuron axis, if they have one.
    pub neurons: Option<usize>,
}

impl Join {
    /// True when the join stacks neurons (a concatenation of channels).
    pub fn stacks(&self) -> bool {
        self.neurons == Some(self.axis)
    }

    /// The size rule.
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: if self.stacks() {
                SizeKind::Stack
            } else {
                SizeKind::Invariant
            },
            constraints: Vec::new(),
        }
    }

    /// The forward pass.
    pub(crate) fn forward(&self, xs: &[Tensor]) -> Result<Tensor> {
        Tensor::cat(xs, self.axis)
    }

    /// The per-sample output shape.
    pub(crate) fn infer(&self, ins: &[&Vec<usize>]) -> std::result::Result<Vec<usize>, String> {
        let first = ins.first().ok_or("no input")?;
        let a = self.axis.wrapping_sub(1);
        if a >= first.len() {
            return Err(format!("axis {} for per-sample shape {first:?}", self.axis));
        }
        let mut out = (*first).clone();
        out[a] = 0;
        for s in ins {
            if s.len() != first.len()
                || s.iter()
                    .zip(*first)
                    .enumerate()
                    .any(|(i, (x, y))| i != a && x != y)
            {
                return Err(format!(
                    "shapes {first:?} and {s:?} do not join on axis {}",
                    self.axis
                ));
            }
            out[a] += s[a];
        }
        Ok(out)
    }
}

/// How a [`Pad`] fills the new entries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum PadMode {
    /// A constant (−∞ before a max pool in ceil mode).
    Constant {
        /// The value.
        value: f64,
    },
    /// Repeat the edge entries.
    Edge,
}

/// Padding of some axes on either side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    /// `(axis, before, after)` for each padded axis (batch axis included;
    /// never 0).
    pub pads: Vec<(usize, usize, usize)>,
    /// The fill.
    pub mode: PadMode,
    /// The value's neuron axis, if it has one.
    pub neurons: Option<usize>,
    /// The value's rank (batch axis included), for writing every axis's
    /// pads where an opset has no `axes` input.
    #[serde(default)]
    pub rank: usize,
}

impl Pad {
    /// True when the neuron axis is padded (frozen: new entries there are
    /// not neurons of the input).
    pub fn pads_neurons(&self) -> bool {
        self.pads
            .iter()
            .any(|&(a, b, e)| Some(a) == self.neurons && b + e > 0)
    }

    /// The size rule.
    pub(crate) fn declare(&self) -> Declared {
        Declared {
            kind: if self.pads_neurons() {
                SizeKind::Immutable
            } else {
                SizeKind::Invariant
            },
            constraints: Vec::new(),
        }
    }

    /// The forward pass.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for &(a, before, after) in &self.pads {
            y = match self.mode {
                PadMode::Edge => y.pad_with_same(a, before, after)?,
                PadMode::Constant { value } => {
                    let mut parts = Vec::with_capacity(3);
                    let side = |n: usize, y: &Tensor| -> Result<Tensor> {
                        let mut dims = y.dims().to_vec();
                        dims[a] = n;
                        Tensor::full(value, dims, y.device())?.to_dtype(y.dtype())
                    };
                    if before > 0 {
                        parts.push(side(before, &y)?);
                    }
                    parts.push(y.clone());
                    if after > 0 {
                        parts.push(side(after, &y)?);
                    }
                    Tensor::cat(&parts, a)?
                }
            };
        }
        Ok(y)
    }

    /// The per-sample output shape.
    pub(crate) fn infer(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        let mut out = s.to_vec();
        for &(a, b, e) in &self.pads {
            let d = out
                .get_mut(a.wrapping_sub(1))
                .ok_or(format!("axis {a} for per-sample shape {s:?}"))?;
            *d += b + e;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn slices_and_joins_along_any_axis() {
        let x = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((1, 3, 4))
            .unwrap();
        // Every second entry of the last axis, from 1: columns 1 and 3.
        let s = Slice {
            axis: 2,
            start: 1,
            len: 2,
            step: 2,
            neurons: Some(1),
        };
        assert!(!s.cuts_neurons());
        assert_eq!(s.declare().kind, SizeKind::Invariant);
        let y = s.forward(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 3., 5., 7., 9., 11.]
        );
        assert_eq!(s.infer(&[3, 4], 3).unwrap(), vec![3, 2]);
        // A contiguous part of the neurons: the core's slice, as long as
        // the graph says.
        let part = Slice {
            axis: 1,
            start: 1,
            len: 2,
            step: 1,
            neurons: Some(1),
        };
        assert_eq!(
            part.declare().constraints,
            vec![Constraint::Slice { start: 1 }]
        );
        assert_eq!(part.declare().kind, SizeKind::Absorb);
        assert_eq!(part.infer(&[3, 4], 1).unwrap(), vec![1, 4]);
        assert!(part.infer(&[3, 4], 4).is_err());
        // Backwards along the neuron axis: frozen.
        let r = Slice {
            axis: 1,
            start: 2,
            len: 3,
            step: -1,
            neurons: Some(1),
        };
        assert_eq!(r.declare().kind, SizeKind::Immutable);
        let y = r.forward(&x).unwrap();
        assert_eq!(
            y.narrow(2, 0, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap(),
            vec![8., 4., 0.]
        );
        // Out of range is an error, not a panic.
        assert!(Slice {
            start: 3,
            ..r.clone()
        }
        .forward(&x)
        .is_err());
        // A join along the sequence axis ties the neurons; along them, stacks.
        let j = Join {
            axis: 2,
            neurons: Some(1),
        };
        assert_eq!(j.declare().kind, SizeKind::Invariant);
        assert_eq!(
            j.forward(&[x.clone(), x.clone()]).unwrap().dims(),
            &[1, 3, 8]
        );
        assert_eq!(j.infer(&[&vec![3, 4], &vec![3, 1]]).unwrap(), vec![3, 5]);
        assert!(j.infer(&[&vec![3, 4], &vec![2, 1]]).is_err());
        let c = Join {
            axis: 1,
            neurons: Some(1),
        };
        assert_eq!(c.declare().kind, SizeKind::Stack);
    }

    #[test]
    fn padding_fills_with_a_constant_or_the_edge() {
        let x = Tensor::new(&[[[1f32, 2.]]], &Device::Cpu).unwrap();
        let p = Pad {
            pads: vec![(2, 1, 2)],
            mode: PadMode::Constant { value: -1.0 },
            neurons: Some(1),
            rank: 3,
        };
        assert_eq!(p.declare().kind, SizeKind::Invariant);
        let y = p.forward(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![-1., 1., 2., -1., -1.]
        );
        assert_eq!(p.infer(&[1, 2]).unwrap(), vec![1, 5]);
        let e = Pad {
            mode: PadMode::Edge,
            ..p.clone()
        };
        let y = e.forward(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1., 1., 2., 2., 2.]
        );
        let n = Pad {
            pads: vec![(1, 0, 1)],
            ..p
        };
        assert!(n.pads_neurons());
        assert_eq!(n.declare().kind, SizeKind::Immutable);
    }
}
