//! The continuous relaxation of a component's integer problem, solved with
//! microlp, used only as an upper bound inside our own branch and bound.
//!
//! Variables: `z[g]` (group counts, relaxed to reals within the node's box),
//! `μ[g]` (utility of group g, below the tangents of its concave prefix-sum
//! curve: a valid over-estimate however few tangents are used), `d[r]`
//! (weighted relative size change of row r) and `M` (their maximum). Exact target rows
//! are equalities; relaxed targets and step constraints are left out (the
//! relaxation only has to bound `F`, see `solve.rs`).

use microlp::{ComparisonOp, OptimizationDirection, Problem, Solution, Variable};

use super::solve::IntProblem;

/// Most tangents a group starts with; [`IntProblem::tighten`] adds the
/// ones the optimum needs.
const TANGENTS: usize = 4;

pub(crate) struct Relaxation {
    pub z: Vec<Variable>,
    pub mu: Vec<Variable>,
}

/// Most rounds of [`IntProblem::tighten`] per LP.
const ROUNDS: usize = 64;

pub(crate) enum LpOutcome {
    Solved(Box<Solution>),
    Infeasible,
    /// A numerical failure: the caller falls back to interval bounds.
    Failed,
}

pub(crate) fn outcome(r: Result<microlp::SolveOutcome, microlp::Error>) -> LpOutcome {
    match r {
        Ok(o) => match o.into_solution() {
            Ok(s) if s.status() == microlp::SolutionStatus::Optimal => {
                LpOutcome::Solved(Box::new(s))
            }
            Ok(_) => LpOutcome::Failed,
            Err(_) => LpOutcome::Failed,
        },
        Err(microlp::Error::Infeasible) => LpOutcome::Infeasible,
        Err(_) => LpOutcome::Failed,
    }
}

impl IntProblem<'_> {
    /// Build and solve the relaxation over the box `[lo, hi]`.
    pub(crate) fn relax(&self, lo: &[i64], hi: &[i64]) -> (Relaxation, LpOutcome) {
        let mut lp = Problem::new(OptimizationDirection::Maximize);
        let ng = lo.len();
        let mut z = Vec::with_capacity(ng);
        for g in 0..ng {
            z.push(lp.add_var(0.0, (lo[g] as f64, hi[g] as f64)));
        }
        let mut mus = Vec::with_capacity(ng);
        for g in 0..ng {
            let mu = lp.add_var(1.0, (f64::NEG_INFINITY, f64::INFINITY));
            mus.push(mu);
            for k in self.tangent_points(g, lo[g], hi[g]) {
                // μ <= V(k) + δ_k (z − k)
                let d = self.marginal(g, k);
                let rhs = self.value(g, k) - d * k as f64;
                lp.add_constraint([(mu, 1.0), (z[g], -d)], ComparisonOp::Le, rhs);
            }
            if lo[g] == hi[g] || self.tangent_points(g, lo[g], hi[g]).is_empty() {
                lp.add_constraint([(mu, 1.0)], ComparisonOp::Le, self.value(g, hi[g]));
            }
        }
        let penalize = self.penalize;
        let big_m = if penalize {
            Some(lp.add_var(-0.8, (0.0, f64::INFINITY)))
        } else {
            None
        };
        for row in &self.comp.rows {
            let terms: Vec<(Variable, f64)> = row
                .terms
                .iter()
                .map(|&(g, c)| (z[g as usize], c as f64))
                .collect();
            if let Some(t) = row.exact {
                lp.add_constraint(terms.as_slice(), ComparisonOp::Eq, t as f64);
            }
            lp.add_constraint(terms.as_slice(), ComparisonOp::Ge, 1.0);
            if let (Some(m), true) = (big_m, row.max_weight > 0.0) {
                let t = row.size as f64;
                let w = row.max_weight;
                let d = lp.add_var(-0.1 * row.l1_weight / w, (0.0, f64::INFINITY));
                // d is the weighted relative change: t·d >= w(s − t) and
                // t·d >= w(t − s); M >= d.
                let mut up: Vec<(Variable, f64)> = terms.iter().map(|&(v, c)| (v, c * w)).collect();
                up.push((d, -t));
                lp.add_constraint(up.as_slice(), ComparisonOp::Le, w * t);
                let mut down: Vec<(Variable, f64)> =
                    terms.iter().map(|&(v, c)| (v, c * w)).collect();
                down.push((d, t));
                lp.add_constraint(down.as_slice(), ComparisonOp::Ge, w * t);
                lp.add_constraint([(m, 1.0), (d, -1.0)], ComparisonOp::Ge, 0.0);
            }
        }
        let relax = Relaxation { z, mu: mus };
        let out = self.tighten(&relax, outcome(lp.solve()));
        (relax, out)
    }

    /// Make the relaxation exact on the utility curves where its optimum
    /// lies: while some `μ[g]` is above the curve's linear interpolation at
    /// `z[g]`, add the tangent of the segment `z[g]` falls in (a cutting
    /// plane: every tangent of a concave curve over-estimates it, so the LP
    /// stays a valid bound, and at the end it equals the exact concave
    /// relaxation's optimum). Without this the few tangents `relax` starts
    /// with leave the bound loose and the search explodes (issue 16).
    pub(crate) fn tighten(&self, relax: &Relaxation, mut out: LpOutcome) -> LpOutcome {
        for _ in 0..ROUNDS {
            let LpOutcome::Solved(sol) = out else {
                return out;
            };
            let mut cuts = Vec::new();
            for g in 0..relax.z.len() {
                let z = sol.var_value(relax.z[g]);
                let mu = sol.var_value(relax.mu[g]);
                let k = (z.floor() as i64).clamp(self.lo[g], (self.hi[g] - 1).max(self.lo[g]));
                let d = self.marginal(g, k);
                let at = self.value(g, k) + d * (z - k as f64);
                if mu > at + 1e-9 * at.abs().max(1.0) {
                    cuts.push((g, k, d));
                }
            }
            if cuts.is_empty() {
                return LpOutcome::Solved(sol);
            }
            let mut cur = *sol;
            for (g, k, d) in cuts {
                let rhs = self.value(g, k) - d * k as f64;
                match outcome(cur.add_constraint(
                    [(relax.mu[g], 1.0), (relax.z[g], -d)],
                    ComparisonOp::Le,
                    rhs,
                )) {
                    LpOutcome::Solved(next) => cur = *next,
                    other => return other,
                }
            }
            out = LpOutcome::Solved(Box::new(cur));
        }
        out
    }

    /// Points where the slope of group g's utility curve changes inside
    /// `[lo, hi)`, at most [`TANGENTS`] of them (always the first and the
    /// last non-negative step).
    fn tangent_points(&self, g: usize, lo: i64, hi: i64) -> Vec<i64> {
        let mut pts = Vec::new();
        let mut prev = f64::NAN;
        for k in lo..hi {
            let d = self.marginal(g, k);
            if d != prev {
                pts.push(k);
                prev = d;
            }
            // Past the cap every step is 0: no further slope change.
            if k >= self.cap[g] {
                break;
            }
        }
        if pts.len() > TANGENTS {
            let keep_last = pts[pts.len() - 1];
            let step = pts.len().div_ceil(TANGENTS - 1);
            let mut sub: Vec<i64> = pts.iter().copied().step_by(step).collect();
            if sub.last() != Some(&keep_last) {
                sub.push(keep_last);
            }
            let nn = (self.comp.groups[g].nonneg as i64).clamp(lo, hi.max(lo));
            if nn < hi && !sub.contains(&nn) {
                sub.push(nn);
            }
            pts = sub;
        }
        pts
    }
}
