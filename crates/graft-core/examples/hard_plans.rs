//! The planner's hard cases (issue 16), each solved once per seed, with the
//! worst time across seeds: `cargo run --release -p graft-core --example
//! hard_plans [-- SECONDS_PER_CASE [FILTER]]`. The same cases, timed by
//! criterion, are in `benches/planner.rs` (group `hard`).

use std::time::{Duration, Instant};

use graft_core::{plan, zoo, Budget, PlanError};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let limit: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let filter = args.get(2).cloned().unwrap_or_default();
    let seeds = [1u64, 2, 3];
    println!("| case | worst ms | ms per seed | nodes per seed |");
    println!("|---|---|---|---|");
    for case in zoo::hard_cases(&seeds) {
        if !case.name.contains(&filter) {
            continue;
        }
        let mut times = Vec::new();
        let mut nodes = Vec::new();
        for (g, req) in &case.runs {
            let req = req.clone().with_budget(Budget {
                max_nodes: u64::MAX,
                time: Some(Duration::from_secs_f64(limit)),
            });
            let t = Instant::now();
            let r = plan(g, &req);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            times.push(ms);
            nodes.push(match r {
                Ok(p) => p.nodes.to_string(),
                Err(PlanError::BudgetExceeded { nodes, .. }) => format!("out of time at {nodes}"),
                Err(e) => format!("error: {e}"),
            });
        }
        let worst = times.iter().copied().fold(0.0, f64::max);
        let per: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        println!(
            "| {} | {worst:.1} | {} | {} |",
            case.name,
            per.join(", "),
            nodes.join(", ")
        );
    }
}
