//! What a vertex computes: the [`Op`] (hyperparameters, no sizes: sizes live
//! in the core graph), how it declares its size rule to the core, and the
//! layout of its parameters (which axis follows which neuron list).

use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

pub use crate::layers::attention::{BatchAt, DimProduct, HeadSplit, MatMul, Regroup, Token};
pub use crate::layers::axes::{Reduce, Reducer, Shuffle, Softmax, Transpose, View, ViewDim};
pub use crate::layers::conv::Hw;
pub use crate::layers::lastaxis::{Embedding, LayerNormLast, LinearLast};
pub use crate::layers::parts::{Join, Pad, PadMode, Slice};
pub use crate::layers::pointwise::{Binary, ConstOperand, Elementwise, Operand, Unary};
pub use crate::layers::resize::{Coords, Interp, NearestRound, Resize, ResizeTarget};
pub use crate::layers::routing::{GatherRows, RoutedLinear, TopK};

/// How the batch passes through an op ([`Op::batch_passing`]).
enum BatchPassing<'a> {
    /// A graph input: the batch is its first axis.
    First,
    /// Kept on the axis the input has it on.
    Kept,
    /// Reshaped around with sizes fixed at import, taken as the input's
    /// first axis and left first.
    KeptFirst,
    /// Moved by this permutation (output axis `i` is input axis
    /// `perm[i]`).
    Permuted(&'a [usize]),
    /// Put on this output axis.
    Placed(usize),
}

/// Pointwise nonlinearities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Activation {
    /// max(x, 0).
    Relu,
    /// max(x, 0) + slope·min(x, 0).
    LeakyRelu {
        /// Negative slope.
        slope: f64,
    },
    /// x for x > 0, alpha·(exp(x) − 1) otherwise.
    Elu {
        /// Saturation for negative inputs.
        alpha: f64,
    },
    /// Scaled ELU with the self-normalising constants.
    Selu,
    /// Gaussian error linear unit (exact, with erf).
    Gelu,
    /// 1 / (1 + exp(−x)).
    Sigmoid,
    /// tanh(x).
    Tanh,
    /// Softmax over the neuron axis (axis 1). Not neuron-separable: adding
    /// neurons changes every output.
    Softmax,
    /// x · relu6(x + 3) / 6.
    HardSwish,
    /// min(max(x, 0), 6).
    Relu6,
    /// max(0, min(1, alpha·x + beta)) (ONNX's defaults: 0.2 and 0.5).
    HardSigmoid {
        /// Slope.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
}

/// How a convolution groups its channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Groups {
    /// Every output reads every input channel.
    One,
    /// One group per input channel (depthwise, channel multiplier
    /// nout / nin); sizes stay coupled block by block.
    Depthwise,
    /// A fixed number of groups between 1 and nin (the core's `grouped`
    /// constraint: sizes change by whole rows of groups, every group keeping
    /// the same local channels).
    Fixed(usize),
}

/// Convolution hyperparameters, per spatial axis (a 1-D convolution reads
/// the width entries; see [`Hw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv {
    /// Kernel size.
    pub kernel: Hw,
    /// Stride.
    pub stride: Hw,
    /// Zero padding on each side (the same before and after, per axis).
    pub padding: Hw,
    /// Dilation.
    pub dilation: Hw,
    /// Channel grouping.
    pub groups: Groups,
    /// With a bias.
    pub bias: bool,
}

impl Conv {
    /// A `kernel`×`kernel` convolution with stride 1, "same" padding and a bias.
    pub fn same(kernel: usize) -> Self {
        Conv {
            kernel: Hw::square(kernel),
            stride: Hw::square(1),
            padding: Hw::square(kernel / 2),
            dilation: Hw::square(1),
            groups: Groups::One,
            bias: true,
        }
    }
    /// The same, depthwise.
    pub fn depthwise(self) -> Self {
        Conv {
            groups: Groups::Depthwise,
            ..self
        }
    }
    /// Kernel, stride and dilation are at least 1 on both axes (a zero
    /// divides by zero in the convolution's arithmetic).
    pub(crate) fn check(&self) -> Result<(), String> {
        positive(&[
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ])
    }
}

/// Each named window size at least 1 on both axes.
pub(crate) fn positive(sizes: &[(&str, Hw)]) -> Result<(), String> {
    match sizes.iter().find(|(_, hw)| hw.h == 0 || hw.w == 0) {
        Some((name, hw)) => Err(format!("{name} {}x{}: must be at least 1", hw.h, hw.w)),
        None => Ok(()),
    }
}

/// Recurrent cells. A neuron is one hidden unit: one row in each gate block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cell {
    /// h' = tanh(W x + U h + b).
    Rnn,
    /// Gates i, f, g, o (PyTorch order).
    Lstm,
    /// Gates r, z, n (PyTorch order).
    Gru,
}

impl Cell {
    /// Gate blocks per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// What a vertex computes. Sizes are not part of it: they are the graph's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A graph input.
    Input,
    /// Fully connected layer on `[N, F]`.
    Dense {
        /// With a bias.
        bias: bool,
    },
    /// Fully connected layer whose weight is multiplied by a 0/1 mask, a
    /// persistent buffer of the weight's shape (saved with the parameters):
    /// masked weights get exactly zero gradient. The bias is not masked.
    MaskedDense {
        /// With a bias.
        bias: bool,
    },
    /// Fully connected layer with a learnable mask: the mask is
    /// `logits > 0` in the forward pass and passes gradients to its logits
    /// through a sigmoid (straight-through). The logits start at +3, so a
    /// new layer has every connection on.
    LearnableMaskedDense {
        /// With a bias.
        bias: bool,
    },
    /// 1-D convolution on `[N, C, L]`.
    Conv1d(Conv),
    /// 2-D convolution on `[N, C, H, W]`.
    Conv2d(Conv),
    /// 2-D convolution whose kernel is multiplied by a 0/1 mask of its
    /// shape (a saved, non-trainable buffer): masked taps get exactly zero
    /// gradient. The bias is not masked.
    MaskedConv2d(Conv),
    /// 2-D transposed convolution (groups 1).
    ConvTranspose2d {
        /// Kernel, stride, padding, dilation, bias (groups must be One).
        conv: Conv,
        /// Extra rows and columns on the output's far side.
        output_padding: usize,
    },
    /// Batch normalisation over axis 1 (any rank).
    BatchNorm {
        /// Added to the variance.
        eps: f64,
        /// Weight of the new batch in the running statistics.
        momentum: f64,
    },
    /// Layer normalisation over axis 1. Not neuron-separable.
    LayerNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// Group normalisation; nout changes in multiples of `groups`. Not
    /// neuron-separable.
    GroupNorm {
        /// Number of groups.
        groups: usize,
        /// Added to the variance.
        eps: f64,
    },
    /// Instance normalisation (per sample and channel, over space).
    InstanceNorm {
        /// Added to the variance.
        eps: f64,
    },
    /// A pointwise nonlinearity.
    Activation(Activation),
    /// Max pooling on `[N, C, H, W]`.
    MaxPool2d {
        /// Window.
        kernel: Hw,
        /// Stride.
        stride: Hw,
        /// Padding on each side (padded entries never win).
        #[serde(default)]
        padding: Hw,
    },
    /// Average pooling on `[N, C, H, W]`.
    AvgPool2d {
        /// Window.
        kernel: Hw,
        /// Stride.
        stride: Hw,
    },
    /// Mean over all spatial axes: `[N, C, ...]` to `[N, C]`.
    GlobalAvgPool,
    /// Max over all spatial axes.
    GlobalMaxPool,
    /// Up- or downsampling of the spatial axes of `[N, C, H, W]`.
    Resize(Resize),
    /// Dropout (training only).
    Dropout {
        /// Drop probability.
        p: f64,
    },
    /// `[N, C, ...spatial]` to `[N, C·spatial]`, channel-major; nout =
    /// spatial · nin, so it changes in multiples of the spatial size.
    Flatten {
        /// Product of the spatial sizes of the input.
        spatial: usize,
    },
    /// Reshape each sample to `shape` (the first entry is the new neuron
    /// axis), e.g. `[N, C·H·W]` to `[N, C, H, W]`. Other than flatten, the
    /// core cannot keep such a regrouping of neurons aligned, so the vertex
    /// is immutable: its size and its input's size never change.
    Reshape {
        /// Per-sample shape after the reshape.
        shape: Vec<usize>,
    },
    /// Concatenation along axis 1.
    Concat,
    /// Elementwise sum of the inputs.
    Add,
    /// First input minus the others.
    Sub,
    /// Elementwise product.
    Mul,
    /// Multiply by a constant.
    Scale {
        /// The factor.
        factor: f64,
    },
    /// The identity.
    Identity,
    /// The last time step of a channels-first sequence: `[N, C, T]` to
    /// `[N, C]`.
    LastStep,
    /// A recurrent layer over channels-first sequences `[N, F, T]`.
    Recurrent {
        /// Cell type.
        cell: Cell,
        /// Return `[N, H, T]` instead of the last state `[N, H]`.
        sequences: bool,
    },
    /// A conditional: input 0 is the control, inputs 1.. are the branches;
    /// each sample takes the branch the rule picks from its control row (a
    /// control of one row decides for the whole batch). Only the branch
    /// taken runs, on the samples that take it; the branches merge into
    /// one value, so their sizes are tied (a select in the core).
    Cond {
        /// How the control picks a branch.
        rule: Rule,
        /// The control has one row for the whole batch (a scalar switch;
        /// exported to ONNX as `If`); otherwise it may have one row per
        /// sample (exported in mask-and-merge form).
        #[serde(default)]
        batch: bool,
    },
    /// A gated branch: input 0 is the gate's logit (one per sample, from a
    /// learned head), input 1 the branch. Output `g · branch` with a hard
    /// gate g = [logit > 0] (the branch runs only where g = 1 at
    /// inference); in training g passes gradients to the logit by the
    /// estimator. Used as `x + gate(head(x), f(x))` for SkipNet-style
    /// blocks.
    Gate {
        /// How training passes gradients through the hard decision.
        estimator: GateEstimator,
    },
    /// An early exit: input 0 is a side head's output, input 1 the rest of
    /// the network. At inference a sample whose head is confident enough
    /// takes the head's output and the rest does not run for it; in
    /// training every sample runs to the end and the head's output is kept
    /// for the joint loss. The two inputs are tied (invariant).
    Exit {
        /// The confidence measure.
        confidence: Confidence,
        /// A sample exits when its confidence is at least this.
        threshold: f64,
    },
    /// A pointwise function of one value (any layout).
    Unary {
        /// The function.
        f: Unary,
        /// The neuron axis of the value (batch axis included), if any.
        axis: Option<usize>,
    },
    /// An elementwise function of several values and constants with numpy
    /// broadcasting (any layout; see [`Elementwise`]).
    Elementwise(Elementwise),
    /// A permutation of the axes.
    Transpose(Transpose),
    /// A reshape that keeps the neuron axis whole.
    View(View),
    /// A channel shuffle: a fixed permutation of the neurons in groups.
    Shuffle(Shuffle),
    /// A reduction over some axes.
    Reduce(Reduce),
    /// A softmax along any axis.
    SoftmaxAxis(Softmax),
    /// A slice of a value along one axis.
    Slice(Slice),
    /// A concatenation along any axis.
    Join(Join),
    /// Padding of some axes.
    Pad(Pad),
    /// A dense layer on the last axis (channels-last maps, token sequences).
    LinearLast(LinearLast),
    /// A lookup table: integer ids to rows of a weight, the neurons on a
    /// new last axis (token embeddings).
    Embedding(Embedding),
    /// Layer normalisation over the last axis. Not neuron-separable.
    LayerNormLast(LayerNormLast),
    /// The product of two computed values over their last two axes
    /// (attention). Frozen.
    MatMul(MatMul),
    /// A learned constant repeated over the batch (a class token).
    Token(Token),
    /// A reshape of the whole value, batch axis included (a file exported
    /// at batch size 1 folding heads or windows into it). Frozen.
    Regroup(Regroup),
    /// The `k` largest or smallest entries of the last axis, their values
    /// or indices (a mixture of experts' router): one fixed neuron, its
    /// input free down to `k`.
    TopK(TopK),
    /// Rows of a constant table picked by computed indices (the experts'
    /// weights): one fixed neuron; the rows follow the router's neurons
    /// when it has the router as a second input.
    GatherRows(GatherRows),
    /// A dense layer whose weight matrix each sample picks from a table by
    /// a computed index (an expert's projection): absorbing, its outputs
    /// on the second-to-last axis, its table's rows following the router.
    RoutedLinear(RoutedLinear),
    /// A pointwise activation on a value whose neurons are on another axis
    /// than 1 (channels last, token sequences). Never a softmax.
    ActivationAt {
        /// The function.
        f: Activation,
        /// The value's neuron axis, if any.
        axis: Option<usize>,
    },
    /// A mixture of experts: input 0 the router's logits (one per expert),
    /// inputs 1.. the experts. Each sample goes to its top-`k` experts,
    /// weighted by the softmax of the router renormalised over those `k`;
    /// an expert runs only on the samples sent to it. Experts' sizes are
    /// tied (a select in the core).
    Moe {
        /// Experts per sample.
        k: usize,
        /// Capacity factor: an expert takes at most ⌈factor · k · N / E⌉
        /// samples of a batch of N (in sample order; the rest are dropped
        /// for that expert). None: unlimited.
        capacity: Option<f64>,
    },
}

/// How a conditional picks its branch from a sample's control row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Two branches: the first if the control is above `threshold`, the
    /// second otherwise (the seed's `if control > 0.5`).
    Threshold {
        /// The threshold.
        threshold: f64,
    },
    /// Branch number `round(control)`, clamped to the branches there are.
    Switch,
    /// The control has one column per branch; the largest wins.
    Argmax,
}

/// How a gate passes gradients through its hard 0/1 decision in training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case")]
pub enum GateEstimator {
    /// Forward the hard decision, backward the sigmoid's gradient.
    StraightThrough,
    /// Add logistic (Gumbel difference) noise to the logit, temperature
    /// `tau`, then straight-through.
    Gumbel {
        /// Temperature.
        tau: f64,
    },
}

/// How an early exit measures a sample's confidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The largest softmax probability.
    MaxSoftmax,
    /// Minus the entropy of the softmax (nats): 0 is certain.
    NegEntropy,
}

/// Which fan-in scales an op's default initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FanIn {
    /// The hidden size (recurrent layers, as PyTorch).
    Hidden,
    /// The inputs of one output of the op's first parameter (its weight),
    /// for every parameter (a bias shares its weight's bound).
    Weight,
    /// Each parameter's own trailing axes.
    Own,
}

/// How a vertex declares itself to the core.
pub(crate) struct Declared {
    pub kind: SizeKind,
    pub constraints: Vec<Constraint>,
}

/// What one axis of a parameter follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The vertex's output neurons.
    Out,
    /// The output neurons, once per gate block.
    OutGates(usize),
    /// The neurons arriving at input `k`.
    In(usize),
    /// The neurons arriving at input `k` within one of `groups` blocks (a
    /// grouped convolution's kernel: every block keeps the same local
    /// neurons, so the first block's list serves all).
    InBlock(usize, usize),
    /// The vertex's own outputs, read back (recurrent weights): new ones 0.
    Rec,
    /// Nothing.
    Fixed,
}

/// How new entries along an output axis are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Fill {
    /// Small seeded normal values, so that new neurons can learn.
    Random,
    /// A constant.
    Value(f64),
}

/// One parameter or buffer of a layer.
pub(crate) struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub roles: Vec<Role>,
    pub new_out: Fill,
    pub trainable: bool,
}

/// A trainable parameter's spec.
pub(crate) fn spec(
    name: &'static str,
    shape: Vec<usize>,
    roles: Vec<Role>,
    new_out: Fill,
) -> ParamSpec {
    ParamSpec {
        name: name.to_string(),
        shape,
        roles,
        new_out,
        trainable: true,
    }
}

/// What [`Op::feature_weight`] gives: the input position, the feature
/// axis counted from the end (`None`: axis 1), the weight's name, and
/// whether it is held `[nin, nout]`.
pub(crate) type FeatureWeight = (usize, Option<usize>, &'static str, bool);

/// How the utilities read a layer's weights.
struct UtilityReading {
    rows: Option<usize>,
    features: Option<FeatureWeight>,
}

impl Op {
    /// The size kind and constraints this op declares to the core, given the
    /// sizes at its inputs and its nout.
    pub(crate) fn declare(&self, nin: &[usize], nout: usize) -> Result<Declared, String> {
        use SizeKind::*;
        let one = |kind| {
            Ok(Declared {
                kind,
                constraints: Vec::new(),
            })
        };
        match self {
            Op::Input => one(Input),
            Op::Dense { .. } | Op::MaskedDense { .. } | Op::LearnableMaskedDense { .. } => {
                one(Absorb)
            }
            Op::Recurrent { .. } => one(Absorb),
            Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
                crate::layers::conv::declare(c, nin, nout)
            }
            Op::ConvTranspose2d { conv: c, .. } => crate::layers::conv::transpose_declare(c),
            Op::Flatten { spatial } => crate::layers::conv::flatten_declare(*spatial, nin, nout),
            Op::MaxPool2d { kernel, stride, .. } | Op::AvgPool2d { kernel, stride } => {
                crate::layers::pool::declare(*kernel, *stride)
            }
            Op::Concat => one(Stack),
            Op::Reshape { .. } => one(Immutable),
            Op::Cond { rule, .. } => crate::dynamic::declare_cond(rule, nin),
            Op::Gate { .. } => crate::dynamic::declare_gate(nin),
            Op::Moe { k, capacity } => crate::dynamic::declare_moe(*k, *capacity, nin),
            Op::Exit { threshold, .. } => crate::dynamic::declare_exit(*threshold, nin),
            Op::GroupNorm { groups, .. } => Ok(crate::layers::norm::group_declare(*groups)),
            Op::Elementwise(e) => Ok(e.declare(nin.len())),
            Op::Reduce(r) => Ok(r.declare()),
            Op::Slice(p) => Ok(p.declare()),
            Op::Shuffle(s) => Ok(s.declare()),
            Op::Join(j) => Ok(j.declare()),
            Op::Pad(p) => Ok(p.declare()),
            Op::LinearLast(_) => one(Absorb),
            Op::Embedding(_) => one(Absorb),
            Op::MatMul(m) => Ok(m.declare()),
            Op::Token(t) => Ok(t.declare()),
            Op::Regroup(r) => Ok(r.declare()),
            Op::TopK(t) => Ok(t.declare()),
            Op::GatherRows(g) => Ok(g.declare()),
            Op::RoutedLinear(r) => Ok(r.declare()),
            Op::LayerNormLast(_) => one(Invariant),
            Op::ActivationAt {
                f: Activation::Softmax,
                ..
            } => Err("a softmax is not pointwise: it runs on axis 1 only".into()),
            Op::ActivationAt { .. } => one(Invariant),
            Op::BatchNorm { .. }
            | Op::LayerNorm { .. }
            | Op::InstanceNorm { .. }
            | Op::Activation(_)
            | Op::GlobalAvgPool
            | Op::GlobalMaxPool
            | Op::Resize(_)
            | Op::Dropout { .. }
            | Op::Add
            | Op::Sub
            | Op::Mul
            | Op::Scale { .. }
            | Op::Identity
            | Op::LastStep => one(Invariant),
            Op::Unary { .. } | Op::Transpose(_) | Op::View(_) | Op::SoftmaxAxis(_) => {
                one(Invariant)
            }
        }
    }

    /// How the utilities read this layer's weights (one exhaustive match
    /// for [`Op::router_rows_input`] and [`Op::feature_weight`]).
    fn utility_reading(&self) -> UtilityReading {
        let (rows, features) = match self {
            Op::GatherRows(g) => (g.rows_from.then_some(1), None),
            Op::RoutedLinear(r) => (r.rows_from.then_some(2), Some((1, Some(2), "table", false))),
            Op::Dense { .. } => (None, Some((0, None, "weight", false))),
            Op::LinearLast(_) => (None, Some((0, Some(1), "weight", true))),
            Op::Input
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
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Shuffle(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::Embedding(_)
            | Op::MatMul(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::LayerNormLast(_)
            | Op::ActivationAt { .. } => (None, None),
        };
        UtilityReading { rows, features }
    }

    /// For a layer whose rows follow a router (an expert table read by
    /// expert id): the input position of the router's choice.
    pub(crate) fn router_rows_input(&self) -> Option<usize> {
        self.utility_reading().rows
    }

    /// For a layer that weighs input features with a matrix (what the
    /// activation-aware utility reads): the input position, the feature
    /// axis counted from the end (`None`: axis 1), the weight's name, and
    /// whether the weight is held `[nin, nout]` (else `[nout, nin]`).
    pub(crate) fn feature_weight(&self) -> Option<FeatureWeight> {
        self.utility_reading().features
    }

    /// True when the op's output size is its own choice (absorbing ops and
    /// inputs); the others derive it from their inputs.
    pub fn chooses_size(&self) -> bool {
        matches!(
            self,
            Op::Input
                | Op::Dense { .. }
                | Op::MaskedDense { .. }
                | Op::LearnableMaskedDense { .. }
                | Op::Conv1d(_)
                | Op::Conv2d(_)
                | Op::MaskedConv2d(_)
                | Op::ConvTranspose2d { .. }
                | Op::Recurrent { .. }
                | Op::LinearLast(_)
                | Op::Embedding(_)
                | Op::MatMul(_)
                | Op::Token(_)
                | Op::Regroup(_)
                | Op::TopK(_)
                | Op::GatherRows(_)
                | Op::RoutedLinear(_)
        )
    }

    /// The number of channel groups of a convolution with `nin` inputs.
    pub(crate) fn conv_groups(c: &Conv, nin: usize) -> usize {
        match c.groups {
            Groups::One => 1,
            Groups::Depthwise => nin,
            Groups::Fixed(g) => g,
        }
    }

    /// Parameters and buffers of this op at these sizes.
    pub(crate) fn params(&self, nin: &[usize], nout: usize) -> Vec<ParamSpec> {
        let n0 = nin.first().copied().unwrap_or(0);
        match self {
            Op::Dense { bias: b } => crate::layers::dense::params(*b, n0, nout),
            Op::LearnableMaskedDense { bias: b } => {
                crate::layers::dense::learnable_params(*b, n0, nout)
            }
            Op::MaskedDense { bias: b } => crate::layers::dense::masked_params(*b, n0, nout),
            Op::MaskedConv2d(c) => crate::layers::conv::masked_params(c, n0, nout),
            Op::Conv1d(c) => crate::layers::conv::params(c, 1, n0, nout),
            Op::Conv2d(c) => crate::layers::conv::params(c, 2, n0, nout),
            Op::ConvTranspose2d { conv: c, .. } => {
                crate::layers::conv::transpose_params(c, n0, nout)
            }
            Op::BatchNorm { .. } => crate::layers::norm::batch_params(nout),
            Op::LayerNorm { .. } | Op::GroupNorm { .. } | Op::InstanceNorm { .. } => {
                crate::layers::norm::affine_params(nout)
            }
            Op::Elementwise(e) => e.params(nout),
            Op::LinearLast(l) => l.params(n0, nout),
            Op::Embedding(e) => e.params(nout),
            Op::LayerNormLast(l) => l.params(nout),
            Op::Token(t) => t.params(nout),
            Op::GatherRows(g) => g.params(nin),
            Op::RoutedLinear(r) => r.params(nin, nout),
            Op::Input
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
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::MatMul(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::ActivationAt { .. } => Vec::new(),
            Op::Recurrent { cell, .. } => crate::layers::recurrent::params(*cell, n0, nout),
        }
    }

    /// Short name for tables and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Dense { .. } => "dense",
            Op::MaskedDense { .. } => "masked_dense",
            Op::LearnableMaskedDense { .. } => "learnable_masked_dense",
            Op::Conv1d(_) => "conv1d",
            Op::Conv2d(_) => "conv2d",
            Op::MaskedConv2d(_) => "masked_conv2d",
            Op::ConvTranspose2d { .. } => "conv_transpose2d",
            Op::BatchNorm { .. } => "batch_norm",
            Op::LayerNorm { .. } => "layer_norm",
            Op::GroupNorm { .. } => "group_norm",
            Op::InstanceNorm { .. } => "instance_norm",
            Op::Activation(_) => "activation",
            Op::MaxPool2d { .. } => "max_pool2d",
            Op::AvgPool2d { .. } => "avg_pool2d",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::GlobalMaxPool => "global_max_pool",
            Op::Resize(_) => "resize",
            Op::Dropout { .. } => "dropout",
            Op::Flatten { .. } => "flatten",
            Op::Reshape { .. } => "reshape",
            Op::Concat => "concat",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Scale { .. } => "scale",
            Op::Identity => "identity",
            Op::LastStep => "last_step",
            Op::Recurrent { .. } => "recurrent",
            Op::Cond { .. } => "cond",
            Op::Gate { .. } => "gate",
            Op::Exit { .. } => "exit",
            Op::Moe { .. } => "moe",
            Op::Unary { .. } => "unary",
            Op::Elementwise(_) => "elementwise",
            Op::Transpose(_) => "transpose",
            Op::View(_) => "view",
            Op::Reduce(_) => "reduce",
            Op::SoftmaxAxis(_) => "softmax",
            Op::Slice(_) => "slice",
            Op::Shuffle(_) => "shuffle",
            Op::Join(_) => "join",
            Op::Pad(_) => "pad",
            Op::LinearLast(_) => "linear_last",
            Op::Embedding(_) => "embedding",
            Op::MatMul(_) => "matmul",
            Op::Token(_) => "token",
            Op::Regroup(_) => "regroup",
            Op::TopK(_) => "top_k",
            Op::GatherRows(_) => "gather_rows",
            Op::RoutedLinear(_) => "routed_linear",
            Op::LayerNormLast(_) => "layer_norm_last",
            Op::ActivationAt { .. } => "activation",
        }
    }

    /// The axis of the output value (batch axis included) that holds the
    /// neurons the core's sizes count, or `None` when the value has none
    /// (a reduction over it: one fixed neuron). Axis 1 for every layer
    /// family but the layout-agnostic ones, which record theirs.
    pub fn neuron_axis(&self) -> Option<usize> {
        match self {
            Op::Elementwise(e) => e.axis,
            Op::Unary { axis, .. } => *axis,
            Op::Transpose(t) => t.axis,
            Op::View(v) => v.axis(),
            Op::Reduce(r) => r.axis(),
            Op::SoftmaxAxis(sm) => sm.from,
            Op::Slice(p) => p.neurons,
            Op::Shuffle(s) => Some(s.axis),
            Op::Join(j) => j.neurons,
            Op::Pad(p) => p.neurons,
            Op::LinearLast(l) => Some(l.axis),
            Op::Embedding(e) => Some(e.axis),
            Op::MatMul(m) => m.neurons,
            Op::Token(t) => t.neurons,
            Op::Regroup(r) => r.neurons,
            Op::TopK(_) | Op::GatherRows(_) => None,
            Op::RoutedLinear(r) => Some(r.neuron_axis()),
            Op::LayerNormLast(l) => Some(l.axis),
            Op::ActivationAt { axis, .. } => *axis,
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
            | Op::Moe { .. } => Some(1),
        }
    }

    /// How the batch passes through this op (one match for
    /// [`Op::batch_axis_after`] and [`Op::needs_batch_first`]).
    fn batch_passing(&self) -> BatchPassing<'_> {
        match self {
            Op::Input => BatchPassing::First,
            Op::Transpose(t) => BatchPassing::Permuted(&t.perm),
            Op::Regroup(r) => match r.batch {
                Some(at) => BatchPassing::Placed(at.axis),
                None => BatchPassing::KeptFirst,
            },
            Op::Reshape { .. } | Op::View(_) => BatchPassing::KeptFirst,
            Op::Elementwise(_)
            | Op::Unary { .. }
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
            | Op::ActivationAt { .. }
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
            | Op::Moe { .. } => BatchPassing::Kept,
        }
    }

    /// The axis of this op's output that carries the batch when its first
    /// input has it on `axis`: a transpose moves it, a regroup puts it
    /// where its [`crate::BatchAt`] says (the first axis otherwise); every
    /// other op keeps it where it is (the batch-first ops have it first).
    pub fn batch_axis_after(&self, axis: usize) -> usize {
        match self.batch_passing() {
            BatchPassing::First | BatchPassing::KeptFirst => 0,
            BatchPassing::Permuted(perm) => perm.iter().position(|&p| p == axis).unwrap_or(0),
            BatchPassing::Placed(at) => at,
            BatchPassing::Kept => axis,
        }
    }

    /// True when the forward pass reshapes with sizes fixed at import
    /// around a batch it takes as its input's first axis (a plain reshape
    /// or view, a regroup without a [`crate::BatchAt`]): read from a value
    /// whose batch a transpose moved, it is right only at the batch size
    /// the model was read at ([`crate::Executor::run`] evaluates others in
    /// groups of that size).
    pub fn needs_batch_first(&self) -> bool {
        matches!(self.batch_passing(), BatchPassing::KeptFirst)
    }

    /// Which fan-in scales the default initialisation of this op's
    /// parameters (PyTorch's `1/sqrt(fan_in)` bound).
    pub(crate) fn fan_in(&self) -> FanIn {
        match self {
            Op::Recurrent { .. } => FanIn::Hidden,
            Op::Dense { .. }
            | Op::MaskedDense { .. }
            | Op::LearnableMaskedDense { .. }
            | Op::Conv1d(_)
            | Op::Conv2d(_)
            | Op::MaskedConv2d(_)
            | Op::LinearLast(_)
            | Op::Embedding(_) => FanIn::Weight,
            Op::Input
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
            | Op::Unary { .. }
            | Op::Elementwise(_)
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Resize(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::LayerNormLast(_)
            | Op::MatMul(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::GatherRows(_)
            | Op::RoutedLinear(_)
            | Op::ActivationAt { .. }
            | Op::Moe { .. } => FanIn::Own,
        }
    }

    /// Take into the op's hyperparameters what a plan changed in its
    /// vertex. Only a slice of the neurons keeps a size there (its part's
    /// start and length); every other op reads its sizes from its tensors.
    pub(crate) fn follow(&mut self, v: &graft_core::Vertex) {
        match self {
            Op::Slice(p) => p.follow(v),
            Op::GatherRows(g) => g.follow(v),
            Op::RoutedLinear(r) => r.follow(v),
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
            | Op::Unary { .. }
            | Op::Elementwise(_)
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Resize(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::LinearLast(_)
            | Op::Embedding(_)
            | Op::LayerNormLast(_)
            | Op::MatMul(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::ActivationAt { .. }
            | Op::Moe { .. } => {}
        }
    }

    /// True for the ops that route samples (conditional, gate, exit,
    /// mixture of experts): the executor runs them, not a layer function.
    pub fn is_dynamic(&self) -> bool {
        matches!(
            self,
            Op::Cond { .. } | Op::Gate { .. } | Op::Exit { .. } | Op::Moe { .. }
        )
    }

    /// Follow an edge added to (`added`) or removed from this op's vertex
    /// at input `position`: an op that refers to its inputs by position
    /// follows (an elementwise op's operands) or refuses; a product of two
    /// computed values keeps exactly two. The others read their inputs
    /// whole (a concatenation, a sum, a conditional's branches) or by kind.
    ///
    /// # Errors
    /// The edit would change what the op computes beyond dropping or adding
    /// a term.
    pub fn input_edited(&mut self, position: usize, added: bool) -> Result<(), String> {
        match self {
            Op::Elementwise(e) => {
                if added {
                    e.input_added(position)
                } else {
                    e.input_removed(position)
                }
            }
            Op::MatMul(_) => Err("a product of two computed values keeps its two inputs".into()),
            Op::GatherRows(g) if g.rows_from && !added && position <= 1 => {
                Err("a gather of expert rows keeps its indices and its router".into())
            }
            Op::RoutedLinear(_) if !added && position <= 2 => {
                Err("an expert's projection keeps its indices, its tokens and its router".into())
            }
            Op::Sub if !added && position == 0 => {
                Err("the first input of a difference: removing it changes the function".into())
            }
            Op::Sub => Ok(()),
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
            | Op::Dropout { .. }
            | Op::Flatten { .. }
            | Op::Reshape { .. }
            | Op::Concat
            | Op::Add
            | Op::Mul
            | Op::Scale { .. }
            | Op::Identity
            | Op::LastStep
            | Op::Recurrent { .. }
            | Op::Unary { .. }
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Resize(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::LinearLast(_)
            | Op::Embedding(_)
            | Op::LayerNormLast(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::GatherRows(_)
            | Op::RoutedLinear(_)
            | Op::ActivationAt { .. }
            | Op::Cond { .. }
            | Op::Moe { .. }
            | Op::Gate { .. }
            | Op::Exit { .. } => Ok(()),
        }
    }

    /// The masked form of a layer that sparsity can mask (a dense layer
    /// becomes a masked dense one, a 2-D convolution a masked
    /// convolution), `None` for every other op.
    pub fn masked_form(&self) -> Option<Op> {
        match self {
            Op::Dense { bias } => Some(Op::MaskedDense { bias: *bias }),
            Op::Conv2d(c) => Some(Op::MaskedConv2d(*c)),
            Op::Input
            | Op::MaskedDense { .. }
            | Op::LearnableMaskedDense { .. }
            | Op::Conv1d(_)
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
            | Op::Unary { .. }
            | Op::Elementwise(_)
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Resize(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::LinearLast(_)
            | Op::Embedding(_)
            | Op::LayerNormLast(_)
            | Op::MatMul(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::GatherRows(_)
            | Op::RoutedLinear(_)
            | Op::ActivationAt { .. }
            | Op::Cond { .. }
            | Op::Moe { .. }
            | Op::Gate { .. }
            | Op::Exit { .. } => None,
        }
    }

    /// The input positions whose values a dynamic op computes only for the
    /// samples that need them (its branches, experts, or the rest after an
    /// exit).
    pub fn lazy_inputs(&self, inputs: usize) -> std::ops::Range<usize> {
        match self {
            Op::Cond { .. } | Op::Moe { .. } | Op::Gate { .. } => 1..inputs,
            Op::Exit { .. } => 1..inputs.min(2),
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
            | Op::Unary { .. }
            | Op::Elementwise(_)
            | Op::Transpose(_)
            | Op::View(_)
            | Op::Resize(_)
            | Op::Shuffle(_)
            | Op::Reduce(_)
            | Op::SoftmaxAxis(_)
            | Op::Slice(_)
            | Op::Join(_)
            | Op::Pad(_)
            | Op::LinearLast(_)
            | Op::Embedding(_)
            | Op::LayerNormLast(_)
            | Op::MatMul(_)
            | Op::Token(_)
            | Op::Regroup(_)
            | Op::TopK(_)
            | Op::GatherRows(_)
            | Op::RoutedLinear(_)
            | Op::ActivationAt { .. } => 0..0,
        }
    }
}
