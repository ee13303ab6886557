//! Property test: growth keeps the function. Random models with random
//! weights (a dense variant on `[N, F]`, a convolutional one on
//! `[N, C, H, W]` and a recurrent one on `[N, F, T]`), then random growth
//! mutations: Δnout > 0 on any vertex, inserting an identity-initialised
//! layer, and adding an edge into a concatenation. After each accepted
//! mutation the head's output stays within 1e-5 of what it was.
//!
//! Covered layer kinds: dense, conv2d (full, grouped and depthwise), batch norm (eval
//! mode), instance norm, every activation except softmax, max and average
//! pooling, global pooling, dropout (eval mode), concat, add, sub, mul,
//! scale, identity, RNN, LSTM and GRU. Left out, because growth cannot keep
//! their function: softmax, layer norm and group norm (each output depends
//! on every neuron of its input, so a new neuron changes them all).

use graft_core::{Patch, Request, Reroute};
use graft_nn::{
    Activation, Cell, Conv, Device, Executor, Init, Mode, Model, NewLayer, Op, Tensor, VertexId,
};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    Dense,
    Conv,
    Recurrent,
}

#[derive(Debug, Clone)]
struct Recipe {
    variant: Variant,
    layers: Vec<(u8, usize, usize)>,
    mutations: Vec<(u8, usize, usize, usize)>,
    seed: u64,
}

const ACTS: [Activation; 9] = [
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.2 },
    Activation::Elu { alpha: 1.0 },
    Activation::Selu,
    Activation::Gelu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::HardSwish,
    Activation::Relu6,
];

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        prop_oneof![
            Just(Variant::Dense),
            Just(Variant::Conv),
            Just(Variant::Recurrent)
        ],
        prop::collection::vec((0..12u8, 0..64usize, 1..5usize), 2..9),
        prop::collection::vec((0..3u8, 0..64usize, 1..4usize, 0..64usize), 1..7),
        any::<u64>(),
    )
        .prop_map(|(variant, layers, mutations, seed)| Recipe {
            variant,
            layers,
            mutations,
            seed,
        })
}

/// Build the model: random layers over the variant's data, then every
/// dangling vertex pooled to `[N, F]`, concatenated and read by a dense
/// head. Returns the model, the head and an input.
fn build(r: &Recipe) -> (Model, VertexId, Tensor) {
    let mut m = Model::with(Device::Cpu, graft_nn::DType::F32, r.seed);
    let mut k = 0usize;
    let mut name = |p: &str| {
        k += 1;
        format!("{p}{k}")
    };
    // (vertex, rank, spatial side) of every tensor so far.
    let mut vs: Vec<(VertexId, usize, usize)> = Vec::new();
    let x = m.input("x", 3).unwrap();
    let input = match r.variant {
        Variant::Dense => {
            vs.push((x, 2, 0));
            Tensor::randn(0f32, 1.0, (2, 3), &Device::Cpu).unwrap()
        }
        Variant::Conv => {
            vs.push((x, 4, 8));
            Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap()
        }
        Variant::Recurrent => {
            let cell = [Cell::Rnn, Cell::Lstm, Cell::Gru][(r.seed % 3) as usize];
            let h = m
                .add(
                    &name("rnn"),
                    Op::Recurrent {
                        cell,
                        sequences: true,
                    },
                    &[x],
                    Some(4),
                )
                .unwrap();
            let cell2 = [Cell::Gru, Cell::Rnn, Cell::Lstm][(r.seed % 3) as usize];
            let h2 = m
                .add(
                    &name("rnn"),
                    Op::Recurrent {
                        cell: cell2,
                        sequences: false,
                    },
                    &[h],
                    Some(5),
                )
                .unwrap();
            vs.push((h2, 2, 0));
            Tensor::randn(0f32, 1.0, (2, 3, 4), &Device::Cpu).unwrap()
        }
    };
    for &(kind, pick, width) in &r.layers {
        let (u, rank, side) = vs[pick % vs.len()];
        let same: Vec<VertexId> = vs
            .iter()
            .filter(|(v, rk, sd)| *rk == rank && *sd == side && *v != u)
            .map(|t| t.0)
            .collect();
        let nu = m.graph().nout(u).unwrap();
        let same_size: Vec<VertexId> = same
            .iter()
            .copied()
            .filter(|&v| m.graph().nout(v).unwrap() == nu)
            .collect();
        let (op, ins, nout): (Op, Vec<VertexId>, Option<usize>) = match (kind, rank) {
            (0 | 1, 2) => (Op::Dense { bias: true }, vec![u], Some(width + 1)),
            (0, _) => (Op::Conv2d(Conv::same(3)), vec![u], Some(width + 1)),
            (1, _) => (
                Op::Conv2d(Conv::same(3).depthwise()),
                vec![u],
                Some(nu * (1 + width % 2)),
            ),
            (2, _) => (
                Op::Activation(ACTS[(pick + width) % ACTS.len()]),
                vec![u],
                None,
            ),
            (3, 2) => (
                Op::BatchNorm {
                    eps: 1e-5,
                    momentum: 0.1,
                },
                vec![u],
                None,
            ),
            (3, _) if width % 2 == 0 => (Op::InstanceNorm { eps: 1e-5 }, vec![u], None),
            (3, _) => (
                Op::BatchNorm {
                    eps: 1e-5,
                    momentum: 0.1,
                },
                vec![u],
                None,
            ),
            (4, _) if !same.is_empty() => (Op::Concat, vec![u, same[width % same.len()], u], None),
            (5..=7, _) if !same_size.is_empty() => {
                let op = [Op::Add, Op::Sub, Op::Mul][(kind - 5) as usize].clone();
                (op, vec![u, same_size[width % same_size.len()]], None)
            }
            (8, 4) if side >= 4 => {
                let op = if width % 2 == 0 {
                    Op::MaxPool2d {
                        kernel: 2.into(),
                        stride: 2.into(),
                        padding: 0.into(),
                    }
                } else {
                    Op::AvgPool2d {
                        kernel: 2.into(),
                        stride: 2.into(),
                    }
                };
                (op, vec![u], None)
            }
            (9, _) => (Op::Scale { factor: -1.5 }, vec![u], None),
            (11, 4) if nu.is_multiple_of(2) => {
                let c = Conv {
                    groups: graft_nn::Groups::Fixed(2),
                    ..Conv::same(3)
                };
                (Op::Conv2d(c), vec![u], Some(2 * width))
            }
            (10, _) => (Op::Dropout { p: 0.3 }, vec![u], None),
            _ => (Op::Identity, vec![u], None),
        };
        let pooled = matches!(op, Op::MaxPool2d { .. } | Op::AvgPool2d { .. });
        let v = m.add(&name("v"), op, &ins, nout).unwrap();
        vs.push((v, rank, if pooled { side / 2 } else { side }));
    }
    // Collect every dangling vertex into the head.
    let dangling: Vec<(VertexId, usize)> = vs
        .iter()
        .filter(|(v, ..)| m.graph().vertex(*v).unwrap().outputs().is_empty())
        .map(|&(v, rank, _)| (v, rank))
        .collect();
    let mut flat = Vec::new();
    for (v, rank) in dangling {
        flat.push(if rank == 4 {
            m.add(&name("gap"), Op::GlobalAvgPool, &[v], None).unwrap()
        } else {
            v
        });
    }
    let cat = m.add("collect", Op::Concat, &flat, None).unwrap();
    let head = m
        .add("head", Op::Dense { bias: true }, &[cat], Some(3))
        .unwrap();
    (m, head, input)
}

fn head_output(m: &Model, head: VertexId, x: &Tensor) -> Vec<f32> {
    let ex = Executor::new(m).unwrap();
    let f = ex
        .forward(m, std::slice::from_ref(x), Mode::Eval, true)
        .unwrap();
    f.activations[&head]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// An identity-initialisable layer for a tensor of this rank.
fn identity_layer(name: &str, rank: usize, pick: usize) -> NewLayer {
    let op = match (rank, pick % 3) {
        (2, 0 | 1) => Op::Dense { bias: true },
        (4, 0) => Op::Conv2d(Conv::same(3)),
        (4, 1) => Op::Conv2d(Conv::same(3).depthwise()),
        _ => Op::Scale { factor: 1.0 },
    };
    NewLayer::new(name, op, Init::Identity)
}

/// True when the plan drops no old neuron anywhere.
fn pure_growth(p: &graft_core::Plan) -> bool {
    p.changes.iter().all(|c| {
        c.outs.as_ref().is_none_or(|l| {
            let kept = l
                .iter()
                .filter(|n| matches!(n, graft_core::Neuron::Old(_)))
                .count();
            kept == c.nout_before
        })
    })
}

/// The shape of every vertex's output (all but the neuron axis).
fn shapes(m: &Model, x: &Tensor) -> std::collections::HashMap<VertexId, Vec<usize>> {
    let ex = Executor::new(m).unwrap();
    let f = ex
        .forward(m, std::slice::from_ref(x), Mode::Eval, true)
        .unwrap();
    f.activations
        .iter()
        .map(|(v, t)| {
            let mut d = t.dims().to_vec();
            d.remove(1);
            (*v, d)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn growth_keeps_the_function(r in recipe()) {
        let (mut m, head, x) = build(&r);
        let mut before = head_output(&m, head, &x);
        for (i, &(kind, pick, amount, other)) in r.mutations.iter().enumerate() {
            let shape = shapes(&m, &x);
            let current = head_output(&m, head, &x);
            let ids: Vec<VertexId> = m.graph().ids().filter(|&v| v != head).collect();
            let v = ids[pick % ids.len()];
            let result = match kind {
                0 => match m.change_sizes(&Request::new().nout(v, amount as i64)) {
                    // An exact Δnout > 0 may only be reachable by also
                    // dropping neurons elsewhere (sizes tied with different
                    // multiplicities): that is not growth, so the function
                    // may change; compare later growth with the new one.
                    Ok((planned, _)) if !pure_growth(&planned.plan) => {
                        before = head_output(&m, head, &x);
                        continue;
                    }
                    r => r.map(|_| ()),
                },
                1 => {
                    // Recurrent sequences (rank 3) get a scale by 1.
                    let rank = shape[&v].len() + 1;
                    let layer = identity_layer(&format!("ins{i}"), rank, other);
                    m.insert_after(v, layer, Reroute::All).map(|_| ())
                }
                _ => {
                    // A concatenation, and a producer of the same shape
                    // that is not downstream of it.
                    let cats: Vec<VertexId> = ids
                        .iter()
                        .copied()
                        .filter(|&c| matches!(m.layer(c).map(|l| &l.op), Some(Op::Concat)))
                        .filter(|&c| shape[&c] == shape[&v])
                        .collect();
                    if cats.is_empty() {
                        continue;
                    }
                    let c = cats[other % cats.len()];
                    m.commit(&Patch::new().add_edge(v, c), &[]).map(|_| ())
                }
            };
            if let Err(e) = result {
                // Refusals are fine (cycles, sizes the planner cannot
                // reach); they must leave the model as it was.
                prop_assert_eq!(head_output(&m, head, &x), current, "refused: {}", e);
                continue;
            }
            let after = head_output(&m, head, &x);
            prop_assert_eq!(after.len(), before.len());
            for (a, b) in after.iter().zip(&before) {
                prop_assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "mutation {} ({}) changed the output: {} vs {}", i, kind, a, b);
            }
        }
    }
}
