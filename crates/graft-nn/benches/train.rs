//! Training-step benchmarks: `cargo bench -p graft-nn --bench train`.
//! `scripts/bench_torch.py` runs the same work in PyTorch for comparison
//! (BENCHMARKS.md has both).
//!
//! - `mlp_784_100_100_10/fwd_bwd_b64`: forward, cross-entropy and backward
//!   of a 784-[100,100]-10 ReLU MLP at batch 64.
//! - `resnet18_cifar/train_step_b8`: one SGD training step (forward in
//!   training mode, backward, update) of a ResNet-18-shaped network (basic
//!   blocks, 64-128-256-512 channels, batch norm) on 8 images of 3×32×32.

use criterion::{criterion_group, criterion_main, Criterion};
use graft_nn::train::{Loss, Optimizer, Sgd};
use graft_nn::{Activation, DType, Device, Executor, Mode, Model, Op, Tensor};
use std::hint::black_box;

fn relu() -> Op {
    Op::Activation(Activation::Relu)
}

fn mlp() -> Model {
    let mut m = Model::with(Device::Cpu, DType::F32, 0);
    let x = m.input("x", 784).unwrap();
    let h1 = m
        .add("h1", Op::Dense { bias: true }, &[x], Some(100))
        .unwrap();
    let a1 = m.add("a1", relu(), &[h1], None).unwrap();
    let h2 = m
        .add("h2", Op::Dense { bias: true }, &[a1], Some(100))
        .unwrap();
    let a2 = m.add("a2", relu(), &[h2], None).unwrap();
    m.add("out", Op::Dense { bias: true }, &[a2], Some(10))
        .unwrap();
    m
}

fn labels(n: usize) -> Tensor {
    Tensor::from_vec(
        (0..n as u32).map(|i| i % 10).collect::<Vec<_>>(),
        n,
        &Device::Cpu,
    )
    .unwrap()
}

fn bench_mlp(c: &mut Criterion) {
    let m = mlp();
    let ex = Executor::new(&m).unwrap();
    let x = Tensor::randn(0f32, 1.0, (64, 784), &Device::Cpu).unwrap();
    let y = labels(64);
    c.bench_function("mlp_784_100_100_10/fwd_bwd_b64", |b| {
        b.iter(|| {
            let f = ex
                .forward(&m, std::slice::from_ref(&x), Mode::Train { seed: 0 }, false)
                .unwrap();
            let l = Loss::CrossEntropy.compute(&f.outputs[0], &y).unwrap();
            black_box(l.backward().unwrap());
        })
    });
}

fn bench_resnet(c: &mut Criterion) {
    let mut m = graft_nn::zoo::resnet18_cifar(0).unwrap();
    let x = Tensor::randn(0f32, 1.0, (8, 3, 32, 32), &Device::Cpu).unwrap();
    let y = labels(8);
    let mut opt = Sgd::new(0.01, 0.9);
    let mut g = c.benchmark_group("resnet18_cifar");
    g.sample_size(10);
    g.bench_function("train_step_b8", |b| {
        b.iter(|| {
            let ex = Executor::new(&m).unwrap();
            let f = ex
                .forward(&m, std::slice::from_ref(&x), Mode::Train { seed: 0 }, false)
                .unwrap();
            let l = Loss::CrossEntropy.compute(&f.outputs[0], &y).unwrap();
            let grads = l.backward().unwrap();
            opt.step(&m, &grads).unwrap();
            m.apply_updates(&f).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench_mlp, bench_resnet);
criterion_main!(benches);
