//! Training on real and generated data: the digits MLP and CNN, and the XOR
//! pruning experiment of NaiveNASflux.

use graft_core::{Request, Utility, VertexId};
use graft_nn::data::{digits, digits_path, xor, Dataset};
use graft_nn::train::{evaluate, Adam, Fit, Loss};
use graft_nn::{Activation, Conv, Model, Op};

fn digits_split() -> (Dataset, Dataset) {
    let d = digits(&digits_path()).unwrap();
    assert_eq!(d.len(), 1797);
    // 1,437 for training, 360 held out.
    d.split(1437, 42).unwrap()
}

fn relu() -> Op {
    Op::Activation(Activation::Relu)
}

#[test]
fn digits_mlp_reaches_95_percent() {
    let (train, test) = digits_split();
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 1);
    let x = m.input("pixels", 64).unwrap();
    let h1 = m
        .add("h1", Op::Dense { bias: true }, &[x], Some(100))
        .unwrap();
    let a1 = m.add("a1", relu(), &[h1], None).unwrap();
    let h2 = m
        .add("h2", Op::Dense { bias: true }, &[a1], Some(100))
        .unwrap();
    let a2 = m.add("a2", relu(), &[h2], None).unwrap();
    m.add("logits", Op::Dense { bias: true }, &[a2], Some(10))
        .unwrap();
    let fit = Fit {
        batch: 32,
        epochs: 25,
        loss: Loss::CrossEntropy,
        seed: 7,
        probes: false,
        objective: Default::default(),
    };
    let mut opt = Adam::new(1e-3);
    let losses = fit
        .run(&mut m, &mut opt, &train.x, &train.y, |_, _, _| Ok(()))
        .unwrap();
    let (_, acc) = evaluate(&m, &test.x, &test.y, Loss::CrossEntropy).unwrap();
    eprintln!(
        "digits MLP: final train loss {:.4}, test accuracy {acc:.4}",
        losses.last().unwrap()
    );
    assert!(losses.last().unwrap() < &losses[0]);
    assert!(acc >= 0.95, "test accuracy {acc}");
}

#[test]
fn digits_cnn_reaches_97_percent() {
    let (train, test) = digits_split();
    let img = |d: &Dataset| d.x.reshape((d.len(), 1, 8, 8)).unwrap();
    let (trx, tex) = (img(&train), img(&test));
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 2);
    let x = m.input("image", 1).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[x], Some(16))
        .unwrap();
    let a1 = m.add("a1", relu(), &[c1], None).unwrap();
    let c2 = m
        .add("c2", Op::Conv2d(Conv::same(3)), &[a1], Some(32))
        .unwrap();
    let a2 = m.add("a2", relu(), &[c2], None).unwrap();
    let p = m
        .add(
            "pool",
            Op::MaxPool2d {
                kernel: 2.into(),
                stride: 2.into(),
                padding: 0.into(),
            },
            &[a2],
            None,
        )
        .unwrap();
    let c3 = m
        .add("c3", Op::Conv2d(Conv::same(3)), &[p], Some(64))
        .unwrap();
    let a3 = m.add("a3", relu(), &[c3], None).unwrap();
    let f = m
        .add("flat", Op::Flatten { spatial: 16 }, &[a3], None)
        .unwrap();
    m.add("logits", Op::Dense { bias: true }, &[f], Some(10))
        .unwrap();
    let fit = Fit {
        batch: 32,
        epochs: 12,
        loss: Loss::CrossEntropy,
        seed: 8,
        probes: false,
        objective: Default::default(),
    };
    let mut opt = Adam::new(2e-3);
    fit.run(&mut m, &mut opt, &trx, &train.y, |_, _, _| Ok(()))
        .unwrap();
    let (_, acc) = evaluate(&m, &tex, &test.y, Loss::CrossEntropy).unwrap();
    eprintln!("digits CNN: test accuracy {acc:.4}");
    assert!(acc >= 0.97, "test accuracy {acc}");
}

/// Test loss of the XOR model after pruning `hidden` by half with `u`.
fn pruned_loss(m: &Model, hidden: VertexId, u: Utility, test: &Dataset) -> f64 {
    let mut m = m.clone();
    let n = m.graph().nout(hidden).unwrap() as i64;
    m.change_sizes(&Request::new().nout(hidden, -n / 2).with_utility(u))
        .unwrap();
    assert_eq!(m.graph().nout(hidden).unwrap() as i64, n - n / 2);
    evaluate(&m, &test.x, &test.y, Loss::Mse).unwrap().0
}

#[test]
fn xor_pruning_by_activation_contribution() {
    let train = xor(256, 0.1, 1).unwrap();
    let test = xor(512, 0.1, 2).unwrap();
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 3);
    let x = m.input("x", 2).unwrap();
    let hidden = m
        .add("hidden", Op::Dense { bias: true }, &[x], Some(32))
        .unwrap();
    let act = m
        .add("act", Op::Activation(Activation::Tanh), &[hidden], None)
        .unwrap();
    let out = m
        .add("out", Op::Dense { bias: true }, &[act], Some(1))
        .unwrap();
    m.add("p", Op::Activation(Activation::Sigmoid), &[out], None)
        .unwrap();
    let fit = Fit {
        batch: 32,
        epochs: 150,
        loss: Loss::Mse,
        seed: 4,
        probes: true,
        objective: Default::default(),
    };
    let mut opt = Adam::new(1e-2);
    let mut taylor = graft_nn::utility::Taylor::new(0.9, 1);
    fit.run(&mut m, &mut opt, &train.x, &train.y, |_, f, g| {
        taylor.observe(f, g)
    })
    .unwrap();
    let base = evaluate(&m, &test.x, &test.y, Loss::Mse).unwrap().0;

    let best = taylor.utility(&m);
    let mut worst = Utility::new();
    for v in [hidden, act] {
        let vals = best
            .get(v)
            .expect("contribution recorded")
            .iter()
            .map(|x| -x)
            .collect();
        worst.set(v, vals);
    }
    // Random: a seeded permutation of 1..=32 on the hidden layer.
    let mut perm: Vec<f64> = (1..=32).map(f64::from).collect();
    let mut s = 12345u64;
    for i in (1..perm.len()).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        perm.swap(i, (s >> 33) as usize % (i + 1));
    }
    let random = Utility::new().with(hidden, perm).with(act, vec![0.0; 32]);

    let by_taylor = pruned_loss(&m, hidden, best, &test);
    let by_random = pruned_loss(&m, hidden, random, &test);
    let by_worst = pruned_loss(&m, hidden, worst, &test);
    eprintln!(
        "XOR test MSE: trained {base:.5}; pruned half by contribution {by_taylor:.5}, \
         random {by_random:.5}, worst first {by_worst:.5}"
    );
    assert!(base < 0.02, "the MLP learns XOR: {base}");
    assert!(
        by_taylor < base + 0.01,
        "contribution pruning keeps the loss: {by_taylor} vs {base}"
    );
    assert!(
        by_random > 2.0 * by_taylor.max(base),
        "random is clearly worse: {by_random}"
    );
    assert!(
        by_worst > 2.0 * by_random,
        "worst first is worse still: {by_worst}"
    );
    // The figures of this seeded run (CPU, deterministic): 0.00018 trained,
    // 0.00091 by contribution, 0.0077 random, 0.249 worst first.
    assert!(by_taylor < 0.002 && by_random > 0.005 && by_worst > 0.2);
}

/// A parameter's values, flattened.
fn values(m: &Model, v: VertexId, name: &str) -> Vec<f32> {
    m.param(v, name)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn shipped_digits_equal_the_file() {
    let a = graft_nn::data::shipped_digits().unwrap();
    let b = digits(&digits_path()).unwrap();
    let flat = |t: &graft_nn::Tensor| -> Vec<f32> {
        t.to_dtype(graft_nn::DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(flat(&a.x), flat(&b.x));
    assert_eq!(flat(&a.y), flat(&b.y));
}

/// Taylor utility measured on data: a neuron whose outgoing weights are 0
/// contributes nothing to the loss and gets 0; the others get more; the
/// model is not changed.
#[test]
fn taylor_on_data_finds_a_silent_neuron() {
    let d = xor(128, 0.1, 3).unwrap();
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 5);
    let x = m.input("x", 2).unwrap();
    let h = m.add("h", Op::Dense { bias: true }, &[x], Some(6)).unwrap();
    let a = m
        .add("a", Op::Activation(Activation::Tanh), &[h], None)
        .unwrap();
    let y = m.add("y", Op::Dense { bias: true }, &[a], Some(1)).unwrap();
    // Silence neuron 2 of h: its column in y's weight is 0.
    let mut w = values(&m, y, "weight");
    w[2] = 0.0;
    m.set_param(
        y,
        "weight",
        &graft_nn::Tensor::from_vec(w.clone(), (1, 6), &graft_nn::Device::Cpu).unwrap(),
    )
    .unwrap();
    let mut batches = 0;
    let u = graft_nn::utility::taylor_on(&m, &d.x, &d.y, Loss::Mse, 32, || batches += 1).unwrap();
    assert_eq!(batches, 4);
    let uh = u.get(h).expect("h has a utility");
    assert_eq!(uh.len(), 6);
    assert_eq!(uh[2], 0.0);
    assert!(
        uh.iter().enumerate().all(|(i, &v)| i == 2 || v > 0.0),
        "{uh:?}"
    );
    let after = values(&m, y, "weight");
    assert_eq!(after, w);
    assert!(graft_nn::utility::taylor_on(&m, &d.x, &d.y, Loss::Mse, 0, || {}).is_err());
}

/// Masking every dense layer and convolution keeps the function; the masks
/// start at one and are used from then on.
#[test]
fn mask_weights_keeps_the_function() {
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 6);
    let x = m.input("x", 2).unwrap();
    let c = m
        .add("c", Op::Conv2d(Conv::same(3)), &[x], Some(4))
        .unwrap();
    let r = m.add("r", relu(), &[c], None).unwrap();
    let f = m.add("f", Op::Flatten { spatial: 16 }, &[r], None).unwrap();
    let y = m.add("y", Op::Dense { bias: true }, &[f], Some(3)).unwrap();
    let xs = graft_nn::Tensor::randn(0f32, 1.0, (5, 2, 4, 4), &graft_nn::Device::Cpu).unwrap();
    let run = |m: &Model| -> Vec<f32> {
        graft_nn::Executor::new(m)
            .unwrap()
            .forward(m, std::slice::from_ref(&xs), graft_nn::Mode::Eval, false)
            .unwrap()
            .outputs[0]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let before = run(&m);
    let changed = m.mask_weights().unwrap();
    assert_eq!(changed, vec![c, y]);
    assert!(matches!(m.layer(c).unwrap().op, Op::MaskedConv2d(_)));
    assert!(matches!(
        m.layer(y).unwrap().op,
        Op::MaskedDense { bias: true }
    ));
    assert_eq!(m.param(c, "mask").unwrap().dims(), &[4, 2, 3, 3]);
    assert_eq!(run(&m), before);
    // The mask is live: zero it on y and the output is y's bias.
    m.set_param(
        y,
        "mask",
        &graft_nn::Tensor::zeros((3, 64), graft_nn::DType::F32, &graft_nn::Device::Cpu).unwrap(),
    )
    .unwrap();
    let bias: Vec<f32> = m.param(y, "bias").unwrap().to_vec1().unwrap();
    let out = run(&m);
    assert_eq!(&out[..3], &bias[..]);
    // Masking again changes nothing.
    assert!(m.mask_weights().unwrap().is_empty());
}

/// Optimiser state holds values, not graphs: a moment that kept how its
/// gradient was computed (candle's convolution backward records it) would
/// keep every earlier step's activations alive, and memory would grow with
/// every step.
#[test]
fn optimiser_state_does_not_hold_the_graph() {
    use graft_nn::train::{Optimizer, Sgd};
    let (train, _) = digits_split();
    let x = train
        .x
        .narrow(0, 0, 64)
        .unwrap()
        .reshape((64, 1, 8, 8))
        .unwrap();
    let y = train.y.narrow(0, 0, 64).unwrap();
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 9);
    let i = m.input("image", 1).unwrap();
    let c = m
        .add("c", Op::Conv2d(Conv::same(3)), &[i], Some(4))
        .unwrap();
    let r = m.add("r", relu(), &[c], None).unwrap();
    let p = m.add("p", Op::GlobalAvgPool, &[r], None).unwrap();
    m.add("fc", Op::Dense { bias: true }, &[p], Some(10))
        .unwrap();
    let fit = Fit {
        batch: 32,
        epochs: 2,
        loss: Loss::CrossEntropy,
        seed: 1,
        probes: false,
        objective: Default::default(),
    };
    let mut adam = Adam::adamw(1e-3, 0.0);
    let mut coupled = Adam::new(1e-3);
    coupled.weight_decay = 1e-4;
    let mut sgd = Sgd::new(1e-2, 0.9);
    sgd.weight_decay = 1e-4;
    let opts: [&mut dyn Optimizer; 3] = [&mut adam, &mut coupled, &mut sgd];
    for opt in opts {
        let mut mm = m.clone();
        fit.run(&mut mm, &mut *opt, &x, &y, |_, _, _| Ok(()))
            .unwrap();
        let states = opt.states();
        assert!(!states.is_empty());
        for st in states {
            assert!(!st.is_empty());
            for t in st.values() {
                assert!(!t.track_op(), "a state tensor keeps its graph");
            }
        }
    }
}

/// Batch-norm recalibration: the running mean becomes the data's mean of
/// the normalised activations (the same in one batch or in ten), the
/// running variance the mean of the batches' variances, and no trainable
/// parameter moves.
#[test]
fn recalibrating_batch_norm_estimates_the_data_statistics() {
    use graft_nn::train::recalibrate_batch_norm;
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, 12);
    let x = m.input("x", 3).unwrap();
    let c = m
        .add("c", Op::Conv2d(Conv::same(3)), &[x], Some(4))
        .unwrap();
    let bn = m
        .add(
            "bn",
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[c],
            None,
        )
        .unwrap();
    let r = m.add("r", relu(), &[bn], None).unwrap();
    let p = m.add("p", Op::GlobalAvgPool, &[r], None).unwrap();
    m.add("fc", Op::Dense { bias: true }, &[p], Some(2))
        .unwrap();
    let data = graft_nn::Tensor::randn(2f32, 1.5, (200, 3, 6, 6), &graft_nn::Device::Cpu).unwrap();
    // The convolution's output over the data, per channel.
    let acts = graft_nn::Executor::new(&m)
        .unwrap()
        .forward(&m, std::slice::from_ref(&data), graft_nn::Mode::Eval, true)
        .unwrap()
        .activations[&c]
        .clone();
    let want: Vec<f32> = acts
        .transpose(0, 1)
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .mean(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    let weights_before = values(&m, c, "weight");
    let mut one = m.clone();
    let mut ten = m.clone();
    assert_eq!(recalibrate_batch_norm(&mut one, &data, 200).unwrap(), 1);
    assert_eq!(recalibrate_batch_norm(&mut ten, &data, 20).unwrap(), 1);
    for (a, b) in values(&one, bn, "running_mean").iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    for (a, b) in values(&ten, bn, "running_mean").iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
    // The variance over the whole data, against the mean of the batches'
    // variances: close, and far from the initial 1.
    let var_one = values(&one, bn, "running_var");
    for (a, b) in var_one.iter().zip(&values(&ten, bn, "running_var")) {
        assert!((a - b).abs() < 0.05 * a, "{a} vs {b}");
        assert!((a - 1.0).abs() > 0.1, "{a}");
    }
    assert_eq!(values(&one, c, "weight"), weights_before);
    assert!(recalibrate_batch_norm(&mut one, &data, 0).is_err());
}
