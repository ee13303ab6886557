//! Issue 17's planner target on LLaMA-7B's shape (`zoo::llama_7b`): every
//! block's heads (8 KV heads to 4) and MLP (11,008 to 5,504) to half,
//! exact. Prints the time of each of `runs` whole `plan` calls (default 5)
//! and the worst: `cargo run --release -p graft-core --example llama_plan`.

use std::time::Instant;

use graft_core::{plan, zoo, Request};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let t = Instant::now();
    let g = zoo::llama_7b();
    println!(
        "llama_7b: {} vertices, {} neurons, built in {:.1} ms",
        g.ids().count(),
        zoo::neurons(&g),
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut half = Request::new();
    for b in 0..32 {
        half = half
            .nout(g.id(&format!("b{b}.k_heads")).unwrap(), -4)
            .nout(g.id(&format!("b{b}.gate")).unwrap(), -5504);
    }
    for (label, req) in [
        (
            "uniform utility",
            half.clone().with_utility(zoo::uniform_utility(&g, 1)),
        ),
        ("default utility", half),
    ] {
        let mut worst = 0f64;
        for _ in 0..runs {
            let t = Instant::now();
            let p = plan(&g, &req).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(p.optimal);
            worst = worst.max(ms);
            print!("{ms:.1} ");
        }
        println!("ms: {label}, worst {worst:.1} ms");
    }
}
