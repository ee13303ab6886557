//! Pooling: windowed max and average, and global pooling over all spatial
//! axes (`[N, C, ...]` to `[N, C]`).
//!
//! Windowed pooling is written with reshapes, `index_select` and reductions
//! instead of candle's `max_pool2d`/`avg_pool2d`: candle 0.11's max-pool
//! backward scales the gradient by 1/k² and both refuse a backward pass when
//! the stride differs from the window (checked against finite differences
//! in `tests/gradients.rs`).

use candle_core::{Result, Tensor};

use super::conv::Hw;

/// The `kh×kw` windows at stride `s`, stacked on a new leading axis
/// (`[kh·kw, N, C, Ho, Wo]`), or the non-overlapping reshape when it applies
/// (`[N, C, Ho, kh, Wo, kw]`).
enum Windows {
    Tiled(Tensor),
    Stacked(Tensor),
}

fn windows(x: &Tensor, k: Hw, s: Hw) -> Result<Windows> {
    let (n, c, h, w) = x.dims4()?;
    if k == s && h % k.h == 0 && w % k.w == 0 {
        return Ok(Windows::Tiled(x.reshape((
            n,
            c,
            h / k.h,
            k.h,
            w / k.w,
            k.w,
        ))?));
    }
    if h < k.h || w < k.w {
        candle_core::bail!("pooling window {k} is larger than the input {h}x{w}");
    }
    let (sh, sw) = (s.h.max(1), s.w.max(1));
    let (ho, wo) = ((h - k.h) / sh + 1, (w - k.w) / sw + 1);
    let mut views = Vec::with_capacity(k.h * k.w);
    for di in 0..k.h {
        let rows: Vec<u32> = (0..ho).map(|i| (di + sh * i) as u32).collect();
        let rows = Tensor::from_vec(rows, ho, x.device())?;
        let xr = x.index_select(&rows, 2)?;
        for dj in 0..k.w {
            let cols: Vec<u32> = (0..wo).map(|j| (dj + sw * j) as u32).collect();
            let cols = Tensor::from_vec(cols, wo, x.device())?;
            views.push(xr.index_select(&cols, 3)?);
        }
    }
    Ok(Windows::Stacked(Tensor::stack(&views, 0)?))
}

/// Pad the two spatial axes with `p` entries (per axis) of the dtype's
/// lowest value on each side, so that padding never wins a max.
fn pad_low(x: &Tensor, p: Hw) -> Result<Tensor> {
    let mut x = x.clone();
    for (axis, p) in [(2, p.h), (3, p.w)] {
        if p == 0 {
            continue;
        }
        let mut shape = x.dims().to_vec();
        shape[axis] = p;
        let low = Tensor::full(f32::MIN, shape, x.device())?
            .to_dtype(x.dtype())?
            .detach();
        x = Tensor::cat(&[&low, &x, &low], axis)?;
    }
    Ok(x)
}

pub(crate) fn max2d(x: &Tensor, k: Hw, s: Hw, pad: Hw) -> Result<Tensor> {
    let x = if pad != Hw::default() {
        pad_low(x, pad)?
    } else {
        x.clone()
    };
    match windows(&x, k, s)? {
        Windows::Tiled(t) => t.max(5)?.max(3),
        Windows::Stacked(t) => t.max(0),
    }
}

pub(crate) fn avg2d(x: &Tensor, k: Hw, s: Hw) -> Result<Tensor> {
    match windows(x, k, s)? {
        Windows::Tiled(t) => t.mean(5)?.mean(3),
        Windows::Stacked(t) => t.mean(0),
    }
}

pub(crate) fn global_avg(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(2)
}

pub(crate) fn global_max(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.max(2)
}
