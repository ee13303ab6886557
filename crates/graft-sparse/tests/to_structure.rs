//! From masks to structure: neurons that pruning left without inputs or
//! outputs are removed by the planner, the layers shrink, the function
//! stays.

use graft_nn::{Device, Executor, Mode, Model, Tensor};
use graft_sparse::ffn::masked_ffn;
use graft_sparse::prune::{masked_layers, prune_global, to_structure};

fn out(m: &Model, x: &Tensor) -> Vec<f32> {
    let ex = Executor::new(m).unwrap();
    ex.forward(m, std::slice::from_ref(x), Mode::Eval, false)
        .unwrap()
        .outputs[0]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Switch off the mask entries of a convolution's (output, input) channel
/// pairs where `f` holds.
fn zero_mask(m: &mut Model, v: graft_nn::VertexId, f: &dyn Fn(usize, usize) -> bool) {
    let t = m.param(v, "mask").unwrap();
    let d = t.dims().to_vec();
    let mut vals: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let per: usize = d[1..].iter().product();
    let inner: usize = d[2..].iter().product();
    for (k, val) in vals.iter_mut().enumerate() {
        if f(k / per, (k % per) / inner) {
            *val = 0.0;
        }
    }
    m.set_param(v, "mask", &Tensor::from_vec(vals, d, &Device::Cpu).unwrap())
        .unwrap();
}

fn params(m: &Model) -> usize {
    m.trainable().iter().map(|(_, _, v)| v.elem_count()).sum()
}

#[test]
fn pruned_mlp_shrinks_and_keeps_its_function() {
    let mut m = masked_ffn(20, 5, &[30, 30], 9).unwrap();
    // Unstructured pruning, plus a few neurons cut off entirely: fc1's
    // neuron 3 loses every input, and fc2's inputs from neuron 7 are gone.
    prune_global(&mut m, 0.8).unwrap();
    let fc1 = m.id("fc1").unwrap();
    let fc2 = m.id("fc2").unwrap();
    let set = |m: &mut Model, v, f: &dyn Fn(usize, usize) -> bool| {
        let t = m.param(v, "mask").unwrap();
        let (r, c) = t.dims2().unwrap();
        let mut vals: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..r {
            for j in 0..c {
                if f(i, j) {
                    vals[i * c + j] = 0.0;
                }
            }
        }
        m.set_param(
            v,
            "mask",
            &Tensor::from_vec(vals, (r, c), &Device::Cpu).unwrap(),
        )
        .unwrap();
    };
    set(&mut m, fc1, &|i, _| i == 3);
    set(&mut m, fc2, &|_, j| j == 7);
    let x = Tensor::randn(0f32, 1.0, (16, 20), &Device::Cpu).unwrap();
    let before = out(&m, &x);
    let (p0, w0) = (params(&m), m.graph().nout(fc1).unwrap());

    let removed = to_structure(&mut m).unwrap();
    assert!(removed >= 2, "removed {removed}");
    assert!(m.graph().nout(fc1).unwrap() < w0);
    assert!(params(&m) < p0);
    let after = out(&m, &x);
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Nothing dead is left.
    assert_eq!(to_structure(&mut m).unwrap(), 0);
    assert_eq!(masked_layers(&m).len(), 3);
}

#[test]
fn pruned_cnn_shrinks_and_keeps_its_function() {
    use graft_nn::{Activation, Conv, Op};
    let mut m = Model::new();
    let x = m.input("x", 3).unwrap();
    let c1 = m
        .add("c1", Op::MaskedConv2d(Conv::same(3)), &[x], Some(12))
        .unwrap();
    let r1 = m
        .add("r1", Op::Activation(Activation::Relu), &[c1], None)
        .unwrap();
    // The second convolution has no padding, so constants fold exactly.
    let valid = Conv {
        padding: 0.into(),
        ..Conv::same(3)
    };
    let c2 = m
        .add("c2", Op::MaskedConv2d(valid), &[r1], Some(10))
        .unwrap();
    let r2 = m
        .add("r2", Op::Activation(Activation::Relu), &[c2], None)
        .unwrap();
    m.add("c3", Op::MaskedConv2d(valid), &[r2], Some(4))
        .unwrap();
    prune_global(&mut m, 0.6).unwrap();
    // c1's channel 2 loses every input; c2 stops reading c1's channel 5;
    // c3 stops reading c2's channel 0.
    zero_mask(&mut m, c1, &|o, _| o == 2);
    zero_mask(&mut m, c2, &|_, i| i == 5);
    let c3 = m.id("c3").unwrap();
    zero_mask(&mut m, c3, &|_, i| i == 0);
    let input = Tensor::randn(0f32, 1.0, (2, 3, 9, 9), &Device::Cpu).unwrap();
    let before = out(&m, &input);
    let p0 = params(&m);
    let removed = to_structure(&mut m).unwrap();
    assert!(removed >= 3, "removed {removed}");
    assert!(m.graph().nout(c1).unwrap() <= 10 && m.graph().nout(c2).unwrap() <= 9);
    assert!(params(&m) < p0);
    let after = out(&m, &input);
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// Through a batch norm and a tanh, a channel nobody reads any more is
/// removed (with its batch-norm channel), while a channel with no inputs
/// but still read stays: its constant would change through those ops.
#[test]
fn unread_channels_go_through_batch_norm_and_tanh() {
    use graft_nn::{Activation, Conv, Op};
    let mut m = Model::with(Device::Cpu, graft_nn::DType::F32, 3);
    let x = m.input("x", 2).unwrap();
    let c1 = m
        .add("c1", Op::MaskedConv2d(Conv::same(3)), &[x], Some(6))
        .unwrap();
    let bn = m
        .add(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[c1],
            None,
        )
        .unwrap();
    let t = m
        .add("t", Op::Activation(Activation::Tanh), &[bn], None)
        .unwrap();
    let c2 = m
        .add("c2", Op::MaskedConv2d(Conv::same(3)), &[t], Some(4))
        .unwrap();
    // Non-trivial running statistics, so the batch norm is not the identity.
    for (name, vals) in [
        ("running_mean", vec![0.1f32, -0.2, 0.3, 0.0, 0.5, -0.1]),
        ("running_var", vec![1.5f32, 0.5, 2.0, 1.0, 0.8, 1.2]),
    ] {
        m.set_param(bn, name, &Tensor::from_vec(vals, 6, &Device::Cpu).unwrap())
            .unwrap();
    }
    // c2 reads nothing from c1's channel 1; c1's channel 4 has no inputs.
    zero_mask(&mut m, c2, &|_, i| i == 1);
    zero_mask(&mut m, c1, &|o, _| o == 4);
    let xs = Tensor::randn(0f32, 1.0, (3, 2, 5, 5), &Device::Cpu).unwrap();
    let before = out(&m, &xs);
    assert_eq!(to_structure(&mut m).unwrap(), 1);
    assert_eq!(m.graph().nout(c1).unwrap(), 5);
    assert_eq!(m.graph().nout(bn).unwrap(), 5);
    assert_eq!(m.graph().nin(c2).unwrap(), &[5]);
    let after = out(&m, &xs);
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}
