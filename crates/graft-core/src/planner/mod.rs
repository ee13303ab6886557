//! The size-change planner: given targets and per-neuron utilities, choose
//! which neurons every coupled vertex keeps and where new ones go, optimally
//! for a documented objective (see the `solve` module docs and
//! `docs/architecture.md`).
//!
//! Only the size-coupled components that contain a target take part (all
//! components when there is no target); each component is an independent
//! problem. Within a component, neurons tied through stack slices and
//! invariant inputs are kept or dropped together.

mod classes;
mod levels;
mod lp;
mod plan;
mod request;
mod solve;

use std::collections::HashMap;

use rayon::prelude::*;
use std::time::Instant;

pub(crate) use plan::changes_table;
pub use plan::{compact, Neuron, Objective, Plan, VertexChange};
pub use request::{Budget, Request, Site, Target, TargetMode, Utility};

use crate::error::PlanError;
use crate::graph::{Graph, VertexId};
use classes::{space_components, Component, Retarget};
use solve::{IntProblem, Limits, SearchStop};

/// The largest size a plan gives a vertex: 4,194,304 neurons, sixteen times
/// the widest layer of any model in use (a 256k-token vocabulary). A target
/// above it is [`PlanError::TooLarge`], and no search considers sizes above
/// it, so sizes and their sums stay far from overflow.
pub const MAX_NOUT: usize = 1 << 22;

/// The most neurons one size-coupled component may hold for the planner
/// (2^27, about 134 million: a few GB of working memory). Larger ones are
/// refused with [`PlanError::ComponentTooLarge`] before anything is
/// allocated (a graph read from a file may declare any size).
pub const MAX_COMPONENT_NEURONS: u64 = 1 << 27;

/// Which step of the default chain produced the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// The request as given (exact targets met exactly).
    Exact,
    /// Exact targets were infeasible; every target was relaxed.
    Relaxed,
}

/// A plan and the step of the chain that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Exact or relaxed.
    pub step: Step,
}

/// A target resolved to the neuron space (vertex output) it changes.
struct Resolved {
    space: VertexId,
    delta: i64,
    mode: TargetMode,
}

/// Plan `req` on `graph` exactly as asked.
///
/// # Errors
/// Unknown ids, targets on frozen vertices, sizes below 1, conflicting targets,
/// bad utilities, an inconsistent graph, no feasible assignment
/// ([`PlanError::Infeasible`]), or an exhausted budget.
pub fn plan(graph: &Graph, req: &Request) -> Result<Plan, PlanError> {
    let started = Instant::now();
    let (topo, targets) = prepare(graph, req)?;
    let comps = space_components(graph, &topo);
    let reselect = targets.is_empty();
    let limits = Limits {
        max_nodes: req.budget.max_nodes,
        deadline: req.budget.time.map(|d| started + d),
    };
    let setup = Setup {
        graph,
        utility: &req.utility,
        allow_new: !reselect && !req.no_new_neurons,
        penalize: !reselect,
        extra: growth_room(graph, &targets),
        limits: &limits,
    };
    // Components are independent: solved in parallel, assembled in order
    // (the first error in component order wins), so plans stay
    // deterministic.
    let work = components_to_solve(&comps, &targets);
    for (verts, _) in &work {
        check_component_size(graph, verts)?;
    }
    let solved: Vec<(Result<Chosen, PlanError>, u64)> = work
        .par_iter()
        .map(|(verts, mine)| {
            let mut nodes = 0u64;
            let chosen = setup.best_multiplier(verts, mine, &mut nodes);
            (chosen, nodes)
        })
        .collect();
    let mut assembly = Assembly::default();
    for (chosen, nodes) in solved {
        assembly.nodes += nodes;
        assembly.record(graph, chosen?);
    }
    Ok(assembly.into_plan(graph, &topo))
}

/// Check the graph and the request: the topological order and the targets
/// resolved to neuron spaces. A zero budget is refused here, before any
/// search.
fn prepare(graph: &Graph, req: &Request) -> Result<(Vec<VertexId>, Vec<Resolved>), PlanError> {
    graph.check()?;
    let topo = graph.topological_order()?;
    validate_utility(graph, &req.utility)?;
    let targets = resolve_targets(graph, &req.targets)?;
    if req.budget.is_zero() {
        let vertices = if targets.is_empty() {
            graph.ids().map(|v| graph.name(v)).collect()
        } else {
            targets.iter().map(|t| graph.name(t.space)).collect()
        };
        return Err(PlanError::BudgetExceeded { nodes: 0, vertices });
    }
    Ok((topo, targets))
}

/// Refuse a component with more neurons than the planner takes.
fn check_component_size(graph: &Graph, verts: &[VertexId]) -> Result<(), PlanError> {
    let neurons = verts
        .iter()
        .fold(0u64, |a, &v| a.saturating_add(graph.v(v).nout as u64));
    if neurons > MAX_COMPONENT_NEURONS {
        return Err(PlanError::ComponentTooLarge {
            vertices: verts.iter().take(5).map(|&v| graph.name(v)).collect(),
            neurons,
            max: MAX_COMPONENT_NEURONS,
        });
    }
    Ok(())
}

/// The components that take part, each with its targets: those holding a
/// target, or all of them when there is none (re-select).
fn components_to_solve<'a>(
    comps: &'a [Vec<VertexId>],
    targets: &'a [Resolved],
) -> Vec<(&'a [VertexId], Vec<&'a Resolved>)> {
    let mut comp_of: HashMap<VertexId, usize> = HashMap::new();
    for (ci, c) in comps.iter().enumerate() {
        for &v in c {
            comp_of.insert(v, ci);
        }
    }
    let mut selected: Vec<usize> = if targets.is_empty() {
        (0..comps.len()).collect()
    } else {
        targets.iter().map(|t| comp_of[&t.space]).collect()
    };
    selected.sort_unstable();
    selected.dedup();
    selected
        .into_iter()
        .map(|ci| {
            let mine = targets.iter().filter(|t| comp_of[&t.space] == ci).collect();
            (comps[ci].as_slice(), mine)
        })
        .collect()
}

/// A component's answer: its solved problem (with a solution) and the
/// multiplier change it was solved under, if any.
struct Chosen {
    solved: Solved,
    sol: solve::Solution,
    retarget: Option<Retarget>,
}

/// The plan being put together, component by component.
#[derive(Default)]
struct Assembly {
    new_outs: HashMap<VertexId, Vec<Neuron>>,
    utility: f64,
    size_penalty: f64,
    relaxed_deviation: f64,
    nodes: u64,
    unproven: bool,
    gap: solve::Gap,
    multipliers: HashMap<VertexId, usize>,
    slice_starts: HashMap<VertexId, usize>,
}

impl Assembly {
    /// Add one component's answer: its objective parts, its gap if
    /// unproven, and its index lists.
    fn record(&mut self, graph: &Graph, chosen: Chosen) {
        let Chosen {
            solved,
            sol,
            retarget,
        } = chosen;
        if let Some(gap) = solved.gap {
            self.unproven = true;
            self.gap.objective += gap.objective;
            self.gap.deviation += gap.deviation;
        }
        self.utility += sol.utility;
        self.size_penalty += sol.penalty;
        self.relaxed_deviation += sol.deviation10 as f64 / 10.0;
        write_index_lists(
            graph,
            &solved.comp,
            &solved.cap,
            &sol.z,
            &mut self.new_outs,
            &mut self.slice_starts,
        );
        if let Some(r) = retarget {
            retarget_lists(graph, &r, &mut self.new_outs);
            self.multipliers.insert(r.vertex, r.to);
        }
    }

    /// The plan: one change per vertex whose outputs or inputs change, in
    /// topological order.
    fn into_plan(self, graph: &Graph, topo: &[VertexId]) -> Plan {
        let changes = topo
            .iter()
            .filter_map(|&v| self.change_of(graph, v))
            .collect();
        Plan {
            revision: graph.revision(),
            changes,
            objective: Objective {
                utility: self.utility,
                size_penalty: self.size_penalty,
                relaxed_deviation: self.relaxed_deviation,
                value: self.utility - self.size_penalty,
            },
            nodes: self.nodes,
            optimal: !self.unproven,
            gap: self.gap.objective,
            deviation_gap: self.gap.deviation,
        }
    }

    fn change_of(&self, graph: &Graph, v: VertexId) -> Option<VertexChange> {
        let vx = graph.v(v);
        let outs = self.new_outs.get(&v).cloned();
        let ins: Vec<Option<Vec<Neuron>>> = vx
            .inputs()
            .iter()
            .map(|u| self.new_outs.get(u).cloned())
            .collect();
        if outs.is_none() && ins.iter().all(Option::is_none) {
            return None;
        }
        let nin_after = vx
            .inputs()
            .iter()
            .zip(vx.nin())
            .map(|(u, &n)| self.new_outs.get(u).map_or(n, Vec::len))
            .collect();
        Some(VertexChange {
            vertex: v,
            name: vx.name().to_string(),
            nout_before: vx.nout(),
            nout_after: outs.as_ref().map_or(vx.nout(), Vec::len),
            nin_after,
            outs,
            ins,
            multiplier_after: self.multipliers.get(&v).copied(),
            slice_start_after: self
                .slice_starts
                .get(&v)
                .copied()
                .filter(|&s| Some(s) != vx.slice_start()),
        })
    }
}

impl Planned {
    /// This plan if the search proved it optimal, else
    /// [`PlanError::BudgetExceeded`] naming the request's targets.
    ///
    /// # Errors
    /// As said.
    pub fn proven(self, graph: &Graph, req: &Request) -> Result<Planned, PlanError> {
        if self.plan.optimal {
            return Ok(self);
        }
        let vertices = req
            .targets
            .iter()
            .map(|t| match t.site {
                Site::Nout(v) | Site::Nin { vertex: v, .. } => graph.name(v),
            })
            .collect();
        Err(PlanError::BudgetExceeded {
            nodes: self.plan.nodes,
            vertices,
        })
    }
}

/// NaiveNASlib's default chain in one call: the request as given, then (if it
/// is infeasible) with every target relaxed, then refuse.
///
/// # Errors
/// As [`plan`]; [`PlanError::Infeasible`] when even the relaxed request has no
/// solution.
pub fn plan_or_relax(graph: &Graph, req: &Request) -> Result<Planned, PlanError> {
    let all_relaxed = req.targets.iter().all(|t| t.mode == TargetMode::Relaxed);
    let step = if all_relaxed && !req.targets.is_empty() {
        Step::Relaxed
    } else {
        Step::Exact
    };
    match plan(graph, req) {
        Ok(plan) => Ok(Planned { plan, step }),
        Err(PlanError::Infeasible { .. }) if !all_relaxed => {
            let plan = plan(graph, &req.relaxed())?;
            Ok(Planned {
                plan,
                step: Step::Relaxed,
            })
        }
        Err(e) => Err(e),
    }
}

impl Graph {
    /// Plan `req` with the default chain (exact, then relaxed) and apply the
    /// new sizes. All or nothing: on error the graph is untouched, and a
    /// plan the budget did not let the search prove optimal is not applied
    /// ([`PlanError::BudgetExceeded`], as NaiveNASlib's time-out leaves the
    /// sizes as they were); [`plan`] returns such plans with their gap.
    /// Bumps the revision; no vertex id is invalidated.
    ///
    /// ```
    /// use graft_core::{Graph, Request, Step};
    /// let mut g = Graph::new();
    /// let x = g.add_input("x", 3);
    /// let x = x.unwrap();
    /// let a = g.add_absorb("a", &[x], 5).unwrap();
    /// let b = g.add_absorb("b", &[a], 4).unwrap();
    /// let done = g.change_sizes(&Request::new().nout(a, -2)).unwrap();
    /// assert_eq!(done.step, Step::Exact);
    /// assert_eq!(g.nout(a).unwrap(), 3);
    /// assert_eq!(g.nin(b).unwrap(), &[3]);
    /// ```
    ///
    /// # Errors
    /// As [`plan_or_relax`].
    pub fn change_sizes(&mut self, req: &Request) -> Result<Planned, PlanError> {
        let planned = plan_or_relax(self, req)?.proven(self, req)?;
        planned.plan.apply(self)?;
        Ok(planned)
    }
}

/// How many new neurons a group may need: the targets' growth, and when
/// several targets meet in a component also their shrinkage (one shrinking
/// target may force another group to grow to keep an exact size), each
/// bounded by what the vertex can give or take ([`MAX_NOUT`]).
fn growth_room(graph: &Graph, targets: &[Resolved]) -> i64 {
    let room = |t: &Resolved, several: bool| -> i64 {
        if t.delta >= 0 {
            t.delta.min(MAX_NOUT as i64)
        } else if several {
            t.delta.saturating_neg().min(graph.v(t.space).nout() as i64)
        } else {
            0
        }
    };
    let several = targets.len() > 1;
    targets
        .iter()
        .map(|t| room(t, several))
        .fold(0i64, i64::saturating_add)
        .min(MAX_NOUT as i64)
}

fn validate_utility(graph: &Graph, u: &Utility) -> Result<(), PlanError> {
    for (&id, vals) in u.explicit() {
        let v = graph.vertex(id)?;
        if vals.len() != v.nout() {
            return Err(PlanError::BadUtility {
                vertex: v.name().to_string(),
                reason: format!("{} values for {} neurons", vals.len(), v.nout()),
            });
        }
        if let Some(i) = vals.iter().position(|x| !x.is_finite()) {
            return Err(PlanError::BadUtility {
                vertex: v.name().to_string(),
                reason: format!("neuron {i} has non-finite utility {}", vals[i]),
            });
        }
    }
    Ok(())
}

fn resolve_targets(graph: &Graph, targets: &[Target]) -> Result<Vec<Resolved>, PlanError> {
    let mut out: Vec<Resolved> = Vec::new();
    for t in targets {
        let space = match t.site {
            Site::Nout(v) => {
                graph.vertex(v)?;
                v
            }
            Site::Nin { vertex, input } => {
                let vx = graph.vertex(vertex)?;
                *vx.inputs()
                    .get(input)
                    .ok_or_else(|| PlanError::NoSuchInput {
                        vertex: vx.name().to_string(),
                        input,
                        inputs: vx.inputs().len(),
                    })?
            }
        };
        let sx = graph.v(space);
        if let Some(why) = sx.frozen_reason() {
            return Err(PlanError::NotMutable {
                vertex: sx.name().to_string(),
                why,
            });
        }
        let goal = (sx.nout() as i64).checked_add(t.delta);
        if goal.is_none_or(|g| g > MAX_NOUT.max(sx.nout()) as i64) {
            return Err(PlanError::TooLarge {
                vertex: sx.name().to_string(),
                size: sx.nout(),
                delta: t.delta,
                max: MAX_NOUT,
            });
        }
        if t.mode == TargetMode::Exact && goal.is_some_and(|g| g < 1) {
            return Err(PlanError::BelowOne {
                vertex: sx.name().to_string(),
                size: sx.nout(),
                delta: t.delta,
            });
        }
        if let Some(prev) = out.iter().find(|r| r.space == space) {
            if prev.delta != t.delta || prev.mode != t.mode {
                return Err(PlanError::ConflictingTargets {
                    vertex: sx.name().to_string(),
                    first: prev.delta,
                    second: t.delta,
                });
            }
            continue;
        }
        out.push(Resolved {
            space,
            delta: t.delta,
            mode: t.mode,
        });
    }
    Ok(out)
}

/// Turn group counts into per-vertex output index lists (only for vertices
/// whose list differs from "keep everything in place"): kept neurons in
/// order, and each group's new neurons at its insertion gaps (the same gap
/// class in every vertex, so every stack slice, invariant input and
/// depthwise block stays aligned).
fn write_index_lists(
    graph: &Graph,
    comp: &Component,
    cap: &[i64],
    z: &[i64],
    out: &mut HashMap<VertexId, Vec<Neuron>>,
    slice_starts: &mut HashMap<VertexId, usize>,
) {
    let nclass = comp.group_of_class.len();
    let mut kept = vec![false; nclass];
    let mut new_after: HashMap<usize, usize> = HashMap::new();
    for (g, grp) in comp.groups.iter().enumerate() {
        let n = z[g].min(cap[g]).max(0) as usize;
        for &k in &grp.order[..n] {
            kept[k as usize] = true;
        }
        let y = (z[g] - n as i64).max(0) as usize;
        if y > 0 {
            let places = grp
                .insert_at
                .as_ref()
                .expect("a group without insertion places never grows");
            for &(gap, count) in places {
                *new_after.entry(gap).or_default() += y * count as usize;
            }
        }
    }
    for (li, &v) in comp.verts.iter().enumerate() {
        // An alias keeps and grows exactly as the owner of its range.
        let owner = comp.owner[li];
        if owner != li {
            if let Some(list) = out.get(&comp.verts[owner]).cloned() {
                out.insert(v, list);
            }
            continue;
        }
        let nout = graph.v(v).nout();
        let mut list = Vec::with_capacity(nout);
        let mut identity = true;
        for i in 0..nout {
            let x = comp.base[li] + i;
            if kept[comp.class_of[x] as usize] {
                list.push(Neuron::Old(i));
            } else {
                identity = false;
            }
            if let Some(&k) = (!new_after.is_empty()).then(|| new_after.get(&x)).flatten() {
                list.extend(std::iter::repeat_n(Neuron::New, k));
                identity = false;
            }
        }
        if !identity {
            out.insert(v, list);
        }
    }
    // A slice starts after the producer's neurons kept and added before
    // its part (new neurons at the gap before the part belong to what
    // precedes it: the part's own grow at its end).
    for &v in &comp.verts {
        let vx = graph.v(v);
        let Some(start) = vx.slice_start() else {
            continue;
        };
        let bu = comp.base[comp.local[&vx.inputs()[0]] as usize];
        let before: usize = (bu..bu + start)
            .map(|x| {
                usize::from(kept[comp.class_of[x] as usize])
                    + new_after.get(&x).copied().unwrap_or(0)
            })
            .sum();
        slice_starts.insert(v, before);
    }
}

/// What every component solve of one request shares.
struct Setup<'a> {
    graph: &'a Graph,
    utility: &'a Utility,
    allow_new: bool,
    penalize: bool,
    extra: i64,
    limits: &'a Limits,
}

/// How a component solve treats new neurons.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Growth {
    /// None may be created.
    None,
    /// Groups grow where their insertion places allow.
    Placed,
    /// Every unfrozen group may grow (a relaxation; places not worked out).
    Assumed,
}

enum SolveStop {
    /// Two exact targets on one merged row ask for different sizes.
    Clash,
    /// The budget ran out before any answer was found.
    Budget(u64),
}

/// A solved component: the component, the per-group count above which
/// neurons are new, the best solution (None: infeasible), the nodes explored
/// and, when the budget ran out first, the proven gap.
struct Solved {
    comp: Component,
    cap: Vec<i64>,
    best: Option<solve::Solution>,
    nodes: u64,
    gap: Option<solve::Gap>,
}

impl Setup<'_> {
    /// Solve one component under its current multipliers and under each
    /// other choice of one depthwise vertex with a private tail (the
    /// current one first: it wins ties), and keep the best answer. A
    /// budget that runs out after one answer keeps that answer, unproven.
    fn best_multiplier(
        &self,
        verts: &[VertexId],
        mine: &[&Resolved],
        nodes: &mut u64,
    ) -> Result<Chosen, PlanError> {
        let graph = self.graph;
        let names = || -> Vec<String> {
            if mine.is_empty() {
                verts.iter().map(|&v| graph.name(v)).collect()
            } else {
                mine.iter().map(|t| graph.name(t.space)).collect()
            }
        };
        let mut tries: Vec<Option<Retarget>> = vec![None];
        if let Some((d, from, tail)) = retargetable(graph, verts) {
            for to in graph.v(d).multiplier_choices() {
                if to != from && (to < from || self.allow_new) {
                    tries.push(Some(Retarget {
                        vertex: d,
                        from,
                        to,
                        tail: tail.clone(),
                    }));
                }
            }
        }
        let mut chosen: Option<Chosen> = None;
        for rt in tries {
            let mut solved = match self.solve(verts, mine, rt.as_ref()) {
                Ok(r) => r,
                Err(SolveStop::Clash) => return Err(PlanError::Infeasible { vertices: names() }),
                Err(SolveStop::Budget(n)) => {
                    *nodes += n;
                    match chosen {
                        Some(ref mut c) => {
                            c.solved.gap = Some(c.solved.gap.unwrap_or_default().unbounded());
                            break;
                        }
                        None => {
                            return Err(PlanError::BudgetExceeded {
                                nodes: *nodes,
                                vertices: names(),
                            })
                        }
                    }
                }
            };
            *nodes += solved.nodes;
            let Some(sol) = solved.best.take() else {
                continue;
            };
            if chosen.as_ref().is_none_or(|c| solve::better(&sol, &c.sol)) {
                chosen = Some(Chosen {
                    solved,
                    sol,
                    retarget: rt,
                });
            }
        }
        chosen.ok_or_else(|| PlanError::Infeasible { vertices: names() })
    }

    /// Build and solve one component (optionally with a depthwise vertex at
    /// another multiplier).
    ///
    /// Working out where new neurons go (the gap union-find) costs as much
    /// as the rest of the build, and a component whose targets all shrink
    /// rarely grows anything. So such a component is first solved assuming
    /// every group can grow: a relaxation (more counts allowed, each valued
    /// at least as high), so an answer that adds no neuron is optimal for
    /// the real problem too. Only an answer that grows is solved again with
    /// the places worked out.
    fn solve(
        &self,
        verts: &[VertexId],
        mine: &[&Resolved],
        retarget: Option<&Retarget>,
    ) -> Result<Solved, SolveStop> {
        let shrinking = !mine.is_empty() && mine.iter().all(|t| t.delta < 0);
        if self.allow_new && shrinking {
            let relaxed = self.solve_with(verts, mine, retarget, Growth::Assumed)?;
            if relaxed.best.as_ref().is_none_or(|b| b.new_total == 0) {
                return Ok(relaxed);
            }
            let mut placed = self.solve_with(verts, mine, retarget, Growth::Placed)?;
            placed.nodes += relaxed.nodes;
            return Ok(placed);
        }
        let growth = if self.allow_new {
            Growth::Placed
        } else {
            Growth::None
        };
        self.solve_with(verts, mine, retarget, growth)
    }

    /// Build and solve one component with the given account of growth.
    fn solve_with(
        &self,
        verts: &[VertexId],
        mine: &[&Resolved],
        retarget: Option<&Retarget>,
        growth: Growth,
    ) -> Result<Solved, SolveStop> {
        let graph = self.graph;
        let mut comp = Component::build(
            graph,
            verts.to_vec(),
            self.utility,
            growth == Growth::Placed,
            retarget,
        );
        for t in mine {
            let li = comp.local(t.space).expect("target in its component");
            let row = &mut comp.rows[comp.row_of_vertex[li] as usize];
            let goal = graph.v(t.space).nout() as i64 + t.delta;
            match t.mode {
                TargetMode::Exact => {
                    if row.exact.is_some_and(|e| e != goal) {
                        return Err(SolveStop::Clash);
                    }
                    row.exact = Some(goal);
                }
                TargetMode::Relaxed => row.relaxed.push(goal),
            }
        }
        // New neurons per group are searched up to the summed |Δ| of the
        // targets plus one full period of the components' step constraints.
        let period = comp
            .rows
            .iter()
            .fold(1i64, |acc, r| classes::lcm(acc, r.step).min(1 << 20));
        let extra = self.extra + period;
        let ng = comp.groups.len();
        let (mut m, mut cap, mut lo, mut hi) = (
            Vec::with_capacity(ng),
            Vec::with_capacity(ng),
            Vec::with_capacity(ng),
            Vec::with_capacity(ng),
        );
        for g in &comp.groups {
            let n = g.order.len() as i64;
            m.push(n);
            if g.frozen {
                cap.push(n);
                lo.push(n);
                hi.push(n);
            } else if growth == Growth::Assumed
                || (growth == Growth::Placed && g.insert_at.is_some())
            {
                cap.push(g.nonneg as i64);
                lo.push(0);
                hi.push(n + extra);
            } else {
                cap.push(n);
                lo.push(0);
                hi.push(n);
            }
        }
        let p = IntProblem {
            comp: &comp,
            m,
            cap,
            lo,
            hi,
            penalize: self.penalize,
        };
        let (best, nodes, gap) = match p.solve(self.limits) {
            Ok((best, n)) => (best, n, None),
            Err(SearchStop::Budget(stop)) => match stop.best {
                Some(best) => (Some(best), stop.nodes, Some(stop.gap)),
                None => return Err(SolveStop::Budget(stop.nodes)),
            },
        };
        let cap = p.cap;
        Ok(Solved {
            comp,
            cap,
            best,
            nodes,
            gap,
        })
    }
}

/// The first depthwise vertex of a component that has other multiplier
/// choices and whose outputs are read, inside the component, only by a chain
/// of unary-ish invariant vertices (all of whose inputs are in that chain):
/// its multiplier, and that chain.
fn retargetable(graph: &Graph, verts: &[VertexId]) -> Option<(VertexId, usize, Vec<VertexId>)> {
    'next: for &d in verts {
        let dx = graph.v(d);
        let Some(from) = dx.depthwise() else {
            continue;
        };
        if dx.multiplier_choices().len() < 2 {
            continue;
        }
        let mut set = vec![d];
        let mut tail = Vec::new();
        for &v in verts {
            let vx = graph.v(v);
            if vx.kind() == crate::graph::SizeKind::Invariant
                && vx.inputs().iter().all(|u| set.contains(u))
            {
                set.push(v);
                tail.push(v);
            }
        }
        for &v in &set {
            let vx = graph.v(v);
            let frozen = vx.is_size_frozen()
                || vx
                    .outputs()
                    .iter()
                    .any(|&o| graph.v(o).kind() == crate::graph::SizeKind::Immutable);
            let leaks = vx
                .outputs()
                .iter()
                .any(|o| graph.v(*o).couples_producer(v) && !set.contains(o));
            if frozen || leaks {
                continue 'next;
            }
        }
        return Some((d, from, tail));
    }
    None
}

/// Index lists of a depthwise vertex at a new multiplier and of its tail:
/// for every entry of the input's list, the first `min(from, to)` outputs of
/// its block, then `to − from` new ones (a new input channel: `to` new ones).
fn retarget_lists(graph: &Graph, r: &Retarget, out: &mut HashMap<VertexId, Vec<Neuron>>) {
    let u = graph.v(r.vertex).inputs()[0];
    let input: Vec<Neuron> = out
        .get(&u)
        .cloned()
        .unwrap_or_else(|| (0..graph.v(u).nout()).map(Neuron::Old).collect());
    let mut list = Vec::with_capacity(input.len() * r.to);
    for n in input {
        match n {
            Neuron::Old(i) => {
                list.extend((0..r.from.min(r.to)).map(|k| Neuron::Old(i * r.from + k)));
                list.extend(std::iter::repeat_n(
                    Neuron::New,
                    r.to.saturating_sub(r.from),
                ));
            }
            Neuron::New => list.extend(std::iter::repeat_n(Neuron::New, r.to)),
        }
    }
    for v in std::iter::once(r.vertex).chain(r.tail.iter().copied()) {
        out.insert(v, list.clone());
    }
}
