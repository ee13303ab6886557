//! Backward passes against central finite differences, one test per layer
//! family, in f64. The loss is `Σ y·R` for a fixed random `R`, so every
//! output entry matters. Parameter-free ops sit behind a small layer with
//! parameters, whose gradients then flow through them.

use graft_nn::{
    Activation, Cell, Conv, DType, Device, Executor, Groups, Mode, Model, Op, Tensor, VertexId,
};

fn rand_tensor(shape: &[usize], seed: u64) -> Tensor {
    // A small xorshift keeps the test data independent of any RNG crate.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f64 / 10_000.0 - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn loss(m: &Model, xs: &[Tensor], r: &Tensor, mode: Mode) -> Tensor {
    let ex = Executor::new(m).unwrap();
    let f = ex.forward(m, xs, mode, false).unwrap();
    f.outputs[0].mul(r).unwrap().sum_all().unwrap()
}

/// Compare autodiff gradients of every trainable parameter with central
/// differences on up to 8 entries each.
fn check(m: &Model, xs: &[Tensor], mode: Mode) {
    let ex = Executor::new(m).unwrap();
    let y = ex.forward(m, xs, mode, false).unwrap().outputs[0].clone();
    let r = rand_tensor(y.dims(), 99);
    let l = loss(m, xs, &r, mode);
    let grads = l.backward().unwrap();
    let params = m.trainable();
    assert!(!params.is_empty(), "nothing to check");
    let h = 1e-6;
    for (v, name, var) in params {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name} of {v}"));
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let dims = var.dims().to_vec();
        let step = (base.len() / 8).max(1);
        for k in (0..base.len()).step_by(step) {
            let mut plus = base.clone();
            plus[k] += h;
            var.set(&Tensor::from_vec(plus, dims.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let lp: f64 = loss(m, xs, &r, mode).to_scalar().unwrap();
            let mut minus = base.clone();
            minus[k] -= h;
            var.set(&Tensor::from_vec(minus, dims.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let lm: f64 = loss(m, xs, &r, mode).to_scalar().unwrap();
            var.set(&Tensor::from_vec(base.clone(), dims.clone(), &Device::Cpu).unwrap())
                .unwrap();
            let fd = (lp - lm) / (2.0 * h);
            let tol = 1e-5 * (1.0 + fd.abs());
            assert!(
                (fd - g[k]).abs() < tol,
                "{name} of {v} [{k}]: autodiff {} vs finite difference {fd}",
                g[k]
            );
        }
    }
}

fn model() -> Model {
    Model::with(Device::Cpu, DType::F64, 7)
}

/// x[2, 5] -> dense(6) -> op
fn flat(op: Op) -> (Model, Vec<Tensor>) {
    let mut m = model();
    let x = m.input("x", 5).unwrap();
    let d = m.add("d", Op::Dense { bias: true }, &[x], Some(6)).unwrap();
    m.add("op", op, &[d], None).unwrap();
    (m, vec![rand_tensor(&[3, 5], 1)])
}

/// x[2, 3, 6, 6] -> conv 1x1 (4) -> op
fn spatial(op: Op, nout: Option<usize>) -> (Model, Vec<Tensor>) {
    let mut m = model();
    let x = m.input("x", 3).unwrap();
    let c = m
        .add("c", Op::Conv2d(Conv::same(1)), &[x], Some(4))
        .unwrap();
    m.add("op", op, &[c], nout).unwrap();
    (m, vec![rand_tensor(&[2, 3, 6, 6], 2)])
}

#[test]
fn dense_backward() {
    let mut m = model();
    let x = m.input("x", 5).unwrap();
    m.add("d", Op::Dense { bias: true }, &[x], Some(4)).unwrap();
    check(&m, &[rand_tensor(&[3, 5], 1)], Mode::Eval);
}

#[test]
fn conv_backward() {
    for (k, groups, stride, padding, dilation) in [
        (3, Groups::One, 1, 1, 1),
        (3, Groups::One, 2, 0, 1),
        (3, Groups::One, 1, 2, 2),
        (3, Groups::Depthwise, 1, 1, 1),
        (1, Groups::Fixed(2), 1, 0, 1),
    ] {
        let conv = Conv {
            kernel: graft_nn::Hw::square(k),
            stride: graft_nn::Hw::square(stride),
            padding: graft_nn::Hw::square(padding),
            dilation: graft_nn::Hw::square(dilation),
            groups,
            bias: true,
        };
        let nout = if groups == Groups::Depthwise { 8 } else { 6 };
        let (m, xs) = spatial(Op::Conv2d(conv), Some(nout));
        check(&m, &xs, Mode::Eval);
        let (m, xs) = spatial(Op::MaskedConv2d(conv), Some(nout));
        check(&m, &xs, Mode::Eval);
        // 1-D
        let mut m = model();
        let x = m.input("x", 4).unwrap();
        m.add("c", Op::Conv1d(conv), &[x], Some(nout)).unwrap();
        check(&m, &[rand_tensor(&[2, 4, 9], 3)], Mode::Eval);
    }
}

#[test]
fn conv_transpose_backward() {
    let conv = Conv {
        kernel: 3.into(),
        stride: 2.into(),
        padding: 1.into(),
        dilation: 1.into(),
        groups: Groups::One,
        bias: true,
    };
    let (m, xs) = spatial(
        Op::ConvTranspose2d {
            conv,
            output_padding: 1,
        },
        Some(5),
    );
    check(&m, &xs, Mode::Eval);
}

#[test]
fn norm_backward() {
    for op in [
        Op::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        },
        Op::LayerNorm { eps: 1e-5 },
        Op::GroupNorm {
            groups: 2,
            eps: 1e-5,
        },
        Op::InstanceNorm { eps: 1e-5 },
    ] {
        let (m, xs) = spatial(op.clone(), None);
        check(&m, &xs, Mode::Train { seed: 1 });
        check(&m, &xs, Mode::Eval);
    }
    let (m, xs) = flat(Op::BatchNorm {
        eps: 1e-5,
        momentum: 0.1,
    });
    check(&m, &xs, Mode::Train { seed: 1 });
}

#[test]
fn activation_backward() {
    for f in [
        Activation::Relu,
        Activation::LeakyRelu { slope: 0.1 },
        Activation::Elu { alpha: 1.0 },
        Activation::Selu,
        Activation::Gelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
        Activation::HardSwish,
        Activation::Relu6,
        Activation::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
    ] {
        let (m, xs) = flat(Op::Activation(f));
        check(&m, &xs, Mode::Eval);
    }
}

#[test]
fn pooling_backward() {
    for op in [
        Op::MaxPool2d {
            kernel: 2.into(),
            stride: 2.into(),
            padding: 0.into(),
        },
        Op::MaxPool2d {
            kernel: 3.into(),
            stride: 2.into(),
            padding: 1.into(),
        },
        Op::AvgPool2d {
            kernel: 3.into(),
            stride: 1.into(),
        },
        Op::MaxPool2d {
            kernel: graft_nn::Hw::new(3, 2),
            stride: graft_nn::Hw::new(2, 1),
            padding: graft_nn::Hw::new(1, 0),
        },
        Op::AvgPool2d {
            kernel: graft_nn::Hw::new(1, 3),
            stride: graft_nn::Hw::new(1, 2),
        },
        Op::GlobalAvgPool,
        Op::GlobalMaxPool,
    ] {
        let (m, xs) = spatial(op, None);
        check(&m, &xs, Mode::Eval);
    }
}

#[test]
fn resize_backward() {
    use graft_nn::{Coords, Interp, NearestRound, Resize, ResizeTarget};
    for (target, interp, coords) in [
        (
            ResizeTarget::Scales([2.0, 2.0]),
            Interp::Nearest {
                round: NearestRound::Floor,
            },
            Coords::Asymmetric,
        ),
        (
            ResizeTarget::Scales([1.5, 0.5]),
            Interp::Linear,
            Coords::HalfPixel,
        ),
        (
            ResizeTarget::Sizes([4, 9]),
            Interp::Linear,
            Coords::AlignCorners,
        ),
    ] {
        let op = Op::Resize(Resize {
            target,
            interp,
            coords,
        });
        let (m, xs) = spatial(op, None);
        check(&m, &xs, Mode::Eval);
    }
}

/// Per-axis geometry: candle's conv2d takes one stride, padding and
/// dilation, so uneven ones go through explicit padding, a dilated kernel
/// and subsampling, which must all pass gradients.
#[test]
fn uneven_conv_backward() {
    use graft_nn::Hw;
    for conv in [
        Conv {
            kernel: Hw::new(1, 3),
            padding: Hw::new(0, 1),
            ..Conv::same(1)
        },
        Conv {
            kernel: Hw::new(3, 2),
            stride: Hw::new(2, 1),
            padding: Hw::new(1, 2),
            dilation: Hw::new(1, 2),
            ..Conv::same(1)
        },
    ] {
        let (m, xs) = spatial(Op::Conv2d(conv), Some(5));
        check(&m, &xs, Mode::Eval);
    }
}

#[test]
fn shape_and_merge_backward() {
    let (m, xs) = spatial(Op::Flatten { spatial: 36 }, None);
    check(&m, &xs, Mode::Eval);
    let (m, xs) = flat(Op::Scale { factor: -2.5 });
    check(&m, &xs, Mode::Eval);
    let (m, xs) = flat(Op::Dropout { p: 0.5 });
    check(&m, &xs, Mode::Train { seed: 3 });
    for op in [Op::Concat, Op::Add, Op::Sub, Op::Mul] {
        let mut m = model();
        let x = m.input("x", 5).unwrap();
        let a = m.add("a", Op::Dense { bias: true }, &[x], Some(4)).unwrap();
        let b = m
            .add("b", Op::Dense { bias: false }, &[x], Some(4))
            .unwrap();
        let ins: [VertexId; 3] = [a, b, a];
        m.add("op", op, &ins, None).unwrap();
        check(&m, &[rand_tensor(&[3, 5], 4)], Mode::Eval);
    }
}

#[test]
fn recurrent_backward() {
    for cell in [Cell::Rnn, Cell::Lstm, Cell::Gru] {
        for sequences in [false, true] {
            let mut m = model();
            let x = m.input("x", 3).unwrap();
            m.add("rnn", Op::Recurrent { cell, sequences }, &[x], Some(4))
                .unwrap();
            check(&m, &[rand_tensor(&[2, 3, 5], 5)], Mode::Eval);
        }
        // The last step of a sequence.
        let mut m = model();
        let x = m.input("x", 3).unwrap();
        let r = m
            .add(
                "rnn",
                Op::Recurrent {
                    cell,
                    sequences: true,
                },
                &[x],
                Some(4),
            )
            .unwrap();
        m.add("last", Op::LastStep, &[r], None).unwrap();
        check(&m, &[rand_tensor(&[2, 3, 5], 6)], Mode::Eval);
    }
}
