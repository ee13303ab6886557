//! The planner's answer: data, no tensors.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::graph::{Graph, VertexId};

/// One entry of an index list: an old neuron kept, or a new one.
/// In JSON: the old index, or -1 for a new neuron.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum Neuron {
    /// Old neuron with this (0-based) index.
    Old(usize),
    /// A new neuron.
    New,
}

impl From<Neuron> for i64 {
    fn from(n: Neuron) -> i64 {
        match n {
            Neuron::Old(i) => i as i64,
            Neuron::New => -1,
        }
    }
}

impl TryFrom<i64> for Neuron {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, String> {
        match v {
            -1 => Ok(Neuron::New),
            v if v >= 0 => Ok(Neuron::Old(v as usize)),
            v => Err(format!("neuron index {v} is neither >= 0 nor -1")),
        }
    }
}

/// How one vertex changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertexChange {
    /// The vertex.
    pub vertex: VertexId,
    /// Its name.
    pub name: String,
    /// nout before.
    pub nout_before: usize,
    /// nout after.
    pub nout_after: usize,
    /// nin after, one per input edge.
    pub nin_after: Vec<usize>,
    /// New output order (old indices kept, in order, and new neurons), or
    /// `None` when the outputs are untouched.
    pub outs: Option<Vec<Neuron>>,
    /// One index list per input edge (the producer's new output order), or
    /// `None` for an untouched input.
    pub ins: Vec<Option<Vec<Neuron>>>,
    /// New multiplier of a depthwise vertex, when the plan changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier_after: Option<usize>,
    /// New first input neuron of a slice vertex, when the plan moves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_start_after: Option<usize>,
}

/// The objective of a plan, and its parts, so it can be compared with any
/// other solver's answer on the same problem.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Summed utility of the kept neurons in the participating components.
    pub utility: f64,
    /// `S·(0.1·Σ|Δ|/n + 0.8·max|Δ|/n)` summed over components.
    pub size_penalty: f64,
    /// `0.1·Σ|s−τ| + 0.8·max|s−τ|` over relaxed targets (minimised first).
    pub relaxed_deviation: f64,
    /// `utility − size_penalty` (maximised second).
    pub value: f64,
}

/// A planned size change: which neurons every affected vertex keeps and where
/// new ones go. Apply it with [`Plan::apply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Graph revision the plan was made for.
    pub revision: u64,
    /// Affected vertices, in topological order.
    pub changes: Vec<VertexChange>,
    /// Objective value and parts.
    pub objective: Objective,
    /// Branch-and-bound nodes explored.
    pub nodes: u64,
    /// True when the search proved this plan optimal; false when the
    /// [`Budget`](crate::Budget) ran out first and this is the best plan
    /// found by then.
    #[serde(default = "proven")]
    pub optimal: bool,
    /// How much larger the optimum's objective value can be than this
    /// plan's (among plans whose relaxed deviation is no larger); 0 when
    /// optimal.
    #[serde(default)]
    pub gap: f64,
    /// How much smaller the optimum's relaxed deviation can be; 0 when
    /// optimal.
    #[serde(default)]
    pub deviation_gap: f64,
}

fn proven() -> bool {
    true
}

impl Plan {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The change of one vertex, if it is affected.
    pub fn change(&self, v: VertexId) -> Option<&VertexChange> {
        self.changes.iter().find(|c| c.vertex == v)
    }

    /// New nout of `v` under this plan (its current nout if unaffected).
    pub fn nout_after(&self, graph: &Graph, v: VertexId) -> Option<usize> {
        self.change(v)
            .map(|c| c.nout_after)
            .or_else(|| graph.vertex(v).ok().map(|x| x.nout()))
    }

    /// Apply the sizes of this plan to the graph (parameters are the layers'
    /// business). All or nothing: the graph is untouched on error.
    /// Bumps the graph revision; no id is invalidated.
    ///
    /// # Errors
    /// [`PlanError::StalePlan`] when the graph changed since planning.
    pub fn apply(&self, graph: &mut Graph) -> Result<(), PlanError> {
        if graph.revision() != self.revision {
            return Err(PlanError::StalePlan {
                plan: self.revision,
                graph: graph.revision(),
            });
        }
        for c in &self.changes {
            graph.vertex(c.vertex)?;
        }
        for c in &self.changes {
            graph.set_sizes(c.vertex, c.nout_after, c.nin_after.clone());
            if let Some(m) = c.multiplier_after {
                graph.set_multiplier(c.vertex, m);
            }
            if let Some(s) = c.slice_start_after {
                graph.set_slice_start(c.vertex, s);
            }
        }
        graph.bump_revision();
        debug_assert_eq!(graph.check(), Ok(()));
        Ok(())
    }

    /// A readable account of the plan.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

/// Compress an index list: runs of consecutive old indices as `a..=b`, runs of
/// new neurons as `new×k`.
pub fn compact(list: &[Neuron]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < list.len() {
        match list[i] {
            Neuron::New => {
                let mut j = i;
                while j < list.len() && list[j] == Neuron::New {
                    j += 1;
                }
                parts.push(format!("new×{}", j - i));
                i = j;
            }
            Neuron::Old(a) => {
                let mut j = i + 1;
                while j < list.len() && list[j] == Neuron::Old(a + (j - i)) {
                    j += 1;
                }
                let b = a + (j - i) - 1;
                parts.push(if a == b {
                    a.to_string()
                } else {
                    format!("{a}..={b}")
                });
                i = j;
            }
        }
    }
    format!("[{}]", parts.join(", "))
}

/// A table of vertex changes (name, nout, outputs kept/new, inputs kept/new).
pub(crate) fn changes_table(changes: &[VertexChange]) -> String {
    let rows: Vec<[String; 4]> = changes
        .iter()
        .map(|c| {
            let ins: Vec<String> = c
                .ins
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.as_ref().map(|l| format!("in{i} {}", compact(l))))
                .collect();
            [
                c.name.clone(),
                format!("{} -> {}", c.nout_before, c.nout_after),
                c.outs.as_deref().map_or("-".to_string(), compact),
                if ins.is_empty() {
                    "-".to_string()
                } else {
                    ins.join("; ")
                },
            ]
        })
        .collect();
    crate::text::table(
        &["vertex", "nout", "outputs kept/new", "inputs kept/new"],
        &rows,
    )
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no change");
        }
        f.write_str(&changes_table(&self.changes))?;
        writeln!(
            f,
            "objective: utility {:.4} - size penalty {:.4} = {:.4}; relaxed deviation {}",
            self.objective.utility,
            self.objective.size_penalty,
            self.objective.value,
            self.objective.relaxed_deviation
        )?;
        if !self.optimal {
            writeln!(
                f,
                "not proven optimal (budget ran out): the optimum's objective is at most {:.4} \
                 higher and its relaxed deviation at most {} lower",
                self.gap, self.deviation_gap
            )?;
        }
        Ok(())
    }
}
