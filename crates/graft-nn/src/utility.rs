//! Neuron utilities for the planner, computed from a model.

use candle_core::{DType, Tensor};
use graft_core::Utility;

use crate::error::Result;
use crate::model::Model;
use crate::op::Role;

/// Magnitude utility: for every neuron of a layer with parameters, the L2
/// norm of each trainable weight slice it owns (its row, per gate block for
/// recurrent layers) plus the absolute value of each 1-D parameter entry it
/// owns (bias; γ and β for norms). Vertices without parameters get the
/// planner's default.
///
/// # Errors
/// Tensor errors.
pub fn magnitude(model: &Model) -> Result<Utility> {
    let mut u = Utility::new();
    for (v, layer) in model.layers() {
        let n = model.graph().nout(*v)?;
        let mut acc = vec![0f64; n];
        let mut any = false;
        for s in layer.op.params(&[1], 1) {
            if !s.trainable {
                continue;
            }
            let Some((axis, gates)) = s.roles.iter().enumerate().find_map(|(a, r)| match *r {
                Role::Out => Some((a, 1)),
                Role::OutGates(g) => Some((a, g)),
                _ => None,
            }) else {
                continue;
            };
            let Some(var) = layer.params.get(s.name) else {
                continue;
            };
            let t: Tensor = var.as_tensor().to_dtype(DType::F64)?;
            let t = if axis == 0 { t } else { t.transpose(0, axis)? };
            let len = t.dim(0)?;
            let rows = t.reshape((len, ()))?;
            let per = if rows.dim(1)? == 1 {
                rows.abs()?.sum(1)?
            } else {
                rows.sqr()?.sum(1)?.sqrt()?
            };
            let per: Vec<f64> = per.to_vec1()?;
            for (i, x) in per.iter().enumerate() {
                acc[i % n] += x;
            }
            let _ = gates;
            any = true;
        }
        if any {
            u.set(*v, acc);
        }
    }
    Ok(u)
}
