//! The tensor-free graph: named vertices with declared size rules.
//!
//! Storage is a slot vector indexed by [`VertexId`]; ids are never reused or
//! renumbered, so an id stays valid until its own vertex is removed. Input lists
//! are ordered and may hold the same producer several times; the outputs list of
//! a vertex mirrors them (one entry per consuming edge).
//!
//! We keep our own slot storage instead of `petgraph::StableGraph` because the
//! ordered, duplicate-carrying input list (and its exact restoration on undo)
//! is the heart of the data model, and StableGraph's edge order is not an input
//! order.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{CheckError, GraphError};

/// The largest size (neurons of a vertex, a step) a graph holds: 2^32. A
/// graph, a JSON file or an importer declaring more is refused with
/// [`GraphError::TooLarge`] before anything is allocated for it, and every
/// product of sizes the core forms stays within 64 bits. (Plans are
/// limited further, to [`crate::MAX_NOUT`] neurons per vertex.)
pub const MAX_SIZE: usize = 1 << 32;

/// Stable identifier of a vertex. Never reused within one graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VertexId(pub(crate) u32);

impl VertexId {
    /// The raw index (for display and serialization).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for VertexId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How a vertex's sizes relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeKind {
    /// A graph input: fixed size, no inputs.
    Input,
    /// nin and nout independent (dense, convolution: anything with a weight).
    Absorb,
    /// nout = sum of nin; output neurons are the inputs' neurons concatenated.
    Stack,
    /// every nin equals nout, neuron by neuron (add, activation, norm, ...).
    Invariant,
    /// Sizes never change; its inputs' sizes are frozen too.
    Immutable,
    /// A merge of conditional branches (a conditional, a gate, a mixture of
    /// experts): input 0 is the control (its size is free, like an absorbing
    /// vertex's input); every other input equals nout neuron by neuron, as
    /// the inputs of an add do, because whichever branch runs, its output
    /// lands in the same value.
    Select,
}

impl SizeKind {
    /// Short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            SizeKind::Input => "input",
            SizeKind::Absorb => "absorb",
            SizeKind::Stack => "stack",
            SizeKind::Invariant => "invariant",
            SizeKind::Immutable => "immutable",
            SizeKind::Select => "select",
        }
    }

    /// Stack, invariant and select vertices tie their output neurons to
    /// their (select: non-control) inputs'.
    pub fn is_transparent(self) -> bool {
        matches!(
            self,
            SizeKind::Stack | SizeKind::Invariant | SizeKind::Select
        )
    }
}

/// Extra constraints on a vertex, on top of its size kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constraint {
    /// nout changes only in multiples of `step` (a flatten of C×H×W: step H·W).
    NoutStep {
        /// The step, at least 1.
        step: usize,
    },
    /// The size arriving at input `input` changes only in multiples of `step`.
    NinStep {
        /// Input position.
        input: usize,
        /// The step, at least 1.
        step: usize,
    },
    /// The size arriving at input `input` is at least `min` (a top-`k`
    /// choosing among its input's neurons: a mixture of experts keeps at
    /// least `k` experts).
    NinAtLeast {
        /// Input position.
        input: usize,
        /// The smallest size, at least 1.
        min: usize,
    },
    /// nout never changes (the vertex's inputs may).
    Fixed,
    /// A depthwise (channel-multiplier) convolution on an absorbing vertex
    /// with one input: nout = multiplier · nin, and output `j` reads input
    /// `j / multiplier`. Input and output neurons are coupled block by block.
    /// The planner may move the multiplier within `choices` (when the
    /// outputs are read only through chains of unary invariant vertices, as
    /// batch norm and activations); with no choices it keeps it.
    Depthwise {
        /// Outputs per input channel, at least 1.
        multiplier: usize,
        /// Multipliers the planner may choose from (must include
        /// `multiplier`); empty: only the current one.
        #[serde(default, skip_serializing_if = "Multipliers::is_empty")]
        choices: Multipliers,
    },
    /// A grouped convolution on an absorbing vertex with one input: its
    /// inputs and outputs are split into `groups` equal blocks, output block
    /// `i` reading input block `i`. Sizes change by whole rows of groups:
    /// every block keeps the same local neurons (on the output side, and on
    /// the input side in the producer), and new ones go at the end of each
    /// block, so the groups stay interleaved.
    Grouped {
        /// Number of groups, at least 1.
        groups: usize,
    },
    /// Input `input` of an invariant vertex is broadcast along the neuron
    /// axis (numpy broadcasting: an SE gate's `[N, 1, 1, 1]` scale, a
    /// layer norm's mean `[N, T, 1]`): its size is free, like an absorbing
    /// vertex's input, and its neurons are not tied to the output's. At
    /// least one input of the vertex stays tied.
    Broadcast {
        /// Input position.
        input: usize,
    },
    /// A contiguous part of the input's neurons, on an absorbing vertex with
    /// one input (a Split or Slice along the neuron axis; the inverse of a
    /// stack): output `j` is input `start + j`, so `start + nout <= nin`.
    /// Pruning inside the part prunes the producer there; new neurons go at
    /// the end of the part. Plans move `start` (the neurons kept and added
    /// before the part).
    Slice {
        /// First input neuron of the part.
        start: usize,
    },
    /// A channel shuffle, on an absorbing vertex with one input and
    /// `nout = nin = groups · width`: output `k · groups + g` is input
    /// `g · width + k`. Every group keeps the same local neurons (sizes
    /// change by whole rows of `groups`), and new neurons go at the end of
    /// every group, so the shuffle stays a shuffle.
    Shuffle {
        /// Number of groups, at least 1.
        groups: usize,
    },
    /// The vertex's neurons are `groups` blocks of equal width (a reshape
    /// of the neuron axis into `[groups, width]`: the channels of a group
    /// norm, the head dimension of every attention head): every block
    /// keeps the same local neurons and grows at the same local place, so
    /// sizes change by the same amount inside every group. On an absorbing
    /// or invariant vertex.
    Blocks {
        /// Number of blocks, at least 1.
        groups: usize,
    },
    /// The vertex's neurons are units of `width` consecutive neurons kept,
    /// dropped and added whole (attention heads of a fixed head size):
    /// sizes change by whole units. On an absorbing or invariant vertex.
    Units {
        /// Neurons per unit, at least 1.
        width: usize,
    },
    /// Each output neuron stands for `width` consecutive input neurons, on
    /// an absorbing vertex with one input and `nin = width · nout`: output
    /// `h` is input neurons `h·width .. h·width + width − 1`, kept, dropped
    /// and added together. The head split of attention: a reshape of the
    /// neuron axis `[C]` to `[C / width, width]` whose first axis carries
    /// the neurons (one per head). The inverse of [`Constraint::Depthwise`].
    Heads {
        /// Input neurons per output neuron, at least 1.
        width: usize,
    },
    /// Each output neuron stands for the same neuron of each of `blocks`
    /// equal blocks of the input, on an absorbing vertex with one input and
    /// `nin = blocks · nout`: output `k` is input neurons `k`, `nout + k`,
    /// `2 · nout + k`, … The head split read along the head dimension: a
    /// reshape of `[H · D]` to `[H, D]` whose second axis carries the
    /// neurons (one per head dimension, shared by every head). Every block
    /// of the input keeps, drops and grows the same local neurons. The
    /// inverse of [`Constraint::Tile`].
    Fold {
        /// Input blocks, at least 1.
        blocks: usize,
    },
    /// `blocks` copies of the input side by side, on an absorbing vertex
    /// with one input and `nout = blocks · nin`: output `b · nin + k` is
    /// input `k`. The head merge read along the head dimension (`[H, D]` to
    /// `[H · D]`). The inverse of [`Constraint::Fold`].
    Tile {
        /// Copies, at least 1.
        blocks: usize,
    },
}

impl Constraint {
    /// The input position a per-input constraint is about.
    pub fn input(&self) -> Option<usize> {
        match *self {
            Constraint::NinStep { input, .. }
            | Constraint::NinAtLeast { input, .. }
            | Constraint::Broadcast { input } => Some(input),
            Constraint::NoutStep { .. }
            | Constraint::Fixed
            | Constraint::Depthwise { .. }
            | Constraint::Grouped { .. }
            | Constraint::Slice { .. }
            | Constraint::Shuffle { .. }
            | Constraint::Blocks { .. }
            | Constraint::Units { .. }
            | Constraint::Heads { .. }
            | Constraint::Fold { .. }
            | Constraint::Tile { .. } => None,
        }
    }

    fn input_mut(&mut self) -> Option<&mut usize> {
        match self {
            Constraint::NinStep { input, .. }
            | Constraint::NinAtLeast { input, .. }
            | Constraint::Broadcast { input } => Some(input),
            Constraint::NoutStep { .. }
            | Constraint::Fixed
            | Constraint::Depthwise { .. }
            | Constraint::Grouped { .. }
            | Constraint::Slice { .. }
            | Constraint::Shuffle { .. }
            | Constraint::Blocks { .. }
            | Constraint::Units { .. }
            | Constraint::Heads { .. }
            | Constraint::Fold { .. }
            | Constraint::Tile { .. } => None,
        }
    }

    /// A depthwise constraint that keeps its multiplier.
    pub fn depthwise(multiplier: usize) -> Self {
        Constraint::Depthwise {
            multiplier,
            choices: Multipliers::default(),
        }
    }
}

/// A set of channel multipliers from 1 to 63 (a bit set, so that
/// [`Constraint`] stays `Copy`). In JSON: a list of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Multipliers(u64);

impl Multipliers {
    /// The set of `list`.
    ///
    /// # Errors
    /// A multiplier of 0 or above 63, named in the message.
    pub fn new(list: &[usize]) -> Result<Self, String> {
        let mut bits = 0u64;
        for &m in list {
            if m == 0 || m > 63 {
                return Err(format!("multiplier {m} is not in 1..=63"));
            }
            bits |= 1 << m;
        }
        Ok(Multipliers(bits))
    }
    /// True when no multiplier is listed.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// True when `m` is listed.
    pub fn contains(&self, m: usize) -> bool {
        m < 64 && self.0 >> m & 1 == 1
    }
    /// The multipliers, ascending.
    pub fn to_vec(&self) -> Vec<usize> {
        (1..64).filter(|&m| self.contains(m)).collect()
    }
}

impl Serialize for Multipliers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_vec().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Multipliers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<usize>::deserialize(d)?;
        Multipliers::new(&list).map_err(serde::de::Error::custom)
    }
}

/// One vertex: a read-only view. Change it through [`Graph`] methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    pub(crate) name: String,
    pub(crate) kind: SizeKind,
    pub(crate) nout: usize,
    pub(crate) nin: Vec<usize>,
    pub(crate) inputs: Vec<VertexId>,
    pub(crate) outputs: Vec<VertexId>,
    pub(crate) constraints: Vec<Constraint>,
}

impl Vertex {
    /// Unique name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Size kind.
    pub fn kind(&self) -> SizeKind {
        self.kind
    }
    /// Output size (number of neurons).
    pub fn nout(&self) -> usize {
        self.nout
    }
    /// Input sizes, one per input edge.
    pub fn nin(&self) -> &[usize] {
        &self.nin
    }
    /// Producers, in input order; the same producer may appear several times.
    pub fn inputs(&self) -> &[VertexId] {
        &self.inputs
    }
    /// Consumers, one entry per consuming edge.
    pub fn outputs(&self) -> &[VertexId] {
        &self.outputs
    }
    /// Extra constraints.
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }
    /// The depthwise multiplier, if the vertex has that constraint.
    pub fn depthwise(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Depthwise { multiplier, .. } => Some(multiplier),
            _ => None,
        })
    }

    /// The number of groups, if the vertex has the grouped constraint.
    pub fn grouped(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Grouped { groups } => Some(groups),
            _ => None,
        })
    }

    /// The first input neuron of a slice vertex ([`Constraint::Slice`]).
    pub fn slice_start(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Slice { start } => Some(start),
            _ => None,
        })
    }

    /// The groups of a shuffle vertex ([`Constraint::Shuffle`]).
    pub fn shuffle_groups(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Shuffle { groups } => Some(groups),
            _ => None,
        })
    }

    /// The block count of a vertex with [`Constraint::Blocks`].
    pub fn blocks(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Blocks { groups } => Some(groups),
            _ => None,
        })
    }

    /// The unit width of a vertex with [`Constraint::Units`].
    pub fn units(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Units { width } => Some(width),
            _ => None,
        })
    }

    /// The input neurons per output neuron of a vertex with
    /// [`Constraint::Heads`].
    pub fn heads(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Heads { width } => Some(width),
            _ => None,
        })
    }

    /// The input blocks of a vertex with [`Constraint::Fold`].
    pub fn fold(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Fold { blocks } => Some(blocks),
            _ => None,
        })
    }

    /// The copies of a vertex with [`Constraint::Tile`].
    pub fn tile(&self) -> Option<usize> {
        self.constraints.iter().find_map(|c| match *c {
            Constraint::Tile { blocks } => Some(blocks),
            _ => None,
        })
    }

    /// True when this absorbing vertex passes input neurons on without a
    /// weight mixing them (a slice, a shuffle, a fold or a tile).
    pub fn maps_neurons(&self) -> bool {
        self.slice_start().is_some()
            || self.shuffle_groups().is_some()
            || self.fold().is_some()
            || self.tile().is_some()
    }

    /// The multipliers the planner may choose for a depthwise vertex (just
    /// the current one when none are listed).
    pub fn multiplier_choices(&self) -> Vec<usize> {
        self.constraints
            .iter()
            .find_map(|c| match *c {
                Constraint::Depthwise { choices, .. } if !choices.is_empty() => {
                    Some(choices.to_vec())
                }
                Constraint::Depthwise { multiplier, .. } => Some(vec![multiplier]),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// True when this vertex's output neurons are tied to its inputs' (stack,
    /// invariant, depthwise, heads, slice, shuffle), so its size follows
    /// theirs.
    pub fn couples_inputs(&self) -> bool {
        self.kind.is_transparent()
            || self.depthwise().is_some()
            || self.heads().is_some()
            || self.maps_neurons()
    }

    /// True when the neurons arriving at input position `pos` are tied to
    /// this vertex's output neurons (a select's control input is not).
    pub fn couples_input(&self, pos: usize) -> bool {
        self.couples_inputs()
            && !(self.kind == SizeKind::Select && pos == 0)
            && !self.is_broadcast(pos)
    }

    /// True when input `pos` is broadcast along the neuron axis
    /// ([`Constraint::Broadcast`]): its size is free.
    pub fn is_broadcast(&self, pos: usize) -> bool {
        self.constraints
            .contains(&Constraint::Broadcast { input: pos })
    }

    /// The inputs whose neurons are tied to this vertex's output neurons, as
    /// (position, producer).
    pub fn tied_inputs(&self) -> impl Iterator<Item = (usize, VertexId)> + '_ {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(p, _)| self.couples_input(*p))
            .map(|(p, &u)| (p, u))
    }

    /// True when this vertex ties the neurons of producer `u` (on at least
    /// one of the edges from `u`).
    pub fn couples_producer(&self, u: VertexId) -> bool {
        self.tied_inputs().any(|(_, x)| x == u)
    }

    /// True when the planner may never change this vertex's nout.
    pub fn is_size_frozen(&self) -> bool {
        matches!(self.kind, SizeKind::Input | SizeKind::Immutable)
            || self.constraints.contains(&Constraint::Fixed)
    }
    /// Why nout is frozen, if it is.
    pub(crate) fn frozen_reason(&self) -> Option<&'static str> {
        match self.kind {
            SizeKind::Input => Some("an input"),
            SizeKind::Immutable => Some("immutable"),
            _ if self.constraints.contains(&Constraint::Fixed) => Some("fixed"),
            _ => None,
        }
    }
}

/// A computation graph described by sizes only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    slots: Vec<Option<Vertex>>,
    by_name: HashMap<String, VertexId>,
    revision: u64,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of live vertices.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are no vertices.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Counter bumped by every committed change; plans record it.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Live vertex ids in id order.
    pub fn ids(&self) -> impl Iterator<Item = VertexId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| VertexId(i as u32))
    }

    /// Upper bound (exclusive) on raw ids handed out so far.
    pub fn id_bound(&self) -> usize {
        self.slots.len()
    }

    /// The vertex behind `id`.
    ///
    /// # Errors
    /// [`GraphError::UnknownId`] if `id` is not live.
    pub fn vertex(&self, id: VertexId) -> Result<&Vertex, GraphError> {
        self.slots
            .get(id.index())
            .and_then(|s| s.as_ref())
            .ok_or(GraphError::UnknownId { id: id.0 })
    }

    /// Panicking twin of [`Graph::vertex`], for ids known to be live.
    pub(crate) fn v(&self, id: VertexId) -> &Vertex {
        self.slots[id.index()]
            .as_ref()
            .expect("live vertex id (internal invariant)")
    }

    pub(crate) fn v_mut(&mut self, id: VertexId) -> &mut Vertex {
        self.slots[id.index()]
            .as_mut()
            .expect("live vertex id (internal invariant)")
    }

    /// Look a vertex up by name.
    ///
    /// # Errors
    /// [`GraphError::UnknownVertex`] naming the missing name.
    pub fn id(&self, name: &str) -> Result<VertexId, GraphError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| GraphError::UnknownVertex {
                name: name.to_string(),
            })
    }

    /// Name of a live vertex (or `#id` if it is not live).
    pub fn name(&self, id: VertexId) -> String {
        self.vertex(id)
            .map(|v| v.name.clone())
            .unwrap_or_else(|_| id.to_string())
    }

    /// nout of a vertex.
    ///
    /// # Errors
    /// [`GraphError::UnknownId`].
    pub fn nout(&self, id: VertexId) -> Result<usize, GraphError> {
        Ok(self.vertex(id)?.nout)
    }

    /// nin of a vertex.
    ///
    /// # Errors
    /// [`GraphError::UnknownId`].
    pub fn nin(&self, id: VertexId) -> Result<&[usize], GraphError> {
        Ok(&self.vertex(id)?.nin)
    }

    /// A graph input of fixed size.
    ///
    /// # Errors
    /// Duplicate name, or size 0.
    pub fn add_input(&mut self, name: &str, size: usize) -> Result<VertexId, GraphError> {
        self.add_vertex(name, SizeKind::Input, &[], Some(size))
    }

    /// An absorbing vertex (nin and nout independent) reading `inputs`.
    ///
    /// # Errors
    /// Duplicate name, unknown input, no input, size 0.
    pub fn add_absorb(
        &mut self,
        name: &str,
        inputs: &[VertexId],
        nout: usize,
    ) -> Result<VertexId, GraphError> {
        self.add_vertex(name, SizeKind::Absorb, inputs, Some(nout))
    }

    /// A stack (concatenation) of `inputs`; nout is their sum.
    ///
    /// # Errors
    /// Duplicate name, unknown input, no input.
    pub fn add_stack(&mut self, name: &str, inputs: &[VertexId]) -> Result<VertexId, GraphError> {
        self.add_vertex(name, SizeKind::Stack, inputs, None)
    }

    /// An invariant vertex (elementwise op, activation, norm) over `inputs`,
    /// which must all have the same size.
    ///
    /// # Errors
    /// Duplicate name, unknown input, no input, sizes that differ.
    pub fn add_invariant(
        &mut self,
        name: &str,
        inputs: &[VertexId],
    ) -> Result<VertexId, GraphError> {
        self.add_vertex(name, SizeKind::Invariant, inputs, None)
    }

    /// An immutable vertex: neither its size nor its inputs' sizes ever change.
    ///
    /// # Errors
    /// Duplicate name, unknown input, size 0.
    pub fn add_immutable(
        &mut self,
        name: &str,
        inputs: &[VertexId],
        nout: usize,
    ) -> Result<VertexId, GraphError> {
        self.add_vertex(name, SizeKind::Immutable, inputs, Some(nout))
    }

    /// Add a vertex of any kind. `nout` is required for input, absorb and
    /// immutable vertices and derived (and checked, if given) for stack and
    /// invariant ones.
    ///
    /// # Errors
    /// Duplicate name, unknown input id, missing inputs, sizes that break the
    /// kind's rule, size 0. The graph is unchanged on error.
    pub fn add_vertex(
        &mut self,
        name: &str,
        kind: SizeKind,
        inputs: &[VertexId],
        nout: Option<usize>,
    ) -> Result<VertexId, GraphError> {
        self.add_vertex_inner(name, kind, inputs, nout, &[])
    }

    /// [`Graph::add_vertex`], where the inputs at positions `free` are
    /// broadcast (their sizes are not checked against nout).
    fn add_vertex_inner(
        &mut self,
        name: &str,
        kind: SizeKind,
        inputs: &[VertexId],
        nout: Option<usize>,
        free: &[usize],
    ) -> Result<VertexId, GraphError> {
        if self.by_name.contains_key(name) {
            return Err(GraphError::DuplicateName {
                name: name.to_string(),
            });
        }
        let mut nin = Vec::with_capacity(inputs.len());
        for &i in inputs {
            nin.push(self.vertex(i)?.nout);
        }
        let vname = || name.to_string();
        let nout = match kind {
            SizeKind::Input => {
                if !inputs.is_empty() {
                    return Err(GraphError::InvalidConstraint {
                        vertex: vname(),
                        reason: "an input vertex has no inputs".into(),
                    });
                }
                nout.unwrap_or(0)
            }
            SizeKind::Absorb | SizeKind::Immutable => {
                if kind == SizeKind::Absorb && inputs.is_empty() {
                    return Err(GraphError::NoInputs { vertex: vname() });
                }
                nout.unwrap_or(0)
            }
            SizeKind::Stack => {
                if inputs.is_empty() {
                    return Err(GraphError::NoInputs { vertex: vname() });
                }
                let sum = nin
                    .iter()
                    .try_fold(0usize, |a, &n| a.checked_add(n))
                    .unwrap_or(usize::MAX);
                if let Some(n) = nout {
                    if n != sum {
                        return Err(GraphError::SizeMismatch {
                            vertex: vname(),
                            input: "sum of inputs".into(),
                            expected: n,
                            found: sum,
                        });
                    }
                }
                sum
            }
            SizeKind::Invariant | SizeKind::Select => {
                // A select's input 0 is its control; broadcast inputs are
                // free; the rest are tied.
                let skip = usize::from(kind == SizeKind::Select);
                if inputs.len() <= skip {
                    return Err(if skip == 0 {
                        GraphError::NoInputs { vertex: vname() }
                    } else {
                        GraphError::InvalidConstraint {
                            vertex: vname(),
                            reason: "a select needs a control input and at least one branch".into(),
                        }
                    });
                }
                let tied = |p: &usize| *p >= skip && !free.contains(p);
                let Some(first) = (0..inputs.len()).find(tied) else {
                    return Err(GraphError::InvalidConstraint {
                        vertex: vname(),
                        reason: "every input is broadcast: at least one must be tied".into(),
                    });
                };
                let n = nout.unwrap_or(nin[first]);
                for (p, (&i, &s)) in inputs.iter().zip(&nin).enumerate() {
                    if tied(&p) && s != n {
                        return Err(GraphError::SizeMismatch {
                            vertex: vname(),
                            input: self.name(i),
                            expected: n,
                            found: s,
                        });
                    }
                }
                n
            }
        };
        if nout == 0 {
            return Err(GraphError::ZeroSize { vertex: vname() });
        }
        if nout > MAX_SIZE {
            return Err(GraphError::TooLarge {
                vertex: vname(),
                size: nout as u64,
                max: MAX_SIZE as u64,
            });
        }
        let id = VertexId(self.slots.len() as u32);
        for &i in inputs {
            self.v_mut(i).outputs.push(id);
        }
        self.slots.push(Some(Vertex {
            name: name.to_string(),
            kind,
            nout,
            nin,
            inputs: inputs.to_vec(),
            outputs: Vec::new(),
            constraints: Vec::new(),
        }));
        self.by_name.insert(name.to_string(), id);
        self.revision += 1;
        Ok(id)
    }

    /// Add a vertex of any kind together with its constraints, all or
    /// nothing: when a constraint is refused, the vertex is taken out again
    /// and the graph (revision included) is as it was. Costs O(inputs), not
    /// a copy of the graph, so importers can add vertices one by one.
    ///
    /// # Errors
    /// As [`Graph::add_vertex`] and [`Graph::add_constraint`].
    pub fn add_vertex_with(
        &mut self,
        name: &str,
        kind: SizeKind,
        inputs: &[VertexId],
        nout: Option<usize>,
        constraints: &[Constraint],
    ) -> Result<VertexId, GraphError> {
        let revision = self.revision;
        let free: Vec<usize> = constraints
            .iter()
            .filter_map(|c| match *c {
                Constraint::Broadcast { input } => Some(input),
                _ => None,
            })
            .collect();
        let id = self.add_vertex_inner(name, kind, inputs, nout, &free)?;
        for c in constraints {
            if let Err(e) = self.add_constraint(id, *c) {
                self.take_back_last(id, revision);
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Undo the `add_vertex` that created `id`, the newest vertex, which
    /// nothing reads yet.
    fn take_back_last(&mut self, id: VertexId, revision: u64) {
        let Some(Some(v)) = self.slots.pop() else {
            return;
        };
        debug_assert_eq!(id.0 as usize, self.slots.len());
        for &i in &v.inputs {
            let outs = &mut self.v_mut(i).outputs;
            if let Some(p) = outs.iter().rposition(|&o| o == id) {
                outs.remove(p);
            }
        }
        self.by_name.remove(&v.name);
        self.revision = revision;
    }

    /// Attach an extra constraint to a vertex.
    ///
    /// # Errors
    /// [`GraphError::InvalidConstraint`] when the step is 0, the input
    /// position does not exist, or the constraint is meaningless for the kind.
    pub fn add_constraint(&mut self, id: VertexId, c: Constraint) -> Result<(), GraphError> {
        let v = self.vertex(id)?;
        let bad = |reason: String| GraphError::InvalidConstraint {
            vertex: v.name.clone(),
            reason,
        };
        match c {
            Constraint::NoutStep { step } | Constraint::NinStep { step, .. } if step == 0 => {
                return Err(bad("step must be at least 1".into()))
            }
            Constraint::NoutStep { step } | Constraint::NinStep { step, .. } if step > MAX_SIZE => {
                return Err(bad(format!(
                    "step {step} is above the largest size graft holds, {MAX_SIZE}"
                )))
            }
            Constraint::NinStep { input, .. } if input >= v.inputs.len() => {
                return Err(bad(format!(
                    "no input {input} (vertex has {})",
                    v.inputs.len()
                )))
            }
            Constraint::NinAtLeast { input, .. } if input >= v.inputs.len() => {
                return Err(bad(format!(
                    "no input {input} (vertex has {})",
                    v.inputs.len()
                )))
            }
            Constraint::NinAtLeast { input, min } if min == 0 || v.nin[input] < min => {
                return Err(bad(format!(
                    "input {input} has {} neurons, below its least size {min}",
                    v.nin[input]
                )))
            }
            Constraint::Broadcast { input } => {
                if v.kind != SizeKind::Invariant {
                    return Err(bad("only an invariant vertex has broadcast inputs".into()));
                }
                if input >= v.inputs.len() {
                    return Err(bad(format!(
                        "no input {input} (vertex has {})",
                        v.inputs.len()
                    )));
                }
                let tied_left = (0..v.inputs.len())
                    .filter(|&p| p != input && !v.is_broadcast(p))
                    .count();
                if tied_left == 0 {
                    return Err(bad(
                        "every input would be broadcast: at least one must be tied".into(),
                    ));
                }
            }
            Constraint::Depthwise {
                multiplier,
                choices,
            } => {
                if !choices.is_empty() && !choices.contains(multiplier) {
                    return Err(bad(format!(
                        "choices {:?} do not include multiplier {multiplier}",
                        choices.to_vec()
                    )));
                }
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || v.maps_neurons()
                    || v.heads().is_some()
                {
                    return Err(bad(
                        "depthwise needs an absorbing vertex with one input".into()
                    ));
                }
                if multiplier == 0 || Some(v.nout) != multiplier.checked_mul(v.nin[0]) {
                    return Err(bad(format!(
                        "nout {} is not multiplier {multiplier} times nin {}",
                        v.nout, v.nin[0]
                    )));
                }
                if v.depthwise().is_some() && !v.constraints.contains(&c) {
                    return Err(bad(
                        "already depthwise with another multiplier or choices".into()
                    ));
                }
            }
            Constraint::Heads { width } => {
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || (v.couples_inputs() && !v.constraints.contains(&c))
                {
                    return Err(bad(
                        "heads need an absorbing vertex with one input and no other neuron map"
                            .into(),
                    ));
                }
                if width == 0 || Some(v.nin[0]) != width.checked_mul(v.nout) {
                    return Err(bad(format!(
                        "nin {} is not width {width} times nout {}",
                        v.nin[0], v.nout
                    )));
                }
            }
            Constraint::Grouped { groups } => {
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || v.maps_neurons()
                    || v.heads().is_some()
                {
                    return Err(bad(
                        "grouped needs an absorbing vertex with one input".into()
                    ));
                }
                if groups == 0 || !v.nout.is_multiple_of(groups) || !v.nin[0].is_multiple_of(groups)
                {
                    return Err(bad(format!(
                        "nin {} and nout {} are not multiples of {groups} groups",
                        v.nin[0], v.nout
                    )));
                }
                if v.grouped().is_some() && !v.constraints.contains(&c) {
                    return Err(bad("already grouped with another count".into()));
                }
            }
            Constraint::Slice { start } => {
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || (v.couples_inputs() && !v.constraints.contains(&c))
                {
                    return Err(bad(
                        "a slice needs an absorbing vertex with one input and no other neuron map"
                            .into(),
                    ));
                }
                if start.checked_add(v.nout).is_none_or(|end| end > v.nin[0]) {
                    return Err(bad(format!(
                        "part {start}..{start}+{} lies outside the input's {} neurons",
                        v.nout, v.nin[0]
                    )));
                }
            }
            Constraint::Blocks { groups: n } | Constraint::Units { width: n } => {
                if !matches!(v.kind, SizeKind::Absorb | SizeKind::Invariant) {
                    return Err(bad(
                        "blocks and units are on an absorbing or invariant vertex".into(),
                    ));
                }
                if n == 0 || !v.nout.is_multiple_of(n) {
                    return Err(bad(format!("nout {} is not a multiple of {n}", v.nout)));
                }
                if (v.blocks().is_some() || v.units().is_some()) && !v.constraints.contains(&c) {
                    return Err(bad("already has blocks or units".into()));
                }
            }
            Constraint::Shuffle { groups } => {
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || (v.couples_inputs() && !v.constraints.contains(&c))
                {
                    return Err(bad(
                        "a shuffle needs an absorbing vertex with one input and no other neuron map"
                            .into(),
                    ));
                }
                if groups == 0 || v.nout != v.nin[0] || !v.nout.is_multiple_of(groups) {
                    return Err(bad(format!(
                        "nin {} and nout {} must be equal and a multiple of {groups} groups",
                        v.nin[0], v.nout
                    )));
                }
            }
            Constraint::Fold { .. } | Constraint::Tile { .. } => {
                let what = if matches!(c, Constraint::Fold { .. }) {
                    "a fold"
                } else {
                    "a tile"
                };
                if v.kind != SizeKind::Absorb
                    || v.inputs.len() != 1
                    || (v.couples_inputs() && !v.constraints.contains(&c))
                {
                    return Err(bad(format!(
                        "{what} needs an absorbing vertex with one input and no other neuron map"
                    )));
                }
                if let Some(e) = fold_or_tile_sizes(&c, v.nin[0], v.nout) {
                    return Err(bad(e));
                }
            }
            Constraint::NoutStep { .. }
            | Constraint::NinStep { .. }
            | Constraint::NinAtLeast { .. }
            | Constraint::Fixed => {}
        }
        if !v.constraints.contains(&c) {
            self.v_mut(id).constraints.push(c);
            self.revision += 1;
        }
        Ok(())
    }

    /// Vertices in a topological order (producers first; ties by id).
    ///
    /// # Errors
    /// [`CheckError::Cycle`] naming the vertices on a cycle.
    pub fn topological_order(&self) -> Result<Vec<VertexId>, CheckError> {
        let n = self.slots.len();
        let mut indeg = vec![0usize; n];
        for id in self.ids() {
            indeg[id.index()] = self.v(id).inputs.len();
        }
        // Min-heap on id keeps the order deterministic and readable.
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<u32>> = self
            .ids()
            .filter(|id| indeg[id.index()] == 0)
            .map(|id| std::cmp::Reverse(id.0))
            .collect();
        let mut order = Vec::with_capacity(self.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            let id = VertexId(i);
            order.push(id);
            for &o in &self.v(id).outputs {
                indeg[o.index()] -= 1;
                if indeg[o.index()] == 0 {
                    ready.push(std::cmp::Reverse(o.0));
                }
            }
        }
        if order.len() == self.len() {
            return Ok(order);
        }
        Err(CheckError::Cycle {
            vertices: self.find_cycle(&indeg),
        })
    }

    /// Names along one cycle among the vertices left with positive in-degree.
    fn find_cycle(&self, indeg: &[usize]) -> Vec<String> {
        let start = self
            .ids()
            .find(|id| indeg[id.index()] > 0)
            .expect("a vertex left over means a cycle");
        // Walk backwards along inputs that are themselves on the leftover set;
        // the first repeated vertex closes the cycle.
        let mut seen: HashMap<VertexId, usize> = HashMap::new();
        let mut path = vec![start];
        let mut cur = start;
        loop {
            seen.insert(cur, path.len() - 1);
            let next = self
                .v(cur)
                .inputs
                .iter()
                .copied()
                .find(|i| indeg[i.index()] > 0)
                .expect("leftover vertex has a leftover input");
            if let Some(&pos) = seen.get(&next) {
                // Producer-to-consumer order, starting at the smallest id.
                let mut ids: Vec<VertexId> = path[pos..].iter().rev().copied().collect();
                let first = (0..ids.len()).min_by_key(|&i| ids[i]).unwrap_or(0);
                ids.rotate_left(first);
                let mut cyc: Vec<String> = ids.iter().map(|&i| self.name(i)).collect();
                cyc.push(cyc[0].clone());
                return cyc;
            }
            path.push(next);
            cur = next;
        }
    }

    /// The vertices whose output size is coupled to `id`'s output through
    /// stack, invariant and depthwise vertices (in both directions), in id
    /// order.
    /// Absorbing vertices end the coupling on their input side.
    ///
    /// # Errors
    /// [`GraphError::UnknownId`].
    pub fn size_component(&self, id: VertexId) -> Result<Vec<VertexId>, GraphError> {
        self.vertex(id)?;
        let mut seen = vec![false; self.slots.len()];
        let mut stack = vec![id];
        seen[id.index()] = true;
        let mut out = Vec::new();
        while let Some(v) = stack.pop() {
            out.push(v);
            let vx = self.v(v);
            let mut push = |u: VertexId, stack: &mut Vec<VertexId>| {
                if !seen[u.index()] {
                    seen[u.index()] = true;
                    stack.push(u);
                }
            };
            for (_, u) in vx.tied_inputs() {
                push(u, &mut stack);
            }
            for &o in &vx.outputs {
                if self.v(o).couples_producer(v) {
                    push(o, &mut stack);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Verify every invariant: edge sizes match, stack = sum, invariant =
    /// equal, sizes at least 1, constraints hold, outputs mirror inputs, no
    /// cycle.
    ///
    /// # Errors
    /// The first broken invariant found, naming the vertices.
    pub fn check(&self) -> Result<(), CheckError> {
        let mut mirrored: HashMap<VertexId, Vec<VertexId>> = HashMap::new();
        for id in self.ids() {
            let v = self.v(id);
            if v.nout == 0 {
                return Err(CheckError::ZeroSize {
                    vertex: v.name.clone(),
                });
            }
            if v.inputs.len() != v.nin.len() {
                return Err(CheckError::Arity {
                    vertex: v.name.clone(),
                    inputs: v.inputs.len(),
                    nin: v.nin.len(),
                });
            }
            for (pos, (&i, &n)) in v.inputs.iter().zip(&v.nin).enumerate() {
                let p = self.vertex(i).map_err(|_| CheckError::Wiring {
                    vertex: v.name.clone(),
                })?;
                if p.nout != n {
                    return Err(CheckError::EdgeSize {
                        producer: p.name.clone(),
                        consumer: v.name.clone(),
                        input: pos,
                        nout: p.nout,
                        nin: n,
                    });
                }
                mirrored.entry(i).or_default().push(id);
            }
            match v.kind {
                SizeKind::Stack => {
                    let sum: usize = v.nin.iter().sum();
                    if sum != v.nout {
                        return Err(CheckError::StackSum {
                            vertex: v.name.clone(),
                            nout: v.nout,
                            sum,
                        });
                    }
                }
                SizeKind::Invariant
                    if v.nin
                        .iter()
                        .enumerate()
                        .any(|(p, &n)| n != v.nout && !v.is_broadcast(p)) =>
                {
                    return Err(CheckError::Invariant {
                        vertex: v.name.clone(),
                        nout: v.nout,
                        nin: v.nin.clone(),
                    });
                }
                SizeKind::Select if v.nin.len() < 2 || v.nin[1..].iter().any(|&n| n != v.nout) => {
                    return Err(CheckError::Invariant {
                        vertex: v.name.clone(),
                        nout: v.nout,
                        nin: v.nin.clone(),
                    });
                }
                _ => {}
            }
            for c in &v.constraints {
                let broken = match *c {
                    Constraint::NinStep { input, .. } if input >= v.inputs.len() => {
                        Some(format!("nin step on missing input {input}"))
                    }
                    Constraint::NinAtLeast { input, min }
                        if input >= v.inputs.len() || min == 0 || v.nin[input] < min =>
                    {
                        Some(format!(
                            "input {input} of nin {:?} is below its least size {min}",
                            v.nin
                        ))
                    }
                    Constraint::Broadcast { input }
                        if input >= v.inputs.len()
                            || v.kind != SizeKind::Invariant
                            || v.tied_inputs().next().is_none() =>
                    {
                        Some(format!(
                            "broadcast input {input} needs an invariant vertex with that input and another one tied"
                        ))
                    }
                    Constraint::Depthwise { multiplier, .. }
                        if v.nin.len() != 1
                            || Some(v.nout) != multiplier.checked_mul(v.nin[0]) =>
                    {
                        Some(format!(
                            "depthwise: nout {} != {multiplier} x nin {:?}",
                            v.nout, v.nin
                        ))
                    }
                    Constraint::Heads { width }
                        if v.kind != SizeKind::Absorb
                            || v.nin.len() != 1
                            || width == 0
                            || Some(v.nin[0]) != width.checked_mul(v.nout) =>
                    {
                        Some(format!("heads: nin {:?} != {width} x nout {}", v.nin, v.nout))
                    }
                    Constraint::Grouped { groups }
                        if v.nin.len() != 1
                            || groups == 0
                            || !v.nout.is_multiple_of(groups)
                            || !v.nin[0].is_multiple_of(groups) =>
                    {
                        Some(format!(
                            "grouped: nin {:?} and nout {} are not multiples of {groups}",
                            v.nin, v.nout
                        ))
                    }
                    Constraint::Slice { start }
                        if v.kind != SizeKind::Absorb
                            || v.nin.len() != 1
                            || start.checked_add(v.nout).is_none_or(|e| e > v.nin[0]) =>
                    {
                        Some(format!(
                            "slice: part {start}..{start}+{} of nin {:?}",
                            v.nout, v.nin
                        ))
                    }
                    Constraint::Blocks { groups: n } | Constraint::Units { width: n }
                        if n == 0 || !v.nout.is_multiple_of(n) =>
                    {
                        Some(format!("nout {} is not a multiple of {n}", v.nout))
                    }
                    Constraint::Shuffle { groups }
                        if v.kind != SizeKind::Absorb
                            || v.nin.len() != 1
                            || groups == 0
                            || v.nin[0] != v.nout
                            || !v.nout.is_multiple_of(groups) =>
                    {
                        Some(format!(
                            "shuffle: nin {:?} and nout {} with {groups} groups",
                            v.nin, v.nout
                        ))
                    }
                    Constraint::Fold { .. } | Constraint::Tile { .. }
                        if v.kind != SizeKind::Absorb || v.nin.len() != 1 =>
                    {
                        Some("a fold or tile needs an absorbing vertex with one input".into())
                    }
                    Constraint::Fold { .. } | Constraint::Tile { .. } => {
                        fold_or_tile_sizes(c, v.nin[0], v.nout)
                    }
                    _ => None,
                };
                if let Some(reason) = broken {
                    return Err(CheckError::Constraint {
                        vertex: v.name.clone(),
                        reason,
                    });
                }
            }
        }
        for id in self.ids() {
            let mut have = self.v(id).outputs.clone();
            let mut want = mirrored.remove(&id).unwrap_or_default();
            have.sort();
            want.sort();
            if have != want {
                return Err(CheckError::Wiring {
                    vertex: self.v(id).name.clone(),
                });
            }
        }
        self.topological_order().map(|_| ())
    }

    /// A text table of every vertex (name, kind, nin, nout) in topological
    /// order, for people.
    pub fn summary(&self) -> String {
        let order = self
            .topological_order()
            .unwrap_or_else(|_| self.ids().collect());
        let rows: Vec<[String; 5]> = order
            .iter()
            .map(|&id| {
                let v = self.v(id);
                let inputs: Vec<String> = v.inputs.iter().map(|&i| self.name(i)).collect();
                [
                    v.name.clone(),
                    v.kind.as_str().to_string(),
                    if v.nin.is_empty() {
                        "-".to_string()
                    } else {
                        format!("{:?}", v.nin)
                    },
                    v.nout.to_string(),
                    if inputs.is_empty() {
                        "-".to_string()
                    } else {
                        inputs.join(", ")
                    },
                ]
            })
            .collect();
        crate::text::table(&["name", "kind", "nin", "nout", "inputs"], &rows)
    }

    // ---- crate-internal mutation used by plan application ----

    pub(crate) fn set_sizes(&mut self, id: VertexId, nout: usize, nin: Vec<usize>) {
        let v = self.v_mut(id);
        v.nout = nout;
        v.nin = nin;
    }

    /// Set the first input neuron of a slice vertex (sizes are set
    /// separately).
    pub(crate) fn set_slice_start(&mut self, id: VertexId, s: usize) {
        for c in &mut self.v_mut(id).constraints {
            if let Constraint::Slice { start } = c {
                *start = s;
            }
        }
    }

    /// Set the multiplier of a depthwise vertex (sizes are set separately).
    pub(crate) fn set_multiplier(&mut self, id: VertexId, m: usize) {
        for c in &mut self.v_mut(id).constraints {
            if let Constraint::Depthwise { multiplier, .. } = c {
                *multiplier = m;
            }
        }
    }

    pub(crate) fn bump_revision(&mut self) {
        self.revision += 1;
    }

    // ---- crate-internal structural edits used by `mutate` ----
    //
    // They keep the outputs lists mirrored and renumber `NinStep`
    // constraints, but do not check sizes: `mutate` works on a draft copy and
    // checks the result before it replaces the graph.

    /// Push a vertex with the given wiring and sizes (no checks).
    pub(crate) fn push_raw(&mut self, vx: Vertex) -> VertexId {
        let id = VertexId(self.slots.len() as u32);
        for &i in &vx.inputs {
            self.v_mut(i).outputs.push(id);
        }
        self.by_name.insert(vx.name.clone(), id);
        self.slots.push(Some(vx));
        id
    }

    /// Drop one entry `consumer` from `producer`'s outputs.
    fn unlink(&mut self, producer: VertexId, consumer: VertexId) {
        let outs = &mut self.v_mut(producer).outputs;
        if let Some(k) = outs.iter().position(|&o| o == consumer) {
            outs.remove(k);
        }
    }

    /// Make input `pos` of `consumer` read `producer` (nin set to its nout).
    pub(crate) fn set_input_raw(&mut self, consumer: VertexId, pos: usize, producer: VertexId) {
        let old = self.v(consumer).inputs[pos];
        self.unlink(old, consumer);
        self.v_mut(producer).outputs.push(consumer);
        let n = self.v(producer).nout;
        let c = self.v_mut(consumer);
        c.inputs[pos] = producer;
        c.nin[pos] = n;
    }

    /// Insert `producer` as input `pos` of `consumer`, shifting later inputs.
    pub(crate) fn insert_input_raw(&mut self, consumer: VertexId, pos: usize, producer: VertexId) {
        self.v_mut(producer).outputs.push(consumer);
        let n = self.v(producer).nout;
        let c = self.v_mut(consumer);
        c.inputs.insert(pos, producer);
        c.nin.insert(pos, n);
        for k in &mut c.constraints {
            if let Some(input) = k.input_mut() {
                if *input >= pos {
                    *input += 1;
                }
            }
        }
    }

    /// Remove input `pos` of `consumer`, shifting later inputs (a `NinStep`
    /// on that input goes with it).
    pub(crate) fn remove_input_raw(&mut self, consumer: VertexId, pos: usize) {
        let old = self.v(consumer).inputs[pos];
        self.unlink(old, consumer);
        let c = self.v_mut(consumer);
        c.inputs.remove(pos);
        c.nin.remove(pos);
        c.constraints.retain(|k| k.input() != Some(pos));
        for k in &mut c.constraints {
            if let Some(input) = k.input_mut() {
                if *input > pos {
                    *input -= 1;
                }
            }
        }
    }

    /// Delete a vertex that no longer has consumers; its id becomes invalid.
    pub(crate) fn delete_raw(&mut self, id: VertexId) {
        debug_assert!(self.v(id).outputs.is_empty());
        let vx = self.slots[id.index()].take().expect("live vertex");
        for &i in &vx.inputs {
            self.unlink(i, id);
        }
        self.by_name.remove(&vx.name);
    }

    /// Set the revision (a committed patch is one step past the original).
    pub(crate) fn set_revision(&mut self, r: u64) {
        self.revision = r;
    }
}

/// Why `nin` and `nout` do not fit a [`Constraint::Fold`] or
/// [`Constraint::Tile`] of `c`'s blocks, if they do not.
fn fold_or_tile_sizes(c: &Constraint, nin: usize, nout: usize) -> Option<String> {
    match *c {
        Constraint::Fold { blocks } if blocks == 0 || blocks.checked_mul(nout) != Some(nin) => {
            Some(format!(
                "fold: nin {nin} is not {blocks} blocks of nout {nout}"
            ))
        }
        Constraint::Tile { blocks } if blocks == 0 || blocks.checked_mul(nin) != Some(nout) => {
            Some(format!(
                "tile: nout {nout} is not {blocks} copies of nin {nin}"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_a_cycle_and_a_broken_edge() {
        let mut g = Graph::new();
        let x = g.add_input("x", 2).unwrap();
        let a = g.add_absorb("a", &[x], 2).unwrap();
        let b = g.add_absorb("b", &[a], 2).unwrap();
        let c = g.add_invariant("c", &[b]).unwrap();
        assert_eq!(g.check(), Ok(()));
        // Rewire a to read c (only possible from inside the crate).
        g.v_mut(a).inputs = vec![c];
        g.v_mut(x).outputs.clear();
        g.v_mut(c).outputs.push(a);
        assert_eq!(
            g.check(),
            Err(CheckError::Cycle {
                vertices: vec!["a".into(), "b".into(), "c".into(), "a".into()]
            })
        );

        let mut g = Graph::new();
        let x = g.add_input("x", 2).unwrap();
        let a = g.add_absorb("a", &[x], 2).unwrap();
        g.set_sizes(a, 2, vec![3]);
        assert_eq!(
            g.check(),
            Err(CheckError::EdgeSize {
                producer: "x".into(),
                consumer: "a".into(),
                input: 0,
                nout: 2,
                nin: 3
            })
        );
    }

    #[test]
    fn size_component_stops_at_absorbing_vertices() {
        let mut g = Graph::new();
        let x = g.add_input("x", 3).unwrap();
        let a = g.add_absorb("a", &[x], 4).unwrap();
        let r = g.add_invariant("relu", &[a]).unwrap();
        let b = g.add_absorb("b", &[r], 4).unwrap();
        let s = g.add_invariant("add", &[r, b]).unwrap();
        let h = g.add_absorb("head", &[s], 2).unwrap();
        assert_eq!(g.size_component(b).unwrap(), vec![a, r, b, s]);
        assert_eq!(g.size_component(h).unwrap(), vec![h]);
        assert_eq!(g.size_component(x).unwrap(), vec![x]);
    }
}
