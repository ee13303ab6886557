//! Masked feed-forward networks (deepstruct's MaskedDeepFFN): masked dense
//! layers with ReLU between them.

use graft_nn::{Activation, Model, Op};

use crate::error::SparseError;

/// `input -> [masked dense -> ReLU] per hidden width -> masked dense(output)`.
/// Vertices are named `in`, `fc1`, `act1`, ..., `out`.
///
/// # Errors
/// Model errors (a zero width).
pub fn masked_ffn(
    input: usize,
    output: usize,
    hidden: &[usize],
    seed: u64,
) -> Result<Model, SparseError> {
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, seed);
    let mut h = m.input("in", input)?;
    for (k, &w) in hidden.iter().enumerate() {
        let d = m.add(
            &format!("fc{}", k + 1),
            Op::MaskedDense { bias: true },
            &[h],
            Some(w),
        )?;
        h = m.add(
            &format!("act{}", k + 1),
            Op::Activation(Activation::Relu),
            &[d],
            None,
        )?;
    }
    m.add("out", Op::MaskedDense { bias: true }, &[h], Some(output))?;
    Ok(m)
}
