//! Issue 16: the planner's hard classes (`zoo::hard_cases`) that the exact
//! relaxation settles in few nodes. Node counts are deterministic, so these
//! are bounds on the search, not timings (those are in BENCHMARKS.md).

use graft_core::{plan, zoo, Budget, Request};

/// DenseNet-121, utilities uniform in (0, 1), exact −512 on the
/// concatenation ending block 3: more than 900 s of search with subsampled
/// tangents, 36 to 63 nodes with the tangent cuts (`IntProblem::tighten`).
#[test]
fn densenet_block3_shrink_is_proven_in_few_nodes() {
    let g = zoo::densenet121();
    let out3 = g.id("block3_out").unwrap();
    for seed in [1, 2] {
        let req = Request::new()
            .nout(out3, -512)
            .with_utility(zoo::uniform_utility(&g, seed))
            .with_budget(Budget {
                max_nodes: 400,
                time: None,
            });
        let p = plan(&g, &req).unwrap();
        assert!(
            p.optimal,
            "seed {seed}: not proven in 400 nodes (gap {})",
            p.gap
        );
        assert!(p.nodes <= 100, "seed {seed}: {} nodes", p.nodes);
        assert_eq!(p.nout_after(&g, out3), Some(512));
    }
}

/// An independent exact method for a concatenation of branches with an
/// exact change on the concatenation, from the documented objective alone:
/// for every level `L` the max term may take (`w·k/n` per branch), a
/// dynamic program over the branches and the running total maximises
/// kept utility minus the L1 penalty with every branch's weighted change
/// at most `L`; the optimum is the best `DP(L) − 0.8·L`. New neurons have
/// utility 0; a branch's weight `w` is its largest |utility|.
fn concat_optimum(g: &graft_core::Graph, u: &graft_core::Utility, delta: i64, extra: i64) -> f64 {
    let cat = g.id("cat").unwrap();
    let branches: Vec<_> = g.vertex(cat).unwrap().inputs().to_vec();
    // Per branch: sizes, the prefix sums of its sorted utilities.
    let info: Vec<(i64, f64, Vec<f64>)> = branches
        .iter()
        .map(|&b| {
            let mut vals = u.get(b).unwrap().to_vec();
            vals.sort_by(|x, y| y.total_cmp(x));
            let w = vals.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let mut prefix = vec![0.0];
            for v in &vals {
                prefix.push(prefix.last().unwrap() + v);
            }
            (vals.len() as i64, w, prefix)
        })
        .collect();
    let total: i64 = info.iter().map(|i| i.0).sum();
    let target = total + delta;
    let value = |i: &(i64, f64, Vec<f64>), z: i64| -> f64 {
        // Kept utility: the best min(z, n) neurons, or those of utility >= 0
        // when new (utility 0) neurons may replace negative ones.
        let k = z.min(i.0) as usize;
        let kept = i.2[k];
        kept - 0.1 * i.1 * (z - i.0).abs() as f64 / i.0 as f64
    };
    let mut levels: Vec<f64> = vec![0.0];
    for i in &info {
        for k in 1..=(i.0 + extra) {
            levels.push(i.1 * k as f64 / i.0 as f64);
        }
    }
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let mut best = f64::NEG_INFINITY;
    for &l in &levels {
        // dp[s]: best value with the branches so far summing to s.
        let mut dp = vec![f64::NEG_INFINITY; (target + 1) as usize];
        dp[0] = 0.0;
        for i in &info {
            let mut next = vec![f64::NEG_INFINITY; dp.len()];
            for z in 1..=(i.0 + extra) {
                if i.1 * (z - i.0).abs() as f64 / i.0 as f64 > l * (1.0 + 1e-12) {
                    continue;
                }
                let v = value(i, z);
                for (s, &d) in dp.iter().enumerate().take(dp.len() - z as usize) {
                    if d > f64::NEG_INFINITY {
                        let t = s + z as usize;
                        next[t] = next[t].max(d + v);
                    }
                }
            }
            dp = next;
        }
        let d = dp[target as usize];
        if d > f64::NEG_INFINITY {
            best = best.max(d - 0.8 * l);
        }
    }
    best
}

/// The planner's answer on concatenation fans equals the dynamic program's
/// optimum (utilities in (0, 1): no neuron is worth dropping for its own
/// sake, so only the change decides).
#[test]
fn concatenation_fans_match_an_independent_dynamic_program() {
    for (inputs, seed) in [(6, 1), (10, 2), (16, 3), (24, 4)] {
        let g = zoo::concat_fan(inputs, seed);
        let cat = g.id("cat").unwrap();
        let u = zoo::uniform_utility(&g, seed);
        for delta in [-(inputs as i64) / 2, inputs as i64 / 2, -3, 5] {
            let p = plan(&g, &Request::new().nout(cat, delta).with_utility(u.clone())).unwrap();
            assert!(p.optimal);
            let want = concat_optimum(&g, &u, delta, delta.max(0) + 1);
            assert!(
                (p.objective.value - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{inputs} inputs, seed {seed}, delta {delta}: planner {} vs DP {want}",
                p.objective.value
            );
        }
    }
}
