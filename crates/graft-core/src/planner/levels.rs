//! An exact search for components whose size penalty is separable: every
//! row that carries a penalty weight is one group's row, and at most one
//! row has an exact target, a plain sum of its groups. DenseNet's
//! concatenations, a concatenation of many branches and dense-block DAGs
//! are all of this kind: concatenations and the vertices that pass neurons
//! on carry no utility, so only the convolutions (one group each) weigh.
//!
//! (A weighted row over several groups is allowed when it is the exact
//! row: its size is fixed, so its penalty is a constant and a floor on the
//! max term.)
//!
//! There the objective is `Σ_g φ_g(z_g) − 0.8·max_g h_g(z_g)` with `φ_g`
//! concave (kept utility minus the L1 penalty of g's rows) and `h_g` convex
//! (g's weighted relative change). The LP relaxation of the branch and
//! bound spreads a change thinly over many interchangeable groups to keep
//! `max h` small, a gap that branching on counts closes only slowly (a
//! concatenation of 200 inputs grown by 100 ran past a minute). Here the
//! max term is handled exactly instead:
//!
//! - `h_g` only takes the values `w_r·k/n_r` (the *levels*). For a level
//!   `L`, `inner(L)` maximises `Σ φ_g` with every `h_g ≤ L` (an integer box
//!   per group) and the exact row met: a separable concave problem with one
//!   sum, solved exactly by moving one neuron at a time where it gains most
//!   (the marginals of a concave function only fall), from each group's own
//!   best count.
//! - Every answer whose max term lies in `[La, Lb]` has an objective of at
//!   most `inner(Lb) − 0.8·La`, and `inner(L)`'s own point scores at least
//!   `inner(L) − 0.8·L`. A bisection over the levels with that bound finds
//!   the optimum: only intervals whose bound beats the best answer by more
//!   than a relative 1e-9 are split.
//!
//! Rows with several groups and no weight (a concatenation's size ≥ 1) are
//! not part of `inner`; the answer is checked against them, and when one
//! fails the component goes to the branch and bound instead. Ties between
//! exactly equal objectives follow this method's order (earlier groups
//! take added neurons first and give removed ones last), not the branch
//! and bound's tie rules.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::solve::{consider, Answer, Bound, IntProblem, Limits, SearchStop, Solution};

/// A weighted single-group row: `|c·z − n|` weighted by `l1 / n` (L1 term)
/// and `max / n` (max term).
#[derive(Clone, Copy)]
struct OwnRow {
    c: i64,
    n: i64,
    l1: f64,
    max: f64,
}

impl OwnRow {
    fn change(&self, z: i64) -> i64 {
        (self.c * z - self.n).abs()
    }
    /// The level step `max / n`.
    fn unit(&self) -> f64 {
        self.max / self.n as f64
    }
}

/// A component in the separable form.
pub(crate) struct Separable {
    /// The weighted rows of each group.
    own: Vec<Vec<OwnRow>>,
    /// The exact row's groups (each counted once) and target.
    exact: Option<(Vec<usize>, i64)>,
    /// A weighted exact row over several groups: its size is fixed, so its
    /// L1 penalty is a constant (this) and its max-term value a floor on
    /// the max term (`floor`).
    fixed_l1: f64,
    floor: f64,
}

/// The answer of `inner(L)`: the counts and `Σ φ_g`.
struct Inner {
    z: Vec<i64>,
    phi: f64,
}

/// A level interval `[a, b]` still to search, with `inner(b)`.
struct Interval {
    a: f64,
    b: f64,
    top: Inner,
}

/// A neuron move in the greedy: gain, group (ordered so that the heap pops
/// the largest gain, then the earliest group when adding and the latest
/// when removing).
struct Move {
    gain: f64,
    g: usize,
    adding: bool,
}

impl PartialEq for Move {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Move {}
impl PartialOrd for Move {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Move {
    fn cmp(&self, o: &Self) -> Ordering {
        let by_group = if self.adding {
            o.g.cmp(&self.g)
        } else {
            self.g.cmp(&o.g)
        };
        self.gain.total_cmp(&o.gain).then(by_group)
    }
}

impl IntProblem<'_> {
    /// The separable form of this problem, if it has one (see the module
    /// docs); relaxed targets, step constraints and least sizes above 1 are
    /// left to the branch and bound.
    pub(crate) fn separable(&self) -> Option<Separable> {
        if !self.penalize {
            return None;
        }
        let mut own: Vec<Vec<OwnRow>> = vec![Vec::new(); self.lo.len()];
        let mut exact = None;
        let (mut fixed_l1, mut floor) = (0.0, 0.0f64);
        for row in &self.comp.rows {
            if !row.relaxed.is_empty() || row.step != 1 || row.floor != 1 {
                return None;
            }
            let weighted = row.l1_weight > 0.0 || row.max_weight > 0.0;
            if weighted {
                match (&row.terms[..], row.exact) {
                    (&[(g, c)], _) => own[g as usize].push(OwnRow {
                        c: i64::from(c),
                        n: row.size,
                        l1: row.l1_weight,
                        max: row.max_weight,
                    }),
                    (_, Some(t)) => {
                        let change = (t - row.size).abs() as f64 / row.size as f64;
                        fixed_l1 += row.l1_weight * change;
                        floor = floor.max(row.max_weight * change);
                    }
                    (_, None) => return None,
                }
            }
            if let Some(t) = row.exact {
                if exact.is_some() || row.terms.iter().any(|&(_, c)| c != 1) {
                    return None;
                }
                exact = Some((row.terms.iter().map(|&(g, _)| g as usize).collect(), t));
            }
        }
        Some(Separable {
            own,
            exact,
            fixed_l1,
            floor,
        })
    }

    /// Solve by bisection over the max term's levels. `Ok(None)`: the
    /// answer breaks a row this method does not model; use the branch and
    /// bound. `Ok(Some((None, n)))`: infeasible.
    pub(crate) fn level_search(
        &self,
        sep: &Separable,
        lo: &[i64],
        hi: &[i64],
        mut best: Option<Solution>,
        limits: &Limits,
    ) -> Result<Option<Answer>, SearchStop> {
        let top = self.top_level(sep, lo, hi);
        let mut nodes = 1u64;
        let Some(first) = self.inner(sep, lo, hi, top) else {
            return Ok(Some((best, nodes)));
        };
        let mut stack = vec![Interval {
            a: 0.0,
            b: top,
            top: first,
        }];
        while let Some(iv) = stack.pop() {
            let bound = iv.top.phi - 0.8 * iv.a;
            if best
                .as_ref()
                .is_some_and(|s| bound <= s.objective() + tol(s.objective()))
            {
                continue;
            }
            // The top's own point is an answer (its max term is at most b).
            let Some(cand) = self.evaluate(&iv.top.z) else {
                return Ok(None);
            };
            consider(Some(cand), &mut best);
            if iv.a >= iv.b {
                continue;
            }
            nodes += 1;
            if self.out_of_budget(nodes, limits) {
                let open = stack.iter().chain([&iv]).map(|v| Bound {
                    deviation10: 0,
                    f: v.top.phi - 0.8 * v.a,
                });
                return Err(SearchStop::budget(nodes, &best, open));
            }
            let mid = self
                .level_at_most(sep, lo, hi, 0.5 * (iv.a + iv.b))
                .max(iv.a);
            let right = self.level_above(sep, lo, hi, mid);
            if let Some(r) = right.filter(|&r| r <= iv.b) {
                stack.push(Interval {
                    a: r,
                    b: iv.b,
                    top: iv.top,
                });
            }
            if let Some(left) = self.inner(sep, lo, hi, mid) {
                stack.push(Interval {
                    a: iv.a,
                    b: mid,
                    top: left,
                });
            }
        }
        Ok(Some((best, nodes)))
    }

    /// The largest level any count in the box reaches.
    fn top_level(&self, sep: &Separable, lo: &[i64], hi: &[i64]) -> f64 {
        let mut top = sep.floor;
        for (g, rows) in sep.own.iter().enumerate() {
            for r in rows.iter().filter(|r| r.max > 0.0) {
                let k = r.change(lo[g]).max(r.change(hi[g]));
                top = top.max(r.unit() * k as f64);
            }
        }
        top
    }

    /// The largest level at most `x` (0 is a level).
    fn level_at_most(&self, sep: &Separable, lo: &[i64], hi: &[i64], x: f64) -> f64 {
        let mut best = if sep.floor <= x { sep.floor } else { 0.0 };
        for (g, rows) in sep.own.iter().enumerate() {
            for r in rows.iter().filter(|r| r.max > 0.0) {
                let kmax = r.change(lo[g]).max(r.change(hi[g]));
                let k = steps(x, r.unit()).min(kmax);
                best = best.max(r.unit() * k as f64);
            }
        }
        best
    }

    /// The smallest level above `x`, if any.
    fn level_above(&self, sep: &Separable, lo: &[i64], hi: &[i64], x: f64) -> Option<f64> {
        let mut next: Option<f64> = (sep.floor > x).then_some(sep.floor);
        for (g, rows) in sep.own.iter().enumerate() {
            for r in rows.iter().filter(|r| r.max > 0.0) {
                let kmax = r.change(lo[g]).max(r.change(hi[g]));
                let k = steps(x, r.unit()) + 1;
                if k <= kmax {
                    let l = r.unit() * k as f64;
                    next = Some(next.map_or(l, |n| n.min(l)));
                }
            }
        }
        next
    }

    /// Group g's separable value: kept utility minus its rows' L1 penalty.
    fn phi(&self, sep: &Separable, g: usize, z: i64) -> f64 {
        let l1: f64 = sep.own[g]
            .iter()
            .map(|r| r.l1 * r.change(z) as f64 / r.n as f64)
            .sum();
        self.value(g, z) - 0.1 * l1
    }

    /// The counts group g may take when every max-term value is at most
    /// `level`, or None when there are none.
    fn domain(
        &self,
        sep: &Separable,
        g: usize,
        lo: i64,
        hi: i64,
        level: f64,
    ) -> Option<(i64, i64)> {
        let (mut a, mut b) = (lo, hi);
        for r in sep.own[g].iter().filter(|r| r.max > 0.0) {
            let k = steps(level, r.unit());
            // |c·z − n| ≤ k
            a = a.max((r.n - k).div_euclid(r.c) + i64::from((r.n - k).rem_euclid(r.c) != 0));
            b = b.min((r.n + k).div_euclid(r.c));
        }
        (a <= b).then_some((a, b))
    }

    /// `inner(level)`: the best `Σ φ_g` with every max-term value at most
    /// `level` and the exact row met, or None when none meets it.
    fn inner(&self, sep: &Separable, lo: &[i64], hi: &[i64], level: f64) -> Option<Inner> {
        if level < sep.floor {
            return None;
        }
        let ng = lo.len();
        let mut dom = Vec::with_capacity(ng);
        let mut z = Vec::with_capacity(ng);
        for g in 0..ng {
            let (a, b) = self.domain(sep, g, lo[g], hi[g], level)?;
            dom.push((a, b));
            z.push(self.peak(sep, g, a, b));
        }
        if let Some((groups, target)) = &sep.exact {
            let sum: i64 = groups.iter().map(|&g| z[g]).sum();
            let adding = sum < *target;
            let mut heap = BinaryHeap::new();
            let push = |heap: &mut BinaryHeap<Move>, g: usize, zg: i64| {
                let (a, b) = dom[g];
                if adding && zg < b {
                    let gain = self.phi(sep, g, zg + 1) - self.phi(sep, g, zg);
                    heap.push(Move { gain, g, adding });
                } else if !adding && zg > a {
                    let gain = self.phi(sep, g, zg - 1) - self.phi(sep, g, zg);
                    heap.push(Move { gain, g, adding });
                }
            };
            for &g in groups {
                push(&mut heap, g, z[g]);
            }
            for _ in 0..(target - sum).abs() {
                let m = heap.pop()?;
                z[m.g] += if adding { 1 } else { -1 };
                push(&mut heap, m.g, z[m.g]);
            }
        }
        let phi = (0..ng).map(|g| self.phi(sep, g, z[g])).sum::<f64>() - 0.1 * sep.fixed_l1;
        Some(Inner { z, phi })
    }

    /// The best count of group g alone in `[a, b]` (φ is concave: walk from
    /// the current count towards the higher side; ties keep the count
    /// nearer the current one).
    fn peak(&self, sep: &Separable, g: usize, a: i64, b: i64) -> i64 {
        let mut z = self.m[g].clamp(a, b);
        let mut at = self.phi(sep, g, z);
        while z < b {
            let up = self.phi(sep, g, z + 1);
            if up <= at {
                break;
            }
            (z, at) = (z + 1, up);
        }
        while z > a {
            let down = self.phi(sep, g, z - 1);
            if down <= at {
                break;
            }
            (z, at) = (z - 1, down);
        }
        z
    }
}

/// How many steps of `unit` fit in `x` (levels are multiples of `unit`, so
/// a level computed as `unit·k` counts `k` despite round-off).
fn steps(x: f64, unit: f64) -> i64 {
    let k = (x / unit + 1e-9).floor();
    if k >= (1u64 << 62) as f64 {
        i64::MAX / 4
    } else {
        k.max(0.0) as i64
    }
}

fn tol(f: f64) -> f64 {
    1e-9 * f.abs().max(1.0)
}
