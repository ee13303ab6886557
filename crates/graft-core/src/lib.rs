//! # graft-core
//!
//! The tensor-free heart of graft: a graph of named vertices with declared
//! size rules, and an exact, neuron-aligned planner for size changes.
//!
//! - [`Graph`]: vertices with a [`SizeKind`] (input, absorb, stack,
//!   invariant, immutable) and extra [`Constraint`]s; stable [`VertexId`]s.
//! - [`plan`] / [`plan_or_relax`] / [`Graph::change_sizes`]: which neurons each
//!   coupled vertex keeps and where new ones go, as a [`Plan`] (data only).
//! - [`Graph::check`]: every size invariant, after every committed change.
//!
//! ```
//! use graft_core::{Graph, Neuron, Request, Utility};
//!
//! // in(3) -> a(5) -> b(4); prune a by 2, preferring later neurons.
//! let mut g = Graph::new();
//! let x = g.add_input("x", 3).unwrap();
//! let a = g.add_absorb("a", &[x], 5).unwrap();
//! let b = g.add_absorb("b", &[a], 4).unwrap();
//! let req = Request::new().nout(a, -2).with_utility(Utility::ascending(&g));
//! let planned = g.change_sizes(&req).unwrap();
//! let kept: Vec<Neuron> = (2..5).map(Neuron::Old).collect();
//! assert_eq!(planned.plan.change(a).unwrap().outs.as_deref(), Some(&kept[..]));
//! assert_eq!(g.nin(b).unwrap(), &[3]);
//! g.check().unwrap();
//! ```

#![warn(missing_docs)]

pub mod credit;
mod error;
mod graph;
pub mod json;
mod mutate;
mod planner;
pub mod svg;
mod text;
pub mod zoo;

pub use credit::carry_back;
pub use error::{CheckError, GraphError, MutationError, PlanError};
pub use graph::{Constraint, Graph, Multipliers, SizeKind, Vertex, VertexId, MAX_SIZE};
pub use mutate::{
    residual_block, Align, Alignment, Applied, Committed, Connect, Edit, NewVertex, Patch, Reason,
    Ref, RemovedVertex, Reroute, Splice,
};
pub use planner::{
    compact, plan, plan_or_relax, Budget, Neuron, Objective, Plan, Planned, Request, Site, Step,
    Target, TargetMode, Utility, VertexChange, MAX_COMPONENT_NEURONS, MAX_NOUT,
};
