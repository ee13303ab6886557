//! Typed errors of the core: every variant names the vertices involved, by name.

use thiserror::Error;

/// Errors from building or querying a [`Graph`](crate::Graph).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GraphError {
    /// A vertex with this name already exists.
    #[error("duplicate vertex name `{name}`")]
    DuplicateName {
        /// The name that is taken.
        name: String,
    },
    /// No vertex has this name.
    #[error("unknown vertex `{name}`")]
    UnknownVertex {
        /// The name that was looked up.
        name: String,
    },
    /// The id does not (or no longer) refer to a vertex of this graph.
    #[error("unknown vertex id {id}")]
    UnknownId {
        /// The raw id.
        id: u32,
    },
    /// A vertex of this kind needs at least one input.
    #[error("vertex `{vertex}` needs at least one input")]
    NoInputs {
        /// The vertex being built.
        vertex: String,
    },
    /// Sizes that must agree do not.
    #[error("vertex `{vertex}`: input `{input}` has size {found}, expected {expected}")]
    SizeMismatch {
        /// The vertex being built.
        vertex: String,
        /// The offending input.
        input: String,
        /// What the rule requires.
        expected: usize,
        /// What the input has.
        found: usize,
    },
    /// Every size is at least 1.
    #[error("vertex `{vertex}` would have size 0")]
    ZeroSize {
        /// The vertex being built.
        vertex: String,
    },
    /// A size above what graft holds ([`crate::MAX_SIZE`]): refused before
    /// anything is allocated for it.
    #[error("vertex `{vertex}`: size {size} is above the largest graft holds, {max}")]
    TooLarge {
        /// The vertex being built.
        vertex: String,
        /// The size asked for (saturated when it overflows).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A constraint does not make sense for this vertex, or does not hold now.
    #[error("vertex `{vertex}`: invalid constraint: {reason}")]
    InvalidConstraint {
        /// The vertex the constraint was attached to.
        vertex: String,
        /// Why it was refused.
        reason: String,
    },
}

/// A broken invariant found by [`Graph::check`](crate::Graph::check).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckError {
    /// The producer's nout differs from what the consumer expects on that input.
    #[error("edge `{producer}` -> `{consumer}` (input {input}): producer has nout {nout}, consumer expects {nin}")]
    EdgeSize {
        /// Producer name.
        producer: String,
        /// Consumer name.
        consumer: String,
        /// Input position at the consumer.
        input: usize,
        /// Producer's nout.
        nout: usize,
        /// Consumer's recorded nin for that input.
        nin: usize,
    },
    /// A stack vertex whose nout is not the sum of its nin.
    #[error("stack `{vertex}`: nout {nout} != sum of nin {sum}")]
    StackSum {
        /// The stack vertex.
        vertex: String,
        /// Its nout.
        nout: usize,
        /// Sum of its nin.
        sum: usize,
    },
    /// An invariant vertex with an nin different from its nout.
    #[error("invariant `{vertex}`: nin {nin:?} differ from nout {nout}")]
    Invariant {
        /// The invariant vertex.
        vertex: String,
        /// Its nout.
        nout: usize,
        /// Its nin.
        nin: Vec<usize>,
    },
    /// A size of 0.
    #[error("vertex `{vertex}` has size 0")]
    ZeroSize {
        /// The vertex.
        vertex: String,
    },
    /// The input list and the recorded nin list differ in length.
    #[error("vertex `{vertex}`: {inputs} inputs but {nin} recorded input sizes")]
    Arity {
        /// The vertex.
        vertex: String,
        /// Number of inputs.
        inputs: usize,
        /// Number of recorded nin.
        nin: usize,
    },
    /// A constraint that does not hold.
    #[error("vertex `{vertex}`: constraint violated: {reason}")]
    Constraint {
        /// The vertex.
        vertex: String,
        /// What is wrong.
        reason: String,
    },
    /// The wiring has a cycle.
    #[error("cycle through {}", .vertices.join(" -> "))]
    Cycle {
        /// The vertices on the cycle, in order.
        vertices: Vec<String>,
    },
    /// Outputs lists disagree with input lists.
    #[error("vertex `{vertex}`: outputs list does not mirror the inputs of its consumers")]
    Wiring {
        /// The vertex.
        vertex: String,
    },
}

/// Why a size change could not be planned or applied.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// A name or id in the request does not exist.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The graph itself is inconsistent, so nothing can be planned on it.
    #[error("graph is inconsistent: {0}")]
    Inconsistent(#[from] CheckError),
    /// Targets on an input, immutable or fixed vertex.
    #[error("vertex `{vertex}` cannot change size (it is {why})")]
    NotMutable {
        /// The vertex.
        vertex: String,
        /// Its kind or constraint.
        why: &'static str,
    },
    /// `Nin` target on an input position that does not exist.
    #[error("vertex `{vertex}` has {inputs} inputs, no input {input}")]
    NoSuchInput {
        /// The vertex.
        vertex: String,
        /// Requested position.
        input: usize,
        /// How many inputs it has.
        inputs: usize,
    },
    /// An exact target would make a size smaller than 1.
    #[error("vertex `{vertex}`: size {size} + {delta} would be below 1")]
    BelowOne {
        /// The vertex.
        vertex: String,
        /// Its current size.
        size: usize,
        /// The requested change.
        delta: i64,
    },
    /// A target asks for a size above [`MAX_NOUT`](crate::MAX_NOUT) (or one
    /// that does not fit in an `i64` at all).
    #[error(
        "vertex `{vertex}`: size {size} {delta:+} is above the largest size graft plans, {max}"
    )]
    TooLarge {
        /// The vertex.
        vertex: String,
        /// Its current size.
        size: usize,
        /// The requested change.
        delta: i64,
        /// The largest size a plan may give a vertex.
        max: usize,
    },
    /// A component to plan holds more neurons than the planner takes
    /// ([`MAX_COMPONENT_NEURONS`](crate::MAX_COMPONENT_NEURONS)): refused
    /// before anything is allocated.
    #[error("the size-coupled vertices {vertices:?} hold {neurons} neurons, more than graft plans at once ({max})")]
    ComponentTooLarge {
        /// Some of the component's vertices (the first few).
        vertices: Vec<String>,
        /// Their neurons.
        neurons: u64,
        /// The largest number the planner takes.
        max: u64,
    },
    /// Two targets on the same neuron space ask for different sizes.
    #[error("conflicting targets on `{vertex}`: {first} and {second}")]
    ConflictingTargets {
        /// The vertex whose output both targets address.
        vertex: String,
        /// First requested delta.
        first: i64,
        /// Second requested delta.
        second: i64,
    },
    /// A utility vector of the wrong length, or with a non-finite value.
    #[error("utility for `{vertex}`: {reason}")]
    BadUtility {
        /// The vertex.
        vertex: String,
        /// What is wrong.
        reason: String,
    },
    /// No assignment satisfies the targets and the constraints.
    #[error("no size assignment satisfies the request on {}", .vertices.join(", "))]
    Infeasible {
        /// The target vertices (or the component) involved.
        vertices: Vec<String>,
    },
    /// The search budget ran out before any plan was found (always for a
    /// zero budget), or, for the calls that apply a plan, before the plan
    /// was proven optimal.
    #[error(
        "solver budget exhausted after {nodes} nodes on {} (a longer time limit may help)",
        .vertices.join(", ")
    )]
    BudgetExceeded {
        /// Nodes explored.
        nodes: u64,
        /// The target vertices (or the component) involved.
        vertices: Vec<String>,
    },
    /// The plan was made for another revision of the graph.
    #[error("plan was made for graph revision {plan}, graph is at revision {graph}")]
    StalePlan {
        /// Revision recorded in the plan.
        plan: u64,
        /// Current revision of the graph.
        graph: u64,
    },
}

/// Why a structural mutation or patch was refused. The graph is unchanged
/// whenever one of these is returned.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MutationError {
    /// An unknown name or id, a duplicate name, an invalid constraint.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A size change inside the mutation could not be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The edit would leave the graph inconsistent (a graph cycle, named).
    #[error("the edit would break the graph: {0}")]
    Check(#[from] CheckError),
    /// A size would have to equal itself plus something positive. The
    /// vertices are listed along the cycle, first repeated at the end.
    #[error("size cycle: {}", .vertices.join(" -> "))]
    SizeCycle {
        /// The vertices along the cycle.
        vertices: Vec<String>,
    },
    /// The vertex cannot be removed.
    #[error("cannot remove `{vertex}`: {why}")]
    NotRemovable {
        /// The vertex.
        vertex: String,
        /// Why.
        why: String,
    },
    /// The vertex's inputs cannot change (an input or immutable vertex, or a
    /// depthwise vertex, which has exactly one input).
    #[error("cannot change the inputs of `{vertex}`: {why}")]
    FrozenInputs {
        /// The vertex.
        vertex: String,
        /// Why.
        why: String,
    },
    /// There is no such edge (or no `nth` occurrence of it).
    #[error("`{to}` reads `{from}` {count} time(s); there is no occurrence {nth}")]
    NoSuchEdge {
        /// The producer.
        from: String,
        /// The consumer.
        to: String,
        /// The occurrence asked for (0-based).
        nth: usize,
        /// How many occurrences exist.
        count: usize,
    },
    /// An input position past the end of the input list.
    #[error("`{vertex}` has {inputs} inputs; position {position} is out of range")]
    BadPosition {
        /// The vertex.
        vertex: String,
        /// The position asked for.
        position: usize,
        /// How many inputs it has.
        inputs: usize,
    },
    /// The edit would leave a vertex without inputs.
    #[error("`{vertex}` would be left without inputs")]
    LastInput {
        /// The vertex.
        vertex: String,
    },
    /// Rerouting named a vertex that does not read the one inserted after.
    #[error("`{consumer}` does not read `{vertex}`")]
    NotAConsumer {
        /// The vertex the new one is inserted after.
        vertex: String,
        /// The vertex that was named as a consumer.
        consumer: String,
    },
    /// The new vertex's declared kind or size does not fit where it goes.
    #[error("cannot insert `{vertex}`: {why}")]
    BadNewVertex {
        /// The new vertex's name.
        vertex: String,
        /// Why.
        why: String,
    },
    /// Two sizes that the edit ties together could not be aligned by any
    /// strategy of the chain; `tried` says why each failed.
    #[error("cannot align `{a}` ({a_size}) with `{b}` ({b_size}): {}", .tried.join("; "))]
    Unaligned {
        /// One side.
        a: String,
        /// Its size.
        a_size: usize,
        /// The other side.
        b: String,
        /// Its size.
        b_size: usize,
        /// Each strategy tried and why it failed.
        tried: Vec<String>,
    },
    /// A stack's neurons change (an input added or removed) and the change
    /// cannot reach every vertex tied to them.
    #[error("the change of `{source_vertex}` cannot follow through `{vertex}`: {why}")]
    Misaligned {
        /// The stack whose input list changed.
        source_vertex: String,
        /// Where propagation stopped.
        vertex: String,
        /// Why.
        why: String,
    },
}
