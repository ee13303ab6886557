//! The dense layer's products as candle custom ops on the CPU.
//!
//! Two reasons, both measured (`BENCHMARKS.md`): candle 0.11's matmul always
//! splits work over every thread, which for the small products of an MLP
//! (64×784 by 784×100) is slower than one thread (145 µs against 94 µs
//! here); and its matmul backward also computes the gradient of the
//! left-hand side when that side is the model input, which nobody needs.
//! These ops call the same `gemm` kernels with a size-dependent choice of
//! threads, fuse the bias, and compute only the gradients that are tracked.
//! Other devices use candle's own ops.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor};
use gemm::Parallelism;

/// Products below this many multiply-adds run on one thread.
const SERIAL_BELOW: usize = 1 << 24;

/// `dst[m×n] = lhs[m×k] · rhs[k×n]` with arbitrary strides (row, column) on
/// both operands; `dst` is row-major and overwritten.
#[allow(clippy::too_many_arguments)]
fn gemm_into<T: 'static + Copy>(
    dst: &mut [T],
    m: usize,
    n: usize,
    k: usize,
    lhs: &[T],
    (lrs, lcs): (usize, usize),
    rhs: &[T],
    (rrs, rcs): (usize, usize),
    zero: T,
    one: T,
) {
    let par = if m * n * k < SERIAL_BELOW {
        Parallelism::None
    } else {
        Parallelism::Rayon(candle_core::utils::get_num_threads())
    };
    assert!(dst.len() >= m * n);
    // SAFETY: the pointers cover m×k, k×n and m×n elements at the given
    // strides (checked by the callers from candle layouts); gemm writes
    // only inside dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lcs as isize,
            lrs as isize,
            rhs.as_ptr(),
            rcs as isize,
            rrs as isize,
            zero,
            one,
            false,
            false,
            false,
            par,
        );
    }
}

/// Row and column strides of a 2-D layout, and its start offset.
fn strides2(l: &Layout) -> Result<(usize, usize, usize)> {
    let s = l.stride();
    if s.len() != 2 {
        candle_core::bail!("expected a matrix, got strides {s:?}");
    }
    Ok((l.start_offset(), s[0], s[1]))
}

/// Which operands of a product are transposed (as views).
#[derive(Clone, Copy)]
pub(crate) struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "graft-matmul"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (m, k) = l1.shape().dims2()?;
        let (k2, n) = l2.shape().dims2()?;
        if k != k2 {
            candle_core::bail!("matmul: {m}x{k} by {k2}x{n}");
        }
        let (o1, r1, c1) = strides2(l1)?;
        let (o2, r2, c2) = strides2(l2)?;
        macro_rules! run {
            ($a:expr, $b:expr, $t:ty, $v:ident) => {{
                let mut d = vec![0 as $t; m * n];
                gemm_into(
                    &mut d,
                    m,
                    n,
                    k,
                    &$a[o1..],
                    (r1, c1),
                    &$b[o2..],
                    (r2, c2),
                    0.0,
                    1.0,
                );
                CpuStorage::$v(d)
            }};
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => run!(a, b, f32, F32),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => run!(a, b, f64, F64),
            _ => {
                return s1
                    .matmul(s2, (1, m, n, k), l1, l2)
                    .map(|s| (s, Shape::from((m, n))))
            }
        };
        Ok((out, Shape::from((m, n))))
    }
}

/// `y = x · Wᵀ + b` for `x [N, in]`, `W [out, in]`, `b [out]`.
pub(crate) struct Linear;

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "graft-linear"
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
        let (m, k) = l1.shape().dims2()?;
        let (n, k2) = l2.shape().dims2()?;
        if k != k2 || l3.shape().dims1()? != n {
            candle_core::bail!(
                "linear: input {m}x{k}, weight {n}x{k2}, bias {:?}",
                l3.dims()
            );
        }
        let (o1, r1, c1) = strides2(l1)?;
        let (o2, r2, c2) = strides2(l2)?;
        let (o3, s3s) = (l3.start_offset(), l3.stride()[0]);
        macro_rules! run {
            ($a:expr, $w:expr, $b:expr, $t:ty, $v:ident) => {{
                let mut d = vec![0 as $t; m * n];
                // Wᵀ as a view: row stride c2, column stride r2.
                gemm_into(
                    &mut d,
                    m,
                    n,
                    k,
                    &$a[o1..],
                    (r1, c1),
                    &$w[o2..],
                    (c2, r2),
                    0.0,
                    1.0,
                );
                for row in d.chunks_mut(n) {
                    for (j, x) in row.iter_mut().enumerate() {
                        *x += $b[o3 + j * s3s];
                    }
                }
                CpuStorage::$v(d)
            }};
        }
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(a), CpuStorage::F32(w), CpuStorage::F32(b)) => run!(a, w, b, f32, F32),
            (CpuStorage::F64(a), CpuStorage::F64(w), CpuStorage::F64(b)) => run!(a, w, b, f64, F64),
            _ => candle_core::bail!("linear: f32 or f64 only"),
        };
        Ok((out, Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gx = if x.track_op() {
            Some(g.apply_op2_no_bwd(w, &MatMul)?)
        } else {
            None
        };
        let gw = if w.track_op() {
            Some(g.t()?.apply_op2_no_bwd(x, &MatMul)?)
        } else {
            None
        };
        let gb = if b.track_op() { Some(g.sum(0)?) } else { None };
        Ok((gx, gw, gb))
    }
}

/// `y = x · Wᵀ (+ b)`: the custom ops on the CPU for f32/f64, candle's
/// matmul elsewhere.
pub(crate) fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let cpu = x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64);
    match (cpu, b) {
        (true, Some(b)) => x.apply_op3(w, b, Linear),
        (true, None) => {
            let zero = Tensor::zeros(w.dim(0)?, w.dtype(), w.device())?;
            x.apply_op3(w, &zero, Linear)
        }
        (false, Some(b)) => x.matmul(&w.t()?)?.broadcast_add(b),
        (false, None) => x.matmul(&w.t()?),
    }
}
