//! Structural mutation benchmarks: `cargo bench -p graft-core --bench mutate`.
//! Each iteration is a whole `Graph::dry_run` of a one-edit patch: the draft
//! copy, the size-cycle check, any alignment plan or forced-change
//! propagation, and the final `check()` (the commit itself is a move).

use criterion::{criterion_group, criterion_main, Criterion};
use graft_core::{zoo, Graph, NewVertex, Patch, SizeKind, VertexId};
use std::hint::black_box;

/// The first absorbing vertex (in topological order) with these sizes.
fn first_absorb(g: &Graph, nin: usize, nout: usize) -> VertexId {
    g.topological_order()
        .unwrap()
        .into_iter()
        .find(|&v| {
            let x = g.vertex(v).unwrap();
            x.kind() == SizeKind::Absorb && x.nin() == [nin] && x.nout() == nout
        })
        .expect("such a vertex")
}

fn resnet50(c: &mut Criterion) {
    let g = zoo::resnet50();
    // A 1x1 reduction (1024 -> 256) in stage 4: removing it aligns 256 with
    // the 1024-wide residual stream first (one exact plan).
    let reduce = first_absorb(&g, 1024, 256);
    let remove = Patch::new().remove(reduce);
    let out3 = g.id("stage3_out").unwrap();
    // A wider layer after stage 3: an exact plan resizes its consumers.
    let insert = Patch::new().insert(out3, NewVertex::absorb("wide", 1024 + 64));
    c.bench_function("resnet50/remove_1x1_reduce", |b| {
        b.iter(|| black_box(&g).dry_run(&remove).unwrap())
    });
    c.bench_function("resnet50/insert_wider_after_stage3", |b| {
        b.iter(|| black_box(&g).dry_run(&insert).unwrap())
    });
}

fn densenet121(c: &mut Criterion) {
    let g = zoo::densenet121();
    let cat = g.id("block3_out").unwrap();
    let first = g.vertex(cat).unwrap().inputs()[0];
    // Dropping the block input's slice from the block-3 concatenation, and
    // adding a second copy of it at the end: both follow through the
    // transition layer.
    let remove_edge = Patch::new().remove_edge(first, cat);
    let add_edge = Patch::new().add_edge(first, cat);
    c.bench_function("densenet121/remove_edge_block3", |b| {
        b.iter(|| black_box(&g).dry_run(&remove_edge).unwrap())
    });
    c.bench_function("densenet121/add_edge_block3", |b| {
        b.iter(|| black_box(&g).dry_run(&add_edge).unwrap())
    });
}

criterion_group!(benches, resnet50, densenet121);
criterion_main!(benches);
