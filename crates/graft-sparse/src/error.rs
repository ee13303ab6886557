//! Typed errors of the sparse crate.

use thiserror::Error;

/// Why a sparse-structure operation failed.
#[derive(Debug, Error)]
pub enum SparseError {
    /// An edge would close a cycle; the cycle's nodes, first repeated last.
    #[error("edge {from} -> {to} would close the cycle {}", .cycle.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The edge's source.
        from: usize,
        /// The edge's target.
        to: usize,
        /// The cycle.
        cycle: Vec<usize>,
    },
    /// A node id that does not exist.
    #[error("no node {0}")]
    UnknownNode(usize),
    /// Composing graphs whose boundary layers differ in size.
    #[error(
        "cannot compose: the first graph ends with {first} nodes, the second starts with {second}"
    )]
    Boundary {
        /// Size of the first graph's last layer.
        first: usize,
        /// Size of the second graph's first layer.
        second: usize,
    },
    /// A neuron-level graph larger than graft builds
    /// ([`crate::structure::MAX_NEURONS`], [`crate::structure::MAX_EDGES`]):
    /// refused before anything is allocated for it.
    #[error("the neuron graph would have {nodes} neurons and about {edges} weight edges, more than graft builds ({max_nodes} neurons, {max_edges} edges): give a smaller input shape")]
    TooLarge {
        /// Neurons it would have (every channel at every position).
        nodes: u64,
        /// Weight edges it would have, about (multiply-accumulates).
        edges: u64,
        /// The neuron limit.
        max_nodes: u64,
        /// The edge limit.
        max_edges: u64,
    },
    /// A model operation failed.
    #[error(transparent)]
    Model(#[from] graft_nn::NnError),
    /// A vertex this operation does not handle.
    #[error("`{vertex}`: {reason}")]
    Unsupported {
        /// The vertex.
        vertex: String,
        /// Why.
        reason: String,
    },
}

impl From<graft_nn::CandleError> for SparseError {
    fn from(e: graft_nn::CandleError) -> Self {
        SparseError::Model(e.into())
    }
}
