//! Dynamic-network benchmarks: `cargo bench -p graft-nn --bench dynamic`.
//!
//! - `cond_b256/*`: the seed's DynamicNet widened to 1024-1024(-1024)-10
//!   (fc1, the conditional fc2, fc3), inference on a batch of 256 with
//!   per-sample controls: `static_without` is the graph without fc2,
//!   `static_with` the graph with it, `none` the dynamic graph where no
//!   sample takes fc2, `half` where every other sample takes it, `all`
//!   where every sample does.
//! - `moe_b256/*`: 8 experts (256-1024-256 each) with a router on 256
//!   features, batch 256: `top2` runs each expert on the samples routed to
//!   it; `dense` is the same layer with k = 8, which runs every expert on
//!   every sample.

use criterion::{criterion_group, criterion_main, Criterion};
use graft_nn::{zoo, Activation, DType, Device, Executor, Model, Op, Run, Tensor};
use std::hint::black_box;

fn chain(with_fc2: bool) -> Model {
    let mut m = Model::with(Device::Cpu, DType::F32, 1);
    let x = m.input("x", 1024).unwrap();
    let fc1 = m
        .add("fc1", Op::Dense { bias: true }, &[x], Some(1024))
        .unwrap();
    let mut at = m
        .add("relu1", Op::Activation(Activation::Relu), &[fc1], None)
        .unwrap();
    if with_fc2 {
        let fc2 = m
            .add("fc2", Op::Dense { bias: true }, &[at], Some(1024))
            .unwrap();
        at = m
            .add("relu2", Op::Activation(Activation::Relu), &[fc2], None)
            .unwrap();
    }
    m.add("fc3", Op::Dense { bias: true }, &[at], Some(10))
        .unwrap();
    m
}

fn control(n: usize, every: usize) -> Tensor {
    let c: Vec<f32> = (0..n)
        .map(|i| {
            if every > 0 && i % every == 0 {
                0.9
            } else {
                0.1
            }
        })
        .collect();
    Tensor::from_vec(c, (n, 1), &Device::Cpu).unwrap()
}

fn cond(c: &mut Criterion) {
    let n = 256;
    let x = Tensor::randn(0f32, 1.0, (n, 1024), &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("cond_b256");
    for (name, with) in [("static_without", false), ("static_with", true)] {
        let m = chain(with);
        let ex = Executor::new(&m).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(ex.run(&m, std::slice::from_ref(&x), &Run::eval()).unwrap()))
        });
    }
    let m = zoo::dynamic_net(1024, 1024, 10, false, 1).unwrap();
    let ex = Executor::new(&m).unwrap();
    for (name, every) in [("none", 0), ("half", 2), ("all", 1)] {
        let ctl = control(n, every);
        g.bench_function(name, |b| {
            b.iter(|| black_box(ex.run(&m, &[x.clone(), ctl.clone()], &Run::eval()).unwrap()))
        });
    }
    g.finish();
}

fn moe(c: &mut Criterion) {
    let n = 256;
    let x = Tensor::randn(0f32, 1.0, (n, 256), &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("moe_b256");
    g.sample_size(20);
    for (name, k) in [("top2", 2), ("dense", 8)] {
        let m = zoo::moe_mlp(256, 1024, 8, k, 10, 3).unwrap();
        let ex = Executor::new(&m).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| black_box(ex.run(&m, std::slice::from_ref(&x), &Run::eval()).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, cond, moe);
criterion_main!(benches);
