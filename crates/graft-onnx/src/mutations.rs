//! The mutations applied to imported models in the tests and in the fixture
//! script's onnxruntime check (`examples/mutated_fixtures.rs`), kept in one
//! place so that both run the same edits.

use graft_core::{Request, Utility};
use graft_nn::shrink::{shrink_parts, Part, Scope, Target};
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

/// The first head split of a model (one neuron per head), by name.
///
/// # Errors
/// A model without heads.
pub fn first_head_split(m: &Model) -> Result<String, OnnxError> {
    let g = m.graph();
    g.topological_order()?
        .into_iter()
        .find(|&v| g.vertex(v).is_ok_and(|x| x.heads().is_some()))
        .map(|v| g.name(v))
        .ok_or_else(|| OnnxError::Export {
            vertex: "(model)".into(),
            reason: "no head split".into(),
        })
}

/// The head split with the fewest heads among the first attention block's
/// (the KV heads under grouped-query attention), by name.
///
/// # Errors
/// No head split in the model.
pub fn kv_head_split(m: &Model) -> Result<String, OnnxError> {
    let g = m.graph();
    let splits: Vec<_> = g
        .topological_order()?
        .into_iter()
        .filter(|&v| g.vertex(v).is_ok_and(|x| x.heads().is_some()))
        .take(3)
        .collect();
    let v = splits
        .iter()
        .copied()
        .min_by_key(|&v| g.nout(v).unwrap_or(usize::MAX))
        .ok_or_else(|| OnnxError::Export {
            vertex: "(model)".into(),
            reason: "no attention head split".into(),
        })?;
    Ok(g.name(v))
}

/// A transformer with one KV head more in its first attention block (its
/// query heads with it): new heads' output-projection columns are zero, so
/// the function is kept.
///
/// # Errors
/// No head split, planner errors.
pub fn add_kv_head(m: &mut Model) -> Result<(), OnnxError> {
    let name = kv_head_split(m)?;
    widen(m, &name, 1)
}

/// A transformer's heads and MLP widths pruned by magnitude: 30% of their
/// neurons (`graft prune --ratio 0.3 --only heads,mlp`); `sample_shapes`
/// are the inputs' per-sample shapes (for counting MACs).
///
/// # Errors
/// Pruning errors.
pub fn prune_heads_and_mlp(m: &mut Model, sample_shapes: &[Vec<usize>]) -> Result<(), OnnxError> {
    prune_parts_by_magnitude(m, sample_shapes, 0.3, &[Part::Heads, Part::Mlp])
}

/// A transformer's heads, MLP widths (an expert's too) and hidden size
/// pruned by magnitude: 30% of their neurons (`graft prune --ratio 0.3
/// --only heads,mlp,hidden`).
///
/// # Errors
/// Pruning errors.
pub fn prune_heads_mlp_and_hidden(
    m: &mut Model,
    sample_shapes: &[Vec<usize>],
) -> Result<(), OnnxError> {
    prune_parts_by_magnitude(
        m,
        sample_shapes,
        0.3,
        &[Part::Heads, Part::Mlp, Part::Hidden],
    )
}

/// `ratio` of the neurons of `parts` pruned by magnitude, global scope.
fn prune_parts_by_magnitude(
    m: &mut Model,
    sample_shapes: &[Vec<usize>],
    ratio: f64,
    parts: &[Part],
) -> Result<(), OnnxError> {
    let u = utility::magnitude(m)?;
    shrink_parts(
        m,
        &u,
        Target::Ratio(ratio),
        Scope::Global,
        sample_shapes,
        parts,
    )?;
    Ok(())
}

/// The query's head split read along the head dimension (the first fold of
/// the model, which feeds a product of queries by keys), by name.
///
/// # Errors
/// No fold in the model (it was not read with
/// [`Reading::HeadDims`](crate::Reading::HeadDims)).
pub fn query_fold(m: &Model) -> Result<String, OnnxError> {
    let g = m.graph();
    g.topological_order()?
        .into_iter()
        .find(|&v| g.vertex(v).is_ok_and(|x| x.fold().is_some()))
        .map(|v| g.name(v))
        .ok_or_else(|| OnnxError::Export {
            vertex: "(model)".into(),
            reason: "no head split read along the head dimension".into(),
        })
}

/// A transformer (read with [`Reading::HeadDims`](crate::Reading::HeadDims))
/// with its head dimensions pruned by magnitude: 30% of their neurons, the
/// same dimensions in every head (`graft prune --ratio 0.3 --only
/// head-dims`).
///
/// # Errors
/// Pruning errors.
pub fn prune_head_dims(m: &mut Model, sample_shapes: &[Vec<usize>]) -> Result<(), OnnxError> {
    prune_parts_by_magnitude(m, sample_shapes, 0.3, &[Part::HeadDims])
}

/// A mixture of experts with a quarter of its experts pruned by magnitude
/// (`graft prune --ratio 0.25 --only experts`): each goes with its router
/// row and its rows in every expert table.
///
/// # Errors
/// Pruning errors.
pub fn prune_experts(m: &mut Model, sample_shapes: &[Vec<usize>]) -> Result<(), OnnxError> {
    prune_parts_by_magnitude(m, sample_shapes, 0.25, &[Part::Experts])
}

/// The first expert projection of a mixture of experts (the gate-and-up
/// table of its first block), by name.
///
/// # Errors
/// A model without experts.
pub fn expert_projection(m: &Model) -> Result<String, OnnxError> {
    let g = m.graph();
    g.topological_order()?
        .into_iter()
        .find(|&v| matches!(m.layer(v).map(|l| &l.op), Some(Op::RoutedLinear(_))))
        .map(|v| g.name(v))
        .ok_or_else(|| OnnxError::Export {
            vertex: "(model)".into(),
            reason: "no expert projection".into(),
        })
}
