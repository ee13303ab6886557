//! A residual add of two spatial values that are not both fresh weighted
//! layers gets one neuron per channel and position (it used to get one per
//! channel, and the next convolution read past the block).

use graft_nn::{Activation, Conv, Model, Op};
use graft_sparse::structure::{neuron_graph_for, Include};

#[test]
fn a_spatial_add_has_a_neuron_per_channel_and_position() {
    let mut m = Model::new();
    let x = m.input("x", 1).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[x], Some(2))
        .unwrap();
    let r = m
        .add("r", Op::Activation(Activation::Relu), &[c1], None)
        .unwrap();
    let c2 = m
        .add("c2", Op::Conv2d(Conv::same(3)), &[r], Some(2))
        .unwrap();
    let add = m.add("add", Op::Add, &[r, c2], None).unwrap();
    m.add("c3", Op::Conv2d(Conv::same(1)), &[add], Some(1))
        .unwrap();
    let g = neuron_graph_for(&m, &[vec![1, 4, 4]], Include::ALL).unwrap();
    // x 16, c1 32, c2 32, add 32, c3 16.
    assert_eq!(g.node_count(), 16 + 32 + 32 + 32 + 16);
    let adds = g.node_weights().filter(|n| n.vertex == "add").count();
    assert_eq!(adds, 32);
}
