//! Sparse-structure benchmarks: `cargo bench -p graft-sparse --bench sparse`.
//! deepstruct's figures (shared/acceptance/sparse.md, 2 cores) are given in
//! BENCHMARKS.md next to ours.

use criterion::{criterion_group, criterion_main, Criterion};
use graft_sparse::ffn::masked_ffn;
use graft_sparse::generators::erdos_renyi;
use graft_sparse::structure::{neuron_graph, Include};
use std::hint::black_box;

fn export(c: &mut Criterion) {
    let m = masked_ffn(784, 10, &[1000, 500, 500, 200, 100], 0).unwrap();
    let mut g = c.benchmark_group("structure");
    g.sample_size(10);
    g.bench_function("export_ffn_784_1000_500_500_200_100_10", |b| {
        b.iter(|| black_box(neuron_graph(&m, Include::ALL).unwrap()))
    });
    g.finish();
}

fn layers(c: &mut Criterion) {
    let g = erdos_renyi(2000, 0.01, 1);
    c.bench_function("dag/layer_index_gnp_2000_0.01", |b| {
        b.iter(|| black_box(g.layers()))
    });
}

criterion_group!(benches, export, layers);
criterion_main!(benches);
