//! Forward computations, one file per layer family. Every function takes the
//! op's parameters by name and the input tensors; sizes come from the
//! tensors themselves.

pub(crate) mod activation;
pub(crate) mod attention;
pub(crate) mod axes;
pub(crate) mod conv;
pub(crate) mod dense;
pub(crate) mod lastaxis;
pub(crate) mod linear;
pub(crate) mod merge;
pub(crate) mod norm;
pub(crate) mod parts;
pub(crate) mod pointwise;
pub(crate) mod pool;
pub(crate) mod recurrent;
pub(crate) mod resize;
pub(crate) mod routing;
pub(crate) mod sparse;

use std::collections::BTreeMap;

use candle_core::{Result, Tensor};

use crate::op::Op;

/// Parameters of one layer by name, as a layer holds them.
pub(crate) type Vars = BTreeMap<String, crate::param::Param>;

/// Parameters of one layer by name, as the forward pass reads them: the
/// layer's variables (gradients reach them), or their values detached
/// from them (inference: no gradient graph is built, so a long recurrence
/// or a deep chain leaves no deep graph to drop).
pub(crate) type Params = BTreeMap<String, Tensor>;

/// Mode-dependent context of one forward pass.
pub(crate) struct Ctx {
    /// Training mode (batch statistics, dropout).
    pub train: bool,
    /// Seed for dropout masks of this pass and vertex.
    pub seed: u64,
    /// For a masked dense layer sparse enough: its mask's pattern.
    pub csr: Option<std::sync::Arc<sparse::Csr>>,
    /// Samples in this pass (the rows of the scope being computed).
    pub rows: usize,
}

/// Running statistics a batch-norm layer wants written back after a
/// training pass: (name, new value).
pub(crate) type Updates = Vec<(&'static str, Tensor)>;

pub(crate) fn p<'a>(params: &'a Params, name: &str) -> Result<&'a Tensor> {
    params
        .get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("missing parameter `{name}`")))
}

/// A per-channel vector shaped to broadcast over axis 1 of a rank-`rank` tensor.
pub(crate) fn channel(v: &Tensor, rank: usize) -> Result<Tensor> {
    let mut shape = vec![1usize; rank];
    shape[1] = v.dim(0)?;
    v.reshape(shape)
}

/// One op's forward pass.
pub(crate) fn forward(
    op: &Op,
    params: &Params,
    xs: &[Tensor],
    ctx: &Ctx,
) -> Result<(Tensor, Updates)> {
    let x = &xs[0];
    let none = Vec::new();
    Ok(match op {
        Op::Input => (x.clone(), none),
        Op::Dense { .. } => (dense::forward(params, x)?, none),
        Op::MaskedDense { .. } => match &ctx.csr {
            Some(csr) => (dense::sparse(params, x, csr.clone())?, none),
            None => (dense::masked(params, x)?, none),
        },
        Op::LearnableMaskedDense { .. } => (dense::learnable(params, x)?, none),
        Op::Conv1d(c) => (conv::conv1d(params, c, x)?, none),
        Op::Conv2d(c) => (conv::conv2d(params, c, x)?, none),
        Op::MaskedConv2d(c) => (conv::masked_conv2d(params, c, x)?, none),
        Op::ConvTranspose2d {
            conv: c,
            output_padding,
        } => (conv::conv_transpose2d(params, c, *output_padding, x)?, none),
        Op::BatchNorm { eps, momentum } => norm::batch_norm(params, x, *eps, *momentum, ctx.train)?,
        Op::LayerNorm { eps } => (norm::layer_norm(params, x, *eps)?, none),
        Op::GroupNorm { groups, eps } => (norm::group_norm(params, x, *groups, *eps)?, none),
        Op::InstanceNorm { eps } => (norm::instance_norm(params, x, *eps)?, none),
        Op::Activation(f) => (activation::forward(*f, x)?, none),
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => (pool::max2d(x, *kernel, *stride, *padding)?, none),
        Op::AvgPool2d { kernel, stride } => (pool::avg2d(x, *kernel, *stride)?, none),
        Op::GlobalAvgPool => (pool::global_avg(x)?, none),
        Op::GlobalMaxPool => (pool::global_max(x)?, none),
        Op::Resize(r) => (r.forward(x)?, none),
        Op::Dropout { p } => (merge::dropout(x, *p, ctx)?, none),
        Op::Flatten { .. } => (x.flatten_from(1)?, none),
        Op::Reshape { shape } => {
            let mut dims = vec![x.dim(0)?];
            dims.extend(shape);
            (x.reshape(dims)?, none)
        }
        Op::Concat => (Tensor::cat(xs, 1)?, none),
        Op::Add => (merge::fold(xs, |a, b| a.add(b))?, none),
        Op::Sub => (merge::fold(xs, |a, b| a.sub(b))?, none),
        Op::Mul => (merge::fold(xs, |a, b| a.mul(b))?, none),
        Op::Scale { factor } => (x.affine(*factor, 0.0)?, none),
        Op::Identity => (x.clone(), none),
        Op::LastStep => {
            let t = x.dim(2)?;
            (x.narrow(2, t - 1, 1)?.squeeze(2)?, none)
        }
        Op::Recurrent { cell, sequences } => {
            (recurrent::forward(params, *cell, *sequences, x)?, none)
        }
        Op::Unary { f, .. } => (f.forward(x)?, none),
        Op::Elementwise(e) => (e.forward(params, xs)?, none),
        Op::Transpose(t) => (t.forward(x)?, none),
        Op::View(v) => (v.forward(x)?, none),
        Op::Reduce(r) => (r.forward(x)?, none),
        Op::SoftmaxAxis(sm) => (sm.forward(x)?, none),
        Op::Slice(p) => (p.forward(x)?, none),
        Op::Shuffle(s) => (s.forward(x)?, none),
        Op::Join(j) => (j.forward(xs)?, none),
        Op::Pad(p) => (p.forward(x)?, none),
        Op::LinearLast(l) => (l.forward(params, x)?, none),
        Op::Embedding(e) => (e.forward(params, x)?, none),
        Op::MatMul(m) => {
            let b = xs
                .get(1)
                .ok_or_else(|| candle_core::Error::Msg("a product needs two inputs".into()))?;
            (m.forward(x, b)?, none)
        }
        Op::Token(t) => (t.forward(params, x)?, none),
        Op::Regroup(r) => (r.forward(x, ctx.rows)?, none),
        Op::TopK(t) => (t.forward(x)?, none),
        Op::GatherRows(g) => (g.forward(params, x)?, none),
        Op::RoutedLinear(r) => {
            let tokens = xs.get(1).ok_or_else(|| {
                candle_core::Error::Msg("an expert's projection needs its tokens".into())
            })?;
            (r.forward(params, x, tokens)?, none)
        }
        Op::LayerNormLast(l) => (l.forward(params, x)?, none),
        Op::ActivationAt { f, .. } => (activation::forward(*f, x)?, none),
        Op::Cond { .. } | Op::Gate { .. } | Op::Exit { .. } | Op::Moe { .. } => {
            candle_core::bail!("{} routes samples: the executor runs it", op.name())
        }
    })
}
