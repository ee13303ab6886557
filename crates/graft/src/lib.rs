//! # graft
//!
//! Neural-network surgery: change a trained network's structure (the width of
//! a layer, its vertices and edges) without breaking it. Sizes coupled through
//! concatenations and elementwise ops follow automatically, and the planner
//! chooses, optimally for a documented objective, which neurons each vertex
//! keeps and where new ones go.
//!
//! This crate is the facade: it re-exports [`graft_core`] (the tensor-free
//! graph, planner and mutations), also reachable as [`core`](crate::core),
//! [`graft_nn`] as [`nn`](crate::nn) (layers with real tensors, execution,
//! training and parameter surgery) and [`graft_onnx`] as
//! [`onnx`](crate::onnx) (ONNX import and export), and [`graft_sparse`] as
//! [`sparse`](crate::sparse) (masks, pruning, DAG networks, neuron-level
//! graphs).
//!
//! ```
//! use graft::{Graph, Request, Step};
//!
//! // x(3) -> a(5) -> b(4); a(5) also feeds a residual add with c(5).
//! let mut g = Graph::new();
//! let x = g.add_input("x", 3).unwrap();
//! let a = g.add_absorb("a", &[x], 5).unwrap();
//! let c = g.add_absorb("c", &[a], 5).unwrap();
//! let add = g.add_invariant("add", &[a, c]).unwrap();
//! let b = g.add_absorb("b", &[add], 4).unwrap();
//!
//! // Shrinking c by 2 shrinks a and add with it; b's input follows.
//! let done = g.change_sizes(&Request::new().nout(c, -2)).unwrap();
//! assert_eq!(done.step, Step::Exact);
//! assert_eq!(g.nout(a).unwrap(), 3);
//! assert_eq!(g.nout(add).unwrap(), 3);
//! assert_eq!(g.nin(b).unwrap(), &[3]);
//! g.check().unwrap();
//! ```

#![warn(missing_docs)]

pub use graft_core as core;
pub use graft_core::*;
pub use graft_nn as nn;
pub use graft_onnx as onnx;
pub use graft_sparse as sparse;

/// The Rust blocks of the repository's README, run as doctests so that the
/// README stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
