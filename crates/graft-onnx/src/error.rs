//! Typed errors of ONNX import and export.

use thiserror::Error;

/// Why a model could not be imported or exported.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The bytes are not a valid ONNX protobuf.
    #[error("not a valid ONNX model: {0}")]
    Malformed(String),
    /// The model imports an opset outside 13 to 21 for the default domain.
    #[error("opset {version} of domain `{domain}` is not supported (13 to 21 are)")]
    Opset {
        /// The domain.
        domain: String,
        /// Its version.
        version: i64,
    },
    /// Ops graft does not support, each with the names of its nodes.
    #[error("unsupported ops: {}", .ops.iter().map(|(op, nodes)| format!("{op} ({})", nodes.join(", "))).collect::<Vec<_>>().join("; "))]
    Unsupported {
        /// (op type, node names).
        ops: Vec<(String, Vec<String>)>,
    },
    /// A node reads a value that nothing produces.
    #[error("node `{node}` reads `{value}`, which is neither an input, an initializer nor an output of an earlier node")]
    MissingValue {
        /// The node.
        node: String,
        /// The missing value.
        value: String,
    },
    /// A supported op with attributes or inputs graft cannot express.
    #[error("node `{node}` ({op}): {reason}")]
    Node {
        /// The node.
        node: String,
        /// Its op type.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// A tensor with an unsupported type or inconsistent data.
    #[error("tensor `{name}`: {reason}")]
    Tensor {
        /// The tensor.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Building the graft model failed.
    #[error(transparent)]
    Model(#[from] graft_nn::NnError),
    /// A vertex of the model that ONNX cannot express.
    #[error("cannot export `{vertex}`: {reason}")]
    Export {
        /// The vertex.
        vertex: String,
        /// Why.
        reason: String,
    },
    /// An op that the opset being written does not have in the form graft
    /// needs.
    #[error("cannot export `{vertex}` at opset {opset}: {op} needs opset {needs} or later")]
    OpsetTooLow {
        /// The vertex.
        vertex: String,
        /// The ONNX op (and the form of it) that is missing.
        op: String,
        /// The opset being written.
        opset: i64,
        /// The lowest opset that has it.
        needs: i64,
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

impl From<graft_core::GraphError> for OnnxError {
    fn from(e: graft_core::GraphError) -> Self {
        OnnxError::Model(e.into())
    }
}

impl From<graft_nn::CandleError> for OnnxError {
    fn from(e: graft_nn::CandleError) -> Self {
        OnnxError::Model(e.into())
    }
}

impl From<graft_core::CheckError> for OnnxError {
    fn from(e: graft_core::CheckError) -> Self {
        OnnxError::Model(e.into())
    }
}
