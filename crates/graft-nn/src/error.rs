//! Typed errors of the layers crate.

use thiserror::Error;

/// Why a model operation failed. Every variant names what was wrong.
#[derive(Debug, Error)]
pub enum NnError {
    /// A tensor operation failed (shapes, dtypes).
    #[error("tensor: {}", tensor_reason(.0))]
    Tensor(#[from] candle_core::Error),
    /// Building or querying the graph failed.
    #[error(transparent)]
    Graph(#[from] graft_core::GraphError),
    /// A size change could not be planned.
    #[error(transparent)]
    Plan(#[from] graft_core::PlanError),
    /// A structural mutation was refused.
    #[error(transparent)]
    Mutation(#[from] graft_core::MutationError),
    /// The graph is inconsistent.
    #[error(transparent)]
    Check(#[from] graft_core::CheckError),
    /// An executor built for another revision of the model.
    #[error("executor was built for model revision {built}, the model is at revision {now}")]
    StaleExecutor {
        /// Revision the executor was built for.
        built: u64,
        /// The model's revision now.
        now: u64,
    },
    /// A layer cannot do what was asked.
    #[error("layer `{vertex}`: {reason}")]
    Layer {
        /// The vertex.
        vertex: String,
        /// Why.
        reason: String,
    },
    /// Wrong number of model inputs.
    #[error("the model has {expected} inputs, {got} given")]
    InputCount {
        /// Graph inputs.
        expected: usize,
        /// Tensors given.
        got: usize,
    },
    /// An argument outside what the call accepts.
    #[error("{what}: {reason}")]
    Invalid {
        /// The argument.
        what: String,
        /// Why it is refused.
        reason: String,
    },
    /// A data file that cannot be read as one (a NumPy array or archive,
    /// a CSV table, a data set).
    #[error("data file `{file}`: {reason}")]
    Data {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Result alias.
pub type Result<T> = std::result::Result<T, NnError>;

/// A candle error's message without the backtrace candle attaches when
/// `RUST_BACKTRACE` is set (a user's error names the layer and the shapes;
/// candle's own frames say nothing to them).
pub(crate) fn tensor_reason(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => tensor_reason(inner),
        other => other.to_string(),
    }
}
