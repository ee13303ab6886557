//! Pooling: windowed max and average, and global pooling over all spatial
//! axes (`[N, C, ...]` to `[N, C]`).

use candle_core::{Result, Tensor};

pub(crate) fn max2d(x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
    x.max_pool2d_with_stride((k, k), (s, s))
}

pub(crate) fn avg2d(x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
    x.avg_pool2d_with_stride((k, k), (s, s))
}

pub(crate) fn global_avg(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.mean(2)
}

pub(crate) fn global_max(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(2)?.max(2)
}
