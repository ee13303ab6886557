//! JSON forms of a graph and a request, by vertex name, for tools and for
//! comparing solvers. The format is documented in `docs/plan-json.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{GraphError, PlanError};
use crate::graph::{Constraint, Graph, SizeKind};
use crate::planner::{Plan, Request, Site, Step, Target, TargetMode, Utility};

/// A graph as JSON: vertices in an order where inputs come first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// The vertices.
    pub vertices: Vec<VertexSpec>,
}

/// One vertex as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VertexSpec {
    /// Unique name.
    pub name: String,
    /// Size kind.
    pub kind: SizeKind,
    /// Output size (required for input, absorb and immutable vertices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nout: Option<usize>,
    /// Producer names, in input order.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Extra constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

impl GraphSpec {
    /// Describe a graph.
    pub fn from_graph(g: &Graph) -> Self {
        let order = g.topological_order().unwrap_or_else(|_| g.ids().collect());
        let vertices = order
            .into_iter()
            .map(|id| {
                let v = g.v(id);
                VertexSpec {
                    name: v.name().to_string(),
                    kind: v.kind(),
                    nout: Some(v.nout()),
                    inputs: v.inputs().iter().map(|&i| g.name(i)).collect(),
                    constraints: v.constraints().to_vec(),
                }
            })
            .collect();
        Self { vertices }
    }

    /// Build the graph.
    ///
    /// # Errors
    /// Unknown input names (a vertex must come after its inputs), duplicate
    /// names, sizes that break the kinds' rules, invalid constraints.
    pub fn to_graph(&self) -> Result<Graph, GraphError> {
        let mut g = Graph::new();
        for v in &self.vertices {
            let inputs = v
                .inputs
                .iter()
                .map(|n| g.id(n))
                .collect::<Result<Vec<_>, _>>()?;
            if matches!(
                v.kind,
                SizeKind::Input | SizeKind::Absorb | SizeKind::Immutable
            ) && v.nout.is_none()
            {
                return Err(GraphError::InvalidConstraint {
                    vertex: v.name.clone(),
                    reason: format!("a {} vertex needs `nout`", v.kind.as_str()),
                });
            }
            let id = g.add_vertex(&v.name, v.kind, &inputs, v.nout)?;
            for &c in &v.constraints {
                g.add_constraint(id, c)?;
            }
        }
        Ok(g)
    }
}

/// One target as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    /// Vertex name.
    pub vertex: String,
    /// Input position for an nin target; absent for nout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    /// Size change.
    pub delta: i64,
    /// Relaxed instead of exact.
    #[serde(default)]
    pub relaxed: bool,
}

/// A request as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSpec {
    /// Targets; none means re-select.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Utility vectors by vertex name.
    #[serde(default)]
    pub utility: BTreeMap<String, Vec<f64>>,
    /// Utility 0 by default instead of 1 on absorbing vertices ("size mode").
    #[serde(default)]
    pub size_only: bool,
    /// Forbid new neurons.
    #[serde(default)]
    pub no_new_neurons: bool,
    /// Use the default chain (exact, then relaxed).
    #[serde(default = "yes")]
    pub fallback: bool,
}

fn yes() -> bool {
    true
}

impl RequestSpec {
    /// Resolve names against a graph.
    ///
    /// # Errors
    /// Unknown vertex names.
    pub fn to_request(&self, g: &Graph) -> Result<Request, PlanError> {
        let mut req = Request::new();
        for t in &self.targets {
            let v = g.id(&t.vertex)?;
            req.targets.push(Target {
                site: match t.input {
                    Some(input) => Site::Nin { vertex: v, input },
                    None => Site::Nout(v),
                },
                delta: t.delta,
                mode: if t.relaxed {
                    TargetMode::Relaxed
                } else {
                    TargetMode::Exact
                },
            });
        }
        let mut u = if self.size_only {
            Utility::size_only()
        } else {
            Utility::new()
        };
        for (name, vals) in &self.utility {
            u.set(g.id(name)?, vals.clone());
        }
        req.utility = u;
        req.no_new_neurons = self.no_new_neurons;
        Ok(req)
    }
}

/// What `graft plan` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    /// Which step of the chain produced the plan.
    pub step: Step,
    /// The plan.
    pub plan: Plan,
}
