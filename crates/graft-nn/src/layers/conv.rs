//! Convolutions: 1-D and 2-D (groups, depthwise) and 2-D transposed. Weights
//! `[out, in/groups, kh(, kw)]`, transposed `[in, out, kh, kw]`. Kernel,
//! stride, padding and dilation are per spatial axis ([`Hw`]); candle's
//! `conv2d` takes one stride, padding and dilation for both axes, so uneven
//! ones are computed around it (explicit zero padding, a kernel dilated by
//! inserting zeros, a stride-1 convolution subsampled with `index_select`),
//! all differentiable.

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

use super::{channel, p, Params};
use graft_core::Constraint;

use crate::op::{spec, Conv, Declared, Fill, Groups, Op, ParamSpec, Role};

/// One value per spatial axis of a 2-D window: height (axis 2) and width
/// (axis 3). A 1-D convolution reads the width entries only (its one
/// spatial axis) and keeps the height entries equal to them.
///
/// Serialised as a single number when both are equal (the form graft wrote
/// before windows could be uneven, so older saved models still load) and
/// as `[h, w]` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "HwRepr", into = "HwRepr")]
pub struct Hw {
    /// Along the height (axis 2).
    pub h: usize,
    /// Along the width (axis 3).
    pub w: usize,
}

impl Hw {
    /// The same value on both axes.
    pub const fn square(v: usize) -> Self {
        Hw { h: v, w: v }
    }
    /// Height `h`, width `w`.
    pub const fn new(h: usize, w: usize) -> Self {
        Hw { h, w }
    }
    /// The common value when both axes agree.
    pub fn as_square(self) -> Option<usize> {
        (self.h == self.w).then_some(self.h)
    }
    /// `[h, w]`.
    pub fn pair(self) -> [usize; 2] {
        [self.h, self.w]
    }
}

impl From<usize> for Hw {
    fn from(v: usize) -> Self {
        Hw::square(v)
    }
}

impl std::fmt::Display for Hw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_square() {
            Some(v) => write!(f, "{v}"),
            None => write!(f, "{}x{}", self.h, self.w),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum HwRepr {
    Square(usize),
    Pair([usize; 2]),
}

impl From<HwRepr> for Hw {
    fn from(r: HwRepr) -> Self {
        match r {
            HwRepr::Square(v) => Hw::square(v),
            HwRepr::Pair([h, w]) => Hw { h, w },
        }
    }
}

impl From<Hw> for HwRepr {
    fn from(v: Hw) -> Self {
        match v.as_square() {
            Some(s) => HwRepr::Square(s),
            None => HwRepr::Pair([v.h, v.w]),
        }
    }
}

/// Every `step`-th entry of `axis`, from 0.
fn subsample(x: &Tensor, axis: usize, step: usize) -> Result<Tensor> {
    if step == 1 {
        return Ok(x.clone());
    }
    let n = x.dim(axis)?.div_ceil(step);
    let idx: Vec<u32> = (0..n).map(|i| (i * step) as u32).collect();
    x.index_select(&Tensor::from_vec(idx, n, x.device())?, axis)
}

/// The kernel `[o, i, kh, kw]` dilated by inserting `d - 1` zeros between
/// taps along `axis`.
fn dilate(w: &Tensor, axis: usize, d: usize) -> Result<Tensor> {
    let k = w.dim(axis)?;
    if d == 1 || k == 1 {
        return Ok(w.clone());
    }
    let mut zshape = w.dims().to_vec();
    zshape.insert(axis + 1, d - 1);
    let zeros = Tensor::zeros(zshape, w.dtype(), w.device())?;
    let spread = Tensor::cat(&[&w.unsqueeze(axis + 1)?, &zeros], axis + 1)?;
    let mut flat = w.dims().to_vec();
    flat[axis] = k * d;
    spread.reshape(flat)?.narrow(axis, 0, d * (k - 1) + 1)
}

/// A 2-D convolution with per-axis stride, padding and dilation on candle's
/// single-valued `conv2d`.
fn conv2d_hw(x: &Tensor, w: &Tensor, c: &Conv, groups: usize) -> Result<Tensor> {
    if let (Some(s), Some(pd), Some(d)) = (
        c.stride.as_square(),
        c.padding.as_square(),
        c.dilation.as_square(),
    ) {
        return x.conv2d(w, pd, s, d, groups);
    }
    let x = x
        .pad_with_zeros(2, c.padding.h, c.padding.h)?
        .pad_with_zeros(3, c.padding.w, c.padding.w)?;
    let (w, d) = match c.dilation.as_square() {
        Some(d) => (w.clone(), d),
        None => (dilate(&dilate(w, 2, c.dilation.h)?, 3, c.dilation.w)?, 1),
    };
    match c.stride.as_square() {
        Some(s) => x.conv2d(&w, 0, s, d, groups),
        None => {
            let y = x.conv2d(&w, 0, 1, d, groups)?;
            subsample(&subsample(&y, 2, c.stride.h)?, 3, c.stride.w)
        }
    }
}

fn add_bias(params: &Params, y: Tensor) -> Result<Tensor> {
    match params.get("bias") {
        Some(b) => {
            let r = y.rank();
            y.broadcast_add(&channel(b, r)?)
        }
        None => Ok(y),
    }
}

/// 1-D convolution as a 2-D one of height 1 (padding applied along the
/// length only): candle 0.11's own `conv1d` backward disagrees with finite
/// differences once there is padding (`tests/gradients.rs`).
pub(crate) fn conv1d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let x = if c.padding.w > 0 {
        x.pad_with_zeros(2, c.padding.w, c.padding.w)?
    } else {
        x.clone()
    };
    let w = p(params, "weight")?.unsqueeze(2)?;
    let y = x
        .unsqueeze(2)?
        .conv2d(&w, 0, c.stride.w, c.dilation.w, g)?
        .squeeze(2)?;
    add_bias(params, y)
}

pub(crate) fn conv2d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let y = conv2d_hw(x, p(params, "weight")?, c, g)?;
    add_bias(params, y)
}

pub(crate) fn conv_transpose2d(
    params: &Params,
    c: &Conv,
    output_padding: usize,
    x: &Tensor,
) -> Result<Tensor> {
    let (Some(padding), Some(stride), Some(dilation)) = (
        c.padding.as_square(),
        c.stride.as_square(),
        c.dilation.as_square(),
    ) else {
        candle_core::bail!("a transposed convolution needs equal strides, pads and dilations");
    };
    let y = x.conv_transpose2d(
        p(params, "weight")?,
        padding,
        output_padding,
        stride,
        dilation,
    )?;
    add_bias(params, y)
}

/// The kernel multiplied by its mask, then [`conv2d`]'s computation.
pub(crate) fn masked_conv2d(params: &Params, c: &Conv, x: &Tensor) -> Result<Tensor> {
    let g = Op::conv_groups(c, x.dim(1)?);
    let w = p(params, "weight")?.mul(p(params, "mask")?)?;
    let y = conv2d_hw(x, &w, c, g)?;
    add_bias(params, y)
}

/// The parameters of a convolution over `spatial` axes (1 or 2): weight
/// `[nout, nin / groups, (kh,) kw]` (a grouped convolution's input axis
/// follows its group's block, a depthwise one's is fixed) and an optional
/// bias.
pub(crate) fn params(c: &Conv, spatial: usize, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let g = crate::op::Op::conv_groups(c, nin).max(1);
    let k = c.kernel;
    let local = match c.groups {
        Groups::One | Groups::Fixed(1) => Role::In(0),
        Groups::Depthwise => Role::Fixed,
        Groups::Fixed(g) => Role::InBlock(0, g),
    };
    let (shape, roles) = if spatial == 1 {
        (
            vec![nout, nin / g, k.w],
            vec![Role::Out, local, Role::Fixed],
        )
    } else {
        (
            vec![nout, nin / g, k.h, k.w],
            vec![Role::Out, local, Role::Fixed, Role::Fixed],
        )
    };
    let mut v = vec![spec("weight", shape, roles, Fill::Random)];
    if c.bias {
        v.push(spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)));
    }
    v
}

/// A masked 2-D convolution's: the convolution's and a fixed 0/1 mask of
/// the kernel's shape.
pub(crate) fn masked_params(c: &Conv, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let mut v = params(c, 2, nin, nout);
    let mut m = spec(
        "mask",
        v[0].shape.clone(),
        v[0].roles.clone(),
        Fill::Value(1.0),
    );
    m.trainable = false;
    v.push(m);
    v
}

/// A transposed convolution's: weight `[nin, nout, kh, kw]` and an
/// optional bias.
pub(crate) fn transpose_params(c: &Conv, nin: usize, nout: usize) -> Vec<ParamSpec> {
    let k = c.kernel;
    let mut v = vec![spec(
        "weight",
        vec![nin, nout, k.h, k.w],
        vec![Role::In(0), Role::Out, Role::Fixed, Role::Fixed],
        Fill::Random,
    )];
    if c.bias {
        v.push(spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)));
    }
    v
}

/// Multiply-accumulates of one sample of a convolution: output positions
/// × outputs × inputs per group × kernel taps (`out` per-sample, channels
/// first).
pub(crate) fn macs(c: &Conv, nin: u64, out: &[usize]) -> Option<u64> {
    let nout = out.first().copied().unwrap_or(0) as u64;
    let g = crate::op::Op::conv_groups(c, nin as usize).max(1) as u64;
    let taps = if out.len() == 2 {
        c.kernel.w as u64
    } else {
        (c.kernel.h as u64).checked_mul(c.kernel.w as u64)?
    };
    let positions = out[1..]
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x as u64))?;
    [positions, nout, nin / g, taps]
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x))
}

/// A transposed convolution's: input positions × inputs × outputs × taps.
pub(crate) fn transpose_macs(c: &Conv, input: &[usize], nout: u64) -> Option<u64> {
    let nin = input.first().copied().unwrap_or(0) as u64;
    let positions = input
        .get(1..)
        .unwrap_or_default()
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x as u64))?;
    [positions, nin, nout, c.kernel.h as u64, c.kernel.w as u64]
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x))
}

/// The size rule of a convolution: it absorbs (chooses its outputs), tied
/// per group when grouped, one output block per input channel when
/// depthwise. Its window sizes are checked first (a zero divides by zero
/// in the arithmetic).
pub(crate) fn declare(
    c: &Conv,
    nin: &[usize],
    nout: usize,
) -> std::result::Result<Declared, String> {
    c.check()?;
    match c.groups {
        Groups::One | Groups::Fixed(1) => Ok(absorbs(Vec::new())),
        Groups::Depthwise => depthwise(nin, nout),
        Groups::Fixed(g) => {
            let n = nin.first().copied().unwrap_or(0);
            if !n.is_multiple_of(g) || !nout.is_multiple_of(g) {
                return Err(format!(
                    "nin {n} and nout {nout} are not multiples of {g} groups"
                ));
            }
            Ok(absorbs(vec![Constraint::Grouped { groups: g }]))
        }
    }
}

/// The size rule of a transposed convolution: it absorbs.
pub(crate) fn transpose_declare(c: &Conv) -> std::result::Result<Declared, String> {
    c.check()?;
    Ok(absorbs(Vec::new()))
}

/// A flatten of `spatial` positions per channel: each input channel owns
/// `spatial` outputs, as a depthwise convolution's block.
pub(crate) fn flatten_declare(
    spatial: usize,
    nin: &[usize],
    nout: usize,
) -> std::result::Result<Declared, String> {
    let n = *nin.first().ok_or("needs one input")?;
    if nout != spatial * n {
        return Err(format!("nout {nout} is not {spatial} x nin {n}"));
    }
    depthwise(nin, nout)
}

/// One block of `nout / nin` outputs per input channel.
fn depthwise(nin: &[usize], nout: usize) -> std::result::Result<Declared, String> {
    let n = *nin.first().ok_or("needs one input")?;
    if n == 0 || !nout.is_multiple_of(n) {
        return Err(format!("nout {nout} is not a multiple of nin {n}"));
    }
    Ok(absorbs(vec![Constraint::depthwise(nout / n)]))
}

fn absorbs(constraints: Vec<Constraint>) -> Declared {
    Declared {
        kind: graft_core::SizeKind::Absorb,
        constraints,
    }
}

/// A Dirac kernel for a convolution that keeps its input (stride 1, an
/// odd window, same padding; as many outputs as inputs, or depthwise),
/// row-major over the weight's shape.
pub(crate) fn identity(c: &Conv, shape: &[usize]) -> std::result::Result<Vec<f64>, String> {
    let same =
        |k: usize, s: usize, p: usize, d: usize| s == 1 && k % 2 == 1 && p * 2 == d * (k - 1);
    let (k, s, p, d) = (c.kernel, c.stride, c.padding, c.dilation);
    if !same(k.h, s.h, p.h, d.h) || !same(k.w, s.w, p.w, d.w) {
        return Err("identity needs stride 1, an odd kernel and same padding".into());
    }
    let (o, i) = (shape[0], shape[1]);
    let spatial: usize = shape[2..].iter().product();
    let centre = spatial / 2;
    let depthwise = c.groups != Groups::One;
    if !depthwise && o != i {
        return Err(format!(
            "identity needs as many outputs as inputs, not {o} and {i}"
        ));
    }
    let mut v = vec![0.0; shape.iter().product()];
    for k in 0..o {
        let col = if depthwise { 0 } else { k };
        v[(k * i + col) * spatial + centre] = 1.0;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn square_values_save_as_one_number_and_old_files_load() {
        // The form graft wrote before per-axis values.
        let old = r#"{"kernel":3,"stride":1,"padding":1,"dilation":1,"groups":"one","bias":true}"#;
        let c: Conv = serde_json::from_str(old).unwrap();
        assert_eq!(c, Conv::same(3));
        assert_eq!(serde_json::to_string(&c).unwrap(), old);
        let row = Conv {
            kernel: Hw::new(1, 7),
            padding: Hw::new(0, 3),
            ..Conv::same(3)
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.contains(r#""kernel":[1,7]"#), "{text}");
        assert_eq!(serde_json::from_str::<Conv>(&text).unwrap(), row);
    }

    /// Direct evaluation of a 2-D convolution (one group) from its
    /// definition: y[o, i, j] = Σ w[o, c, a, b] · x[c, i·sh + a·dh − ph,
    /// j·sw + b·dw − pw], out-of-range inputs 0.
    fn reference(x: &[f32], (c, h, w): (usize, usize, usize), wt: &Tensor, cv: &Conv) -> Vec<f32> {
        let (o, _, kh, kw) = wt.dims4().unwrap();
        let wv: Vec<f32> = wt.flatten_all().unwrap().to_vec1().unwrap();
        let (s, p, d) = (cv.stride, cv.padding, cv.dilation);
        let ho = (h + 2 * p.h - d.h * (kh - 1) - 1) / s.h + 1;
        let wo = (w + 2 * p.w - d.w * (kw - 1) - 1) / s.w + 1;
        let mut y = Vec::new();
        for oc in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0.0;
                    for ic in 0..c {
                        for a in 0..kh {
                            for b in 0..kw {
                                let r = (i * s.h + a * d.h) as isize - p.h as isize;
                                let q = (j * s.w + b * d.w) as isize - p.w as isize;
                                if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                    continue;
                                }
                                let xv = x[(ic * h + r as usize) * w + q as usize];
                                acc += wv[((oc * c + ic) * kh + a) * kw + b] * xv;
                            }
                        }
                    }
                    y.push(acc);
                }
            }
        }
        y
    }

    #[test]
    fn uneven_kernels_strides_pads_and_dilations_match_the_definition() {
        let dev = Device::Cpu;
        let (c, h, w) = (2, 7, 6);
        let x = Tensor::randn(0f32, 1.0, (1, c, h, w), &dev).unwrap();
        let xv: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        for cv in [
            Conv {
                kernel: Hw::new(1, 3),
                padding: Hw::new(0, 1),
                ..Conv::same(1)
            },
            Conv {
                kernel: Hw::new(3, 1),
                stride: Hw::new(2, 1),
                padding: Hw::new(1, 2),
                dilation: Hw::new(1, 2),
                ..Conv::same(1)
            },
            Conv {
                kernel: Hw::new(2, 3),
                stride: Hw::new(1, 3),
                dilation: Hw::new(2, 1),
                ..Conv::same(1)
            },
        ] {
            let wt = Tensor::randn(0f32, 1.0, (3, c, cv.kernel.h, cv.kernel.w), &dev).unwrap();
            let y = conv2d_hw(&x, &wt, &cv, 1).unwrap();
            let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
            let want = reference(&xv, (c, h, w), &wt, &cv);
            assert_eq!(got.len(), want.len(), "{cv:?}");
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4, "{cv:?}: {a} vs {b}");
            }
        }
    }
}
