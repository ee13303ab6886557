//! What a caller asks the planner for.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::graph::{Graph, VertexId};

/// Where a size target applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Site {
    /// The output size of a vertex.
    Nout(VertexId),
    /// The size arriving at input position `input` of `vertex` (that is, the
    /// nout of the producer on that edge).
    Nin {
        /// The consumer.
        vertex: VertexId,
        /// Its input position.
        input: usize,
    },
}

/// Hard or soft target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetMode {
    /// The size must change by exactly `delta`.
    Exact,
    /// As close to `delta` as possible, but the size must change.
    Relaxed,
}

/// One requested size change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Where.
    pub site: Site,
    /// By how much.
    pub delta: i64,
    /// Exact or relaxed.
    pub mode: TargetMode,
}

/// Per-neuron utility: higher means keep. Vertices without an entry get the
/// default: 1 per neuron on absorbing, input and immutable vertices, 0 on
/// stack and invariant ones (their neurons are tied to others anyway).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Utility {
    per_vertex: HashMap<VertexId, Vec<f64>>,
    zero_default: bool,
}

impl Utility {
    /// The default utility everywhere.
    pub fn new() -> Self {
        Self::default()
    }

    /// Utility 0 for every neuron not set explicitly: the planner then decides
    /// on sizes alone (NaiveNASlib's "size mode") and keeps the first neurons.
    pub fn size_only() -> Self {
        Self {
            per_vertex: HashMap::new(),
            zero_default: true,
        }
    }

    /// Utility `i + 1` for neuron `i` of every vertex (NaiveNASlib's
    /// `v -> 1:nout(v)`: later neurons preferred).
    pub fn ascending(graph: &Graph) -> Self {
        let mut u = Self::new();
        for id in graph.ids() {
            let n = graph.v(id).nout;
            u.set(id, (1..=n).map(|i| i as f64).collect());
        }
        u
    }

    /// Set the utility vector of one vertex (length must equal its nout).
    pub fn set(&mut self, id: VertexId, values: Vec<f64>) -> &mut Self {
        self.per_vertex.insert(id, values);
        self
    }

    /// Builder form of [`Utility::set`].
    pub fn with(mut self, id: VertexId, values: Vec<f64>) -> Self {
        self.set(id, values);
        self
    }

    /// The explicit vector of a vertex, if set.
    pub fn get(&self, id: VertexId) -> Option<&[f64]> {
        self.per_vertex.get(&id).map(Vec::as_slice)
    }

    /// The utility of a neuron with no explicit value: 1 where a weight
    /// makes the neuron (absorbing vertices), 0 where the neuron is another
    /// vertex's passed on (stack, invariant, select, slice, shuffle, heads), so
    /// that a class is not counted once per vertex it passes through.
    pub(crate) fn default_for(&self, v: &crate::graph::Vertex) -> f64 {
        if self.zero_default || v.kind().is_transparent() || v.maps_neurons() || v.heads().is_some()
        {
            0.0
        } else {
            1.0
        }
    }

    pub(crate) fn explicit(&self) -> impl Iterator<Item = (&VertexId, &Vec<f64>)> {
        self.per_vertex.iter()
    }
}

/// Limits on the exact search. When one runs out, the best plan found so
/// far is returned with its proven gap ([`Plan::optimal`](crate::Plan) is
/// false, [`Plan::gap`](crate::Plan) bounds how much better the optimum can
/// be); when none was found yet it is a typed error
/// ([`PlanError::BudgetExceeded`](crate::PlanError::BudgetExceeded)). A zero
/// budget is always that error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most branch-and-bound nodes per component.
    pub max_nodes: u64,
    /// Wall-clock limit for the whole request.
    pub time: Option<Duration>,
}

impl Budget {
    /// The wall-clock limit of [`Budget::default`]: no plan call runs longer
    /// without being asked to.
    pub const DEFAULT_TIME: Duration = Duration::from_secs(10);

    /// A budget of this much wall-clock time (and no node limit).
    pub fn time_limit(d: Duration) -> Self {
        Self {
            max_nodes: u64::MAX,
            time: Some(d),
        }
    }

    /// True when nothing may be searched at all.
    pub(crate) fn is_zero(&self) -> bool {
        self.max_nodes == 0 || self.time.is_some_and(|d| d.is_zero())
    }
}

impl Default for Budget {
    /// 20 million nodes and [`Budget::DEFAULT_TIME`].
    fn default() -> Self {
        Self {
            max_nodes: 20_000_000,
            time: Some(Self::DEFAULT_TIME),
        }
    }
}

/// A size-change request: targets (possibly none), utilities and options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The targets. None at all means "re-select": drop neurons whose utility
    /// is negative, keep at least one per vertex, add nothing.
    pub targets: Vec<Target>,
    /// Per-neuron utility.
    pub utility: Utility,
    /// Forbid new neurons (sizes may only shrink or stay).
    pub no_new_neurons: bool,
    /// Search limits.
    pub budget: Budget,
}

impl Request {
    /// A request with no target (re-select).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an exact nout target.
    pub fn nout(mut self, v: VertexId, delta: i64) -> Self {
        self.targets.push(Target {
            site: Site::Nout(v),
            delta,
            mode: TargetMode::Exact,
        });
        self
    }

    /// Add a relaxed nout target.
    pub fn nout_relaxed(mut self, v: VertexId, delta: i64) -> Self {
        self.targets.push(Target {
            site: Site::Nout(v),
            delta,
            mode: TargetMode::Relaxed,
        });
        self
    }

    /// Add an exact target on input `input` of `v`.
    pub fn nin(mut self, v: VertexId, input: usize, delta: i64) -> Self {
        self.targets.push(Target {
            site: Site::Nin { vertex: v, input },
            delta,
            mode: TargetMode::Exact,
        });
        self
    }

    /// Add a relaxed target on input `input` of `v`.
    pub fn nin_relaxed(mut self, v: VertexId, input: usize, delta: i64) -> Self {
        self.targets.push(Target {
            site: Site::Nin { vertex: v, input },
            delta,
            mode: TargetMode::Relaxed,
        });
        self
    }

    /// Use this utility.
    pub fn with_utility(mut self, u: Utility) -> Self {
        self.utility = u;
        self
    }

    /// Forbid new neurons.
    pub fn without_new_neurons(mut self) -> Self {
        self.no_new_neurons = true;
        self
    }

    /// Use this budget.
    pub fn with_budget(mut self, b: Budget) -> Self {
        self.budget = b;
        self
    }

    /// Search for at most this long (the node limit stays as it is).
    pub fn within(mut self, d: Duration) -> Self {
        self.budget.time = Some(d);
        self
    }

    /// The same request with every target relaxed.
    pub fn relaxed(&self) -> Self {
        let mut r = self.clone();
        for t in &mut r.targets {
            t.mode = TargetMode::Relaxed;
        }
        r
    }
}
