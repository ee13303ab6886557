//! Structural mutations: insert and remove vertices, add and remove edges,
//! batched into all-or-nothing patches.
//!
//! A [`Patch`] is a list of [`Edit`]s. [`Graph::commit`] applies them one
//! after the other to a draft copy of the graph, planning every size change
//! an edit needs on the draft as it stands, checks the result, and only then
//! replaces the graph (one revision step). A refused edit anywhere in the
//! patch returns a [`MutationError`] and the graph is left exactly as it was:
//! wiring, order of inputs (duplicates included), names, sizes, constraints
//! and revision.
//!
//! What an edit does to sizes:
//!
//! - **insert** puts a new vertex between `v` and all (or some) of its
//!   consumers. A stack, invariant or immutable vertex takes `v`'s size; an
//!   absorbing one starts at `v`'s size and is then resized to the size asked
//!   for, with the consumers following through the planner (or the insert is
//!   refused).
//! - **remove** splices a vertex's input into its place at the same input
//!   positions. If the sizes on both sides differ they are aligned first by
//!   an [`Alignment`] chain (default: grow the smaller side, else shrink the
//!   bigger side, else change both), each step an exact plan. Wiring that
//!   would make a size equal itself plus something positive is refused
//!   before any solving ([`MutationError::SizeCycle`]).
//! - **add edge** into an invariant vertex aligns the two sizes the same way;
//!   into a stack it makes the stack's new neurons come from the new input
//!   (the consumers get new input neurons, which layers fill with zeros);
//!   into an absorbing vertex it adds an input whose weights are all new.
//! - **remove edge** drops one occurrence; a stack loses that input's slice
//!   and its consumers drop the matching input neurons.
//!
//! Every size change is recorded in the [`Committed`] report as the same
//! [`Plan`] / [`VertexChange`] data the planner produces, in order, so that
//! layers can replay it on their parameters.

mod cycle;
mod follow;

use std::fmt;

use crate::error::{MutationError, PlanError};
use crate::graph::{Constraint, Graph, SizeKind, Vertex, VertexId};
use crate::planner::{changes_table, plan, plan_or_relax, Neuron, Plan, Request, Step, Utility};
use crate::VertexChange;

/// A vertex named by id or by name (names let a patch refer to a vertex it
/// creates itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// By id.
    Id(VertexId),
    /// By name.
    Name(String),
}

impl From<VertexId> for Ref {
    fn from(v: VertexId) -> Self {
        Ref::Id(v)
    }
}

impl From<&str> for Ref {
    fn from(v: &str) -> Self {
        Ref::Name(v.to_string())
    }
}

impl From<String> for Ref {
    fn from(v: String) -> Self {
        Ref::Name(v)
    }
}

impl Ref {
    fn resolve(&self, g: &Graph) -> Result<VertexId, MutationError> {
        Ok(match self {
            Ref::Id(v) => {
                g.vertex(*v)?;
                *v
            }
            Ref::Name(n) => g.id(n)?,
        })
    }
}

/// The vertex an insert creates: its name, kind, size and constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVertex {
    /// Unique name.
    pub name: String,
    /// Size kind (not `Input`).
    pub kind: SizeKind,
    /// Output size; `None` takes the size of the vertex it follows.
    pub nout: Option<usize>,
    /// Extra constraints, attached after the vertex is wired in.
    pub constraints: Vec<Constraint>,
}

impl NewVertex {
    /// An absorbing vertex (dense, convolution) of `nout` outputs.
    pub fn absorb(name: &str, nout: usize) -> Self {
        Self {
            name: name.to_string(),
            kind: SizeKind::Absorb,
            nout: Some(nout),
            constraints: Vec::new(),
        }
    }
    /// An invariant vertex (activation, norm) of the same size as its input.
    pub fn invariant(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: SizeKind::Invariant,
            nout: None,
            constraints: Vec::new(),
        }
    }
    /// A one-input stack (it can take more inputs later).
    pub fn stack(name: &str) -> Self {
        Self {
            name: name.to_string(),
            kind: SizeKind::Stack,
            nout: None,
            constraints: Vec::new(),
        }
    }
    /// Add a constraint.
    pub fn with(mut self, c: Constraint) -> Self {
        self.constraints.push(c);
        self
    }
}

/// Which consumers an inserted vertex takes over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Reroute {
    /// All of them: the new vertex becomes the only consumer.
    #[default]
    All,
    /// Only these consumers (every edge from the vertex into each of them);
    /// the others keep reading the original vertex.
    Only(Vec<Ref>),
}

/// One way to make two sizes equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Align {
    /// Grow the smaller side to the bigger one; the bigger side stays.
    IncreaseSmaller,
    /// Shrink the bigger side to the smaller one; the smaller side stays.
    DecreaseBigger,
    /// Move both sides to a common size: the sizes between the two first
    /// (same total change), then ever further out; among equally far sizes
    /// the best plan objective wins. At most 48 sizes are tried.
    ChangeBoth,
}

impl fmt::Display for Align {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Align::IncreaseSmaller => "increase smaller",
            Align::DecreaseBigger => "decrease bigger",
            Align::ChangeBoth => "change both",
        })
    }
}

/// A chain of [`Align`] strategies, tried in order, and the utility the
/// plans use to choose neurons.
#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Strategies in order; the first that succeeds is used.
    pub chain: Vec<Align>,
    /// Neuron utility for the alignment plans (entries must match the sizes
    /// at the time the edit is applied).
    pub utility: Utility,
}

impl Default for Alignment {
    /// NaiveNASlib's chain: increase smaller, decrease bigger, change both.
    fn default() -> Self {
        Self {
            chain: vec![
                Align::IncreaseSmaller,
                Align::DecreaseBigger,
                Align::ChangeBoth,
            ],
            utility: Utility::new(),
        }
    }
}

impl Alignment {
    /// A chain of one strategy.
    pub fn only(a: Align) -> Self {
        Self {
            chain: vec![a],
            utility: Utility::new(),
        }
    }
    /// With this utility.
    pub fn with_utility(mut self, u: Utility) -> Self {
        self.utility = u;
        self
    }
}

/// What happens to the consumers of a removed vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connect {
    /// Its input takes its place at every consumer, at the same positions.
    #[default]
    Inputs,
    /// The consumers just lose that input (stacks shrink).
    Nothing,
}

/// One edit of a patch.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// A size change (the default chain: exact, then relaxed). A request
    /// without targets re-selects neurons by utility.
    Resize(Request),
    /// Insert a new vertex after `after`.
    Insert {
        /// The vertex the new one reads.
        after: Ref,
        /// The new vertex.
        vertex: NewVertex,
        /// Which consumers it takes over.
        reroute: Reroute,
        /// Utility for resizing an absorbing new vertex to its size.
        utility: Utility,
    },
    /// Remove a vertex.
    Remove {
        /// The vertex.
        vertex: Ref,
        /// What its consumers read afterwards.
        connect: Connect,
        /// How differing input and output sizes are aligned.
        align: Alignment,
    },
    /// Add an edge `from -> to` at input `position` (`None`: at the end).
    AddEdge {
        /// Producer.
        from: Ref,
        /// Consumer.
        to: Ref,
        /// Input position of the new edge.
        position: Option<usize>,
        /// How sizes are aligned for an invariant consumer.
        align: Alignment,
    },
    /// Remove occurrence `nth` (0-based) of `from` among `to`'s inputs.
    RemoveEdge {
        /// Producer.
        from: Ref,
        /// Consumer.
        to: Ref,
        /// Which occurrence.
        nth: usize,
    },
}

/// A batch of edits, committed together or not at all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    /// The edits, in order.
    pub edits: Vec<Edit>,
}

impl Patch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }
    /// Append any edit.
    pub fn push(mut self, e: Edit) -> Self {
        self.edits.push(e);
        self
    }
    /// Append a size change.
    pub fn resize(self, req: Request) -> Self {
        self.push(Edit::Resize(req))
    }
    /// Insert `vertex` after `after`, taking over all its consumers.
    pub fn insert(self, after: impl Into<Ref>, vertex: NewVertex) -> Self {
        self.push(Edit::Insert {
            after: after.into(),
            vertex,
            reroute: Reroute::All,
            utility: Utility::new(),
        })
    }
    /// Remove a vertex with the default alignment, splicing its input in.
    pub fn remove(self, v: impl Into<Ref>) -> Self {
        self.push(Edit::Remove {
            vertex: v.into(),
            connect: Connect::Inputs,
            align: Alignment::default(),
        })
    }
    /// Remove the residual block that ends in `add` (`x + f(x)`, an
    /// invariant vertex of two inputs, one of which is an ancestor of the
    /// other): the block's vertices (every vertex on a path from `x` to
    /// `f(x)`) go, and `add`'s consumers read `x`: the residual stream
    /// passes through. A transformer block's attention or MLP half, a
    /// ResNet block.
    ///
    /// # Errors
    /// `add` is not such a vertex, or a vertex of the block is also read
    /// outside it (`NotRemovable`, naming it).
    pub fn remove_residual_block(self, g: &Graph, add: VertexId) -> Result<Self, MutationError> {
        let block = residual_block(g, add)?;
        let branch = *block.last().expect("a block holds its branch output");
        let mut p = self.push(Edit::Remove {
            vertex: branch.into(),
            connect: Connect::Nothing,
            align: Alignment::default(),
        });
        for &v in block.iter().rev().skip(1) {
            p = p.remove(v);
        }
        Ok(p.remove(add))
    }

    /// Add an edge at the end of `to`'s inputs with the default alignment.
    pub fn add_edge(self, from: impl Into<Ref>, to: impl Into<Ref>) -> Self {
        self.push(Edit::AddEdge {
            from: from.into(),
            to: to.into(),
            position: None,
            align: Alignment::default(),
        })
    }
    /// Remove the first occurrence of the edge `from -> to`.
    pub fn remove_edge(self, from: impl Into<Ref>, to: impl Into<Ref>) -> Self {
        self.push(Edit::RemoveEdge {
            from: from.into(),
            to: to.into(),
            nth: 0,
        })
    }
}

/// Why a size plan was applied during a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A [`Edit::Resize`] of the patch.
    Requested,
    /// Aligning two sizes before a removal or a new edge, by this strategy.
    Align(Align),
    /// Resizing a new absorbing vertex to the size asked for.
    NewVertexSize,
}

/// A consumer input that now reads other producers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// The consumer.
    pub consumer: VertexId,
    /// The input position it had for the removed vertex.
    pub position: usize,
    /// What it reads there now (several for a stack inlined into a stack).
    pub inputs: Vec<VertexId>,
}

/// One applied step of a patch, in order. Sizes and index lists refer to the
/// graph as it was right before the step.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// A size plan.
    Resize {
        /// The plan (data only; layers apply it to parameters).
        plan: Plan,
        /// Exact or relaxed.
        step: Step,
        /// Why it was made.
        reason: Reason,
    },
    /// A vertex was inserted.
    Inserted {
        /// The new vertex.
        vertex: VertexId,
        /// Its name.
        name: String,
        /// The vertex it reads.
        after: VertexId,
        /// Consumer inputs (consumer, position) that now read it.
        rerouted: Vec<(VertexId, usize)>,
        /// Its size when inserted (nin and nout both equal `after`'s size; a
        /// later `Resize` step may change its nout).
        size: usize,
    },
    /// A vertex was removed (its id is now invalid).
    Removed {
        /// The removed id.
        vertex: VertexId,
        /// Its name.
        name: String,
        /// Consumer inputs rewired to its inputs.
        spliced: Vec<Splice>,
    },
    /// An edge was added.
    EdgeAdded {
        /// Producer.
        from: VertexId,
        /// Consumer.
        to: VertexId,
        /// Its input position.
        position: usize,
        /// Index lists that follow (a stack consumer and everything tied to
        /// it; for the new input itself, all neurons are new).
        follow: Vec<VertexChange>,
    },
    /// An edge was removed.
    EdgeRemoved {
        /// Producer.
        from: VertexId,
        /// Consumer.
        to: VertexId,
        /// The input position it had.
        position: usize,
        /// Index lists that follow (a stack consumer losing the slice).
        follow: Vec<VertexChange>,
    },
}

/// A removed vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedVertex {
    /// Its (now invalid) id.
    pub id: VertexId,
    /// Its name.
    pub name: String,
}

/// What a committed patch did.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    /// Vertices created (ids are new; no old id is reused).
    pub created: Vec<VertexId>,
    /// Vertices removed.
    pub removed: Vec<RemovedVertex>,
    /// Surviving old vertices whose nout or nin changed.
    pub resized: Vec<VertexId>,
    /// Ids that no longer refer to a vertex: exactly the removed ones.
    pub invalidated: Vec<VertexId>,
    /// Every step, in order.
    pub steps: Vec<Applied>,
    /// The graph's revision after the commit.
    pub revision: u64,
}

impl Graph {
    /// Apply a patch: every edit in order on a draft, then check and commit
    /// once (the revision moves by one). All or nothing: on error the graph
    /// is unchanged, bit for bit. Ids of removed vertices become invalid;
    /// all others stay valid; created vertices get fresh ids.
    ///
    /// ```
    /// use graft_core::{Graph, Patch, NewVertex};
    /// let mut g = Graph::new();
    /// let x = g.add_input("x", 3).unwrap();
    /// let a = g.add_absorb("a", &[x], 5).unwrap();
    /// let b = g.add_absorb("b", &[a], 4).unwrap();
    /// let done = g
    ///     .commit(&Patch::new().insert(a, NewVertex::invariant("relu")).remove(b))
    ///     .unwrap();
    /// assert_eq!(done.created.len(), 1);
    /// assert_eq!(done.invalidated, vec![b]);
    /// assert!(g.vertex(b).is_err());
    /// ```
    ///
    /// # Errors
    /// The first edit that is refused, as a [`MutationError`] naming the
    /// vertices involved.
    pub fn commit(&mut self, patch: &Patch) -> Result<Committed, MutationError> {
        let (draft, done) = self.dry_run(patch)?;
        *self = draft;
        Ok(done)
    }

    /// What [`Graph::commit`] would do, without doing it: the new graph and
    /// the report.
    ///
    /// # Errors
    /// As [`Graph::commit`].
    pub fn dry_run(&self, patch: &Patch) -> Result<(Graph, Committed), MutationError> {
        self.check()?;
        let mut d = self.clone();
        let mut steps = Vec::new();
        for e in &patch.edits {
            apply_edit(&mut d, e, &mut steps)?;
        }
        d.check()?;
        d.set_revision(self.revision() + 1);
        let created: Vec<VertexId> = d.ids().filter(|v| self.vertex(*v).is_err()).collect();
        let removed: Vec<RemovedVertex> = self
            .ids()
            .filter(|v| d.vertex(*v).is_err())
            .map(|v| RemovedVertex {
                id: v,
                name: self.name(v),
            })
            .collect();
        let resized = self
            .ids()
            .filter(|&v| {
                d.vertex(v)
                    .is_ok_and(|x| x.nout() != self.v(v).nout() || x.nin() != self.v(v).nin())
            })
            .collect();
        let invalidated = removed.iter().map(|r| r.id).collect();
        let revision = d.revision();
        Ok((
            d,
            Committed {
                created,
                removed,
                resized,
                invalidated,
                steps,
                revision,
            },
        ))
    }

    /// Insert `vertex` after `after`, between it and the consumers chosen by
    /// `reroute`, at the same input positions. Invalidates no id.
    ///
    /// # Errors
    /// See [`Graph::commit`].
    pub fn insert_after(
        &mut self,
        after: VertexId,
        vertex: NewVertex,
        reroute: Reroute,
    ) -> Result<Committed, MutationError> {
        self.commit(&Patch::new().push(Edit::Insert {
            after: after.into(),
            vertex,
            reroute,
            utility: Utility::new(),
        }))
    }

    /// Remove `v`, splicing its input into its place (default alignment).
    /// Invalidates `v`'s id only.
    ///
    /// # Errors
    /// See [`Graph::commit`].
    pub fn remove_vertex(&mut self, v: VertexId) -> Result<Committed, MutationError> {
        self.commit(&Patch::new().remove(v))
    }

    /// Remove `v` with a choice of what its consumers read and how sizes are
    /// aligned. Invalidates `v`'s id only.
    ///
    /// # Errors
    /// See [`Graph::commit`].
    pub fn remove_vertex_with(
        &mut self,
        v: VertexId,
        connect: Connect,
        align: Alignment,
    ) -> Result<Committed, MutationError> {
        self.commit(&Patch::new().push(Edit::Remove {
            vertex: v.into(),
            connect,
            align,
        }))
    }

    /// Add the edge `from -> to` at input `position` (`None`: last).
    /// Invalidates no id.
    ///
    /// # Errors
    /// See [`Graph::commit`].
    pub fn add_edge(
        &mut self,
        from: VertexId,
        to: VertexId,
        position: Option<usize>,
        align: Alignment,
    ) -> Result<Committed, MutationError> {
        self.commit(&Patch::new().push(Edit::AddEdge {
            from: from.into(),
            to: to.into(),
            position,
            align,
        }))
    }

    /// Remove occurrence `nth` (0-based) of `from` among `to`'s inputs.
    /// Invalidates no id.
    ///
    /// # Errors
    /// See [`Graph::commit`].
    pub fn remove_edge(
        &mut self,
        from: VertexId,
        to: VertexId,
        nth: usize,
    ) -> Result<Committed, MutationError> {
        self.commit(&Patch::new().push(Edit::RemoveEdge {
            from: from.into(),
            to: to.into(),
            nth,
        }))
    }
}

fn apply_edit(d: &mut Graph, e: &Edit, steps: &mut Vec<Applied>) -> Result<(), MutationError> {
    match e {
        Edit::Resize(req) => {
            let planned = plan_or_relax(d, req)?;
            planned.plan.apply(d)?;
            steps.push(Applied::Resize {
                plan: planned.plan,
                step: planned.step,
                reason: Reason::Requested,
            });
            Ok(())
        }
        Edit::Insert {
            after,
            vertex,
            reroute,
            utility,
        } => insert(d, after, vertex, reroute, utility, steps),
        Edit::Remove {
            vertex,
            connect,
            align,
        } => {
            let v = vertex.resolve(d)?;
            remove(d, v, *connect, align, steps)
        }
        Edit::AddEdge {
            from,
            to,
            position,
            align,
        } => {
            let (u, v) = (from.resolve(d)?, to.resolve(d)?);
            add_edge(d, u, v, *position, align, steps)
        }
        Edit::RemoveEdge { from, to, nth } => {
            let (u, v) = (from.resolve(d)?, to.resolve(d)?);
            let positions: Vec<usize> = d
                .v(v)
                .inputs()
                .iter()
                .enumerate()
                .filter(|(_, &x)| x == u)
                .map(|(k, _)| k)
                .collect();
            let pos = *positions
                .get(*nth)
                .ok_or_else(|| MutationError::NoSuchEdge {
                    from: d.name(u),
                    to: d.name(v),
                    nth: *nth,
                    count: positions.len(),
                })?;
            remove_edge_at(d, v, pos, steps)
        }
    }
}

fn insert(
    d: &mut Graph,
    after: &Ref,
    nv: &NewVertex,
    reroute: &Reroute,
    utility: &Utility,
    steps: &mut Vec<Applied>,
) -> Result<(), MutationError> {
    let v = after.resolve(d)?;
    if d.id(&nv.name).is_ok() {
        return Err(crate::GraphError::DuplicateName {
            name: nv.name.clone(),
        }
        .into());
    }
    let bad = |why: String| MutationError::BadNewVertex {
        vertex: nv.name.clone(),
        why,
    };
    let n = d.v(v).nout();
    match nv.kind {
        SizeKind::Input => return Err(bad("an input cannot be inserted after a vertex".into())),
        SizeKind::Select => {
            return Err(bad(
                "a select needs a control input besides its branch; add it with its inputs".into(),
            ))
        }
        SizeKind::Absorb => {}
        SizeKind::Stack | SizeKind::Invariant | SizeKind::Immutable => {
            if nv.nout.is_some_and(|k| k != n) {
                return Err(bad(format!(
                    "kind {} takes the size of `{}` ({n}), not {}",
                    nv.kind.as_str(),
                    d.name(v),
                    nv.nout.unwrap_or(n)
                )));
            }
        }
    }
    if nv.nout == Some(0) {
        return Err(bad("size 0".into()));
    }
    // The consumer inputs to take over.
    let mut rerouted: Vec<(VertexId, usize)> = Vec::new();
    let mut consumers: Vec<VertexId> = match reroute {
        Reroute::All => d.v(v).outputs().to_vec(),
        Reroute::Only(list) => {
            let mut out = Vec::new();
            for r in list {
                let c = r.resolve(d)?;
                if !d.v(v).outputs().contains(&c) {
                    return Err(MutationError::NotAConsumer {
                        vertex: d.name(v),
                        consumer: d.name(c),
                    });
                }
                out.push(c);
            }
            out
        }
    };
    consumers.sort();
    consumers.dedup();
    for &c in &consumers {
        for (k, &u) in d.v(c).inputs().iter().enumerate() {
            if u == v {
                rerouted.push((c, k));
            }
        }
    }
    let w = d.push_raw(Vertex {
        name: nv.name.clone(),
        kind: nv.kind,
        nout: n,
        nin: vec![n],
        inputs: vec![v],
        outputs: Vec::new(),
        constraints: Vec::new(),
    });
    for &(c, k) in &rerouted {
        d.set_input_raw(c, k, w);
    }
    for c in &nv.constraints {
        d.add_constraint(w, *c)?;
    }
    steps.push(Applied::Inserted {
        vertex: w,
        name: nv.name.clone(),
        after: v,
        rerouted,
        size: n,
    });
    if let Some(k) = nv.nout.filter(|&k| k != n) {
        let req = Request::new()
            .nout(w, k as i64 - n as i64)
            .with_utility(utility.clone());
        let p = plan(d, &req)?;
        p.apply(d)?;
        steps.push(Applied::Resize {
            plan: p,
            step: Step::Exact,
            reason: Reason::NewVertexSize,
        });
    }
    Ok(())
}

fn remove(
    d: &mut Graph,
    v: VertexId,
    connect: Connect,
    align: &Alignment,
    steps: &mut Vec<Applied>,
) -> Result<(), MutationError> {
    let vx = d.v(v).clone();
    let refuse = |why: &str| MutationError::NotRemovable {
        vertex: vx.name().to_string(),
        why: why.to_string(),
    };
    match vx.kind() {
        SizeKind::Input => return Err(refuse("it is an input")),
        SizeKind::Immutable => return Err(refuse("it is immutable")),
        _ => {}
    }
    let edges: Vec<(VertexId, usize)> = consumer_edges(d, v);
    if connect == Connect::Nothing || edges.is_empty() {
        // Drop the consumer edges last-position first, so positions stay valid.
        let mut es = edges.clone();
        es.sort_by(|a, b| b.cmp(a));
        for (c, k) in es {
            remove_edge_at(d, c, k, steps)?;
        }
        d.delete_raw(v);
        steps.push(Applied::Removed {
            vertex: v,
            name: vx.name().to_string(),
            spliced: Vec::new(),
        });
        return Ok(());
    }
    let ins = vx.inputs().to_vec();
    if ins.len() > 1 {
        let all_stacks = vx.kind() == SizeKind::Stack
            && edges.iter().all(|(c, _)| d.v(*c).kind() == SizeKind::Stack);
        if !all_stacks {
            return Err(refuse(&format!(
                "it has {} inputs; only a stack read by stacks alone can be spliced \
                 (remove it with Connect::Nothing instead)",
                ins.len()
            )));
        }
        // Inline the stack's inputs into each consuming stack: sizes do not move.
        let mut es = edges.clone();
        es.sort_by(|a, b| b.cmp(a));
        let mut spliced = Vec::new();
        for (c, k) in es {
            d.remove_input_raw(c, k);
            for (j, &u) in ins.iter().enumerate() {
                d.insert_input_raw(c, k + j, u);
            }
            spliced.push(Splice {
                consumer: c,
                position: k,
                inputs: ins.clone(),
            });
        }
        d.delete_raw(v);
        spliced.reverse();
        steps.push(Applied::Removed {
            vertex: v,
            name: vx.name().to_string(),
            spliced,
        });
        return Ok(());
    }
    let u = ins[0];
    // Refuse size cycles before solving anything.
    let mut probe = d.clone();
    splice(&mut probe, v, u, &edges);
    if let Some(vertices) = cycle::size_cycle(&probe) {
        return Err(MutationError::SizeCycle { vertices });
    }
    align_sizes(d, u, v, align, steps)?;
    splice(d, v, u, &edges);
    steps.push(Applied::Removed {
        vertex: v,
        name: vx.name().to_string(),
        spliced: edges
            .iter()
            .map(|&(c, k)| Splice {
                consumer: c,
                position: k,
                inputs: vec![u],
            })
            .collect(),
    });
    Ok(())
}

/// (consumer, position) of every edge out of `v`, consumers in id order.
fn consumer_edges(d: &Graph, v: VertexId) -> Vec<(VertexId, usize)> {
    let mut cs = d.v(v).outputs().to_vec();
    cs.sort();
    cs.dedup();
    let mut out = Vec::new();
    for c in cs {
        for (k, &x) in d.v(c).inputs().iter().enumerate() {
            if x == v {
                out.push((c, k));
            }
        }
    }
    out
}

fn splice(d: &mut Graph, v: VertexId, u: VertexId, edges: &[(VertexId, usize)]) {
    for &(c, k) in edges {
        d.set_input_raw(c, k, u);
    }
    d.delete_raw(v);
}

fn add_edge(
    d: &mut Graph,
    u: VertexId,
    v: VertexId,
    position: Option<usize>,
    align: &Alignment,
    steps: &mut Vec<Applied>,
) -> Result<(), MutationError> {
    let vx = d.v(v).clone();
    let frozen = |why: &str| MutationError::FrozenInputs {
        vertex: vx.name().to_string(),
        why: why.to_string(),
    };
    match (vx.kind(), vx.depthwise()) {
        (SizeKind::Input, _) => return Err(frozen("it is an input")),
        (SizeKind::Immutable, _) => return Err(frozen("it is immutable")),
        (_, Some(_)) => return Err(frozen("a depthwise vertex has exactly one input")),
        _ if vx.maps_neurons() => {
            return Err(frozen(
                "a slice, shuffle, fold or tile has exactly one input",
            ))
        }
        _ if vx.heads().is_some() => return Err(frozen("a heads vertex has exactly one input")),
        _ => {}
    }
    let pos = position.unwrap_or(vx.inputs().len());
    if pos > vx.inputs().len() {
        return Err(MutationError::BadPosition {
            vertex: vx.name().to_string(),
            position: pos,
            inputs: vx.inputs().len(),
        });
    }
    let mut probe = d.clone();
    probe.insert_input_raw(v, pos, u);
    probe.topological_order()?;
    if let Some(vertices) = cycle::size_cycle(&probe) {
        return Err(MutationError::SizeCycle { vertices });
    }
    let n = d.v(u).nout();
    if vx.kind() == SizeKind::Select && pos == 0 {
        return Err(MutationError::BadPosition {
            vertex: vx.name().to_string(),
            position: pos,
            inputs: vx.inputs().len(),
        });
    }
    match vx.kind() {
        SizeKind::Invariant | SizeKind::Select => {
            align_sizes(d, u, v, align, steps)?;
            d.insert_input_raw(v, pos, u);
            steps.push(Applied::EdgeAdded {
                from: u,
                to: v,
                position: pos,
                follow: Vec::new(),
            });
        }
        SizeKind::Stack => {
            let off: usize = vx.nin()[..pos].iter().sum();
            let old = vx.nout();
            let mut list: Vec<Neuron> = (0..off).map(Neuron::Old).collect();
            list.extend(std::iter::repeat_n(Neuron::New, n));
            list.extend((off..old).map(Neuron::Old));
            d.insert_input_raw(v, pos, u);
            let mut fl = follow::follow(d, v, old, list, &[u])?;
            mark_new_input(&mut fl, v, pos, n);
            steps.push(Applied::EdgeAdded {
                from: u,
                to: v,
                position: pos,
                follow: fl,
            });
        }
        _ => {
            d.insert_input_raw(v, pos, u);
            let mut fl = vec![VertexChange {
                vertex: v,
                name: vx.name().to_string(),
                nout_before: vx.nout(),
                nout_after: vx.nout(),
                nin_after: d.v(v).nin().to_vec(),
                outs: None,
                ins: vec![None; vx.inputs().len() + 1],
                multiplier_after: None,
                slice_start_after: None,
            }];
            mark_new_input(&mut fl, v, pos, n);
            steps.push(Applied::EdgeAdded {
                from: u,
                to: v,
                position: pos,
                follow: fl,
            });
        }
    }
    Ok(())
}

/// In the follow report of `v`, mark input `pos` as all new neurons.
fn mark_new_input(fl: &mut [VertexChange], v: VertexId, pos: usize, n: usize) {
    if let Some(c) = fl.iter_mut().find(|c| c.vertex == v) {
        c.ins[pos] = Some(vec![Neuron::New; n]);
    }
}

fn remove_edge_at(
    d: &mut Graph,
    v: VertexId,
    pos: usize,
    steps: &mut Vec<Applied>,
) -> Result<(), MutationError> {
    let vx = d.v(v).clone();
    let u = vx.inputs()[pos];
    if vx.kind() == SizeKind::Immutable {
        return Err(MutationError::FrozenInputs {
            vertex: vx.name().to_string(),
            why: "it is immutable".into(),
        });
    }
    let tied_left = vx.tied_inputs().filter(|&(p, _)| p != pos).count();
    if vx.inputs().len() == 1
        || (vx.kind() == SizeKind::Select && vx.inputs().len() == 2)
        || (vx.couples_input(pos) && tied_left == 0 && vx.kind() != SizeKind::Stack)
    {
        return Err(MutationError::LastInput {
            vertex: vx.name().to_string(),
        });
    }
    if vx.kind() == SizeKind::Select && pos == 0 {
        return Err(MutationError::FrozenInputs {
            vertex: vx.name().to_string(),
            why: "input 0 is the control of a select".into(),
        });
    }
    let mut follow_report = Vec::new();
    d.remove_input_raw(v, pos);
    if vx.kind() == SizeKind::Stack {
        let off: usize = vx.nin()[..pos].iter().sum();
        let n = vx.nin()[pos];
        let list: Vec<Neuron> = (0..off)
            .chain(off + n..vx.nout())
            .map(Neuron::Old)
            .collect();
        follow_report = follow::follow(d, v, vx.nout(), list, &[])?;
    }
    steps.push(Applied::EdgeRemoved {
        from: u,
        to: v,
        position: pos,
        follow: follow_report,
    });
    Ok(())
}

/// Make nout(a) == nout(b) by the strategies of `al`, in order.
fn align_sizes(
    d: &mut Graph,
    a: VertexId,
    b: VertexId,
    al: &Alignment,
    steps: &mut Vec<Applied>,
) -> Result<(), MutationError> {
    let (sa, sb) = (d.v(a).nout(), d.v(b).nout());
    if sa == sb {
        return Ok(());
    }
    let same = d.size_component(a)?.contains(&b);
    let (small, big) = if sa < sb { (a, b) } else { (b, a) };
    let (lo, hi) = (sa.min(sb), sa.max(sb));
    let mut tried = Vec::new();
    for &s in &al.chain {
        let found = match s {
            Align::IncreaseSmaller => attempt(d, &[(small, hi), (big, hi)], same, al, &mut tried)?,
            Align::DecreaseBigger => attempt(d, &[(big, lo), (small, lo)], same, al, &mut tried)?,
            Align::ChangeBoth => {
                let mut best: Option<Plan> = None;
                let mut budget = 48;
                let mut ring = 0usize;
                while best.is_none() && budget > 0 && ring <= 2 * hi + 16 {
                    let sizes: Vec<usize> = if ring == 0 {
                        (lo..=hi).collect()
                    } else {
                        let mut s = vec![hi + ring];
                        if lo > ring {
                            s.push(lo - ring);
                        }
                        s
                    };
                    for t in sizes {
                        if budget == 0 {
                            break;
                        }
                        budget -= 1;
                        let mut quiet = Vec::new();
                        if let Some(p) = attempt(d, &[(a, t), (b, t)], same, al, &mut quiet)? {
                            if best
                                .as_ref()
                                .is_none_or(|q| p.objective.value > q.objective.value)
                            {
                                best = Some(p);
                            }
                        }
                    }
                    ring += 1;
                }
                if best.is_none() {
                    tried.push(format!("{s}: no common size found"));
                }
                best
            }
        };
        if let Some(p) = found {
            p.apply(d)?;
            steps.push(Applied::Resize {
                plan: p,
                step: Step::Exact,
                reason: Reason::Align(s),
            });
            return Ok(());
        }
        if s != Align::ChangeBoth {
            if let Some(last) = tried.last_mut() {
                *last = format!("{s}: {last}");
            }
        }
    }
    Err(MutationError::Unaligned {
        a: d.name(a),
        a_size: sa,
        b: d.name(b),
        b_size: sb,
        tried,
    })
}

/// Plan exact sizes `goals`; `Ok(None)` when that is infeasible (the reason
/// goes to `tried`). A goal equal to the current size is kept as a target
/// only when both sides share a component (elsewhere it holds anyway).
fn attempt(
    d: &Graph,
    goals: &[(VertexId, usize)],
    same: bool,
    al: &Alignment,
    tried: &mut Vec<String>,
) -> Result<Option<Plan>, MutationError> {
    let mut req = Request::new().with_utility(al.utility.clone());
    for &(v, goal) in goals {
        let vx = d.v(v);
        let delta = goal as i64 - vx.nout() as i64;
        if delta == 0 && (!same || vx.is_size_frozen()) {
            continue;
        }
        req = req.nout(v, delta);
    }
    match plan(d, &req) {
        Ok(p) => Ok(Some(p)),
        Err(
            e @ (PlanError::Infeasible { .. }
            | PlanError::NotMutable { .. }
            | PlanError::BelowOne { .. }),
        ) => {
            tried.push(e.to_string());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

impl Committed {
    /// A readable account of the patch: each step, with the neurons every
    /// affected vertex keeps and where new ones go.
    pub fn render(&self, after: &Graph) -> String {
        let name = |v: VertexId, fallback: &str| -> String {
            after
                .vertex(v)
                .map(|x| x.name().to_string())
                .unwrap_or_else(|_| fallback.to_string())
        };
        let removed_name = |v: VertexId| -> String {
            self.removed
                .iter()
                .find(|r| r.id == v)
                .map(|r| r.name.clone())
                .unwrap_or_else(|| v.to_string())
        };
        let nm = |v: VertexId| name(v, &removed_name(v));
        let mut s = String::new();
        for (i, st) in self.steps.iter().enumerate() {
            let n = i + 1;
            match st {
                Applied::Resize { plan, step, reason } => {
                    let why = match reason {
                        Reason::Requested => "requested".to_string(),
                        Reason::Align(a) => format!("align sizes, {a}"),
                        Reason::NewVertexSize => "new vertex to its size".to_string(),
                    };
                    let step = match step {
                        Step::Exact => "exact",
                        Step::Relaxed => "relaxed",
                    };
                    s += &format!("{n}. resize ({why}, {step})\n");
                    s += &indent(&plan.render());
                }
                Applied::Inserted {
                    name,
                    after,
                    rerouted,
                    ..
                } => {
                    let r: Vec<String> = rerouted
                        .iter()
                        .map(|&(c, k)| format!("{} input {k}", nm(c)))
                        .collect();
                    s += &format!(
                        "{n}. insert `{name}` after `{}`; now read by: {}\n",
                        nm(*after),
                        if r.is_empty() {
                            "nothing".to_string()
                        } else {
                            r.join(", ")
                        }
                    );
                }
                Applied::Removed { name, spliced, .. } => {
                    let r: Vec<String> = spliced
                        .iter()
                        .map(|sp| {
                            let ins: Vec<String> = sp.inputs.iter().map(|&u| nm(u)).collect();
                            format!(
                                "{} input {} reads {}",
                                nm(sp.consumer),
                                sp.position,
                                ins.join(" + ")
                            )
                        })
                        .collect();
                    s += &format!(
                        "{n}. remove `{name}`{}\n",
                        if r.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", r.join(", "))
                        }
                    );
                }
                Applied::EdgeAdded {
                    from,
                    to,
                    position,
                    follow,
                }
                | Applied::EdgeRemoved {
                    from,
                    to,
                    position,
                    follow,
                } => {
                    let verb = if matches!(st, Applied::EdgeAdded { .. }) {
                        "add"
                    } else {
                        "remove"
                    };
                    s += &format!(
                        "{n}. {verb} edge `{}` -> `{}` input {position}\n",
                        nm(*from),
                        nm(*to)
                    );
                    if !follow.is_empty() {
                        s += &indent(&changes_table(follow));
                    }
                }
            }
        }
        let list = |ids: &[VertexId]| -> String {
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.iter().map(|&v| nm(v)).collect::<Vec<_>>().join(", ")
            }
        };
        let removed: Vec<VertexId> = self.removed.iter().map(|r| r.id).collect();
        s += &format!(
            "created: {}; removed: {}; resized: {}\n",
            list(&self.created),
            list(&removed),
            list(&self.resized)
        );
        s
    }
}

fn indent(t: &str) -> String {
    t.lines().map(|l| format!("   {l}\n")).collect()
}

/// The vertices of the residual block ending in `add` (see
/// [`Patch::remove_residual_block`]), in topological order, its branch
/// output last.
///
/// # Errors
/// As [`Patch::remove_residual_block`].
pub fn residual_block(g: &Graph, add: VertexId) -> Result<Vec<VertexId>, MutationError> {
    let ax = g.vertex(add)?;
    let refuse = |vertex: &str, why: String| MutationError::NotRemovable {
        vertex: vertex.to_string(),
        why,
    };
    let [a, b] = ax.inputs() else {
        return Err(refuse(
            ax.name(),
            format!("a residual add has two inputs, not {}", ax.inputs().len()),
        ));
    };
    if ax.kind() != SizeKind::Invariant || a == b {
        return Err(refuse(ax.name(), "not a residual add (x + f(x))".into()));
    }
    let topo = g.topological_order()?;
    // Ancestors of a vertex (itself included).
    let ancestors = |v: VertexId| {
        let mut seen = std::collections::HashSet::from([v]);
        let mut todo = vec![v];
        while let Some(x) = todo.pop() {
            for &u in g.v(x).inputs() {
                if seen.insert(u) {
                    todo.push(u);
                }
            }
        }
        seen
    };
    let (skip, branch) = if ancestors(*b).contains(a) {
        (*a, *b)
    } else if ancestors(*a).contains(b) {
        (*b, *a)
    } else {
        return Err(refuse(
            ax.name(),
            "neither input is an ancestor of the other: not a residual block".into(),
        ));
    };
    // The block: descendants of the skip input that are ancestors of the
    // branch output.
    let up = ancestors(branch);
    let mut down = std::collections::HashSet::from([skip]);
    let mut block = Vec::new();
    for &v in &topo {
        if v != skip && g.v(v).inputs().iter().any(|u| down.contains(u)) {
            down.insert(v);
            if up.contains(&v) {
                block.push(v);
            }
        }
    }
    for &v in &block {
        let vx = g.v(v);
        if vx.kind() == SizeKind::Input {
            return Err(refuse(vx.name(), "an input cannot be removed".into()));
        }
        if let Some(&o) = vx
            .outputs()
            .iter()
            .find(|&&o| o != add && !block.contains(&o))
        {
            return Err(refuse(
                vx.name(),
                format!("it is read outside the block, by {}", g.name(o)),
            ));
        }
    }
    Ok(block)
}
