//! Shapes inferred without running (`Model::cost`) equal the shapes the
//! executor produces, op by op; MACs follow the usual formulas; the
//! parameter count is the trainable tensors' size.

use graft_nn::{Activation, Cell, Conv, Device, Executor, Groups, Model, Op, Run, Tensor};

fn conv(kernel: usize, stride: usize, padding: usize, dilation: usize, groups: Groups) -> Conv {
    Conv {
        kernel: graft_nn::Hw::square(kernel),
        stride: graft_nn::Hw::square(stride),
        padding: graft_nn::Hw::square(padding),
        dilation: graft_nn::Hw::square(dilation),
        groups,
        bias: true,
    }
}

fn check(m: &Model, input: Vec<usize>) {
    let mut batch = vec![2];
    batch.extend(&input);
    let x = Tensor::randn(0f32, 1.0, batch, &Device::Cpu).unwrap();
    let f = Executor::new(m)
        .unwrap()
        .run(
            m,
            &[x],
            &Run {
                keep: true,
                ..Run::eval()
            },
        )
        .unwrap();
    let cost = m.cost(&[input]).unwrap();
    for v in m.graph().ids() {
        assert_eq!(
            cost.shapes[&v],
            f.activations[&v].dims()[1..],
            "{}",
            m.graph().name(v)
        );
    }
    let trainable: usize = m.trainable().iter().map(|(_, _, p)| p.elem_count()).sum();
    assert_eq!(m.parameter_count(), trainable as u64);
}

#[test]
fn inferred_shapes_match_execution() {
    // Images: strides, padding, dilation, groups, depthwise, transposed
    // convolution, pools, concat, flatten, reshape.
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let a = m
        .add(
            "a",
            Op::Conv2d(conv(3, 2, 1, 1, Groups::One)),
            &[x],
            Some(8),
        )
        .unwrap();
    let b = m
        .add(
            "b",
            Op::Conv2d(conv(3, 1, 2, 2, Groups::Fixed(2))),
            &[a],
            Some(8),
        )
        .unwrap();
    let d = m
        .add(
            "d",
            Op::Conv2d(conv(3, 1, 1, 1, Groups::Depthwise)),
            &[b],
            Some(16),
        )
        .unwrap();
    let bn = m
        .add(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[d],
            None,
        )
        .unwrap();
    let r = m
        .add("r", Op::Activation(Activation::Relu), &[bn], None)
        .unwrap();
    let t = m
        .add(
            "t",
            Op::ConvTranspose2d {
                conv: conv(3, 2, 1, 1, Groups::One),
                output_padding: 1,
            },
            &[r],
            Some(4),
        )
        .unwrap();
    let mp = m
        .add(
            "mp",
            Op::MaxPool2d {
                kernel: 3.into(),
                stride: 2.into(),
                padding: 1.into(),
            },
            &[t],
            None,
        )
        .unwrap();
    let ap = m
        .add(
            "ap",
            Op::AvgPool2d {
                kernel: 2.into(),
                stride: 2.into(),
            },
            &[mp],
            None,
        )
        .unwrap();
    let g1 = m.add("g1", Op::GlobalAvgPool, &[ap], None).unwrap();
    let g2 = m.add("g2", Op::GlobalMaxPool, &[ap], None).unwrap();
    let cat = m.add("cat", Op::Concat, &[g1, g2], None).unwrap();
    let fl = m
        .add("fl", Op::Flatten { spatial: 16 }, &[ap], None)
        .unwrap();
    let rs = m
        .add(
            "rs",
            Op::Reshape {
                shape: vec![4, 4, 4],
            },
            &[fl],
            None,
        )
        .unwrap();
    let _ = m.add("add", Op::Add, &[rs, ap], None).unwrap();
    m.add("head", Op::Dense { bias: true }, &[cat], Some(3))
        .unwrap();
    check(&m, vec![4, 16, 16]);
    // Conv "a": 8x8 outputs, 8 channels, 4 inputs, 3x3 taps.
    let cost = m.cost(&[vec![4, 16, 16]]).unwrap();
    assert_eq!(cost.macs[&a], 64 * 8 * 4 * 9);
    // Grouped "b": half the input channels per output.
    assert_eq!(cost.macs[&b], 64 * 8 * 4 * 9);
    // Depthwise "d": one input channel per output.
    assert_eq!(cost.macs[&d], 64 * 16 * 9);

    // Sequences [N, F, T]: conv1d, recurrent layers, last step.
    let mut s = Model::new();
    let x = s.input("x", 3).unwrap();
    let c = s
        .add(
            "c",
            Op::Conv1d(conv(3, 1, 1, 1, Groups::One)),
            &[x],
            Some(5),
        )
        .unwrap();
    let l = s
        .add(
            "lstm",
            Op::Recurrent {
                cell: Cell::Lstm,
                sequences: true,
            },
            &[c],
            Some(6),
        )
        .unwrap();
    let last = s.add("last", Op::LastStep, &[l], None).unwrap();
    let g = s
        .add(
            "gru",
            Op::Recurrent {
                cell: Cell::Gru,
                sequences: false,
            },
            &[c],
            Some(4),
        )
        .unwrap();
    let cat = s.add("cat", Op::Concat, &[last, g], None).unwrap();
    s.add("head", Op::Dense { bias: true }, &[cat], Some(2))
        .unwrap();
    check(&s, vec![3, 7]);
    let cost = s.cost(&[vec![3, 7]]).unwrap();
    // LSTM: 7 steps, 4 gates, 6 units, 5 inputs + 6 recurrent.
    assert_eq!(cost.macs[&l], 7 * 4 * 6 * (5 + 6));
}

#[test]
fn cost_refuses_shapes_that_do_not_fit() {
    let mut m = Model::new();
    let x = m.input("x", 3).unwrap();
    m.add(
        "big",
        Op::Conv2d(Conv {
            padding: 0.into(),
            ..Conv::same(5)
        }),
        &[x],
        Some(2),
    )
    .unwrap();
    let err = m.cost(&[vec![3, 4, 4]]).unwrap_err();
    assert!(err.to_string().contains("big"), "{err}");
    assert!(m.cost(&[vec![2, 8, 8]]).is_err(), "wrong channel count");
    assert!(m.cost(&[]).is_err(), "missing input shape");
}
