//! Exact search over group counts.
//!
//! Variables: `z[g]`, the number of neurons of group `g` after the change
//! (kept classes plus new ones). The objective, compared lexicographically:
//!
//! 1. relaxed-target deviation `D = Σ|s−τ| + 8·max|s−τ|` over relaxed targets
//!    (NaiveNASlib's `0.1·L1 + 0.8·max`, times 10 so it is an exact integer),
//!    smaller is better;
//! 2. `F = utility kept − (0.1·Σ_v w_v|Δ_v|/n_v + 0.8·max_v w_v|Δ_v|/n_v)`,
//!    larger is better, where `w_v` is the largest |utility| of v's neurons
//!    (NaiveNASlib's scaling: the penalty is in utility units, and vertices
//!    without utility of their own, such as concatenations, do not count), or
//!    1 for every vertex when all utilities are 0 (size mode). The penalty is
//!    left out in re-select mode;
//! 3. ties (within 1e-12 relative) broken by fewer new neurons, then less
//!    total change, then larger counts for earlier groups.
//!
//! Separable components go to the level search of `levels.rs` first; the
//! rest (and any answer of it that breaks a row it does not model) to a
//! depth-first branch and bound on boxes of group counts.
//! Upper bounds are valid for every point of a box: interval arithmetic on
//! the rows (penalties, deviations, feasibility) and the box's continuous
//! relaxation (`lp.rs`, solved with microlp and warm-started from the parent
//! box). The LP only bounds: every candidate answer is evaluated exactly on
//! integers, and a box is discarded only when its bound, widened by 1e-7 of
//! its magnitude (to absorb the LP solver's round-off), is worse than the
//! incumbent by more than a relative 1e-9. So the answer is deterministic and
//! optimal as long as microlp's LP optimum is accurate to that margin (the
//! property tests check the answers against brute force); the incumbent and
//! the answer never rest on floating LP values. A node or time budget turns a search
//! that runs too long into an error instead of a worse answer.

use std::cmp::Ordering;
use std::time::Instant;

use microlp::ComparisonOp;

use super::classes::Component;
use super::lp::{outcome, LpOutcome};

/// A box of group counts still to search.
struct Node {
    lo: Vec<i64>,
    hi: Vec<i64>,
    bound: Bound,
    lp: Option<Box<microlp::Solution>>,
}

/// The LP optimum widened by a safety margin (1e-7 of its magnitude) for the
/// solver's round-off, so that it stays an upper bound of every integer point.
fn lp_bound(sol: &microlp::Solution) -> f64 {
    let v = sol.objective();
    v + 1e-7 * v.abs().max(1.0)
}

/// The integer problem of one component.
pub(crate) struct IntProblem<'a> {
    pub comp: &'a Component,
    /// Current count (number of classes) per group.
    pub m: Vec<i64>,
    /// Count above which a group's extra neurons are new (utility 0).
    pub cap: Vec<i64>,
    /// Root domain per group.
    pub lo: Vec<i64>,
    pub hi: Vec<i64>,
    /// Include the size penalty (false in re-select mode).
    pub penalize: bool,
}

/// An evaluated assignment.
#[derive(Debug, Clone)]
pub(crate) struct Solution {
    pub z: Vec<i64>,
    pub deviation10: i64,
    pub utility: f64,
    pub penalty: f64,
    pub new_total: i64,
    pub change_total: i64,
}

impl Solution {
    pub fn objective(&self) -> f64 {
        self.utility - self.penalty
    }
}

/// A search stopped by its budget: the nodes explored, the best answer found
/// so far and the best bound of the boxes left open.
pub(crate) struct Stopped {
    pub nodes: u64,
    pub best: Option<Solution>,
    /// How much better than `best` the optimum can be: relaxed deviation
    /// (NaiveNASlib's units) and objective `F` among answers that deviate no
    /// more than `best`.
    pub gap: Gap,
}

/// A proven gap between an answer and the optimum.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gap {
    pub deviation: f64,
    pub objective: f64,
}

impl Gap {
    /// A gap nothing bounds (a multiplier choice left unsearched):
    /// `f64::MAX`, which JSON can hold.
    pub(crate) fn unbounded(self) -> Self {
        Gap {
            deviation: self.deviation,
            objective: f64::MAX,
        }
    }

    /// The gap of `best` against open boxes of these bounds.
    fn of(best: &Solution, open: impl Iterator<Item = Bound>) -> Self {
        let mut gap = Gap::default();
        for b in open {
            if b.deviation10 < best.deviation10 {
                gap.deviation = gap
                    .deviation
                    .max((best.deviation10 - b.deviation10) as f64 / 10.0);
            }
            if b.deviation10 <= best.deviation10 {
                gap.objective = gap.objective.max(b.f - best.objective());
            }
        }
        gap
    }
}

/// Why the search stopped without a proven answer.
pub(crate) enum SearchStop {
    Budget(Stopped),
}

impl SearchStop {
    pub(crate) fn budget(
        nodes: u64,
        best: &Option<Solution>,
        open: impl Iterator<Item = Bound>,
    ) -> Self {
        let gap = best.as_ref().map_or(Gap::default(), |b| Gap::of(b, open));
        SearchStop::Budget(Stopped {
            nodes,
            best: best.clone(),
            gap,
        })
    }
}

pub(crate) struct Limits {
    pub max_nodes: u64,
    pub deadline: Option<Instant>,
}

/// A search's answer: the best solution (None: infeasible) and the nodes
/// explored.
pub(crate) type Answer = (Option<Solution>, u64);

/// Keep `cand` if it is better than `best`.
pub(crate) fn consider(cand: Option<Solution>, best: &mut Option<Solution>) {
    if let Some(c) = cand {
        if best.as_ref().is_none_or(|b| better(&c, b)) {
            *best = Some(c);
        }
    }
}

fn tol(f: f64) -> f64 {
    1e-9 * f.abs().max(1.0)
}

/// Is `a` strictly better than `b`?
pub(crate) fn better(a: &Solution, b: &Solution) -> bool {
    match a.deviation10.cmp(&b.deviation10) {
        Ordering::Less => return true,
        Ordering::Greater => return false,
        Ordering::Equal => {}
    }
    let (fa, fb) = (a.objective(), b.objective());
    let t = 1e-12 * fa.abs().max(fb.abs()).max(1.0);
    if fa > fb + t {
        return true;
    }
    if fb > fa + t {
        return false;
    }
    (b.new_total, b.change_total, &a.z) < (a.new_total, a.change_total, &b.z)
}

/// An upper bound on a box's answers: their smallest relaxed deviation and
/// largest objective `F`.
#[derive(Clone, Copy)]
pub(crate) struct Bound {
    pub deviation10: i64,
    pub f: f64,
}

impl Bound {
    fn cannot_beat(&self, best: &Solution) -> bool {
        self.deviation10 > best.deviation10
            || (self.deviation10 == best.deviation10
                && self.f < best.objective() - tol(best.objective()))
    }
}

impl IntProblem<'_> {
    pub(crate) fn value(&self, g: usize, z: i64) -> f64 {
        let k = z.min(self.cap[g]).max(0) as usize;
        self.comp.groups[g].prefix[k]
    }

    /// Utility gained by going from `z` to `z + 1` in group `g`.
    pub(crate) fn marginal(&self, g: usize, z: i64) -> f64 {
        if z < self.cap[g] {
            let p = &self.comp.groups[g].prefix;
            p[z as usize + 1] - p[z as usize]
        } else {
            0.0
        }
    }

    /// The best count in `[lo, hi]` ignoring everything but utility.
    fn best_count(&self, g: usize, lo: i64, hi: i64) -> i64 {
        (self.comp.groups[g].nonneg as i64).clamp(lo, hi)
    }

    pub(crate) fn evaluate(&self, z: &[i64]) -> Option<Solution> {
        let mut dsum = 0i64;
        let mut dmax = 0i64;
        let mut l1 = 0.0;
        let mut mx = 0.0f64;
        for row in &self.comp.rows {
            let s: i64 = row
                .terms
                .iter()
                .map(|&(g, c)| c as i64 * z[g as usize])
                .sum();
            if s < row.floor || s > row.ceiling() || (s - row.size) % row.step != 0 {
                return None;
            }
            if row.exact.is_some_and(|t| t != s) {
                return None;
            }
            for &t in &row.relaxed {
                if t != row.size && s == row.size {
                    return None;
                }
                let d = (s - t).abs();
                dsum += d;
                dmax = dmax.max(d);
            }
            let d = (s - row.size).abs() as f64 / row.size as f64;
            l1 += row.l1_weight * d;
            mx = mx.max(row.max_weight * d);
        }
        let utility: f64 = (0..z.len()).map(|g| self.value(g, z[g])).sum();
        let penalty = if self.penalize {
            0.1 * l1 + 0.8 * mx
        } else {
            0.0
        };
        Some(Solution {
            z: z.to_vec(),
            deviation10: dsum + 8 * dmax,
            utility,
            penalty,
            new_total: (0..z.len()).map(|g| (z[g] - self.cap[g]).max(0)).sum(),
            change_total: (0..z.len()).map(|g| (z[g] - self.m[g]).abs()).sum(),
        })
    }

    /// Tighten a box with the exact-target rows and the least sizes (1, or
    /// a reader's `NinAtLeast`).
    /// Returns false when the box is empty.
    fn propagate(&self, lo: &mut [i64], hi: &mut [i64]) -> bool {
        for _ in 0..16 {
            let mut changed = false;
            for row in &self.comp.rows {
                let (slo, shi) = row.span(lo, hi);
                let (want_lo, want_hi) = match row.exact {
                    Some(t) => (t.max(row.floor), t),
                    None => (row.floor, row.ceiling()),
                };
                if want_lo > want_hi || shi < want_lo || slo > want_hi {
                    return false;
                }
                for &(g, c) in &row.terms {
                    let (g, c) = (g as usize, c as i64);
                    let other_lo = slo - c * lo[g];
                    let other_hi = shi - c * hi[g];
                    let nlo = (want_lo - other_hi).div_euclid(c)
                        + i64::from((want_lo - other_hi).rem_euclid(c) != 0);
                    let nhi = (want_hi - other_lo).div_euclid(c);
                    if nlo > lo[g] {
                        lo[g] = nlo;
                        changed = true;
                    }
                    if nhi < hi[g] {
                        hi[g] = nhi;
                        changed = true;
                    }
                    if lo[g] > hi[g] {
                        return false;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        true
    }

    /// An upper bound on every assignment in the box, or None if it has none.
    fn bound(&self, lo: &[i64], hi: &[i64]) -> Option<Bound> {
        let mut dsum = 0i64;
        let mut dmax = 0i64;
        let mut l1 = 0.0;
        let mut mx = 0.0f64;
        for row in &self.comp.rows {
            let (slo, shi) = row.span(lo, hi);
            if shi < row.floor || slo > row.ceiling() {
                return None;
            }
            if let Some(t) = row.exact {
                if t < slo || t > shi {
                    return None;
                }
            }
            let dist = |t: i64| {
                if t < slo {
                    slo - t
                } else if t > shi {
                    t - shi
                } else {
                    0
                }
            };
            for &t in &row.relaxed {
                if t != row.size && slo == shi && slo == row.size {
                    return None;
                }
                let d = dist(t);
                dsum += d;
                dmax = dmax.max(d);
            }
            let d = dist(row.size) as f64 / row.size as f64;
            l1 += row.l1_weight * d;
            mx = mx.max(row.max_weight * d);
        }
        let util: f64 = (0..lo.len())
            .map(|g| self.value(g, self.best_count(g, lo[g], hi[g])))
            .sum();
        let penalty = if self.penalize {
            0.1 * l1 + 0.8 * mx
        } else {
            0.0
        };
        Some(Bound {
            deviation10: dsum + 8 * dmax,
            f: util - penalty,
        })
    }

    /// Solve exactly. `Ok(None)` means infeasible.
    pub(crate) fn solve(&self, limits: &Limits) -> Result<Answer, SearchStop> {
        let (mut lo, mut hi) = (self.lo.clone(), self.hi.clone());
        if !self.propagate(&mut lo, &mut hi) {
            return Ok((None, 0));
        }
        // Start from "no change" clamped into the box: a good incumbent.
        let mut best: Option<Solution> = None;
        let start: Vec<i64> = (0..lo.len())
            .map(|g| self.m[g].clamp(lo[g], hi[g]))
            .collect();
        consider(self.evaluate(&start), &mut best);
        let Some(root) = self.bound(&lo, &hi) else {
            return Ok((best, 0));
        };
        // Each group at its best count: when that point is feasible and
        // reaches the root bound, nothing can beat it (the usual case when
        // re-selecting, where there is no size penalty).
        let greedy: Vec<i64> = (0..lo.len())
            .map(|g| self.best_count(g, lo[g], hi[g]))
            .collect();
        consider(self.evaluate(&greedy), &mut best);
        if best.as_ref().is_some_and(|b| {
            b.deviation10 == root.deviation10 && b.objective() >= root.f - tol(root.f)
        }) {
            return Ok((best, 1));
        }
        if lo.len() == 1 {
            return self.enumerate(lo[0], hi[0], best, limits);
        }
        if let Some(sep) = self.separable() {
            if let Some(done) = self.level_search(&sep, &lo, &hi, best.clone(), limits)? {
                return Ok(done);
            }
        }
        self.branch_and_bound(lo, hi, root, best, limits)
    }

    /// One group: every count in `[lo, hi]` in turn.
    fn enumerate(
        &self,
        lo: i64,
        hi: i64,
        mut best: Option<Solution>,
        limits: &Limits,
    ) -> Result<Answer, SearchStop> {
        let mut nodes = 0u64;
        for v in lo..=hi {
            nodes += 1;
            if (nodes == 1 || nodes > limits.max_nodes || nodes.is_multiple_of(4096))
                && self.out_of_budget(nodes, limits)
            {
                let open = self.bound(&[v], &[hi]);
                return Err(SearchStop::budget(nodes, &best, open.into_iter()));
            }
            consider(self.evaluate(&[v]), &mut best);
        }
        Ok((best, nodes))
    }

    /// Depth-first branch and bound from the root box, better-bounded child
    /// first.
    fn branch_and_bound(
        &self,
        lo: Vec<i64>,
        hi: Vec<i64>,
        mut root: Bound,
        mut best: Option<Solution>,
        limits: &Limits,
    ) -> Result<Answer, SearchStop> {
        let (relax, out) = self.relax(&lo, &hi);
        let root_lp = match out {
            LpOutcome::Solved(sol) => {
                root.f = root.f.min(lp_bound(&sol));
                Some(sol)
            }
            LpOutcome::Infeasible => return Ok((best, 1)),
            LpOutcome::Failed => None,
        };
        let mut nodes = 0u64;
        let mut stack: Vec<Node> = vec![Node {
            lo,
            hi,
            bound: root,
            lp: root_lp,
        }];
        while let Some(node) = stack.pop() {
            if best.as_ref().is_some_and(|s| node.bound.cannot_beat(s)) {
                continue;
            }
            nodes += 1;
            // The clock is read at every node: one node may cost
            // milliseconds (its LP), and a deadline must hold closely.
            if self.out_of_budget(nodes, limits) {
                let open = stack.iter().map(|n| n.bound).chain([node.bound]);
                return Err(SearchStop::budget(nodes, &best, open));
            }
            if (0..node.lo.len()).all(|g| node.lo[g] == node.hi[g]) {
                consider(self.evaluate(&node.lo), &mut best);
                continue;
            }
            let mut kids = self.children(&node, &relax, &mut best, &mut nodes);
            // Better bound explored first: push it last.
            kids.sort_by(|x, y| {
                y.bound
                    .deviation10
                    .cmp(&x.bound.deviation10)
                    .then(x.bound.f.total_cmp(&y.bound.f))
            });
            stack.extend(kids);
        }
        Ok((best, nodes))
    }

    /// Split a box on one group's count (the LP point, rounded, is tried as
    /// an incumbent first) and return the children worth searching, each
    /// propagated and bounded by intervals and by its parent's LP with the
    /// split added (and tightened). Children with every count fixed are
    /// evaluated at once instead.
    fn children(
        &self,
        node: &Node,
        relax: &super::lp::Relaxation,
        best: &mut Option<Solution>,
        nodes: &mut u64,
    ) -> Vec<Node> {
        let (lo, hi) = (&node.lo, &node.hi);
        let zstar: Option<Vec<f64>> = node
            .lp
            .as_ref()
            .map(|s| relax.z.iter().map(|&v| s.var_value(v)).collect());
        if let Some(zs) = &zstar {
            let zr: Vec<i64> = (0..lo.len())
                .map(|g| (zs[g].round() as i64).clamp(lo[g], hi[g]))
                .collect();
            consider(self.evaluate(&zr), best);
        }
        let (g, split) = self.branch(lo, hi, zstar.as_deref());
        let mut kids: Vec<Node> = Vec::with_capacity(2);
        for (a, b, cmp, rhs) in [
            (lo[g], split, ComparisonOp::Le, split as f64),
            (split + 1, hi[g], ComparisonOp::Ge, (split + 1) as f64),
        ] {
            let (mut l2, mut h2) = (lo.clone(), hi.clone());
            l2[g] = a;
            h2[g] = b;
            if !self.propagate(&mut l2, &mut h2) {
                continue;
            }
            let Some(mut kb) = self.bound(&l2, &h2) else {
                continue;
            };
            if best.as_ref().is_some_and(|s| kb.cannot_beat(s)) {
                continue;
            }
            if (0..l2.len()).all(|i| l2[i] == h2[i]) {
                *nodes += 1;
                consider(self.evaluate(&l2), best);
                continue;
            }
            let mut kid_lp = None;
            if let Some(parent) = &node.lp {
                let edited = (**parent)
                    .clone()
                    .add_constraint([(relax.z[g], 1.0)], cmp, rhs);
                match self.tighten(relax, outcome(edited)) {
                    LpOutcome::Solved(sol) => {
                        kb.f = kb.f.min(lp_bound(&sol));
                        if best.as_ref().is_some_and(|s| kb.cannot_beat(s)) {
                            continue;
                        }
                        kid_lp = Some(sol);
                    }
                    LpOutcome::Infeasible => continue,
                    LpOutcome::Failed => {}
                }
            }
            kids.push(Node {
                lo: l2,
                hi: h2,
                bound: kb,
                lp: kid_lp,
            });
        }
        kids
    }

    /// Pick the group to branch on and the split point (left child gets
    /// `..=split`): the most fractional LP value if any, else the widest
    /// domain split at its LP value or its middle.
    fn branch(&self, lo: &[i64], hi: &[i64], zstar: Option<&[f64]>) -> (usize, i64) {
        if let Some(zs) = zstar {
            let frac = |g: usize| (zs[g] - zs[g].floor()).min(zs[g].ceil() - zs[g]);
            if let Some(g) = (0..lo.len())
                .filter(|&g| hi[g] > lo[g] && frac(g) > 1e-6)
                .max_by(|&a, &b| frac(a).total_cmp(&frac(b)).then(b.cmp(&a)))
            {
                return (g, (zs[g].floor() as i64).clamp(lo[g], hi[g] - 1));
            }
        }
        let g = (0..lo.len())
            .filter(|&g| hi[g] > lo[g])
            .max_by_key(|&g| (hi[g] - lo[g], std::cmp::Reverse(g)))
            .expect("some group is not fixed");
        let split = match zstar {
            Some(zs) => (zs[g].round() as i64).clamp(lo[g], hi[g] - 1),
            None => lo[g] + (hi[g] - lo[g]) / 2,
        };
        (g, split)
    }

    pub(crate) fn out_of_budget(&self, nodes: u64, limits: &Limits) -> bool {
        nodes > limits.max_nodes || limits.deadline.is_some_and(|d| Instant::now() > d)
    }
}
