//! Planner benchmarks: `cargo bench -p graft-core --bench planner`.
//! Each iteration is a whole `plan` call (consistency check, components,
//! classes, groups, exact search and index lists) on a fresh request.

use criterion::{criterion_group, criterion_main, Criterion};
use graft_core::{plan, zoo, Request, Utility};
use std::hint::black_box;

fn a25(c: &mut Criterion) {
    let g = zoo::a25();
    let v0 = g.id("v0").unwrap();
    let v1 = g.id("v1").unwrap();
    let relaxed = Request::new().nout_relaxed(v1, -30);
    let exact = Request::new().nout(v0, -100);
    c.bench_function("a25/relaxed_-30_v1", |b| {
        b.iter(|| plan(black_box(&g), &relaxed).unwrap())
    });
    c.bench_function("a25/exact_-100_v0", |b| {
        b.iter(|| plan(black_box(&g), &exact).unwrap())
    });
}

fn resnet50(c: &mut Criterion) {
    let g = zoo::resnet50();
    let reselect = Request::new().with_utility(zoo::half_negative_utility(&g, 50));
    let out3 = g.id("stage3_out").unwrap();
    let exact = Request::new()
        .nout(out3, -512)
        .with_utility(zoo::half_negative_utility(&g, 51));
    c.bench_function("resnet50/reselect_half_negative", |b| {
        b.iter(|| plan(black_box(&g), &reselect).unwrap())
    });
    c.bench_function("resnet50/exact_-512_stage3", |b| {
        b.iter(|| plan(black_box(&g), &exact).unwrap())
    });
}

fn densenet121(c: &mut Criterion) {
    let g = zoo::densenet121();
    let reselect = Request::new().with_utility(zoo::half_negative_utility(&g, 121));
    let out3 = g.id("block3_out").unwrap();
    let exact = Request::new()
        .nout(out3, -512)
        .with_utility(zoo::half_negative_utility(&g, 122));
    let exact_default = Request::new().nout(out3, -512).with_utility(Utility::new());
    c.bench_function("densenet121/reselect_half_negative", |b| {
        b.iter(|| plan(black_box(&g), &reselect).unwrap())
    });
    c.bench_function("densenet121/exact_-512_block3", |b| {
        b.iter(|| plan(black_box(&g), &exact).unwrap())
    });
    c.bench_function("densenet121/exact_-512_block3_default_utility", |b| {
        b.iter(|| plan(black_box(&g), &exact_default).unwrap())
    });
}

fn synthetic_1m(c: &mut Criterion) {
    let g = zoo::synthetic(100, 2, 850);
    assert!(zoo::neurons(&g) >= 1_000_000, "{}", zoo::neurons(&g));
    let reselect = Request::new().with_utility(zoo::half_negative_utility(&g, 1));
    let mut group = c.benchmark_group("synthetic_1m");
    group.sample_size(10);
    group.bench_function("reselect_half_negative", |b| {
        b.iter(|| plan(black_box(&g), &reselect).unwrap())
    });
    group.finish();
}

/// Issue 16's hard classes (`zoo::hard_cases`), one benchmark per class and
/// seed, each under a 10 s budget (a plan that runs out is timed as it is
/// returned, with its gap). `examples/hard_plans.rs` prints the same cases
/// once each with the worst seed; `GRAFT_HARD=densenet` runs only the
/// classes whose name contains that text.
fn hard(c: &mut Criterion) {
    let only = std::env::var("GRAFT_HARD").unwrap_or_default();
    let mut group = c.benchmark_group("hard");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(200));
    group.measurement_time(std::time::Duration::from_secs(1));
    for case in zoo::hard_cases(&[1, 2, 3]) {
        if !case.name.contains(&only) {
            continue;
        }
        for (i, (g, req)) in case.runs.iter().enumerate() {
            let req = req.clone().within(std::time::Duration::from_secs(10));
            group.bench_function(format!("{}/seed{}", case.name, i + 1), |b| {
                b.iter(|| plan(black_box(g), &req).unwrap())
            });
        }
    }
    group.finish();
}

/// Issue 17: LLaMA-7B's shape (`zoo::llama_7b`, about 1.3M neurons, no
/// weights): every block's heads (8 KV heads to 4, so 32 query heads to
/// 16) and MLP (11,008 to 5,504) to half, exact, with seeded uniform
/// utilities on the absorbing vertices, and with the default utility.
fn llama(c: &mut Criterion) {
    let g = zoo::llama_7b();
    let mut half = Request::new();
    for b in 0..32 {
        half = half
            .nout(g.id(&format!("b{b}.k_heads")).unwrap(), -4)
            .nout(g.id(&format!("b{b}.gate")).unwrap(), -5504);
    }
    let weighted = half.clone().with_utility(zoo::uniform_utility(&g, 1));
    let mut group = c.benchmark_group("llama7b");
    group.sample_size(10);
    group.bench_function("heads_and_mlp_half_uniform", |b| {
        b.iter(|| plan(black_box(&g), &weighted).unwrap())
    });
    group.bench_function("heads_and_mlp_half_default", |b| {
        b.iter(|| plan(black_box(&g), &half).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    a25,
    resnet50,
    densenet121,
    synthetic_1m,
    hard,
    llama
);
criterion_main!(benches);
