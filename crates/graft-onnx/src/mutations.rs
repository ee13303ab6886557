//! The mutations applied to imported models in the tests and in the fixture
//! script's onnxruntime check (`examples/mutated_fixtures.rs`), kept in one
//! place so that both run the same edits.

use graft_core::{Request, Utility};
use graft_nn::{utility, Conv, Init, Model, NewLayer, Op};

use crate::error::OnnxError;

/// Prune about half of every convolution's channels: each convolution's
/// magnitude utility minus its median, then a re-select (neurons of negative
/// utility are dropped; coupled channels decide together).
///
/// # Errors
/// Planner or model errors.
pub fn prune_half_by_magnitude(m: &mut Model) -> Result<(), OnnxError> {
    let mag = utility::magnitude(m)?;
    let mut u = Utility::new();
    for v in m.graph().ids().collect::<Vec<_>>() {
        let is_conv = matches!(
            m.layer(v).map(|l| &l.op),
            Some(Op::Conv2d(_) | Op::Conv1d(_) | Op::MaskedConv2d(_))
        );
        if let (true, Some(vals)) = (is_conv, mag.get(v)) {
            let mut s = vals.to_vec();
            s.sort_by(f64::total_cmp);
            let median = s[s.len() / 2];
            u.set(v, vals.iter().map(|x| x - median).collect());
        }
        // Other vertices keep the planner's default (norms and activations
        // 0, so they do not outweigh the convolutions they follow).
    }
    m.change_sizes(&Request::new().with_utility(u))?;
    Ok(())
}

/// Widen convolution `name` by `by` channels (new input columns of its
/// consumers are zero, so the function is kept).
///
/// # Errors
/// Unknown name, planner errors.
pub fn widen(m: &mut Model, name: &str, by: i64) -> Result<(), OnnxError> {
    let v = m.id(name)?;
    m.change_sizes(&Request::new().nout(v, by))?;
    Ok(())
}

/// Insert an identity 3×3 convolution named `name` after vertex `after`.
///
/// # Errors
/// Unknown name, model errors.
pub fn insert_identity_conv(m: &mut Model, after: &str, name: &str) -> Result<(), OnnxError> {
    let v = m.id(after)?;
    m.insert_after(
        v,
        NewLayer::new(name, Op::Conv2d(Conv::same(3)), Init::Identity),
        graft_core::Reroute::All,
    )?;
    Ok(())
}
