//! Scenarios D1-D7 of shared/acceptance/dynamic.md: conditionals, gates,
//! early exits and experts inside the graph the planner mutates.

use graft_nn::{
    zoo::dynamic_net, Activation, Choice, DType, Device, Executor, Model, Op, Run, Tensor,
};

fn relu() -> Op {
    Op::Activation(Activation::Relu)
}

fn randn(rows: usize, cols: usize, seed: u64) -> Tensor {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap()
}

fn control(values: &[f32]) -> Tensor {
    Tensor::from_vec(values.to_vec(), (values.len(), 1), &Device::Cpu).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_dtype(DType::F32).unwrap().to_vec2().unwrap()
}

/// A static chain of dense layers (with relus between) sharing `m`'s weights.
fn static_chain(m: &Model, layers: &[&str]) -> Model {
    let mut s = Model::new();
    let mut at = s.input("x", 10).unwrap();
    for (i, name) in layers.iter().enumerate() {
        let v = m.id(name).unwrap();
        let n = m.graph().nout(v).unwrap();
        at = s
            .add(name, Op::Dense { bias: true }, &[at], Some(n))
            .unwrap();
        for p in ["weight", "bias"] {
            s.set_param(at, p, &m.param(v, p).unwrap()).unwrap();
        }
        if i + 1 < layers.len() {
            at = s.add(&format!("relu{i}"), relu(), &[at], None).unwrap();
        }
    }
    s
}

fn run(m: &Model, x: &Tensor, c: &Tensor) -> graft_nn::Forward {
    Executor::new(m)
        .unwrap()
        .run(m, &[x.clone(), c.clone()], &Run::eval().traced())
        .unwrap()
}

#[test]
fn d1_dynamic_net_control() {
    let m = dynamic_net(10, 5, 2, false, 7).unwrap();
    let x = randn(16, 10, 1);
    let long = static_chain(&m, &["fc1", "fc2", "fc3"]);
    let short = static_chain(&m, &["fc1", "fc3"]);
    let static_out = |s: &Model| {
        let ex = Executor::new(s).unwrap();
        rows(
            &ex.forward(s, std::slice::from_ref(&x), graft_nn::Mode::Eval, false)
                .unwrap()
                .outputs[0],
        )
    };
    // A batch-level control on each side of the threshold: bit for bit.
    let hi = run(&m, &x, &control(&[0.7]));
    assert_eq!(rows(&hi.outputs[0]), static_out(&long));
    let lo = run(&m, &x, &control(&[0.3]));
    assert_eq!(rows(&lo.outputs[0]), static_out(&short));
    let fc2 = m.id("fc2").unwrap();
    assert_eq!(lo.trace.as_ref().unwrap().rows.get(&fc2), None);
    assert_eq!(hi.trace.as_ref().unwrap().rows[&fc2], 16);

    // Per-sample controls: row by row what each sample gives alone, and
    // fc2 runs on exactly the rows that take it.
    let cs: Vec<f32> = (0..16)
        .map(|i| if i % 3 == 0 { 0.9 } else { 0.1 })
        .collect();
    let mixed = run(&m, &x, &control(&cs));
    let got = rows(&mixed.outputs[0]);
    for i in 0..16 {
        let xi = x.narrow(0, i, 1).unwrap();
        let alone = run(&m, &xi, &control(&[cs[i]]));
        assert_eq!(got[i], rows(&alone.outputs[0])[0], "sample {i}");
    }
    let t = mixed.trace.unwrap();
    assert_eq!(t.rows[&fc2], 6);
    let cond = m.id("cond").unwrap();
    let picks: Vec<Option<Choice>> = t.of(cond).unwrap().per_sample.clone();
    for (i, p) in picks.iter().enumerate() {
        let want = if cs[i] > 0.5 { 0 } else { 1 };
        assert_eq!(p, &Some(Choice::Branch(want)));
    }
    // No row takes fc2: it does no work at all.
    let none = run(&m, &x, &control(&[0.2; 16]));
    assert_eq!(none.trace.unwrap().rows.get(&fc2), None);
}

/// Outputs of `m` for a batch-level control, and for per-sample controls.
fn both_branches(m: &Model, x: &Tensor) -> [Vec<Vec<f32>>; 3] {
    let cs: Vec<f32> = (0..x.dim(0).unwrap())
        .map(|i| if i % 2 == 0 { 0.8 } else { 0.2 })
        .collect();
    [
        rows(&run(m, x, &control(&[0.7])).outputs[0]),
        rows(&run(m, x, &control(&[0.3])).outputs[0]),
        rows(&run(m, x, &control(&cs)).outputs[0]),
    ]
}

fn assert_close(a: &[Vec<Vec<f32>>], b: &[Vec<Vec<f32>>], tol: f32) {
    for (x, y) in a
        .iter()
        .flatten()
        .flatten()
        .zip(b.iter().flatten().flatten())
    {
        assert!((x - y).abs() <= tol, "{x} vs {y}");
    }
}

#[test]
fn d2_sizes_through_a_conditional() {
    use graft_core::{plan, Patch, Request};
    let mut m = dynamic_net(10, 5, 2, false, 3).unwrap();
    let x = randn(12, 10, 2);
    let before = both_branches(&m, &x);
    let id = |m: &Model, n: &str| m.id(n).unwrap();
    let (fc1, fc2, fc3) = (id(&m, "fc1"), id(&m, "fc2"), id(&m, "fc3"));

    // Δnout(fc1) = +3: fc1's rows, fc2's columns and rows, fc3's columns.
    m.change_sizes(&Request::new().nout(fc1, 3)).unwrap();
    assert_eq!(m.param(fc1, "weight").unwrap().dims(), &[8, 10]);
    assert_eq!(m.param(fc2, "weight").unwrap().dims(), &[8, 8]);
    assert_eq!(m.param(fc3, "weight").unwrap().dims(), &[2, 8]);
    // New neurons have zero outgoing weights: columns 5.. of fc3 and fc2.
    let w3 = rows(&m.param(fc3, "weight").unwrap());
    assert!(w3.iter().all(|r| r[5..].iter().all(|&v| v == 0.0)));
    let after = both_branches(&m, &x);
    assert_close(&before, &after, 1e-5);

    // Δnout(fc2) = +1 with fc1 held is infeasible exactly.
    let held = Request::new().nout(fc2, 1).nout(fc1, 0);
    assert!(plan(m.graph(), &held).is_err());
    // Relaxed, fc1 and fc2 move together.
    m.change_sizes(&Request::new().nout_relaxed(fc2, 1))
        .unwrap();
    assert_eq!(m.graph().nout(fc1).unwrap(), 9);
    assert_eq!(m.graph().nout(fc2).unwrap(), 9);
    assert_close(&before, &both_branches(&m, &x), 1e-5);

    // Removing fc2 leaves both branches identity-like (relu of a relu):
    // the network is fc1-relu-fc3 whatever the control.
    let short_before = before[1].clone();
    m.commit(&Patch::new().remove("fc2"), &[]).unwrap();
    let [hi, lo, mixed] = both_branches(&m, &x);
    assert_close(std::slice::from_ref(&short_before), &[hi], 1e-5);
    assert_close(std::slice::from_ref(&short_before), &[lo], 1e-5);
    assert_close(&[short_before], &[mixed], 1e-5);
    let _ = fc3;
}

/// x(8) -> stem -> relu -> x + gate(head, dense-relu) -> out(3).
fn gated(seed: u64, estimator: graft_nn::GateEstimator) -> Model {
    use graft_nn::dynamic::GateHead;
    let mut m = Model::with(Device::Cpu, DType::F32, seed);
    let x = m.input("x", 8).unwrap();
    let s = m
        .add("stem", Op::Dense { bias: true }, &[x], Some(8))
        .unwrap();
    let r = m.add("stem.relu", relu(), &[s], None).unwrap();
    let b = m
        .gated_residual("block", r, GateHead::Dense, estimator, |m, at| {
            let d = m.add("body", Op::Dense { bias: true }, &[at], Some(8))?;
            m.add("body.relu", relu(), &[d], None)
        })
        .unwrap();
    m.add("out", Op::Dense { bias: true }, &[b], Some(3))
        .unwrap();
    m
}

#[test]
fn d3_gated_blocks() {
    use graft_nn::{
        dynamic::Objective, train::Adam, train::Fit, train::Loss, GateEstimator, GateForce,
    };
    let m = gated(5, GateEstimator::StraightThrough);
    let x = randn(64, 8, 3);
    let ex = Executor::new(&m).unwrap();
    let fwd = |opts: Run| {
        ex.run(&m, std::slice::from_ref(&x), &opts.traced())
            .unwrap()
    };
    let learned = fwd(Run::eval());
    let on = fwd(Run::eval().force_gates(GateForce::On));
    let off = fwd(Run::eval().force_gates(GateForce::Off));
    let head = m.id("block.head").unwrap();
    let body = m.id("body").unwrap();
    let gate = m.id("block.gate").unwrap();
    // Hard at inference: a sample's gate is on when its head's logit > 0.
    let keep = ex
        .run(
            &m,
            std::slice::from_ref(&x),
            &Run {
                keep: true,
                ..Run::eval()
            },
        )
        .unwrap();
    let logits: Vec<f32> = rows(&keep.activations[&head])
        .into_iter()
        .map(|r| r[0])
        .collect();
    let t = learned.trace.as_ref().unwrap();
    let decided = &t.of(gate).unwrap().per_sample;
    let n_on = logits.iter().filter(|&&l| l > 0.0).count();
    assert!(n_on > 0 && n_on < 64, "a mix of decisions ({n_on} on)");
    for (i, l) in logits.iter().enumerate() {
        assert_eq!(decided[i], Some(Choice::Gate(*l > 0.0)));
    }
    // The body runs on the gated-on samples only; forced on or off, on all
    // or none.
    assert_eq!(t.rows[&body], n_on);
    assert_eq!(on.trace.as_ref().unwrap().rows[&body], 64);
    assert_eq!(off.trace.as_ref().unwrap().rows.get(&body), None);
    // Each row equals the forced-on row where the gate is on, the
    // forced-off row where it is off.
    let (l, a, b) = (
        rows(&learned.outputs[0]),
        rows(&on.outputs[0]),
        rows(&off.outputs[0]),
    );
    for i in 0..64 {
        let want = if logits[i] > 0.0 { &a[i] } else { &b[i] };
        for (p, q) in l[i].iter().zip(want) {
            assert!((p - q).abs() < 1e-6);
        }
    }

    // Training: the straight-through gate passes gradients to its head.
    let y = Tensor::from_vec(
        (0..64u32).map(|i| i % 3).collect::<Vec<_>>(),
        64,
        &Device::Cpu,
    )
    .unwrap();
    let f = ex
        .run(&m, std::slice::from_ref(&x), &Run::train(1))
        .unwrap();
    let loss = Loss::CrossEntropy.compute(&f.outputs[0], &y).unwrap();
    let grads = loss.backward().unwrap();
    let hw = m
        .trainable()
        .into_iter()
        .find(|(v, n, _)| *v == head && n == "weight")
        .unwrap()
        .2;
    let g = grads.get(hw.as_tensor()).expect("the head gets a gradient");
    assert!(
        g.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.0
    );

    // A target execution rate through the auxiliary loss, for both
    // estimators: the share of samples gated on moves to a target far from
    // where it starts (at
    // inference for straight-through; with the Gumbel noise of training
    // for Gumbel, whose noise-free decisions may all fall on one side).
    for (est, target) in [
        (GateEstimator::StraightThrough, 0.85),
        (GateEstimator::Gumbel { tau: 1.0 }, 0.1),
    ] {
        let mut m = gated(5, est);
        let mode = match est {
            GateEstimator::StraightThrough => Run::eval(),
            GateEstimator::Gumbel { .. } => Run::train(99),
        };
        let rate = |m: &Model| {
            let ex = Executor::new(m).unwrap();
            let t = ex
                .run(m, std::slice::from_ref(&x), &mode.traced())
                .unwrap()
                .trace
                .unwrap();
            let gate = m.id("block.gate").unwrap();
            let d = &t.of(gate).unwrap().per_sample;
            d.iter().filter(|c| **c == Some(Choice::Gate(true))).count() as f64 / 64.0
        };
        let fit = Fit {
            batch: 16,
            epochs: 60,
            loss: Loss::CrossEntropy,
            seed: 3,
            probes: false,
            objective: Objective {
                gate_rate: Some((target, 5.0)),
                ..Objective::default()
            },
        };
        let mut opt = Adam::new(1e-2);
        let start = rate(&m);
        assert!((start - target).abs() > 0.3, "{est:?}: starts at {start}");
        fit.run(&mut m, &mut opt, &x, &y, |_, _, _| Ok(())).unwrap();
        let r = rate(&m);
        assert!(
            (r - target).abs() <= 0.1,
            "{est:?}: rate {r} (from {start})"
        );
    }
}

/// x(16) -> b1 -> b2 -> b3 -> final(4), heads h1 (after b1) and h2 (after
/// b2); exit e2 = Exit(h2, final), e1 = Exit(h1, e2).
fn exits(threshold: f64, confidence: graft_nn::Confidence) -> Model {
    let mut m = Model::with(Device::Cpu, DType::F32, 11);
    let x = m.input("x", 16).unwrap();
    let mut at = x;
    let mut heads = Vec::new();
    for i in 1..=3 {
        let d = m
            .add(&format!("b{i}"), Op::Dense { bias: true }, &[at], Some(32))
            .unwrap();
        at = m.add(&format!("b{i}.relu"), relu(), &[d], None).unwrap();
        if i < 3 {
            heads.push(
                m.add(&format!("h{i}"), Op::Dense { bias: true }, &[at], Some(4))
                    .unwrap(),
            );
        }
    }
    let fin = m
        .add("final", Op::Dense { bias: true }, &[at], Some(4))
        .unwrap();
    let op = Op::Exit {
        confidence,
        threshold,
    };
    let e2 = m.add("e2", op.clone(), &[heads[1], fin], None).unwrap();
    m.add("e1", op, &[heads[0], e2], None).unwrap();
    m
}

fn softmax_max(r: &[f32]) -> f64 {
    let m = r.iter().copied().fold(f32::MIN, f32::max) as f64;
    1.0 / r.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>()
}

#[test]
fn d4_early_exits() {
    use graft_nn::{dynamic::Objective, train::Loss, Confidence};
    let x = randn(200, 16, 9).affine(4.0, 0.0).unwrap();
    // The heads' confidences, from a pass without exits.
    let m = exits(0.3, Confidence::MaxSoftmax);
    let ex = Executor::new(&m).unwrap();
    let all = ex
        .run(
            &m,
            std::slice::from_ref(&x),
            &Run {
                keep: true,
                ..Run::eval().without_exits()
            },
        )
        .unwrap();
    let id = |n: &str| m.id(n).unwrap();
    let conf = |v| -> Vec<f64> {
        rows(&all.activations[&v])
            .iter()
            .map(|r| softmax_max(r))
            .collect()
    };
    let (c1, c2) = (conf(id("h1")), conf(id("h2")));
    let (h1, h2, fin) = (
        rows(&all.activations[&id("h1")]),
        rows(&all.activations[&id("h2")]),
        rows(&all.activations[&id("final")]),
    );
    let t = 0.3;
    let f = ex
        .run(&m, std::slice::from_ref(&x), &Run::eval().traced())
        .unwrap();
    let tr = f.trace.as_ref().unwrap();
    let out = rows(&f.outputs[0]);
    let (mut n1, mut n2, mut n3) = (0, 0, 0);
    for i in 0..200 {
        let (want, exit) = if c1[i] >= t {
            n1 += 1;
            (&h1[i], Some(id("e1")))
        } else if c2[i] >= t {
            n2 += 1;
            (&h2[i], Some(id("e2")))
        } else {
            n3 += 1;
            (&fin[i], None)
        };
        assert_eq!(tr.exit_taken(i), exit, "sample {i}");
        for (p, q) in out[i].iter().zip(want) {
            assert!((p - q).abs() < 1e-5);
        }
    }
    assert!(n1 > 0 && n2 > 0 && n3 > 0, "exits taken: {n1} {n2} {n3}");
    // The rest of the network does not run for samples that left.
    assert_eq!(tr.rows[&id("b2")], 200 - n1);
    assert_eq!(tr.rows[&id("b3")], n3);
    assert_eq!(tr.rows[&id("b1")], 200);
    // Thresholds nobody passes: the full network; everybody passes: only b1.
    let never = exits(1.01, Confidence::MaxSoftmax);
    let fn_ = Executor::new(&never)
        .unwrap()
        .run(&never, std::slice::from_ref(&x), &Run::eval().traced())
        .unwrap();
    assert_eq!(rows(&fn_.outputs[0]), fin);
    let always = exits(0.0, Confidence::MaxSoftmax);
    let fa = Executor::new(&always)
        .unwrap()
        .run(&always, std::slice::from_ref(&x), &Run::eval().traced())
        .unwrap();
    assert_eq!(rows(&fa.outputs[0]), h1);
    assert_eq!(fa.trace.unwrap().rows.get(&id("b2")), None);
    // Negative entropy: the entropy of a 4-way softmax is at most ln 4.
    let ent = exits(-0.5, Confidence::NegEntropy);
    let fe = Executor::new(&ent)
        .unwrap()
        .run(&ent, std::slice::from_ref(&x), &Run::eval().traced())
        .unwrap();
    let te = fe.trace.unwrap();
    for (i, r) in h1.iter().enumerate() {
        let mx = r.iter().copied().fold(f32::MIN, f32::max) as f64;
        let z: f64 = r.iter().map(|&v| (v as f64 - mx).exp()).sum();
        let h: f64 = -r
            .iter()
            .map(|&v| {
                let p = (v as f64 - mx).exp() / z;
                p * p.ln()
            })
            .sum::<f64>();
        assert_eq!(te.exit_taken(i) == Some(id("e1")), -h >= -0.5, "sample {i}");
    }

    // Training runs every sample to the end and returns every head for the
    // weighted joint loss.
    let y = Tensor::from_vec(
        (0..200u32).map(|i| i % 4).collect::<Vec<_>>(),
        200,
        &Device::Cpu,
    )
    .unwrap();
    let ft = ex
        .run(&m, std::slice::from_ref(&x), &Run::train(0))
        .unwrap();
    assert_eq!(
        ft.exit_heads.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        vec![id("e2"), id("e1")]
    );
    let obj = Objective {
        exit_weights: vec![0.5, 0.25],
        ..Objective::default()
    };
    let aux = obj
        .loss(&ft, Loss::CrossEntropy, &y)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let ce = |t: &Tensor| {
        Loss::CrossEntropy
            .compute(t, &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let want = 0.5 * ce(&ft.exit_heads[0].1) + 0.25 * ce(&ft.exit_heads[1].1);
    assert!((aux - want).abs() < 1e-5);
    assert_eq!(rows(&ft.outputs[0]), fin);
}

/// x(6) -> mixture of 4 experts (dense 6->8), top-2 -> out(3).
fn moe(capacity: Option<f64>) -> Model {
    let mut m = Model::with(Device::Cpu, DType::F32, 21);
    let x = m.input("x", 6).unwrap();
    let mix = m
        .mixture("moe", x, 4, 2, capacity, |m, i, x| {
            m.add(
                &format!("expert{i}"),
                Op::Dense { bias: true },
                &[x],
                Some(8),
            )
        })
        .unwrap();
    m.add("out", Op::Dense { bias: true }, &[mix], Some(3))
        .unwrap();
    m
}

fn dense_rows(m: &Model, v: graft_nn::VertexId, x: &Tensor) -> Vec<Vec<f32>> {
    let w = m.param(v, "weight").unwrap();
    let b = m.param(v, "bias").unwrap();
    rows(
        &x.matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap(),
    )
}

#[test]
fn d5_mixture_of_experts() {
    use graft_core::Request;
    let mut m = moe(None);
    let x = randn(40, 6, 4).affine(3.0, 0.0).unwrap();
    let id = |m: &Model, n: &str| m.id(n).unwrap();
    // Expert 3 is never chosen: its router logit is hopeless.
    let router = id(&m, "moe.router");
    let mut b = m.param(router, "bias").unwrap().to_vec1::<f32>().unwrap();
    b[3] = -1e3;
    m.set_param(
        router,
        "bias",
        &Tensor::from_vec(b, 4, &Device::Cpu).unwrap(),
    )
    .unwrap();

    let ex = Executor::new(&m).unwrap();
    let f = ex
        .run(
            &m,
            std::slice::from_ref(&x),
            &Run {
                keep: true,
                ..Run::eval().traced()
            },
        )
        .unwrap();
    let mix = rows(&f.activations[&id(&m, "moe")]);
    let logits = dense_rows(&m, router, &x);
    let experts: Vec<Vec<Vec<f32>>> = (0..4)
        .map(|e| dense_rows(&m, id(&m, &format!("expert{e}")), &x))
        .collect();
    let t = f.trace.as_ref().unwrap();
    let decisions = &t.of(id(&m, "moe")).unwrap().per_sample;
    let mut f_share = [0f64; 4];
    let mut p_mean = [0f64; 4];
    for i in 0..40 {
        let mx = logits[i].iter().copied().fold(f32::MIN, f32::max) as f64;
        let z: Vec<f64> = logits[i].iter().map(|&l| (l as f64 - mx).exp()).collect();
        let p: Vec<f64> = z.iter().map(|v| v / z.iter().sum::<f64>()).collect();
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let top = &order[..2];
        let norm: f64 = top.iter().map(|&e| p[e]).sum();
        for e in 0..4 {
            p_mean[e] += p[e] / 40.0;
        }
        for &e in top {
            f_share[e] += 1.0 / 80.0;
        }
        // Output: Σ over the top-2 of renormalised weight × expert output.
        for j in 0..8 {
            let want: f64 = top
                .iter()
                .map(|&e| p[e] / norm * experts[e][i][j] as f64)
                .sum();
            assert!((mix[i][j] as f64 - want).abs() < 1e-4, "sample {i}");
        }
        let Some(Choice::Experts(got)) = &decisions[i] else {
            panic!("no decision")
        };
        let mut got_e: Vec<usize> = got.iter().map(|(e, _)| *e).collect();
        got_e.sort();
        let mut want_e = top.to_vec();
        want_e.sort();
        assert_eq!(got_e, want_e);
    }
    // Experts that receive no sample do no work.
    assert_eq!(t.rows.get(&id(&m, "expert3")), None);
    let ran: usize = (0..3).map(|e| t.rows[&id(&m, &format!("expert{e}"))]).sum();
    assert_eq!(ran, 80);
    // The load-balancing loss returned with the output: E · Σ f_e · P_e.
    let want: f64 = 4.0 * (0..4).map(|e| f_share[e] * p_mean[e]).sum::<f64>();
    let got = f.balance[0].1.to_scalar::<f32>().unwrap() as f64;
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    // It has a gradient to the router.
    let g = f.balance[0].1.backward().unwrap();
    let rw = m
        .trainable()
        .into_iter()
        .find(|(v, n, _)| *v == router && n == "weight")
        .unwrap()
        .2;
    assert!(g.get(rw.as_tensor()).is_some());

    // A capacity factor bounds each expert's samples: ⌈0.5 · 2 · 40 / 4⌉.
    let capped = moe(Some(0.5));
    let tc = Executor::new(&capped)
        .unwrap()
        .run(&capped, std::slice::from_ref(&x), &Run::eval().traced())
        .unwrap()
        .trace
        .unwrap();
    for e in 0..4 {
        assert!(
            tc.rows
                .get(&id(&capped, &format!("expert{e}")))
                .copied()
                .unwrap_or(0)
                <= 10
        );
    }

    // Δnout on the mixture resizes every expert; the router stays at 4 and
    // the function is kept.
    let before = rows(
        &ex.run(&m, std::slice::from_ref(&x), &Run::eval())
            .unwrap()
            .outputs[0],
    );
    m.change_sizes(&Request::new().nout(id(&m, "moe"), 2))
        .unwrap();
    for e in 0..4 {
        assert_eq!(m.graph().nout(id(&m, &format!("expert{e}"))).unwrap(), 10);
    }
    assert_eq!(m.graph().nout(router).unwrap(), 4);
    let after = rows(
        &Executor::new(&m)
            .unwrap()
            .run(&m, std::slice::from_ref(&x), &Run::eval())
            .unwrap()
            .outputs[0],
    );
    assert_close(&[before], &[after], 1e-5);
}

#[test]
fn d6_trace_and_cost() {
    // DynamicNet(10, 5, 2): 10·5 + 5·5 + 5·2 = 85 MACs per sample in full,
    // 60 without fc2.
    let m = dynamic_net(10, 5, 2, false, 1).unwrap();
    assert_eq!(m.cost(&[vec![10], vec![1]]).unwrap().total(), 85);
    let x = randn(32, 10, 5);
    let cs: Vec<f32> = (0..32).map(|i| if i < 8 { 0.9 } else { 0.1 }).collect();
    let t = run(&m, &x, &control(&cs)).trace.unwrap();
    assert_eq!(t.samples, 32);
    assert_eq!(t.macs_full, 32 * 85);
    assert_eq!(t.macs_spent, 32 * 60 + 8 * 25);
    let cond = m.id("cond").unwrap();
    assert_eq!(t.decisions.len(), 1);
    assert_eq!(t.of(cond).unwrap().name, "cond");

    // A mixture: the full graph runs every expert on every sample; top-2
    // of 4 spends the router, two experts and the head per sample.
    let mx = moe(None);
    let x6 = randn(20, 6, 6);
    let tm = Executor::new(&mx)
        .unwrap()
        .run(&mx, &[x6], &Run::eval().traced())
        .unwrap()
        .trace
        .unwrap();
    let per = |a: u64, b: u64| a * b;
    assert_eq!(tm.macs_full, 20 * (per(6, 4) + 4 * per(6, 8) + per(8, 3)));
    assert_eq!(tm.macs_spent, 20 * (per(6, 4) + 2 * per(6, 8) + per(8, 3)));

    // A gated convolutional block: conv MACs follow the spatial size, and
    // gates off spend nothing in the body.
    use graft_nn::{dynamic::GateHead, Conv, GateEstimator, GateForce};
    let mut c = Model::new();
    let xin = c.input("img", 3).unwrap();
    let stem = c
        .add("stem", Op::Conv2d(Conv::same(3)), &[xin], Some(4))
        .unwrap();
    c.gated_residual(
        "block",
        stem,
        GateHead::PooledDense,
        GateEstimator::StraightThrough,
        |m, at| m.add("body", Op::Conv2d(Conv::same(3)), &[at], Some(4)),
    )
    .unwrap();
    let img = Tensor::randn(0f32, 1.0, (5, 3, 8, 8), &Device::Cpu).unwrap();
    let ex = Executor::new(&c).unwrap();
    let off = ex
        .run(
            &c,
            std::slice::from_ref(&img),
            &Run::eval().traced().force_gates(GateForce::Off),
        )
        .unwrap()
        .trace
        .unwrap();
    let on = ex
        .run(&c, &[img], &Run::eval().traced().force_gates(GateForce::On))
        .unwrap()
        .trace
        .unwrap();
    let stem_macs = 64 * 4 * 3 * 9;
    let body_macs = 64 * 4 * 4 * 9;
    let head_macs = 4;
    assert_eq!(on.macs_full, 5 * (stem_macs + body_macs + head_macs));
    assert_eq!(on.macs_spent, on.macs_full);
    assert_eq!(off.macs_spent, 5 * (stem_macs + head_macs));
}

#[test]
fn bad_controls_are_typed_errors_naming_the_vertex() {
    let m = dynamic_net(10, 5, 2, false, 1).unwrap();
    let x = randn(4, 10, 1);
    let ex = Executor::new(&m).unwrap();
    // Three rows for a batch of four, two columns for a one-column control.
    for c in [randn(3, 1, 2), randn(4, 2, 3)] {
        let err = ex.run(&m, &[x.clone(), c], &Run::eval()).unwrap_err();
        assert!(err.to_string().contains("cond"), "{err}");
    }
    // A batch-level conditional takes one control row.
    let b = dynamic_net(10, 5, 2, true, 1).unwrap();
    let eb = Executor::new(&b).unwrap();
    let err = eb
        .run(&b, &[x.clone(), randn(4, 1, 4)], &Run::eval())
        .unwrap_err();
    assert!(err.to_string().contains("one row"), "{err}");
    // Ops whose inputs do not fit are refused when added.
    let mut m = Model::new();
    let c = m.input("c", 2).unwrap();
    let a = m.input("a", 3).unwrap();
    let rule = graft_nn::Rule::Threshold { threshold: 0.5 };
    let cond = Op::Cond { rule, batch: false };
    assert!(m
        .add("two_columns", cond.clone(), &[c, a, a], None)
        .is_err());
    assert!(m.add("one_branch", cond, &[a], None).is_err());
    let moe = Op::Moe {
        k: 3,
        capacity: None,
    };
    assert!(m.add("top3_of_2", moe, &[c, a, a], None).is_err());
}

#[test]
fn gradients_flow_through_per_sample_routing() {
    // The summed output of a mixed batch: fc2's gradient equals that of the
    // static fc1-fc2-fc3 chain on the rows that took fc2 alone.
    let m = dynamic_net(10, 5, 2, false, 5).unwrap();
    let x = randn(10, 10, 8);
    let cs: Vec<f32> = (0..10).map(|i| if i < 4 { 0.9 } else { 0.1 }).collect();
    let f = Executor::new(&m)
        .unwrap()
        .run(&m, &[x.clone(), control(&cs)], &Run::train(0))
        .unwrap();
    let grads = f.outputs[0].sum_all().unwrap().backward().unwrap();
    let fc2 = m.id("fc2").unwrap();
    let var = |m: &Model, v| {
        m.trainable()
            .into_iter()
            .find(|(u, n, _)| *u == v && n == "weight")
            .unwrap()
            .2
    };
    let g_dyn = rows(grads.get(var(&m, fc2).as_tensor()).unwrap());

    let long = static_chain(&m, &["fc1", "fc2", "fc3"]);
    let taken = x.narrow(0, 0, 4).unwrap();
    let fs = Executor::new(&long)
        .unwrap()
        .run(&long, &[taken], &Run::train(0))
        .unwrap();
    let gs = fs.outputs[0].sum_all().unwrap().backward().unwrap();
    let g_static = rows(
        gs.get(var(&long, long.id("fc2").unwrap()).as_tensor())
            .unwrap(),
    );
    assert_close(&[g_dyn], &[g_static], 1e-5);
}

#[test]
fn argmax_conditionals_route_each_sample_by_its_largest_column() {
    let m = graft_nn::zoo::switch_mlp(6, 8, 3, 2, graft_nn::Rule::Argmax, 4).unwrap();
    let x = randn(12, 6, 1);
    let c = randn(12, 3, 2);
    let ex = Executor::new(&m).unwrap();
    let f = ex
        .run(&m, &[x.clone(), c.clone()], &Run::eval().traced())
        .unwrap();
    let got = rows(&f.outputs[0]);
    let t = f.trace.unwrap();
    let cond = m.id("cond").unwrap();
    for (i, row) in rows(&c).iter().enumerate() {
        let best = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        assert_eq!(
            t.of(cond).unwrap().per_sample[i],
            Some(Choice::Branch(best))
        );
        // The same as a one-hot control for that branch, sample alone.
        let mut hot = vec![0f32; 3];
        hot[best] = 1.0;
        let one = Tensor::from_vec(hot, (1, 3), &Device::Cpu).unwrap();
        let alone = ex
            .run(&m, &[x.narrow(0, i, 1).unwrap(), one], &Run::eval())
            .unwrap();
        assert_eq!(got[i], rows(&alone.outputs[0])[0], "sample {i}");
    }
}

#[test]
fn refused_mutations_leave_a_dynamic_model_as_it_was() {
    use graft_core::{Edit, Patch};
    let mut m = dynamic_net(10, 5, 2, false, 2).unwrap();
    let before = m.clone();
    let params = |m: &Model| -> Vec<Vec<f32>> {
        m.trainable()
            .into_iter()
            .map(|(_, _, p)| p.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    // The control of a conditional cannot be disconnected, its last branch
    // neither, and a patch that fails half-way changes nothing.
    let refused = [
        Patch::new().remove_edge("control", "cond"),
        Patch::new()
            .remove_edge("relu1", "cond")
            .remove_edge("relu2", "cond"),
        Patch::new()
            .resize(graft_core::Request::new().nout(m.id("fc1").unwrap(), 2))
            .push(Edit::RemoveEdge {
                from: "control".into(),
                to: "cond".into(),
                nth: 0,
            }),
    ];
    for p in refused {
        assert!(m.commit(&p, &[]).is_err());
        assert_eq!(m.graph(), before.graph());
        assert_eq!(params(&m), params(&before));
    }
}

#[test]
fn fit_trains_a_conditional_with_per_sample_controls() {
    use graft_nn::train::{Adam, Fit, Loss};
    let mut m = dynamic_net(10, 5, 2, false, 6).unwrap();
    let x = randn(64, 10, 3);
    let c: Vec<f32> = (0..64).map(|i| (i % 2) as f32).collect();
    let c = control(&c);
    let y = Tensor::from_vec(
        (0..64u32).map(|i| i % 2).collect::<Vec<_>>(),
        64,
        &Device::Cpu,
    )
    .unwrap();
    let loss = |m: &Model| {
        let f = Executor::new(m)
            .unwrap()
            .run(m, &[x.clone(), c.clone()], &Run::eval())
            .unwrap();
        Loss::CrossEntropy
            .compute(&f.outputs[0], &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let start = loss(&m);
    let fit = Fit {
        batch: 16,
        epochs: 40,
        loss: Loss::CrossEntropy,
        seed: 1,
        probes: false,
        objective: Default::default(),
    };
    let mut opt = Adam::new(1e-2);
    fit.run_inputs(&mut m, &mut opt, &[x.clone(), c.clone()], &y, |_, _, _| {
        Ok(())
    })
    .unwrap();
    let end = loss(&m);
    assert!(end < 0.5 * start, "{start} -> {end}");
    // Inputs whose rows disagree with the targets are refused.
    let short = c.narrow(0, 0, 10).unwrap();
    let err = fit
        .run_inputs(&mut m, &mut opt, &[x.clone(), short], &y, |_, _, _| Ok(()))
        .unwrap_err();
    assert!(err.to_string().contains("Fit input 1"), "{err}");
}
