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
use crate::op::Declared;

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

/// The size rule of a windowed pool: invariant (one output channel per
/// input channel), its window and stride at least 1 (a zero divides by
/// zero in the arithmetic).
pub(crate) fn declare(kernel: Hw, stride: Hw) -> std::result::Result<Declared, String> {
    crate::op::positive(&[("kernel", kernel), ("stride", stride)])?;
    Ok(Declared {
        kind: graft_core::SizeKind::Invariant,
        constraints: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn uneven_windows_strides_and_padding() {
        // One channel, 4x3: rows [0 1 2], [3 4 5], [6 7 8], [9 10 11].
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let x = Tensor::from_vec(v, (1, 1, 4, 3), &Device::Cpu).unwrap();
        // Window 3x2, stride (2, 1), padding (1, 0): rows padded to 6,
        // windows start at padded rows 0 and 2 (input rows -1..1 and
        // 1..3), columns 0 and 1 (pairs 0-1, 1-2). Maxima: row window
        // -1..1 gives rows 0, 1: max(3, 4) = 4, max(4, 5) = 5; row window
        // 1..3 gives rows 1..3: 10, 11.
        let y = max2d(&x, Hw::new(3, 2), Hw::new(2, 1), Hw::new(1, 0)).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, [4.0, 5.0, 10.0, 11.0]);
        // Average over 1x3 windows at stride 1: one column, row means 1,
        // 4, 7, 10.
        let y = avg2d(&x, Hw::new(1, 3), Hw::square(1)).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got, [1.0, 4.0, 7.0, 10.0]);
        assert!(avg2d(&x, Hw::new(5, 1), Hw::square(1)).is_err());
    }
}
