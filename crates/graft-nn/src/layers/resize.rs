//! Resize: up- or downsampling of the two spatial axes of `[N, C, H, W]`
//! (ONNX `Resize`, PyTorch `F.interpolate`), nearest neighbour or
//! bilinear. Channels pass one to one (size kind invariant, no parameters).
//!
//! The forward pass resamples one axis after the other with
//! `index_select` (and, for linear, a weighted sum of the two neighbours):
//! both modes are separable, `index_select` has a backward pass, and the
//! source indices and weights are computed here for every coordinate
//! transformation mode. candle's own `upsample_nearest2d` knows one
//! coordinate rule only and candle has no bilinear interpolation.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// How the output size is given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeTarget {
    /// Scale factors `[h, w]`: the output length is ⌊length · factor⌋ and
    /// the coordinate transformation uses the factor.
    Scales([f64; 2]),
    /// Output lengths `[h, w]` (the factor is output / input length).
    Sizes([usize; 2]),
}

/// How a source coordinate is rounded to a pixel in nearest mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NearestRound {
    /// ⌊x⌋ (PyTorch's `nearest`).
    Floor,
    /// ⌈x⌉.
    Ceil,
    /// The nearest integer, halves down.
    RoundPreferFloor,
    /// The nearest integer, halves up (ONNX's default).
    RoundPreferCeil,
}

/// The interpolation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Interp {
    /// The nearest source pixel.
    Nearest {
        /// Rounding of the source coordinate.
        round: NearestRound,
    },
    /// Linear along each axis (bilinear): the two nearest source pixels,
    /// the source coordinate clamped to the input.
    Linear,
}

/// How an output coordinate maps to a source coordinate (ONNX's
/// `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coords {
    /// (x + 0.5) / scale − 0.5.
    HalfPixel,
    /// As half pixel, but 0 when the output length is 1.
    PytorchHalfPixel,
    /// x · (in − 1) / (out − 1) (0 when the output length is 1).
    AlignCorners,
    /// x / scale.
    Asymmetric,
}

/// A resize of the spatial axes of `[N, C, H, W]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Resize {
    /// The output size.
    pub target: ResizeTarget,
    /// The interpolation.
    pub interp: Interp,
    /// The coordinate transformation.
    pub coords: Coords,
}

impl Resize {
    /// The output length along spatial axis `axis` (0: height, 1: width)
    /// for an input of length `len`: ONNX's ⌊len · scale⌋ in f32, as
    /// onnxruntime and PyTorch compute it.
    pub fn out_len(&self, axis: usize, len: usize) -> usize {
        match self.target {
            ResizeTarget::Scales(s) => ((len as f32) * (s[axis] as f32)).floor().max(0.0) as usize,
            ResizeTarget::Sizes(s) => s[axis],
        }
    }

    /// The scale the coordinate transformation uses.
    fn scale(&self, axis: usize, len: usize, out: usize) -> f32 {
        match self.target {
            ResizeTarget::Scales(s) => s[axis] as f32,
            ResizeTarget::Sizes(_) => out as f32 / len as f32,
        }
    }

    /// The source coordinate of output coordinate `x` (f32, as onnxruntime).
    fn source(&self, x: usize, len: usize, out: usize, scale: f32) -> f32 {
        let x = x as f32;
        match self.coords {
            Coords::HalfPixel => (x + 0.5) / scale - 0.5,
            Coords::PytorchHalfPixel if out > 1 => (x + 0.5) / scale - 0.5,
            Coords::PytorchHalfPixel => 0.0,
            Coords::AlignCorners if out > 1 => x * (len as f32 - 1.0) / (out as f32 - 1.0),
            Coords::AlignCorners => 0.0,
            Coords::Asymmetric => x / scale,
        }
    }

    /// Per output position along one axis: the first source index, the
    /// second (linear only) and the second's weight.
    pub(crate) fn taps(&self, axis: usize, len: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
        let out = self.out_len(axis, len);
        let scale = self.scale(axis, len, out);
        let last = len.saturating_sub(1) as f32;
        let (mut i0, mut i1, mut wt) = (Vec::new(), Vec::new(), Vec::new());
        for x in 0..out {
            let src = self.source(x, len, out, scale);
            match self.interp {
                Interp::Nearest { round } => {
                    let r = match round {
                        NearestRound::Floor => src.floor(),
                        NearestRound::Ceil => src.ceil(),
                        NearestRound::RoundPreferFloor if src == src.floor() + 0.5 => src.floor(),
                        NearestRound::RoundPreferCeil | NearestRound::RoundPreferFloor => {
                            src.round()
                        }
                    };
                    i0.push(r.clamp(0.0, last) as u32);
                }
                Interp::Linear => {
                    let s = src.clamp(0.0, last);
                    let a = s.floor();
                    i0.push(a as u32);
                    i1.push((a + 1.0).min(last) as u32);
                    wt.push(s - a);
                }
            }
        }
        (i0, i1, wt)
    }

    /// Resample `x` along `dim` (2 or 3).
    fn along(&self, x: &Tensor, dim: usize) -> Result<Tensor> {
        let len = x.dim(dim)?;
        let (i0, i1, wt) = self.taps(dim - 2, len);
        let n = i0.len();
        let idx = |v: Vec<u32>| Tensor::from_vec(v, n, x.device());
        let a = x.index_select(&idx(i0)?, dim)?;
        if i1.is_empty() {
            return Ok(a);
        }
        let b = x.index_select(&idx(i1)?, dim)?;
        let mut shape = vec![1; x.rank()];
        shape[dim] = n;
        let wt = Tensor::from_vec(wt, shape, x.device())?.to_dtype(x.dtype())?;
        a.broadcast_add(&b.sub(&a)?.broadcast_mul(&wt)?)
    }

    /// The resized value.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 {
            candle_core::bail!("resize expects [N, C, H, W], got {:?}", x.dims());
        }
        let (_, _, h, w) = x.dims4()?;
        if h == 0 || w == 0 || self.out_len(0, h) == 0 || self.out_len(1, w) == 0 {
            candle_core::bail!("resize of {h}x{w} by {:?} leaves nothing", self.target);
        }
        self.along(&self.along(x, 2)?, 3)
    }

    /// The per-sample output shape `[C, H', W']` for a per-sample input
    /// shape `[C, H, W]`, or why there is none.
    ///
    /// # Errors
    /// Another rank, an empty input, or an empty output.
    pub fn infer(&self, s: &[usize]) -> std::result::Result<Vec<usize>, String> {
        match *s {
            [c, h, w] if h > 0 && w > 0 => {
                let (ho, wo) = (self.out_len(0, h), self.out_len(1, w));
                if ho == 0 || wo == 0 {
                    return Err(format!(
                        "resize of {h}x{w} by {:?} leaves nothing",
                        self.target
                    ));
                }
                Ok(vec![c, ho, wo])
            }
            _ => Err(format!(
                "resize expects [C, H, W], the input has shape {s:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn input() -> Tensor {
        // One channel, 2x2: [[0, 1], [2, 3]].
        Tensor::from_vec(vec![0f32, 1.0, 2.0, 3.0], (1, 1, 2, 2), &Device::Cpu).unwrap()
    }

    /// `r` applied to [`input`], as rows of its one plane.
    fn plane(r: &Resize) -> Vec<Vec<f32>> {
        let y = r.forward(&input()).unwrap();
        y.squeeze(0).unwrap().squeeze(0).unwrap().to_vec2().unwrap()
    }

    #[test]
    fn nearest_asymmetric_floor_doubles() {
        let r = Resize {
            target: ResizeTarget::Scales([2.0, 2.0]),
            interp: Interp::Nearest {
                round: NearestRound::Floor,
            },
            coords: Coords::Asymmetric,
        };
        // Each pixel repeated twice along both axes.
        let rows = plane(&r);
        assert_eq!(rows[0], [0.0, 0.0, 1.0, 1.0]);
        assert_eq!(rows[3], [2.0, 2.0, 3.0, 3.0]);
        assert_eq!(r.infer(&[5, 2, 3]).unwrap(), vec![5, 4, 6]);
    }

    #[test]
    fn bilinear_half_pixel_and_align_corners() {
        let half = Resize {
            target: ResizeTarget::Scales([2.0, 2.0]),
            interp: Interp::Linear,
            coords: Coords::HalfPixel,
        };
        let y = plane(&half);
        // Width sources (x + 0.5) / 2 − 0.5 = −0.25, 0.25, 0.75, 1.25,
        // clamped to [0, 1]: 0, 0.25, 0.75, 1. Row 0 (source row 0):
        // 0, 0.25, 0.75, 1. Row 1 (source row 0.25): row 0 + 0.25 · 2.
        assert_eq!(y[0], [0.0, 0.25, 0.75, 1.0]);
        assert_eq!(y[1], [0.5, 0.75, 1.25, 1.5]);
        let corners = Resize {
            target: ResizeTarget::Sizes([3, 3]),
            coords: Coords::AlignCorners,
            ..half
        };
        let y = plane(&corners);
        // Sources x · 1 / 2: 0, 0.5, 1; the centre is the mean 1.5.
        assert_eq!(y[1], [1.0, 1.5, 2.0]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let r = Resize {
            target: ResizeTarget::Scales([0.1, 0.1]),
            interp: Interp::Linear,
            coords: Coords::Asymmetric,
        };
        assert!(r.forward(&input()).is_err());
        assert!(r.infer(&[1, 2, 2]).is_err());
        assert!(r.infer(&[1, 2]).is_err());
    }
}
