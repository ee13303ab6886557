//! Resize (opset 11 form and later: `X, roi, scales, sizes`, the last three
//! constants once folded) of the spatial axes of `[N, C, H, W]`: nearest
//! (every `nearest_mode`) and linear (bilinear), with the coordinate
//! transformations half_pixel, pytorch_half_pixel, align_corners and
//! asymmetric. Cubic interpolation, the TensorFlow modes, antialiased
//! downsampling and scaling the batch or channel axis are refused, naming
//! the node. (`Upsample` was removed from ONNX at opset 10, below the
//! opsets graft reads.)

use std::collections::HashMap;

use graft_nn::{Coords, Interp, NearestRound, Op, Resize, ResizeTarget};

use super::Importer;
use crate::error::OnnxError;
use crate::export::{attr_s, Out};
use crate::import::{Ctx, Node};
use crate::tensor::{encode_f32, encode_i64};

pub(super) fn register(r: &mut HashMap<&'static str, Importer>) {
    r.insert("Resize", resize);
}

fn interp(node: &Node) -> Result<Interp, OnnxError> {
    let mode = node.string("mode").unwrap_or_else(|| "nearest".into());
    match mode.as_str() {
        "nearest" => {
            let round = match node
                .string("nearest_mode")
                .unwrap_or_else(|| "round_prefer_floor".into())
                .as_str()
            {
                "floor" => NearestRound::Floor,
                "ceil" => NearestRound::Ceil,
                "round_prefer_floor" => NearestRound::RoundPreferFloor,
                "round_prefer_ceil" => NearestRound::RoundPreferCeil,
                other => return Err(node.err(format!("nearest_mode {other} is not supported"))),
            };
            Ok(Interp::Nearest { round })
        }
        "linear" => Ok(Interp::Linear),
        other => Err(node.err(format!(
            "mode {other} is not supported (nearest and linear are)"
        ))),
    }
}

fn coords(node: &Node) -> Result<Coords, OnnxError> {
    let mode = node
        .string("coordinate_transformation_mode")
        .unwrap_or_else(|| "half_pixel".into());
    Ok(match mode.as_str() {
        "half_pixel" => Coords::HalfPixel,
        "pytorch_half_pixel" => Coords::PytorchHalfPixel,
        "align_corners" => Coords::AlignCorners,
        "asymmetric" => Coords::Asymmetric,
        other => {
            return Err(node.err(format!(
                "coordinate_transformation_mode {other} is not supported"
            )))
        }
    })
}

/// The per-axis values given for `axes` (all four axes by default), spread
/// over the four axes with `fill` for the others.
fn spread<T: Copy>(
    node: &Node,
    what: &str,
    vals: &[T],
    axes: &[usize],
    fill: [T; 4],
) -> Result<[T; 4], OnnxError> {
    if vals.len() != axes.len() {
        return Err(node.err(format!(
            "{what}: {} values for {} axes",
            vals.len(),
            axes.len()
        )));
    }
    let mut out = fill;
    for (&a, &v) in axes.iter().zip(vals) {
        out[a] = v;
    }
    Ok(out)
}

fn resize(ctx: &mut Ctx, node: &Node) -> Result<(), OnnxError> {
    let (x, shape) = ctx.runtime(node, 0)?;
    if shape.len() != 4 || ctx.neuron_axis(x) != Some(1) {
        return Err(node.err(format!(
            "resizes [N, C, H, W] with channels on axis 1 only (input {shape:?})"
        )));
    }
    let interp = interp(node)?;
    let coords = coords(node)?;
    if node.int("antialias", 0) != 0 && interp == Interp::Linear {
        return Err(node.err("antialiased linear resize is not supported"));
    }
    let policy = node.string("keep_aspect_ratio_policy");
    if !matches!(policy.as_deref(), None | Some("stretch")) {
        return Err(node.err(format!(
            "keep_aspect_ratio_policy {} is not supported",
            policy.unwrap_or_default()
        )));
    }
    let axes: Vec<usize> = match node.ints("axes") {
        None => vec![0, 1, 2, 3],
        Some(a) => a
            .iter()
            .map(|&a| {
                let b = if a < 0 { a + 4 } else { a };
                (0..4)
                    .contains(&b)
                    .then_some(b as usize)
                    .ok_or_else(|| node.err(format!("axis {a} out of range for rank 4")))
            })
            .collect::<Result<_, _>>()?,
    };
    let scales = ctx.constant(node, 2)?.filter(|c| c.len() > 0);
    let sizes = ctx.constant(node, 3)?.filter(|c| c.len() > 0);
    let target = match (scales, sizes) {
        (Some(s), None) => {
            let s: Vec<f64> = s.floats().iter().map(|&v| v as f64).collect();
            let s = spread(node, "scales", &s, &axes, [1.0; 4])?;
            if s[0] != 1.0 || s[1] != 1.0 {
                return Err(node.err(format!(
                    "scales {s:?}: only the spatial axes (2 and 3) may be scaled"
                )));
            }
            if s[2] <= 0.0 || s[3] <= 0.0 || !s[2].is_finite() || !s[3].is_finite() {
                return Err(node.err(format!("scales {s:?} must be positive")));
            }
            ResizeTarget::Scales([s[2], s[3]])
        }
        (None, Some(z)) => {
            let dims = [0, 1, 2, 3].map(|a| shape[a] as i64);
            let z = spread(node, "sizes", &z.ints(), &axes, dims)?;
            if z[0] != dims[0] || z[1] != dims[1] {
                return Err(node.err(format!(
                    "sizes {z:?} on input {shape:?}: only the spatial axes (2 and 3) may change"
                )));
            }
            if z[2] <= 0 || z[3] <= 0 {
                return Err(node.err(format!("sizes {z:?} must be positive")));
            }
            ResizeTarget::Sizes([z[2] as usize, z[3] as usize])
        }
        (Some(_), Some(_)) => return Err(node.err("both scales and sizes are given")),
        (None, None) => return Err(node.err("needs constant scales or sizes")),
    };
    if node.int("antialias", 0) != 0
        && matches!(target, ResizeTarget::Scales(s) if s.iter().any(|&v| v < 1.0))
    {
        return Err(node.err("antialiased downsampling is not supported"));
    }
    let r = Resize {
        target,
        interp,
        coords,
    };
    let out = r
        .infer(&shape[1..])
        .map_err(|e| node.err(e))
        .map(|s| [vec![shape[0]], s].concat())?;
    ctx.add(node, Op::Resize(r), &[x], None, out)?;
    Ok(())
}

/// Writes `r` as a Resize node named `name` reading `x`: scales as a
/// constant, sizes as the input's batch and channel sizes (read with Shape,
/// so they follow widening and pruning) followed by the spatial sizes.
pub(crate) fn export(out: &mut Out, name: &str, x: &str, r: &Resize) -> Result<(), OnnxError> {
    let mut attrs = vec![attr_s(
        "coordinate_transformation_mode",
        match r.coords {
            Coords::HalfPixel => "half_pixel",
            Coords::PytorchHalfPixel => "pytorch_half_pixel",
            Coords::AlignCorners => "align_corners",
            Coords::Asymmetric => "asymmetric",
        },
    )];
    match r.interp {
        Interp::Nearest { round } => {
            attrs.push(attr_s("mode", "nearest"));
            attrs.push(attr_s(
                "nearest_mode",
                match round {
                    NearestRound::Floor => "floor",
                    NearestRound::Ceil => "ceil",
                    NearestRound::RoundPreferFloor => "round_prefer_floor",
                    NearestRound::RoundPreferCeil => "round_prefer_ceil",
                },
            ));
        }
        Interp::Linear => attrs.push(attr_s("mode", "linear")),
    }
    match r.target {
        ResizeTarget::Scales([h, w]) => {
            let s = format!("{name}.scales");
            out.inits
                .push(encode_f32(&s, &[4], &[1.0, 1.0, h as f32, w as f32]));
            out.node("Resize", name, &[x, "", &s], name, attrs);
        }
        ResizeTarget::Sizes([h, w]) => {
            let shape = format!("{name}.shape");
            out.node("Shape", &shape, &[x], &shape, vec![]);
            let mut slice_in = vec![shape.clone()];
            for (part, v) in [("starts", 0i64), ("ends", 2)] {
                let n = format!("{name}.{part}");
                out.inits.push(encode_i64(&n, &[1], &[v]));
                slice_in.push(n);
            }
            let lead = format!("{name}.lead");
            let i: Vec<&str> = slice_in.iter().map(String::as_str).collect();
            out.node("Slice", &lead, &i, &lead, vec![]);
            let spatial = format!("{name}.spatial");
            out.inits
                .push(encode_i64(&spatial, &[2], &[h as i64, w as i64]));
            let sizes = format!("{name}.sizes");
            out.node(
                "Concat",
                &sizes,
                &[&lead, &spatial],
                &sizes,
                vec![crate::export::attr_i("axis", 0)],
            );
            out.node("Resize", name, &[x, "", "", &sizes], name, attrs);
        }
    }
    Ok(())
}
