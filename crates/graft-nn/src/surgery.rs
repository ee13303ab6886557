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
    /// Net2Net widening (Chen, Goodfellow and Shlens, 2015): each new unit
    /// copies an old one of the same list (chosen with this seed; every
    /// vertex sharing the list picks the same) and the consumers' columns
    /// of the original and its copies are divided by the copy count, so
    /// the function is kept without zero columns. Recurrent weights read
    /// back by the layer itself get zeros.
    Net2Net {
        /// Seed of the choice of units to copy.
        seed: u64,
    },
}

impl Growth {
    pub(crate) fn std(self) -> f64 {
        match self {
            Growth::Random { std } => std,
            Growth::Zero => 0.0,
            Growth::Default => NEW_ROW_STD,
            Growth::Net2Net { .. } => NEW_ROW_STD,
        }
    }
}

/// Whether a selection is on an output axis (rows of the vertex's own
/// neurons) or an input axis (columns reading a producer's neurons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Out,
    In,
}

/// For each `New` entry of `list`, the old unit it copies under Net2Net:
/// drawn from the list's old entries with a generator seeded by `seed` and
/// the list itself, so that every vertex holding the same list agrees.
pub(crate) fn net2net_sources(list: &[Neuron], seed: u64) -> Vec<Option<usize>> {
    let olds: Vec<usize> = list
        .iter()
        .filter_map(|n| match n {
            Neuron::Old(i) => Some(*i),
            Neuron::New => None,
        })
        .collect();
    let mut h: u64 = seed ^ 0xcbf2_9ce4_8422_2325;
    for n in list {
        let x = match n {
            Neuron::Old(i) => *i as u64,
            Neuron::New => u64::MAX,
        };
        h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(h);
    list.iter()
        .map(|n| match n {
            Neuron::New if !olds.is_empty() => {
                Some(olds[rand::Rng::random_range(&mut rng, 0..olds.len())])
            }
            _ => None,
        })
        .collect()
}

/// Net2Net selection: new output rows copy their source rows; new input
/// columns copy their source columns and every column of a copied unit is
/// divided by its copy count. Entries without a source fall back to zeros.
pub(crate) fn select_net2net(
    t: &Tensor,
    axis: usize,
    list: &[Neuron],
    gates: usize,
    side: Side,
    seed: u64,
) -> Result<Tensor> {
    let len = t.dim(axis)?;
    let gates = gates.max(1);
    let units = len / gates;
    let src = net2net_sources(list, seed);
    // Copies per old unit (the original included).
    let mut count = vec![1usize; units];
    for s in src.iter().flatten() {
        count[*s] += 1;
    }
    let zero_needed = list
        .iter()
        .zip(&src)
        .any(|(n, s)| *n == Neuron::New && s.is_none());
    let ext = if zero_needed {
        let mut shape = t.dims().to_vec();
        shape[axis] = 1;
        Tensor::cat(&[t, &Tensor::zeros(shape, t.dtype(), t.device())?], axis)?
    } else {
        t.clone()
    };
    let mut idx: Vec<u32> = Vec::with_capacity(list.len() * gates);
    let mut scale: Vec<f64> = Vec::with_capacity(list.len() * gates);
    for g in 0..gates {
        for (n, s) in list.iter().zip(&src) {
            let unit = match (*n, *s) {
                (Neuron::Old(i), _) => Some(i),
                (Neuron::New, Some(i)) => Some(i),
                (Neuron::New, None) => None,
            };
            match unit {
                Some(i) => {
                    idx.push((g * units + i) as u32);
                    scale.push(if side == Side::In {
                        1.0 / count[i] as f64
                    } else {
                        1.0
                    });
                }
                None => {
                    idx.push(len as u32);
                    scale.push(1.0);
                }
            }
        }
    }
    let n = idx.len();
    let idx = Tensor::from_vec(idx, n, t.device())?;
    let out = ext.index_select(&idx, axis)?;
    if side == Side::In {
        let mut shape = vec![1usize; t.rank()];
        shape[axis] = n;
        let sc = Tensor::from_vec(scale, shape, t.device())?.to_dtype(t.dtype())?;
        out.broadcast_mul(&sc)?.contiguous()
    } else {
        out.contiguous()
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
    let new_per_block = list.iter().filter(|n| **n == Neuron::New).count();
    let new_total = new_per_block * gates;
    let block = if new_total > 0 {
        let mut shape = t.dims().to_vec();
        shape[axis] = new_total;
        let n: usize = shape.iter().product();
        Some(match fill {
            Fill::Value(v) => Tensor::full(v, shape, t.device())?.to_dtype(t.dtype())?,
            Fill::Random if std == 0.0 => Tensor::zeros(shape, t.dtype(), t.device())?,
            Fill::Random => {
                let d = Normal::new(0.0, std).expect("valid normal");
                let vals: Vec<f64> = (0..n).map(|_| d.sample(rng)).collect();
                Tensor::from_vec(vals, shape, t.device())?.to_dtype(t.dtype())?
            }
        })
    } else {
        None
    };
    let idx = indices(len, list, gates);
    if t.dtype() == candle_core::DType::F32 && t.device().is_cpu() {
        return gather_f32(t, block.as_ref(), axis, &idx);
    }
    let ext = match &block {
        Some(b) => Tensor::cat(&[t, b], axis)?,
        None => t.clone(),
    };
    let n = idx.len();
    let idx = Tensor::from_vec(idx, n, t.device())?;
    ext.index_select(&idx, axis)?.contiguous()
}

/// The entries `list` selects along an axis of `len` entries holding
/// `gates` blocks of units: old units by position (in each block), new
/// ones numbered past `len` in order.
pub(crate) fn indices(len: usize, list: &[Neuron], gates: usize) -> Vec<u32> {
    let units = len / gates.max(1);
    let mut idx: Vec<u32> = Vec::with_capacity(list.len() * gates.max(1));
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
    idx
}

/// Keep entries of f32 values of shape `dims` along several axes at once
/// (`picks`: per axis, the entries kept, or `None` for all), read in place
/// and written once: pruning a matrix on both sides makes no intermediate
/// copy. The result is a fresh variable on the CPU.
pub(crate) fn keep_axes(
    src: &[f32],
    dims: &[usize],
    picks: &[Option<Vec<u32>>],
) -> Result<candle_core::Var> {
    if dims.is_empty() {
        return candle_core::Var::from_vec(src.to_vec(), (), &candle_core::Device::Cpu);
    }
    let mut rows = RowGather::new(dims, picks);
    rows.take(0, src);
    rows.finish()
}

/// [`keep_axes`] fed the values in whole rows of the first axis, in order
/// (a parameter read from a file in chunks): each kept row's kept entries
/// are appended as its chunk passes. The first axis's picks must ascend.
pub(crate) struct RowGather<'a> {
    dims: &'a [usize],
    strides: Vec<usize>,
    picks: &'a [Option<Vec<u32>>],
    free: Vec<bool>,
    shape: Vec<usize>,
    /// How many rows of the first axis are already kept.
    next: usize,
    out: Vec<f32>,
}

impl<'a> RowGather<'a> {
    /// Ready for `dims` (rank at least 1) and `picks` (one per axis).
    pub(crate) fn new(dims: &'a [usize], picks: &'a [Option<Vec<u32>>]) -> RowGather<'a> {
        let mut strides = vec![1usize; dims.len()];
        for a in (0..dims.len().saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * dims[a + 1];
        }
        // free[a]: no axis after `a` is picked, so each entry of axis `a`
        // is one contiguous run.
        let mut free = vec![true; dims.len()];
        for a in (0..dims.len().saturating_sub(1)).rev() {
            free[a] = free[a + 1] && picks[a + 1].is_none();
        }
        let shape: Vec<usize> = dims
            .iter()
            .zip(picks)
            .map(|(&d, p)| p.as_ref().map_or(d, Vec::len))
            .collect();
        let out = Vec::with_capacity(shape.iter().product());
        RowGather {
            dims,
            strides,
            picks,
            free,
            shape,
            next: 0,
            out,
        }
    }

    /// The `k`-th row the first axis keeps, if any.
    fn kept(&self, k: usize) -> Option<usize> {
        match &self.picks[0] {
            Some(p) => p.get(k).map(|&r| r as usize),
            None => (k < self.dims[0]).then_some(k),
        }
    }

    /// Rows `first..` of the values (`vals`: whole rows).
    pub(crate) fn take(&mut self, first: usize, vals: &[f32]) {
        let row = self.strides[0];
        let end = first + vals.len() / row.max(1);
        let walk = Walk {
            dims: self.dims,
            strides: &self.strides,
            picks: self.picks,
            free: &self.free,
        };
        while let Some(r) = self.kept(self.next).filter(|&r| r >= first && r < end) {
            let src = &vals[(r - first) * row..(r - first + 1) * row];
            if self.free[0] {
                self.out.extend_from_slice(src);
            } else {
                walk.copy(src, 1, 0, &mut self.out);
            }
            self.next += 1;
        }
    }

    /// The kept entries as a fresh variable on the CPU.
    ///
    /// # Errors
    /// Rows missing (the picks did not fit the values given).
    pub(crate) fn finish(self) -> Result<candle_core::Var> {
        let want: usize = self.shape.iter().product();
        if self.out.len() != want {
            return Err(candle_core::Error::Msg(format!(
                "kept {} of {want} entries (picks {:?} of shape {:?})",
                self.out.len(),
                self.picks
                    .iter()
                    .map(|p| p.as_ref().map(Vec::len))
                    .collect::<Vec<_>>(),
                self.dims
            )));
        }
        candle_core::Var::from_vec(self.out, self.shape, &candle_core::Device::Cpu)
    }
}

/// A walk over the entries [`keep_axes`] keeps, in row-major order.
struct Walk<'a> {
    dims: &'a [usize],
    strides: &'a [usize],
    picks: &'a [Option<Vec<u32>>],
    /// No axis after this one is picked: each entry is one contiguous run.
    free: &'a [bool],
}

impl Walk<'_> {
    /// Append the kept entries of axis `a` and below, from offset `base`.
    fn copy(&self, src: &[f32], a: usize, base: usize, out: &mut Vec<f32>) {
        let pick = self.picks[a].as_ref();
        for j in 0..pick.map_or(self.dims[a], Vec::len) {
            let i = pick.map_or(j, |p| p[j] as usize);
            let at = base + i * self.strides[a];
            if self.free[a] {
                out.extend_from_slice(&src[at..at + self.strides[a]]);
            } else {
                self.copy(src, a + 1, at, out);
            }
        }
    }
}

/// [`select_axis`] on f32 CPU tensors, read in place: entry `j` along
/// `axis` is `t`'s entry `idx[j]`, or `block`'s `idx[j] - len` past `t`'s
/// length. The result is a fresh variable's tensor, so the layer takes it
/// as its parameter without another copy.
fn gather_f32(t: &Tensor, block: Option<&Tensor>, axis: usize, idx: &[u32]) -> Result<Tensor> {
    let dims = t.dims();
    let len = dims[axis];
    let post: usize = dims[axis + 1..].iter().product();
    let pre: usize = dims[..axis].iter().product();
    let mut shape = dims.to_vec();
    shape[axis] = idx.len();
    let extra = block.map_or(0, |b| b.dims()[axis]);
    let mut out: Vec<f32> = Vec::with_capacity(pre * idx.len() * post);
    let gather = |src: &[f32], ext: &[f32], out: &mut Vec<f32>| {
        for p in 0..pre {
            for &i in idx {
                let i = i as usize;
                let row = if i < len {
                    let at = (p * len + i) * post;
                    &src[at..at + post]
                } else {
                    let at = (p * extra + i - len) * post;
                    &ext[at..at + post]
                };
                out.extend_from_slice(row);
            }
        }
    };
    crate::files::with_f32(t, |src| match block {
        Some(b) => crate::files::with_f32(b, |ext| gather(src, ext, &mut out)),
        None => {
            gather(src, &[], &mut out);
            Ok(())
        }
    })
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?
    .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
    Ok(candle_core::Var::from_vec(out, shape, t.device())?.into_inner())
}

/// One selection on a parameter: (axis, index list, gate blocks, fill of new
/// entries, output or input side; `None` for recurrent read-back columns).
pub(crate) type Selection<'a> = (usize, &'a [Neuron], usize, Fill, Option<Side>);

/// The selections a vertex change makes on one parameter, in the order they
/// are applied.
pub(crate) fn selections<'a>(
    roles: &[Role],
    out_fill: Fill,
    change: &'a VertexChange,
) -> Vec<Selection<'a>> {
    let mut out = Vec::new();
    for (axis, r) in roles.iter().enumerate() {
        match *r {
            Role::Out => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), 1, out_fill, Some(Side::Out)));
                }
            }
            Role::OutGates(g) => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), g, out_fill, Some(Side::Out)));
                }
            }
            Role::Rec => {
                if let Some(l) = &change.outs {
                    out.push((axis, l.as_slice(), 1, Fill::Value(0.0), None));
                }
            }
            Role::In(k) => {
                if let Some(Some(l)) = change.ins.get(k) {
                    out.push((axis, l.as_slice(), 1, Fill::Value(0.0), Some(Side::In)));
                }
            }
            Role::InBlock(k, g) => {
                if let Some(Some(l)) = change.ins.get(k) {
                    let first = &l[..l.len() / g.max(1)];
                    out.push((axis, first, 1, Fill::Value(0.0), Some(Side::In)));
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pruning_every_axis_at_once_equals_one_axis_after_another() {
        let t = Tensor::arange(0f32, 120., &Device::Cpu)
            .unwrap()
            .reshape((4, 5, 6))
            .unwrap();
        let picks = [Some(vec![3u32, 0]), None, Some(vec![5, 1, 2])];
        let vals: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let once = keep_axes(&vals, t.dims(), &picks).unwrap();
        let mut step = t.clone();
        for (axis, p) in picks.iter().enumerate() {
            if let Some(p) = p {
                let idx = Tensor::from_vec(p.clone(), p.len(), &Device::Cpu).unwrap();
                step = step.index_select(&idx, axis).unwrap();
            }
        }
        assert_eq!(once.dims(), [2, 5, 3]);
        let (a, b): (Vec<f32>, Vec<f32>) = (
            once.flatten_all().unwrap().to_vec1().unwrap(),
            step.flatten_all().unwrap().to_vec1().unwrap(),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn a_gathered_selection_with_new_entries_matches_concatenation() {
        let t = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap();
        let mut rng = <StdRng as rand::SeedableRng>::seed_from_u64(1);
        let list = [Neuron::Old(2), Neuron::New, Neuron::Old(0)];
        let got = select_axis(&t, 1, &list, 1, Fill::Value(7.0), 0.0, &mut rng).unwrap();
        let v: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, [2., 7., 0., 6., 7., 4., 10., 7., 8.]);
    }
}
