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

fn masked_dense(c: &mut Criterion) {
    use graft_nn::{Device, Executor, Mode, Model, Op, SparseKernel, Tensor};
    let mut m = Model::new();
    let x = m.input("x", 4096).unwrap();
    let l = m
        .add("l", Op::MaskedDense { bias: true }, &[x], Some(4096))
        .unwrap();
    // 90% sparsity, seeded.
    let mut s = 7u64;
    let keep: Vec<f32> = (0..4096 * 4096)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            f32::from(s.is_multiple_of(10))
        })
        .collect();
    m.set_param(
        l,
        "mask",
        &Tensor::from_vec(keep, (4096, 4096), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let input = Tensor::randn(0f32, 1.0, (64, 4096), &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("masked_dense_4096_b64_90pct");
    g.sample_size(20);
    for (name, k) in [
        ("dense_path", SparseKernel::Never),
        ("sparse_kernel", SparseKernel::Auto),
    ] {
        m.set_sparse_kernel(k);
        let ex = Executor::new(&m).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| {
                black_box(
                    ex.forward(&m, std::slice::from_ref(&input), Mode::Eval, false)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, export, layers, masked_dense);
criterion_main!(benches);
