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
    let m = dynamic_net(10, 5, 2, 7).unwrap();
    let x = randn(16, 10, 1);
    let long = static_chain(&m, &["fc1", "fc2", "fc3"]);
    let short = static_chain(&m, &["fc1", "fc3"]);
    let static_out = |s: &Model| {
        let ex = Executor::new(s).unwrap();
        rows(
            &ex.forward(s, &[x.clone()], graft_nn::Mode::Eval, false)
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
