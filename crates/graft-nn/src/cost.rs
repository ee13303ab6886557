//! Shapes and multiply-accumulates without running anything: per-sample
//! shapes follow from the graph inputs' shapes through every op, and the
//! multiply-accumulates (MACs) of a vertex are those of its weighted product
//! (dense, convolution, recurrent); elementwise ops, norms and pools count 0,
//! as the usual MAC counters do. Masked layers count their dense product.

use std::collections::HashMap;

use graft_core::{Graph, SizeKind, VertexId};

use crate::error::{NnError, Result};
use crate::model::Model;
use crate::op::{Hw, Op};

/// One sample's shape: features or channels first, then spatial axes.
pub type Shape = Vec<usize>;

/// The output length along one axis of a convolution with kernel `k`,
/// stride `s`, padding `p` and dilation `d` on that axis.
fn conv_out(len: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
    let span = d * k.checked_sub(1)? + 1;
    (len + 2 * p).checked_sub(span).map(|x| x / s.max(1) + 1)
}

/// The per-axis values of a 1-D (width only) or 2-D window.
fn per_axis(v: Hw, axes: usize) -> Vec<usize> {
    if axes == 1 {
        vec![v.w]
    } else {
        vec![v.h, v.w]
    }
}

/// `[nout, spatial...]` after a pooling window (padded entries never win).
fn pooled(
    spatial: &[usize],
    kernel: Hw,
    stride: Hw,
    padding: Hw,
    nout: usize,
) -> std::result::Result<Shape, String> {
    let mut out = vec![nout];
    for (i, &l) in spatial.iter().enumerate() {
        let (k, s, p) = (kernel.pair()[i], stride.pair()[i], padding.pair()[i]);
        let l = l + 2 * p;
        let span = l
            .checked_sub(k)
            .ok_or(format!("window {kernel} larger than the input {l}"))?;
        out.push(span / s.max(1) + 1);
    }
    Ok(out)
}

/// The per-sample output shape of `op` for these input shapes and `nout`.
pub(crate) fn infer(op: &Op, ins: &[&Shape], nout: usize) -> std::result::Result<Shape, String> {
    let first = || ins.first().copied().ok_or("no input".to_string());
    let with_channels = |s: &Shape| {
        let mut s = s.clone();
        if let Some(c) = s.first_mut() {
            *c = nout;
        }
        s
    };
    let spatial = |s: &Shape, want: usize| -> std::result::Result<Vec<usize>, String> {
        if s.len() != want + 1 {
            return Err(format!(
                "expects {want} spatial axes, the input has shape {s:?}"
            ));
        }
        Ok(s[1..].to_vec())
    };
    Ok(match op {
        Op::Input => first()?.clone(),
        Op::Dense { .. } | Op::MaskedDense { .. } | Op::LearnableMaskedDense { .. } => vec![nout],
        Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
            let d = if matches!(op, Op::Conv1d(_)) { 1 } else { 2 };
            let mut out = vec![nout];
            let (k, s) = (per_axis(c.kernel, d), per_axis(c.stride, d));
            let (p, dl) = (per_axis(c.padding, d), per_axis(c.dilation, d));
            for (i, l) in spatial(first()?, d)?.into_iter().enumerate() {
                out.push(
                    conv_out(l, k[i], s[i], p[i], dl[i])
                        .ok_or(format!("kernel {} larger than the input ({l})", c.kernel))?,
                );
            }
            out
        }
        Op::ConvTranspose2d {
            conv: c,
            output_padding,
        } => {
            let mut out = vec![nout];
            for (i, l) in spatial(first()?, 2)?.into_iter().enumerate() {
                let (k, s) = (c.kernel.pair()[i], c.stride.pair()[i]);
                let (p, d) = (c.padding.pair()[i], c.dilation.pair()[i]);
                let full = (l.max(1) - 1) * s + d * k.saturating_sub(1) + output_padding + 1;
                out.push(
                    full.checked_sub(2 * p)
                        .ok_or("padding larger than the output")?,
                );
            }
            out
        }
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => pooled(&spatial(first()?, 2)?, *kernel, *stride, *padding, nout)?,
        Op::AvgPool2d { kernel, stride } => pooled(
            &spatial(first()?, 2)?,
            *kernel,
            *stride,
            Hw::default(),
            nout,
        )?,
        Op::GlobalAvgPool | Op::GlobalMaxPool | Op::LastStep => vec![nout],
        Op::Resize(r) => r.infer(first()?)?,
        Op::Flatten { .. } => vec![first()?.iter().product()],
        Op::Reshape { shape } => shape.clone(),
        Op::Concat => with_channels(first()?),
        Op::Recurrent { sequences, .. } => {
            let s = first()?;
            if *sequences {
                vec![nout, *s.get(1).ok_or("a sequence needs a time axis")?]
            } else {
                vec![nout]
            }
        }
        Op::Cond { .. } | Op::Gate { .. } | Op::Moe { .. } => {
            with_channels(ins.get(1).copied().ok_or("no branch")?)
        }
        Op::Unary { .. } => first()?.clone(),
        Op::Elementwise(e) => e.infer(ins, nout)?,
        Op::Transpose(t) => t.infer(first()?)?,
        Op::View(v) => v.infer(first()?, nout)?,
        Op::Reduce(r) => r.infer(first()?)?,
        Op::Slice(p) => p.infer(first()?, nout)?,
        Op::Shuffle(s) => s.infer(first()?)?,
        Op::Join(j) => j.infer(ins)?,
        Op::Pad(p) => p.infer(first()?)?,
        Op::LinearLast(l) => l.infer(first()?, nout)?,
        Op::Embedding(e) => e.infer(first()?, nout),
        Op::MatMul(m) => m.infer(first()?, ins.get(1).copied().ok_or("needs two inputs")?)?,
        Op::Token(t) => t.infer(nout),
        Op::Regroup(r) => r.infer(nout),
        Op::TopK(t) => t.infer(first()?)?,
        Op::GatherRows(g) => g.infer(first()?)?,
        Op::RoutedLinear(r) => r.infer(
            first()?,
            ins.get(1).copied().ok_or("needs its tokens")?,
            nout,
        )?,
        Op::LayerNormLast(_) | Op::ActivationAt { .. } | Op::SoftmaxAxis(_) => first()?.clone(),
        Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::InstanceNorm { .. }
        | Op::Activation(_)
        | Op::Dropout { .. }
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Scale { .. }
        | Op::Identity
        | Op::Exit { .. } => with_channels(first()?),
    })
}

/// The output's per-sample shape and first axis of the ops that move values
/// across the batch axis, given the input's first axis `lead` at batch
/// size 1; `None` for the others.
fn with_lead(
    op: &Op,
    ins: &[&Shape],
    lead: usize,
) -> Option<std::result::Result<(Shape, usize), String>> {
    let s = ins.first()?;
    let mut full = vec![lead];
    full.extend(s.iter());
    match op {
        Op::Transpose(t) => Some(
            t.infer(&full[1..])
                .map(|_| {
                    let out: Vec<usize> = t.perm.iter().map(|&a| full[a]).collect();
                    (out[1..].to_vec(), out[0])
                })
                .map_err(|e| format!("{e} (first axis {lead})")),
        ),
        Op::Regroup(r) => Some(r.target(&full).and_then(|rest| {
            let lead = r.lead(full.iter().product(), &rest)?;
            Ok((rest, lead))
        })),
        Op::Input
        | Op::Dense { .. }
        | Op::MaskedDense { .. }
        | Op::LearnableMaskedDense { .. }
        | Op::Conv1d(_)
        | Op::Conv2d(_)
        | Op::MaskedConv2d(_)
        | Op::ConvTranspose2d { .. }
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::InstanceNorm { .. }
        | Op::Activation(_)
        | Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Resize(_)
        | Op::Dropout { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Concat
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Scale { .. }
        | Op::Identity
        | Op::LastStep
        | Op::Recurrent { .. }
        | Op::Cond { .. }
        | Op::Gate { .. }
        | Op::Exit { .. }
        | Op::Moe { .. }
        | Op::Unary { .. }
        | Op::Elementwise(_)
        | Op::View(_)
        | Op::Reduce(_)
        | Op::SoftmaxAxis(_)
        | Op::Slice(_)
        | Op::Shuffle(_)
        | Op::Join(_)
        | Op::Pad(_)
        | Op::LinearLast(_)
        | Op::Embedding(_)
        | Op::MatMul(_)
        | Op::Token(_)
        | Op::TopK(_)
        | Op::GatherRows(_)
        | Op::RoutedLinear(_)
        | Op::LayerNormLast(_)
        | Op::ActivationAt { .. } => None,
    }
}

/// Multiply-accumulates of one sample through `op`.
pub(crate) fn macs_of(op: &Op, ins: &[&Shape], out: &Shape) -> Option<u64> {
    let n0 = ins.first().and_then(|s| s.first()).copied().unwrap_or(0) as u64;
    let nout = out.first().copied().unwrap_or(0) as u64;
    // Checked (in each family's count): shapes from a file or a command
    // line may be huge, and a count that does not fit is an error, not a
    // wrapped number.
    Some(match op {
        Op::Dense { .. } | Op::MaskedDense { .. } | Op::LearnableMaskedDense { .. } => {
            crate::layers::dense::macs(n0, nout)?
        }
        Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
            crate::layers::conv::macs(c, n0, out)?
        }
        Op::ConvTranspose2d { conv: c, .. } => {
            crate::layers::conv::transpose_macs(c, ins.first().map_or(&[][..], |s| &s[..]), nout)?
        }
        Op::LinearLast(l) => match ins.first() {
            Some(s) => l.macs(s, out.last().copied().unwrap_or(0))?,
            None => 0,
        },
        Op::MatMul(m) => match ins.first() {
            Some(a) => m.macs(a, out)?,
            None => 0,
        },
        Op::Recurrent { cell, .. } => {
            crate::layers::recurrent::macs(*cell, ins.first().map(|s| &s[..]), n0, nout)?
        }
        Op::Input
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::InstanceNorm { .. }
        | Op::Activation(_)
        | Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Resize(_)
        | Op::Dropout { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Concat
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Scale { .. }
        | Op::Identity
        | Op::LastStep
        | Op::Cond { .. }
        | Op::Gate { .. }
        | Op::Exit { .. }
        | Op::Moe { .. }
        | Op::Unary { .. }
        | Op::Elementwise(_)
        | Op::Transpose(_)
        | Op::View(_)
        | Op::Reduce(_)
        | Op::SoftmaxAxis(_)
        | Op::Slice(_)
        | Op::Shuffle(_)
        | Op::Join(_)
        | Op::Pad(_)
        | Op::LayerNormLast(_)
        | Op::Embedding(_)
        | Op::Token(_)
        | Op::Regroup(_)
        | Op::TopK(_)
        | Op::ActivationAt { .. } => 0,
        Op::GatherRows(g) => g.macs(),
        Op::RoutedLinear(r) => match ins.get(1) {
            Some(x) => r.macs(
                x,
                out.get(out.len().saturating_sub(2)).copied().unwrap_or(0),
            )?,
            None => 0,
        },
    })
}

/// Per-sample shapes and MACs of every vertex of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cost {
    /// Every vertex's per-sample output shape.
    pub shapes: HashMap<VertexId, Shape>,
    /// Every vertex's multiply-accumulates per sample.
    pub macs: HashMap<VertexId, u64>,
    /// The first axis's size, at batch size 1, of the values whose first
    /// axis is not the batch axis alone (after a transpose moving it or a
    /// [`crate::Regroup`]); their `shapes` entry holds the other axes.
    pub leads: HashMap<VertexId, usize>,
}

impl Cost {
    /// The multiply-accumulates of one sample through the whole graph
    /// (every branch and expert included).
    pub fn total(&self) -> u64 {
        // Saturating: every count is checked, their sum may still not fit.
        self.macs.values().fold(0u64, |a, &m| a.saturating_add(m))
    }
}

impl Model {
    /// Shapes and MACs per sample, given the per-sample shape of every
    /// graph input (in the executor's input order), e.g. `[3, 32, 32]`.
    ///
    /// # Errors
    /// A wrong number of input shapes, or shapes an op cannot take (the
    /// vertex is named).
    pub fn cost(&self, inputs: &[Shape]) -> Result<Cost> {
        cost_of(self.graph(), self, inputs)
    }

    /// Trainable parameters (weights and biases, not buffers such as masks
    /// or running statistics).
    pub fn parameter_count(&self) -> u64 {
        parameters_of(self.graph(), self)
    }
}

/// Trainable parameters of `model`'s layers at the sizes of `graph` (the
/// model's own graph, or a planned copy of it).
pub(crate) fn parameters_of(graph: &Graph, model: &Model) -> u64 {
    graph
        .ids()
        .filter_map(|v| {
            let vx = graph.vertex(v).ok()?;
            let op = &model.layer(v)?.op;
            Some(
                op.params(vx.nin(), vx.nout())
                    .iter()
                    .filter(|s| s.trainable)
                    .map(|s| s.shape.iter().product::<usize>() as u64)
                    .sum::<u64>(),
            )
        })
        .sum()
}

/// [`Model::cost`] at the sizes of `graph`.
pub(crate) fn cost_of(graph: &Graph, model: &Model, inputs: &[Shape]) -> Result<Cost> {
    let g = graph;
    let order = g.topological_order()?;
    let graph_inputs: Vec<VertexId> = order
        .iter()
        .copied()
        .filter(|&v| g.vertex(v).is_ok_and(|x| x.kind() == SizeKind::Input))
        .collect();
    if graph_inputs.len() != inputs.len() {
        return Err(NnError::InputCount {
            expected: graph_inputs.len(),
            got: inputs.len(),
        });
    }
    let mut shapes: HashMap<VertexId, Shape> = HashMap::new();
    // The first axis's size at batch size 1: 1 but after ops that move
    // values across the batch axis (a transpose moving it, a regroup).
    let mut leads: HashMap<VertexId, usize> = graph_inputs.iter().map(|&v| (v, 1)).collect();
    // The axis carrying the batch, where it is not the first.
    let mut batch_at: HashMap<VertexId, usize> = HashMap::new();
    let mut macs = HashMap::new();
    let mut total = 0u64;
    for (&v, s) in graph_inputs.iter().zip(inputs) {
        let n = g.vertex(v)?.nout();
        if s.first() != Some(&n) {
            return Err(NnError::Layer {
                vertex: g.name(v),
                reason: format!("input shape {s:?}, the graph says {n} features"),
            });
        }
        shapes.insert(v, s.clone());
    }
    for &v in &order {
        let vx = g.vertex(v)?;
        if vx.kind() == SizeKind::Input {
            continue;
        }
        let op = &model
            .layer(v)
            .ok_or_else(|| NnError::Layer {
                vertex: vx.name().to_string(),
                reason: "no layer".into(),
            })?
            .op;
        let ins: Vec<&Shape> = vx.inputs().iter().map(|u| &shapes[u]).collect();
        let lead = vx.inputs().first().map_or(1, |u| leads[u]);
        let (out, lead) = with_lead(op, &ins, lead)
            .unwrap_or_else(|| infer(op, &ins, vx.nout()).map(|s| (s, lead)))
            .map_err(|reason| NnError::Layer {
                vertex: vx.name().to_string(),
                reason,
            })?;
        let m = macs_of(op, &ins, &out)
            .and_then(|m| m.checked_mul(lead as u64))
            .filter(|m| total.checked_add(*m).is_some())
            .ok_or_else(|| NnError::Layer {
                vertex: vx.name().to_string(),
                reason: format!(
                    "its multiply-accumulates at output shape {out:?} do not fit in 64 bits"
                ),
            })?;
        total += m;
        macs.insert(v, m);
        shapes.insert(v, out);
        leads.insert(v, lead);
        let from = vx
            .inputs()
            .first()
            .map_or(0, |u| batch_at.get(u).copied().unwrap_or(0));
        let at = op.batch_axis_after(from);
        if at != 0 {
            batch_at.insert(v, at);
        }
    }
    leads.retain(|v, l| *l != 1 || batch_at.contains_key(v));
    Ok(Cost {
        shapes,
        macs,
        leads,
    })
}
