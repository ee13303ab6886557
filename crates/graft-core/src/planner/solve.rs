//! Exact search over group counts.
//!
//! Variables: `z[g]`, the number of neurons of group `g` after the change
//! (kept classes plus new ones). The objective, compared lexicographically:
//!
//! 1. relaxed-target deviation `D = Σ|s−τ| + 8·max|s−τ|` over relaxed targets
//!    (NaiveNASlib's `0.1·L1 + 0.8·max`, times 10 so it is an exact integer),
//!    smaller is better;
//! 2. `F = utility kept − S·(0.1·Σ_v |Δ_v|/n_v + 0.8·max_v |Δ_v|/n_v)`, larger
//!    is better, where `S` is the component's largest |utility| (so the size
//!    penalty is in utility units) and the penalty is left out in re-select
//!    mode;
//! 3. ties (within 1e-12 relative) broken by fewer new neurons, then less
//!    total change, then larger counts for earlier groups.
//!
//! The search is a depth-first branch and bound on boxes of group counts.
//! Upper bounds are valid for every point of a box: utility by the best count
//! of each group in its range (tightened by a Lagrangian bound on each exact
//! target row, the continuous knapsack bound), penalties by interval
//! arithmetic on the rows. A box is discarded only when its bound is worse than
//! the incumbent by more than a relative 1e-9, so the answer is optimal and
//! does not depend on solver tolerances; a node or time budget turns a search
//! that runs too long into an error instead of a worse answer.

use std::cmp::Ordering;
use std::time::Instant;

use super::classes::Component;

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

/// Why the search stopped without an answer.
pub(crate) enum SearchStop {
    Budget(u64),
}

pub(crate) struct Limits {
    pub max_nodes: u64,
    pub deadline: Option<Instant>,
}

fn tol(f: f64) -> f64 {
    1e-9 * f.abs().max(1.0)
}

/// Is `a` strictly better than `b`?
fn better(a: &Solution, b: &Solution) -> bool {
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

#[derive(Clone, Copy)]
struct Bound {
    deviation10: i64,
    f: f64,
}

impl Bound {
    fn cannot_beat(&self, best: &Solution) -> bool {
        self.deviation10 > best.deviation10
            || (self.deviation10 == best.deviation10
                && self.f < best.objective() - tol(best.objective()))
    }
}

impl IntProblem<'_> {
    fn value(&self, g: usize, z: i64) -> f64 {
        let k = z.min(self.cap[g]).max(0) as usize;
        self.comp.groups[g].prefix[k]
    }

    /// Utility gained by going from `z` to `z + 1` in group `g`.
    fn marginal(&self, g: usize, z: i64) -> f64 {
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
            if s < 1 || (s - row.size) % row.step != 0 {
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
            l1 += row.mult as f64 * d;
            mx = mx.max(d);
        }
        let utility: f64 = (0..z.len()).map(|g| self.value(g, z[g])).sum();
        let penalty = if self.penalize {
            self.comp.scale * (0.1 * l1 + 0.8 * mx)
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

    /// Tighten a box with the exact-target rows and the size >= 1 rule.
    /// Returns false when the box is empty.
    fn propagate(&self, lo: &mut [i64], hi: &mut [i64]) -> bool {
        for _ in 0..16 {
            let mut changed = false;
            for row in &self.comp.rows {
                let slo: i64 = row
                    .terms
                    .iter()
                    .map(|&(g, c)| c as i64 * lo[g as usize])
                    .sum();
                let shi: i64 = row
                    .terms
                    .iter()
                    .map(|&(g, c)| c as i64 * hi[g as usize])
                    .sum();
                let (want_lo, want_hi) = match row.exact {
                    Some(t) => (t, t),
                    None => (1, i64::MAX / 4),
                };
                if shi < want_lo || slo > want_hi {
                    return false;
                }
                for &(g, c) in &row.terms {
                    let (g, c) = (g as usize, c as i64);
                    let other_lo = slo - c * lo[g];
                    let other_hi = shi - c * hi[g];
                    let nlo = (want_lo - other_hi).div_euclid(c)
                        + i64::from((want_lo - other_hi).rem_euclid(c) != 0);
                    let nhi = if want_hi >= i64::MAX / 4 {
                        hi[g]
                    } else {
                        (want_hi - other_lo).div_euclid(c)
                    };
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
            let slo: i64 = row
                .terms
                .iter()
                .map(|&(g, c)| c as i64 * lo[g as usize])
                .sum();
            let shi: i64 = row
                .terms
                .iter()
                .map(|&(g, c)| c as i64 * hi[g as usize])
                .sum();
            if shi < 1 {
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
            l1 += row.mult as f64 * d;
            mx = mx.max(d);
        }
        let mut util: f64 = (0..lo.len())
            .map(|g| self.value(g, self.best_count(g, lo[g], hi[g])))
            .sum();
        for row in &self.comp.rows {
            if let Some(t) = row.exact {
                util = util.min(self.lagrange_bound(row, t, lo, hi));
            }
        }
        let penalty = if self.penalize {
            self.comp.scale * (0.1 * l1 + 0.8 * mx)
        } else {
            0.0
        };
        Some(Bound {
            deviation10: dsum + 8 * dmax,
            f: util - penalty,
        })
    }

    /// max over the box of `V_g(z) − p·z` for one group.
    fn priced(&self, g: usize, p: f64, lo: i64, hi: i64) -> (i64, f64) {
        // Marginals are non-increasing: find the first step not worth taking.
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let mid = a + (b - a) / 2;
            if self.marginal(g, mid) > p {
                a = mid + 1;
            } else {
                b = mid;
            }
        }
        (a, self.value(g, a) - p * a as f64)
    }

    /// Lagrangian bound on utility under one exact row `Σ c·z = t`:
    /// `min_λ Σ_g max_z (V_g(z) − λ c_g z) + λ t`, each λ giving a valid bound.
    fn lagrange_bound(&self, row: &super::classes::Row, t: i64, lo: &[i64], hi: &[i64]) -> f64 {
        let ng = lo.len();
        let mut coef = vec![0.0f64; ng];
        for &(g, c) in &row.terms {
            coef[g as usize] = c as f64;
        }
        let free: f64 = (0..ng)
            .filter(|&g| coef[g] == 0.0)
            .map(|g| self.value(g, self.best_count(g, lo[g], hi[g])))
            .sum();
        let eval = |lam: f64| -> (f64, i64) {
            let mut val = lam * t as f64 + free;
            let mut used = 0i64;
            for &(g, c) in &row.terms {
                let (z, v) =
                    self.priced(g as usize, lam * c as f64, lo[g as usize], hi[g as usize]);
                val += v;
                used += c as i64 * z;
            }
            (val, used)
        };
        let mut span = 1.0f64;
        for &(g, _) in &row.terms {
            let g = g as usize;
            let p = &self.comp.groups[g].prefix;
            for k in [0, p.len().saturating_sub(2)] {
                if k + 1 < p.len() {
                    span = span.max((p[k + 1] - p[k]).abs() + 1.0);
                }
            }
        }
        let (mut a, mut b) = (-span, span);
        let mut best = f64::INFINITY;
        for _ in 0..48 {
            let mid = 0.5 * (a + b);
            let (v, used) = eval(mid);
            best = best.min(v);
            match used.cmp(&t) {
                Ordering::Greater => a = mid,
                Ordering::Less => b = mid,
                Ordering::Equal => break,
            }
        }
        best.min(eval(a).0).min(eval(b).0)
    }

    /// Solve exactly. `Ok(None)` means infeasible.
    pub(crate) fn solve(&self, limits: &Limits) -> Result<(Option<Solution>, u64), SearchStop> {
        let (mut lo, mut hi) = (self.lo.clone(), self.hi.clone());
        if !self.propagate(&mut lo, &mut hi) {
            return Ok((None, 0));
        }
        let mut best: Option<Solution> = None;
        let mut nodes = 0u64;
        let consider = |cand: Option<Solution>, best: &mut Option<Solution>| {
            if let Some(c) = cand {
                if best.as_ref().is_none_or(|b| better(&c, b)) {
                    *best = Some(c);
                }
            }
        };
        // Start from "no change" clamped into the box: a good incumbent.
        let start: Vec<i64> = (0..lo.len())
            .map(|g| self.m[g].clamp(lo[g], hi[g]))
            .collect();
        consider(self.evaluate(&start), &mut best);

        if lo.len() == 1 {
            // One group: enumerate.
            let mut z = vec![0];
            for v in lo[0]..=hi[0] {
                nodes += 1;
                if nodes > limits.max_nodes || nodes.is_multiple_of(4096) {
                    self.check_limits(nodes, limits)?;
                }
                z[0] = v;
                consider(self.evaluate(&z), &mut best);
            }
            return Ok((best, nodes));
        }

        let Some(root) = self.bound(&lo, &hi) else {
            return Ok((best, 0));
        };
        let mut stack: Vec<(Vec<i64>, Vec<i64>, Bound)> = vec![(lo, hi, root)];
        while let Some((lo, hi, b)) = stack.pop() {
            if best.as_ref().is_some_and(|s| b.cannot_beat(s)) {
                continue;
            }
            nodes += 1;
            if nodes > limits.max_nodes {
                return Err(SearchStop::Budget(nodes));
            }
            if nodes.is_multiple_of(256) {
                self.check_limits(nodes, limits)?;
            }
            let Some(g) = (0..lo.len())
                .filter(|&g| hi[g] > lo[g])
                .max_by_key(|&g| (hi[g] - lo[g], std::cmp::Reverse(g)))
            else {
                consider(self.evaluate(&lo), &mut best);
                continue;
            };
            let mid = lo[g] + (hi[g] - lo[g]) / 2;
            let mut kids = Vec::with_capacity(2);
            for (a, bnd) in [(lo[g], mid), (mid + 1, hi[g])] {
                let (mut l2, mut h2) = (lo.clone(), hi.clone());
                l2[g] = a;
                h2[g] = bnd;
                if !self.propagate(&mut l2, &mut h2) {
                    continue;
                }
                if let Some(kb) = self.bound(&l2, &h2) {
                    if best.as_ref().is_some_and(|s| kb.cannot_beat(s)) {
                        continue;
                    }
                    if (0..l2.len()).all(|i| l2[i] == h2[i]) {
                        nodes += 1;
                        consider(self.evaluate(&l2), &mut best);
                        continue;
                    }
                    kids.push((l2, h2, kb));
                }
            }
            // Better bound explored first: push it last.
            kids.sort_by(|x, y| {
                y.2.deviation10
                    .cmp(&x.2.deviation10)
                    .then(x.2.f.total_cmp(&y.2.f))
            });
            stack.extend(kids);
        }
        Ok((best, nodes))
    }

    fn check_limits(&self, nodes: u64, limits: &Limits) -> Result<(), SearchStop> {
        if nodes > limits.max_nodes || limits.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(SearchStop::Budget(nodes));
        }
        Ok(())
    }
}
