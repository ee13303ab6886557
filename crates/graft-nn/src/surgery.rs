//! Parameter surgery: apply a neuron index list to a parameter axis.
//!
//! An index list says, for each position of the new axis, which old entry
//! goes there or that a new one does. Old entries are gathered with one
//! `index_select`; new ones come from a fill block appended to the tensor
//! first. Along an output axis new entries get the parameter's fill (small
//! seeded random weights so new neurons can learn; 0 for biases; γ = 1,
//! β = 0, running mean 0, running variance 1 for norms); along an input axis
//! they are always 0, so consumers ignore new neurons and the function is
//! kept.

use candle_core::{Result, Tensor};
use graft_core::{Neuron, VertexChange};
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::op::{Fill, Op, Role};

/// Standard deviation of the random values given to new output rows by
/// default.
pub const NEW_ROW_STD: f64 = 0.01;

/// How new output neurons get their weights.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Growth {
    /// Seeded normal values with this standard deviation (default
    /// [`NEW_ROW_STD`]), so new neurons can learn.
    Random {
        /// Standard deviation.
        std: f64,
    },
    /// Zeros (NaiveNASlib's test convention).
    Zero,
    /// The default: `Random { std: NEW_ROW_STD }`.
    #[default]
    Default,
}

impl Growth {
    pub(crate) fn std(self) -> f64 {
        match self {
            Growth::Random { std } => std,
            Growth::Zero => 0.0,
            Growth::Default => NEW_ROW_STD,
        }
    }
}

/// Select along `axis` by `list` (over units; the axis holds `gates` blocks
/// of units), filling new entries with `fill`.
pub(crate) fn select_axis(
    t: &Tensor,
    axis: usize,
    list: &[Neuron],
    gates: usize,
    fill: Fill,
    std: f64,
    rng: &mut StdRng,
) -> Result<Tensor> {
    let len = t.dim(axis)?;
    let units = len / gates.max(1);
    let new_per_block = list.iter().filter(|n| **n == Neuron::New).count();
    let new_total = new_per_block * gates;
    let ext = if new_total > 0 {
        let mut shape = t.dims().to_vec();
        shape[axis] = new_total;
        let n: usize = shape.iter().product();
        let block = match fill {
            Fill::Value(v) => Tensor::full(v, shape, t.device())?.to_dtype(t.dtype())?,
            Fill::Random if std == 0.0 => Tensor::zeros(shape, t.dtype(), t.device())?,
            Fill::Random => {
                let d = Normal::new(0.0, std).expect("valid normal");
                let vals: Vec<f64> = (0..n).map(|_| d.sample(rng)).collect();
                Tensor::from_vec(vals, shape, t.device())?.to_dtype(t.dtype())?
            }
        };
        Tensor::cat(&[t, &block], axis)?
    } else {
        t.clone()
    };
    let mut idx: Vec<u32> = Vec::with_capacity(list.len() * gates);
    let mut next_new = len;
    for g in 0..gates.max(1) {
        for n in list {
            match *n {
                Neuron::Old(i) => idx.push((g * units + i) as u32),
                Neuron::New => {
                    idx.push(next_new as u32);
                    next_new += 1;
                }
            }
        }
    }
    let idx = Tensor::from_vec(idx, list.len() * gates.max(1), t.device())?;
    ext.index_select(&idx, axis)?.contiguous()
}

/// The selections a vertex change makes on one parameter: (axis, list,
/// gates, fill), in the order they are applied.
pub(crate) fn selections<'a>(
    roles: &[Role],
    out_fill: Fill,
    change: &'a VertexChange,
) -> Vec<(usize, &'a [Neuron], usize, Fill)> {
    let mut out = Vec::new();
    for (axis, r) in roles.iter().enumerate() {
        match *r {
            Role::Out => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), 1, out_fill));
                }
            }
            Role::OutGates(g) => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), g, out_fill));
                }
            }
            Role::Rec => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), 1, Fill::Value(0.0)));
                }
            }
            Role::In(k) => {
                if let Some(Some(l)) = change.ins.get(k) {
                    out.push((axis, l.as_slice(), 1, Fill::Value(0.0)));
                }
            }
            Role::Fixed => {}
        }
    }
    out
}

/// Roles and output fill of parameter `name` of `op`.
pub(crate) fn layout(op: &Op, name: &str) -> Option<(Vec<Role>, Fill)> {
    // Roles do not depend on sizes; any sizes give the layout.
    op.params(&[1], 1)
        .into_iter()
        .find(|s| s.name == name)
        .map(|s| (s.roles, s.new_out))
}
