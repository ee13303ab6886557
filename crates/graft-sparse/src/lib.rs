//! # graft-sparse
//!
//! Sparse networks and their structure, on top of `graft-nn`:
//!
//! - [`dag`]: layered DAGs with longest-path layers in O(V+E), cycle
//!   rejection naming the cycle, automatic ids and composition;
//! - [`structure`]: the neuron-level graph of a model (nodes are neurons with
//!   their layer and index, edges are unmasked weights with their value);
//! - [`prune`]: masks from saliency (magnitude), globally or per layer, by
//!   percentage of what remains or by count, and threshold recompute;
//! - [`ffn`]: masked feed-forward networks;
//! - [`dan`]: networks from any DAG, one neuron per DAG node;
//! - [`cells`]: networks whose DAG nodes are user-built cells;
//! - [`generators`]: seeded random and regular graphs, oriented into DAGs.

#![warn(missing_docs)]

pub mod cells;
pub mod dag;
pub mod dan;
mod error;
pub mod ffn;
pub mod generators;
pub mod graphml;
pub mod prune;
pub mod structure;

pub use error::SparseError;
