//! Parameter surgery beyond the acceptance scenarios: Net2Net widening keeps
//! the function without zero columns, optimiser state follows mutations so
//! training continues, and a stale executor is refused.

use graft_core::Request;
use graft_nn::train::{Adam, Fit, Loss, Optimizer, Sgd};
use graft_nn::{
    Activation, Conv, Device, Executor, Growth, Mode, Model, NnError, Op, Tensor, VertexId,
};

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

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
    }
}

fn mlp() -> (Model, VertexId, VertexId) {
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let d1 = m
        .add("d1", Op::Dense { bias: true }, &[x], Some(6))
        .unwrap();
    let r = m
        .add("relu", Op::Activation(Activation::Relu), &[d1], None)
        .unwrap();
    let bn = m
        .add(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[r],
            None,
        )
        .unwrap();
    let d2 = m
        .add("d2", Op::Dense { bias: true }, &[bn], Some(3))
        .unwrap();
    (m, d1, d2)
}

#[test]
fn net2net_widening_keeps_the_function() {
    let (mut m, d1, d2) = mlp();
    let x = Tensor::randn(0f32, 1.0, (5, 4), &Device::Cpu).unwrap();
    let before = out(&m, &x);
    m.set_growth(Growth::Net2Net { seed: 11 });
    m.change_sizes(&Request::new().nout(d1, 4)).unwrap();
    assert_eq!(m.graph().nout(d1).unwrap(), 10);
    close(&out(&m, &x), &before);
    // Every new row is a copy of an old one, and the consumer's new columns
    // are not zero (the function is shared between copies, not ignored).
    let w: Vec<Vec<f32>> = m.param(d1, "weight").unwrap().to_vec2().unwrap();
    for row in &w[6..] {
        assert!(w[..6].contains(row), "new row {row:?} copies an old one");
    }
    let w2: Vec<Vec<f32>> = m.param(d2, "weight").unwrap().to_vec2().unwrap();
    assert!(w2.iter().any(|r| r[6..].iter().any(|&v| v != 0.0)));

    // Convolutions: conv -> relu -> conv -> global pool.
    let mut m = Model::new();
    let xi = m.input("x", 2).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[xi], Some(4))
        .unwrap();
    let r = m
        .add("r", Op::Activation(Activation::Relu), &[c1], None)
        .unwrap();
    let c2 = m
        .add("c2", Op::Conv2d(Conv::same(3)), &[r], Some(5))
        .unwrap();
    m.add("gap", Op::GlobalAvgPool, &[c2], None).unwrap();
    let x = Tensor::randn(0f32, 1.0, (2, 2, 6, 6), &Device::Cpu).unwrap();
    let before = out(&m, &x);
    m.set_growth(Growth::Net2Net { seed: 3 });
    m.change_sizes(&Request::new().nout(c1, 3)).unwrap();
    close(&out(&m, &x), &before);
}

#[test]
fn optimiser_state_follows_mutations_and_training_continues() {
    let data = graft_nn::data::spirals(64, 0.02, 5).unwrap();
    for adam in [true, false] {
        let mut m = Model::new();
        let x = m.input("x", 2).unwrap();
        let h = m
            .add("h", Op::Dense { bias: true }, &[x], Some(16))
            .unwrap();
        let a = m
            .add("a", Op::Activation(Activation::Tanh), &[h], None)
            .unwrap();
        m.add("o", Op::Dense { bias: true }, &[a], Some(2)).unwrap();
        let mut opt: Box<dyn Optimizer> = if adam {
            Box::new(Adam::adamw(1e-2, 1e-4))
        } else {
            Box::new(Sgd::new(0.1, 0.9))
        };
        let fit = Fit {
            batch: 16,
            epochs: 5,
            loss: Loss::CrossEntropy,
            seed: 1,
            probes: false,
            objective: Default::default(),
        };
        fit.run(&mut m, opt.as_mut(), &data.x, &data.y, |_, _, _| Ok(()))
            .unwrap();
        // Prune four hidden units, then grow six: the state shrinks and grows
        // with the parameters.
        let (_, edits) = m.change_sizes(&Request::new().nout(h, -4)).unwrap();
        opt.follow(&m, &edits).unwrap();
        let (_, edits) = m.change_sizes(&Request::new().nout(h, 6)).unwrap();
        opt.follow(&m, &edits).unwrap();
        let losses = fit
            .run(&mut m, opt.as_mut(), &data.x, &data.y, |_, _, _| Ok(()))
            .unwrap();
        assert!(losses.iter().all(|l| l.is_finite()));
        assert!(losses.last().unwrap() < &losses[0], "{losses:?}");
    }
}

#[test]
fn a_stale_executor_is_refused() {
    let (mut m, d1, _) = mlp();
    let ex = Executor::new(&m).unwrap();
    m.change_sizes(&Request::new().nout(d1, 1)).unwrap();
    let x = Tensor::randn(0f32, 1.0, (1, 4), &Device::Cpu).unwrap();
    match ex.forward(&m, &[x], Mode::Eval, false) {
        Err(NnError::StaleExecutor { built, now }) => assert!(now > built),
        other => panic!("expected StaleExecutor, got {other:?}"),
    }
}

#[test]
fn reshape_is_immutable_and_freezes_its_input() {
    let mut m = Model::new();
    let x = m.input("x", 5).unwrap();
    let d = m
        .add("d", Op::Dense { bias: true }, &[x], Some(12))
        .unwrap();
    let r = m
        .add(
            "r",
            Op::Reshape {
                shape: vec![3, 2, 2],
            },
            &[d],
            None,
        )
        .unwrap();
    let c = m
        .add("c", Op::Conv2d(Conv::same(1)), &[r], Some(4))
        .unwrap();
    m.add("gap", Op::GlobalAvgPool, &[c], None).unwrap();
    let input = Tensor::randn(0f32, 1.0, (2, 5), &Device::Cpu).unwrap();
    assert_eq!(out(&m, &input).len(), 8);
    assert_eq!(m.graph().nout(r).unwrap(), 3);
    let before = m.clone();
    assert!(m.change_sizes(&Request::new().nout(d, 2)).is_err());
    assert_eq!(m.graph(), before.graph());
    // The conv after it can still change.
    m.change_sizes(&Request::new().nout(c, 2)).unwrap();
    assert_eq!(out(&m, &input).len(), 12);
}

#[test]
fn grouped_convolutions_change_by_whole_rows_of_groups() {
    use graft_nn::Groups;
    let mut m = Model::new();
    let x = m.input("x", 3).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[x], Some(8))
        .unwrap();
    let a = m
        .add("a", Op::Activation(Activation::Relu), &[c1], None)
        .unwrap();
    let grouped = Conv {
        groups: Groups::Fixed(2),
        ..Conv::same(3)
    };
    let c2 = m.add("c2", Op::Conv2d(grouped), &[a], Some(6)).unwrap();
    m.add("gap", Op::GlobalAvgPool, &[c2], None).unwrap();
    let input = Tensor::randn(0f32, 1.0, (2, 3, 6, 6), &Device::Cpu).unwrap();
    let before = out(&m, &input);

    // Growing the grouped conv's input and output keeps the function: the
    // new channels land at the end of each group.
    m.change_sizes(&Request::new().nout(c1, 4)).unwrap();
    assert_eq!(m.param(c2, "weight").unwrap().dims(), &[6, 6, 3, 3]);
    m.change_sizes(&Request::new().nout(c2, 2)).unwrap();
    let after = out(&m, &input);
    close(&after[..3], &before[..3]);
    close(&after[4..7], &before[3..6]);

    // An odd change is refused (relaxed to a whole row), and pruning by
    // magnitude keeps the kernel consistent with its groups.
    m.change_sizes(&Request::new().nout_relaxed(c2, -1))
        .unwrap();
    assert_eq!(m.graph().nout(c2).unwrap() % 2, 0);
    let mag = graft_nn::utility::magnitude(&m).unwrap();
    m.change_sizes(&Request::new().nout(c1, -6).with_utility(mag))
        .unwrap();
    assert_eq!(m.graph().nin(c2).unwrap(), &[6]);
    assert_eq!(m.param(c2, "weight").unwrap().dims()[1], 3);
    assert_eq!(out(&m, &input).len(), 2 * m.graph().nout(c2).unwrap());
}

#[test]
fn a_cloned_model_is_independent() {
    let (m, d1, _) = mlp();
    let mut c = m.clone();
    let w = m.param(d1, "weight").unwrap();
    c.set_param(d1, "weight", &w.zeros_like().unwrap()).unwrap();
    let back: Vec<Vec<f32>> = m.param(d1, "weight").unwrap().to_vec2().unwrap();
    assert_eq!(
        back,
        w.to_vec2::<f32>().unwrap(),
        "the original keeps its weights"
    );
}

#[test]
fn a_refused_mutation_leaves_graph_and_parameters_as_they_were() {
    let (mut m, d1, d2) = mlp();
    let graph = m.graph().clone();
    let before: Vec<Vec<f32>> = m
        .all_params()
        .iter()
        .map(|(_, _, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    // A patch whose first edit succeeds on the draft and whose second is
    // refused; then a size change the planner cannot meet.
    let x = m.id("x").unwrap();
    let patch = graft_core::Patch::new()
        .resize(Request::new().nout(d1, 3))
        .remove(x);
    assert!(m.commit(&patch, &[]).is_err());
    assert!(m.change_sizes(&Request::new().nout(d2, -3)).is_err());
    assert_eq!(m.graph(), &graph);
    let after: Vec<Vec<f32>> = m
        .all_params()
        .iter()
        .map(|(_, _, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect();
    assert_eq!(after, before);
}

#[test]
fn bad_training_arguments_are_typed_errors() {
    let data = graft_nn::data::spirals(8, 0.0, 1).unwrap();
    assert!(matches!(data.split(100, 0), Err(NnError::Invalid { .. })));
    let (mut m, _, _) = mlp();
    let fit = Fit {
        batch: 0,
        epochs: 1,
        loss: Loss::Mse,
        seed: 0,
        probes: false,
        objective: Default::default(),
    };
    let x = Tensor::zeros((4, 4), graft_nn::DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::zeros((4, 3), graft_nn::DType::F32, &Device::Cpu).unwrap();
    let r = fit.run(&mut m, &mut Sgd::new(0.1, 0.0), &x, &y, |_, _, _| Ok(()));
    assert!(matches!(r, Err(NnError::Invalid { .. })));
}

#[test]
fn growth_whose_parameters_would_not_fit_is_refused_before_allocating() {
    // Two dense layers each grown by 4 million neurons: the second's
    // weight would be 4M x 4M (1.6e13 floats). Refused before anything is
    // allocated, the model untouched (issue 18).
    use graft_core::Request;
    use graft_nn::{Model, Op};
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let a = m
        .add("a", Op::Dense { bias: true }, &[x], Some(16))
        .unwrap();
    let b = m
        .add("b", Op::Dense { bias: true }, &[a], Some(16))
        .unwrap();
    m.add("out", Op::Dense { bias: true }, &[b], Some(2))
        .unwrap();
    let before = m.graph().clone();
    let e = m
        .change_sizes(&Request::new().nout(a, 4_000_000).nout(b, 4_000_000))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("larger than graft allocates") && e.contains('b'),
        "{e}"
    );
    assert_eq!(m.graph(), &before);
}

#[test]
fn windows_of_zero_are_refused_when_a_layer_is_added() {
    // A zero stride, kernel or dilation divided by zero inside the
    // convolution (issue 18); the library refuses it as a file would be.
    use graft_nn::{Conv, Hw, Model, Op};
    let mut m = Model::new();
    let x = m.input("x", 3).unwrap();
    for (what, c) in [
        (
            "stride",
            Conv {
                stride: Hw::square(0),
                ..Conv::same(3)
            },
        ),
        (
            "kernel",
            Conv {
                kernel: Hw::new(3, 0),
                ..Conv::same(3)
            },
        ),
        (
            "dilation",
            Conv {
                dilation: Hw::square(0),
                ..Conv::same(3)
            },
        ),
    ] {
        let e = m
            .add("c", Op::Conv2d(c), &[x], Some(4))
            .unwrap_err()
            .to_string();
        assert!(e.contains(what) && e.contains("at least 1"), "{e}");
    }
    let e = m
        .add(
            "p",
            Op::MaxPool2d {
                kernel: Hw::square(0),
                stride: Hw::square(1),
                padding: Hw::square(0),
            },
            &[x],
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("kernel 0x0"), "{e}");
    assert_eq!(m.graph().len(), 1);
}

#[test]
fn surgery_gives_the_same_bytes_on_one_thread_and_on_two() {
    // A plan's layers are re-laid in parallel (issue 19); each layer's new
    // random entries come from a stream of its own, so the thread count
    // changes nothing. ResNet-18: grow one stage (new random filters) and
    // prune half of another.
    use graft_core::Request;
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut m = graft_nn::zoo::resnet18_cifar(7).unwrap();
            let g = m.graph();
            let convs: Vec<_> = g
                .topological_order()
                .unwrap()
                .into_iter()
                .filter(|&v| matches!(m.layer(v).map(|l| &l.op), Some(graft_nn::Op::Conv2d(_))))
                .collect();
            let (a, b) = (convs[2], convs[9]);
            let nb = g.nout(b).unwrap() as i64;
            m.change_sizes(&Request::new().nout(a, 5).nout(b, -nb / 2))
                .unwrap();
            let mut bytes = Vec::new();
            for (v, name, var) in m.all_params() {
                let t = var
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                bytes.push((v, name, t.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
            }
            bytes
        })
    };
    let one = run(1);
    assert!(one.len() > 40);
    assert_eq!(one, run(2));
}
