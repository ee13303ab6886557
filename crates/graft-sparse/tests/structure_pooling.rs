//! Pooling in the neuron-level graph: each output neuron reads its window
//! of the same channel (weight 1 for a max, 1/window for an average),
//! clipped at the borders.

use graft_nn::{Model, Op};
use graft_sparse::structure::{neuron_graph_for, Include};
use petgraph::visit::EdgeRef;

/// (input index, output index, weight) of every edge into `target`.
fn edges_into(model: &Model, shape: Vec<usize>, target: &str) -> Vec<(usize, usize, f32)> {
    let g = neuron_graph_for(model, &[shape], Include::ALL).unwrap();
    let mut out: Vec<(usize, usize, f32)> = g
        .edge_references()
        .filter(|e| g[e.target()].vertex == target)
        .map(|e| (g[e.source()].index, g[e.target()].index, *e.weight()))
        .collect();
    out.sort_by_key(|e| (e.1, e.0));
    out
}

fn pooled(op: Op, channels: usize) -> Model {
    let mut m = Model::new();
    let x = m.input("x", channels).unwrap();
    m.add("pool", op, &[x], None).unwrap();
    m
}

#[test]
fn max_and_average_windows() {
    // 2 channels of 4x4, 2x2 windows with stride 2: 2·4 outputs of 4 reads.
    let e = edges_into(
        &pooled(
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: 2.into(),
                padding: 0.into(),
            },
            2,
        ),
        vec![2, 4, 4],
        "pool",
    );
    assert_eq!(e.len(), 32);
    assert!(e.iter().all(|&(_, _, w)| w == 1.0));
    // Output 0 (channel 0, top left) reads inputs 0, 1, 4, 5; output 7
    // (channel 1, bottom right) reads 16 + 10, 11, 14, 15.
    let reads = |t: usize| {
        e.iter()
            .filter(|x| x.1 == t)
            .map(|x| x.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(reads(0), vec![0, 1, 4, 5]);
    assert_eq!(reads(7), vec![26, 27, 30, 31]);
    let e = edges_into(
        &pooled(
            Op::AvgPool2d {
                kernel: 2.into(),
                stride: 2.into(),
            },
            2,
        ),
        vec![2, 4, 4],
        "pool",
    );
    assert_eq!(e.len(), 32);
    assert!(e.iter().all(|&(_, _, w)| w == 0.25));
}

#[test]
fn padded_max_pool_clips_at_the_border() {
    // ResNet's stem pool: 3x3, stride 2, padding 1, on 4x4 -> 2x2.
    let e = edges_into(
        &pooled(
            Op::MaxPool2d {
                kernel: 3.into(),
                stride: 2.into(),
                padding: 1.into(),
            },
            1,
        ),
        vec![1, 4, 4],
        "pool",
    );
    let reads = |t: usize| {
        e.iter()
            .filter(|x| x.1 == t)
            .map(|x| x.0)
            .collect::<Vec<_>>()
    };
    // Top left: rows and columns -1..=1, clipped to 0..=1.
    assert_eq!(reads(0), vec![0, 1, 4, 5]);
    // Bottom right: rows and columns 1..=3.
    assert_eq!(reads(3), vec![5, 6, 7, 9, 10, 11, 13, 14, 15]);
}

#[test]
fn global_pools_read_every_position_of_their_channel() {
    let e = edges_into(&pooled(Op::GlobalAvgPool, 2), vec![2, 3, 3], "pool");
    assert_eq!(e.len(), 18);
    assert!(e
        .iter()
        .all(|&(s, t, w)| s / 9 == t && (w - 1.0 / 9.0).abs() < 1e-7));
    let e = edges_into(&pooled(Op::GlobalMaxPool, 2), vec![2, 3, 3], "pool");
    assert_eq!(e.len(), 18);
    assert!(e.iter().all(|&(s, t, w)| s / 9 == t && w == 1.0));
}

#[test]
fn a_neuron_graph_too_large_is_refused_before_anything_runs() {
    // A 3x3 convolution on a 4096x4096 image: 2^25 input neurons and some
    // 10^8 taps. Before, the forward pass allocated the image and the
    // builder ran out of memory; now the counts from the shapes refuse it.
    use graft_nn::{Conv, Model, Op};
    use graft_sparse::structure::{neuron_graph_for, Include, MAX_NEURONS};
    let mut m = Model::new();
    let x = m.input("x", 2).unwrap();
    m.add("conv", Op::Conv2d(Conv::same(3)), &[x], Some(3))
        .unwrap();
    let e = neuron_graph_for(&m, &[vec![2, 4096, 4096]], Include::ALL).unwrap_err();
    match e {
        graft_sparse::SparseError::TooLarge {
            nodes, max_nodes, ..
        } => {
            assert_eq!(nodes, 5 * 4096 * 4096);
            assert_eq!(max_nodes, MAX_NEURONS);
        }
        other => panic!("{other}"),
    }
    // Small enough, it is built.
    let g = neuron_graph_for(&m, &[vec![2, 8, 8]], Include::ALL).unwrap();
    assert_eq!(g.node_count(), 5 * 64);
}
