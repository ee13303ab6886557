//! ONNX benchmarks: `cargo bench -p graft-onnx --bench onnx`.
//! A ResNet-50 built in graft (25.6M parameters): export, import, and
//! import + prune half of every convolution by magnitude + export. A chain
//! of 10,000 vertices (dense, ReLU, dense, ...): import, and what `graft
//! inspect` does (import, then shapes and MACs of every vertex).

use criterion::{criterion_group, criterion_main, Criterion};
use graft_onnx::{export_bytes, import_bytes, mutations, Interface};
use std::hint::black_box;

fn resnet50(c: &mut Criterion) {
    let m = graft_nn::zoo::resnet50(0).unwrap();
    let shape = vec![vec![1, 3, 224, 224]];
    let iface = Interface::for_model(&m, &shape).unwrap();
    let bytes = export_bytes(&m, &iface).unwrap();
    eprintln!("ResNet-50 ONNX: {} MB", bytes.len() / 1_000_000);
    // What the pruning benchmark does, once, for the record.
    let channels = |m: &graft_nn::Model| -> usize {
        m.graph()
            .ids()
            .filter(|&v| matches!(m.layer(v).map(|l| &l.op), Some(graft_nn::Op::Conv2d(_))))
            .map(|v| m.graph().nout(v).unwrap())
            .sum()
    };
    let mut pruned = import_bytes(&bytes).unwrap().model;
    mutations::prune_half_by_magnitude(&mut pruned).unwrap();
    let out = export_bytes(&pruned, &iface).unwrap();
    eprintln!(
        "pruning: conv channels {} -> {}, ONNX {} MB -> {} MB",
        channels(&m),
        channels(&pruned),
        bytes.len() / 1_000_000,
        out.len() / 1_000_000
    );
    let mut g = c.benchmark_group("resnet50_onnx");
    g.sample_size(10);
    g.bench_function("export", |b| {
        b.iter(|| black_box(export_bytes(&m, &iface).unwrap()))
    });
    g.bench_function("import", |b| {
        b.iter(|| black_box(import_bytes(&bytes).unwrap()))
    });
    g.bench_function("import_export", |b| {
        b.iter(|| {
            let imp = import_bytes(&bytes).unwrap();
            black_box(export_bytes(&imp.model, &imp.interface).unwrap())
        })
    });
    g.bench_function("import_prune_half_export", |b| {
        b.iter(|| {
            let mut imp = import_bytes(&bytes).unwrap();
            mutations::prune_half_by_magnitude(&mut imp.model).unwrap();
            black_box(export_bytes(&imp.model, &imp.interface).unwrap())
        })
    });
    g.finish();
}

/// Input, then 5,000 × (dense 8 → ReLU): 10,001 vertices.
fn chain_10k(c: &mut Criterion) {
    let mut m = graft_nn::Model::new();
    let mut x = m.input("x", 8).unwrap();
    for k in 0..5_000 {
        let d = m
            .add(
                &format!("fc{k}"),
                graft_nn::Op::Dense { bias: true },
                &[x],
                Some(8),
            )
            .unwrap();
        x = m
            .add(
                &format!("relu{k}"),
                graft_nn::Op::Activation(graft_nn::Activation::Relu),
                &[d],
                None,
            )
            .unwrap();
    }
    let iface = graft_onnx::Interface::for_model(&m, &[vec![1, 8]]).unwrap();
    let bytes = export_bytes(&m, &iface).unwrap();
    let imported = import_bytes(&bytes).unwrap();
    assert_eq!(imported.model.graph().len(), 10_001);
    let mut g = c.benchmark_group("chain_10k");
    g.sample_size(10);
    g.bench_function("import", |b| {
        b.iter(|| black_box(import_bytes(&bytes).unwrap()))
    });
    g.bench_function("import_and_cost", |b| {
        b.iter(|| {
            let imp = import_bytes(&bytes).unwrap();
            black_box(imp.model.cost(&[vec![8]]).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, resnet50, chain_10k);
criterion_main!(benches);
