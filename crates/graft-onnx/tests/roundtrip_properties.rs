//! Property test: a random graph built in graft, exported and imported
//! again, is the same graph (names, kinds, sizes, wiring, constraints), runs
//! the same ops and computes the same outputs. Dense models on `[N, F]` and
//! convolutional ones on `[N, C, H, W]`, with every exportable op kind.

use graft_core::json::GraphSpec;
use graft_nn::{Activation, Conv, Device, Executor, Mode, Model, Op, Tensor, VertexId};
use graft_onnx::{export_bytes, import_bytes, Interface};
use proptest::prelude::*;

const ACTS: [Activation; 11] = [
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.25 },
    Activation::Elu { alpha: 0.5 },
    Activation::Selu,
    Activation::Gelu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Softmax,
    Activation::HardSwish,
    Activation::Relu6,
    Activation::HardSigmoid {
        alpha: 0.25,
        beta: 0.5,
    },
];

/// Build a random model from `steps`: (op choice, input pick, width).
fn build(conv: bool, steps: &[(u8, usize, usize)], seed: u64) -> (Model, Tensor) {
    let mut m = Model::with(Device::Cpu, graft_nn::DType::F32, seed);
    let x = m.input("x", 3).unwrap();
    // (vertex, rank, spatial side)
    let mut vs: Vec<(VertexId, usize, usize)> = vec![(x, if conv { 4 } else { 2 }, 8)];
    for (k, &(kind, pick, width)) in steps.iter().enumerate() {
        let name = format!("v{k}");
        let (u, rank, side) = vs[pick % vs.len()];
        let nu = m.graph().nout(u).unwrap();
        let mates: Vec<VertexId> = vs
            .iter()
            .filter(|(v, r, s)| {
                *r == rank && *s == side && *v != u && m.graph().nout(*v).unwrap() == nu
            })
            .map(|t| t.0)
            .collect();
        let same_shape: Vec<VertexId> = vs
            .iter()
            .filter(|(v, r, s)| *r == rank && *s == side && *v != u)
            .map(|t| t.0)
            .collect();
        let (op, ins, nout, next) = match (kind % 15, rank) {
            (0, 2) => (
                Op::Dense {
                    bias: width % 2 == 0,
                },
                vec![u],
                Some(width + 1),
                (2, 0),
            ),
            (0, _) => (
                Op::Conv2d(Conv {
                    bias: width % 2 == 0,
                    ..Conv::same(3)
                }),
                vec![u],
                Some(width + 1),
                (4, side),
            ),
            // A depthwise conv on one channel is an ordinary conv in ONNX,
            // and imports as one.
            (1, 4) if nu > 1 => (
                Op::Conv2d(Conv::same(3).depthwise()),
                vec![u],
                Some(nu * (1 + width % 2)),
                (4, side),
            ),
            (2, _) => (
                Op::Activation(ACTS[width % ACTS.len()]),
                vec![u],
                None,
                (rank, side),
            ),
            (3, _) => (
                Op::BatchNorm {
                    eps: 1e-5,
                    momentum: 0.1,
                },
                vec![u],
                None,
                (rank, side),
            ),
            (4, 2) => (Op::LayerNorm { eps: 1e-5 }, vec![u], None, (2, 0)),
            (4, _) => (Op::InstanceNorm { eps: 1e-5 }, vec![u], None, (4, side)),
            (5, 4) if side >= 4 => (
                Op::MaxPool2d {
                    kernel: 2.into(),
                    stride: 2.into(),
                    padding: 0.into(),
                },
                vec![u],
                None,
                (4, side / 2),
            ),
            (6, 4) if side >= 4 => (
                Op::MaxPool2d {
                    kernel: 3.into(),
                    stride: 2.into(),
                    padding: 1.into(),
                },
                vec![u],
                None,
                (4, (side + 2 - 3) / 2 + 1),
            ),
            (7, 4) if side >= 4 => (
                Op::AvgPool2d {
                    kernel: 2.into(),
                    stride: 2.into(),
                },
                vec![u],
                None,
                (4, side / 2),
            ),
            (8, 4) => (
                if width % 2 == 0 {
                    Op::GlobalAvgPool
                } else {
                    Op::GlobalMaxPool
                },
                vec![u],
                None,
                (2, 0),
            ),
            (9, 4) => (
                Op::Flatten {
                    spatial: side * side,
                },
                vec![u],
                None,
                (2, 0),
            ),
            (10, _) if !same_shape.is_empty() => (
                Op::Concat,
                vec![u, same_shape[width % same_shape.len()]],
                None,
                (rank, side),
            ),
            (11, _) if !mates.is_empty() => {
                let op = [Op::Add, Op::Sub, Op::Mul][width % 3].clone();
                (op, vec![u, mates[width % mates.len()]], None, (rank, side))
            }
            (12, _) => (
                Op::Scale {
                    factor: 0.5 + width as f64,
                },
                vec![u],
                None,
                (rank, side),
            ),
            (13, _) => (Op::Dropout { p: 0.25 }, vec![u], None, (rank, side)),
            (14, 4) if side <= 8 => (
                Op::ConvTranspose2d {
                    conv: Conv {
                        stride: 2.into(),
                        bias: width % 2 == 1,
                        ..Conv::same(3)
                    },
                    output_padding: 1,
                },
                vec![u],
                Some(width + 1),
                (4, 2 * side),
            ),
            _ => (Op::Identity, vec![u], None, (rank, side)),
        };
        let v = m.add(&name, op, &ins, nout).unwrap();
        vs.push((v, next.0, next.1));
    }
    let shape: Vec<usize> = if conv { vec![2, 3, 8, 8] } else { vec![2, 3] };
    let x = Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
    (m, x)
}

fn outputs(m: &Model, x: &Tensor) -> Vec<Vec<f32>> {
    let ex = Executor::new(m).unwrap();
    ex.forward(m, std::slice::from_ref(x), Mode::Eval, false)
        .unwrap()
        .outputs
        .iter()
        .map(|t| t.flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn export_then_import_is_the_same_model(
        conv in any::<bool>(),
        steps in prop::collection::vec((0..16u8, 0..64usize, 0..6usize), 1..10),
        seed in any::<u64>(),
    ) {
        let (m, x) = build(conv, &steps, seed);
        let bytes = export_bytes(&m, &Interface::for_model(&m, &[x.dims().to_vec()]).unwrap()).unwrap();
        let back = import_bytes(&bytes).unwrap().model;
        prop_assert_eq!(GraphSpec::from_graph(back.graph()), GraphSpec::from_graph(m.graph()));
        for v in m.graph().ids() {
            let w = back.id(&m.graph().name(v)).unwrap();
            let (a, b) = (&m.layer(v).unwrap().op, &back.layer(w).unwrap().op);
            prop_assert_eq!(a.name(), b.name());
            // Structural hyperparameters survive exactly (floats such as eps
            // go through f32).
            if let (Op::Dense { bias: p }, Op::Dense { bias: q }) = (a, b) {
                prop_assert_eq!(p, q);
            }
            if let (Op::Conv2d(p), Op::Conv2d(q)) = (a, b) {
                prop_assert_eq!(p, q);
            }
        }
        let (a, b) = (outputs(&m, &x), outputs(&back, &x));
        prop_assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            let scale = p.iter().fold(0f32, |s, v| s.max(v.abs())).max(1e-30);
            for (s, t) in p.iter().zip(q) {
                prop_assert!((s - t).abs() <= 1e-6 * scale, "{} vs {}", s, t);
            }
        }
    }
}
