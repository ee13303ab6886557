//! # graft-nn
//!
//! Layers with real tensors (candle, CPU by default) on top of the core
//! graph: each vertex of a [`Model`] has a layer whose op declares its size
//! rule to the core, so every plan and patch the core makes is replayed on
//! the parameters (rows, columns and channels selected in the plan's order;
//! new input columns 0, new output rows small seeded random values, norms
//! γ = 1, β = 0, running mean 0, variance 1). An [`Executor`] runs forward
//! passes for one revision of the model; backward is candle's autodiff.

#![warn(missing_docs)]

pub mod cost;
pub mod data;
pub mod dynamic;
mod error;
mod exec;
pub mod files;
mod layers;
mod model;
mod op;
mod param;
mod persist;
pub mod shrink;
mod surgery;
pub mod train;
pub mod utility;
pub mod zoo;

pub use error::{NnError, Result};
pub use exec::{Choice, Decision, Executor, Forward, GateForce, Mode, Run, Trace};
pub use layers::pointwise::broadcast_shape;
pub use layers::sparse::SPARSE_BELOW;
pub use model::{
    Init, Layer, Model, Mutated, NewLayer, ParamEdit, SparseKernel, MAX_PARAM_ELEMENTS,
};
pub use op::{
    Activation, BatchAt, Binary, Cell, Confidence, ConstOperand, Conv, Coords, DimProduct,
    Elementwise, Embedding, GateEstimator, GatherRows, Groups, HeadSplit, Hw, Interp, Join,
    LayerNormLast, LinearLast, MatMul, NearestRound, Op, Operand, Pad, PadMode, Reduce, Reducer,
    Regroup, Resize, ResizeTarget, RoutedLinear, Rule, Shuffle, Slice, Softmax, Token, TopK,
    Transpose, Unary, View, ViewDim,
};
pub use param::{Backing, Param};
pub use persist::{LayerSpec, ModelSpec, FORMAT};
pub use surgery::{Growth, NEW_ROW_STD};

pub use candle_core::backprop::GradStore;
/// candle's error type, for crates that build on graft-nn.
pub use candle_core::Error as CandleError;
pub use candle_core::{DType, Device, Tensor, Var};
pub use graft_core::VertexId;
