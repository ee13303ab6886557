//! A sparse kernel for masked dense layers: the mask's nonzero pattern as
//! compressed rows (CSR), and a candle custom op that computes
//! `y = x (W ⊙ M)ᵀ + b` and its gradients touching only the kept entries.
//! The model builds the pattern once per mask and uses this path when the
//! density is low enough (see `Model::sparse_pattern`); results equal the
//! dense path up to summation order.
//!
//! Written by hand: candle has no sparse tensors, and the kernel is a few
//! loops (the batch is the contiguous inner axis, which the compiler
//! vectorises; rows are split over threads with rayon).

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Below this density the sparse kernel is used.
pub const SPARSE_BELOW: f64 = 0.3;

/// The kept entries of a mask, by row.
#[derive(Debug)]
pub(crate) struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub start: Vec<usize>,
    pub index: Vec<u32>,
}

impl Csr {
    /// The pattern of a row-major mask.
    pub fn from_mask(mask: &[f32], rows: usize, cols: usize) -> Csr {
        let mut start = Vec::with_capacity(rows + 1);
        let mut index = Vec::new();
        start.push(0);
        for r in mask.chunks(cols) {
            index.extend(
                r.iter()
                    .enumerate()
                    .filter(|(_, &m)| m != 0.0)
                    .map(|(j, _)| j as u32),
            );
            start.push(index.len());
        }
        Csr {
            rows,
            cols,
            start,
            index,
        }
    }
    pub fn density(&self) -> f64 {
        self.index.len() as f64 / (self.rows * self.cols).max(1) as f64
    }
}

/// `[n, m]` row-major to `[m, n]`.
fn transpose(a: &[f32], n: usize, m: usize) -> Vec<f32> {
    let mut t = vec![0f32; a.len()];
    for i in 0..n {
        for j in 0..m {
            t[j * n + i] = a[i * m + j];
        }
    }
    t
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => candle_core::bail!("sparse linear: contiguous f32 only"),
    }
}

/// Lanes of the batch processed together (a multiple of the vector width).
const L: usize = 64;

/// One output row: `out[b] = bias + Σ_j w[j] · xt[j][b]` over the kept `j`.
#[inline(always)]
fn row_generic(out: &mut [f32], idx: &[u32], wrow: &[f32], xt: &[f32], np: usize, bias: f32) {
    for (lane, o) in out.chunks_exact_mut(L).enumerate() {
        let mut acc = [bias; L];
        for &j in idx {
            let j = j as usize;
            let wv = wrow[j];
            let col: &[f32; L] = xt[j * np + lane * L..j * np + lane * L + L]
                .try_into()
                .expect("a lane");
            for k in 0..L {
                acc[k] += wv * col[k];
            }
        }
        o.copy_from_slice(&acc);
    }
}

/// The same loop compiled for AVX2 and FMA (the default target is plain
/// x86-64, whose vectors are 4 wide).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row_avx2(out: &mut [f32], idx: &[u32], wrow: &[f32], xt: &[f32], np: usize, bias: f32) {
    row_generic(out, idx, wrow, xt, np, bias)
}

/// And for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_avx512(out: &mut [f32], idx: &[u32], wrow: &[f32], xt: &[f32], np: usize, bias: f32) {
    row_generic(out, idx, wrow, xt, np, bias)
}

fn row(out: &mut [f32], idx: &[u32], wrow: &[f32], xt: &[f32], np: usize, bias: f32) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has the features the function was compiled for.
        unsafe { row_avx512(out, idx, wrow, xt, np, bias) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has the features the function was compiled for.
        unsafe { row_avx2(out, idx, wrow, xt, np, bias) };
        return;
    }
    row_generic(out, idx, wrow, xt, np, bias)
}

/// The op; `w` must be the full dense weight (only kept entries are read).
pub(crate) struct SparseLinear(pub Arc<Csr>);

impl CustomOp3 for SparseLinear {
    fn name(&self) -> &'static str {
        "graft-sparse-linear"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let csr = &self.0;
        let (n, inp) = l1.shape().dims2()?;
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        if inp != csr.cols || w.len() != csr.rows * csr.cols || b.len() != csr.rows {
            candle_core::bail!("sparse linear: shapes do not match the pattern");
        }
        // Batch padded to whole lanes, transposed: xt[j] holds input j for
        // every sample, so each kept entry is a run of fixed-size
        // multiply-adds that stay in registers.
        let np = n.div_ceil(L) * L;
        let mut xt = vec![0f32; inp * np];
        for (bi, row) in x.chunks(inp).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xt[j * np + bi] = v;
            }
        }
        let mut yt = vec![0f32; csr.rows * np];
        yt.par_chunks_mut(np).enumerate().for_each(|(i, out)| {
            let idx = &csr.index[csr.start[i]..csr.start[i + 1]];
            let wrow = &w[i * inp..(i + 1) * inp];
            row(out, idx, wrow, &xt, np, b[i]);
        });
        let yt: Vec<f32> = yt.chunks(np).flat_map(|r| r[..n].iter().copied()).collect();
        Ok((
            CpuStorage::F32(transpose(&yt, csr.rows, n)),
            Shape::from((n, csr.rows)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let csr = &self.0;
        let (n, inp) = x.dims2()?;
        let gv: Vec<f32> = g.flatten_all()?.to_vec1()?;
        let gt = transpose(&gv, n, csr.rows);
        let gx = if x.track_op() {
            let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
            let mut gxt = vec![0f32; inp * n];
            for i in 0..csr.rows {
                let gi = &gt[i * n..(i + 1) * n];
                for &j in &csr.index[csr.start[i]..csr.start[i + 1]] {
                    let j = j as usize;
                    let wij = wv[i * inp + j];
                    for (a, &gvb) in gxt[j * n..(j + 1) * n].iter_mut().zip(gi) {
                        *a += wij * gvb;
                    }
                }
            }
            Some(Tensor::from_vec(
                transpose(&gxt, inp, n),
                (n, inp),
                x.device(),
            )?)
        } else {
            None
        };
        let gw = if w.track_op() {
            let xv: Vec<f32> = x.flatten_all()?.to_vec1()?;
            let xt = transpose(&xv, n, inp);
            let mut gwv = vec![0f32; csr.rows * inp];
            gwv.par_chunks_mut(inp).enumerate().for_each(|(i, row)| {
                let gi = &gt[i * n..(i + 1) * n];
                for &j in &csr.index[csr.start[i]..csr.start[i + 1]] {
                    let j = j as usize;
                    row[j] = gi
                        .iter()
                        .zip(&xt[j * n..(j + 1) * n])
                        .map(|(a, b)| a * b)
                        .sum();
                }
            });
            Some(Tensor::from_vec(gwv, (csr.rows, inp), w.device())?)
        } else {
            None
        };
        let gb = if b.track_op() { Some(g.sum(0)?) } else { None };
        Ok((gx, gw, gb))
    }
}
