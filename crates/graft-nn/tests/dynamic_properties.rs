//! Property tests of conditionals inside the mutable graph. Random graphs
//! with a conditional (two or three branches, each an identity, a dense
//! chain or a nested conditional on the same control) and random per-sample
//! control vectors:
//!
//! 1. the batched output equals each sample's output alone, row by row;
//! 2. growth (Δnout > 0 on any dense vertex, the planner moving every tied
//!    branch) keeps the output within 1e-5 for every control value, so on
//!    every branch.
//!
//! 64 cases by default; `GRAFT_DYNAMIC_CASES=1000` runs more.

use graft_core::Request;
use graft_nn::{Activation, Device, Executor, Model, Op, Rule, Run, Tensor, VertexId};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Recipe {
    features: usize,
    hidden: usize,
    /// Per branch: 0 identity, 1 dense-act, 2 dense-act-dense, 3 nested.
    branches: Vec<u8>,
    switch: bool,
    controls: Vec<u8>,
    growth: Vec<(usize, usize)>,
    seed: u64,
}

/// Control values that pick every branch under both rules.
const VALUES: [f32; 6] = [0.0, 0.3, 0.7, 1.0, 1.6, 2.2];

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        2..7usize,
        1..6usize,
        prop::collection::vec(0..4u8, 2..4),
        any::<bool>(),
        prop::collection::vec(0..6u8, 1..9),
        prop::collection::vec((0..64usize, 1..4usize), 1..4),
        any::<u64>(),
    )
        .prop_map(
            |(features, hidden, branches, switch, controls, growth, seed)| Recipe {
                features,
                hidden,
                switch: switch || branches.len() == 3,
                branches,
                controls,
                growth,
                seed,
            },
        )
}

fn act(i: usize) -> Op {
    let all = [
        Activation::Relu,
        Activation::Tanh,
        Activation::Sigmoid,
        Activation::Gelu,
    ];
    Op::Activation(all[i % all.len()])
}

fn build(r: &Recipe) -> (Model, Vec<VertexId>) {
    let mut m = Model::with(Device::Cpu, graft_nn::DType::F32, r.seed);
    let dense = Op::Dense { bias: true };
    let x = m.input("x", r.features).unwrap();
    let c = m.input("control", 1).unwrap();
    let t0 = m.add("trunk", dense.clone(), &[x], Some(r.hidden)).unwrap();
    let t = m.add("trunk.act", act(0), &[t0], None).unwrap();
    let mut ins = vec![c];
    let mut denses = vec![t0];
    for (b, &kind) in r.branches.iter().enumerate() {
        let p = format!("b{b}");
        let out = match kind {
            0 => t,
            1 => {
                let d = m.add(&p, dense.clone(), &[t], Some(r.hidden)).unwrap();
                denses.push(d);
                m.add(&format!("{p}.act"), act(b + 1), &[d], None).unwrap()
            }
            2 => {
                let d = m.add(&p, dense.clone(), &[t], Some(r.hidden + 2)).unwrap();
                let a = m.add(&format!("{p}.act"), act(b), &[d], None).unwrap();
                let e = m
                    .add(&format!("{p}.out"), dense.clone(), &[a], Some(r.hidden))
                    .unwrap();
                denses.extend([d, e]);
                e
            }
            _ => {
                let d = m.add(&p, dense.clone(), &[t], Some(r.hidden)).unwrap();
                let a = m.add(&format!("{p}.act"), act(b + 2), &[t], None).unwrap();
                denses.push(d);
                m.add(
                    &format!("{p}.cond"),
                    Op::Cond {
                        rule: Rule::Threshold { threshold: 1.2 },
                        batch: false,
                    },
                    &[c, d, a],
                    None,
                )
                .unwrap()
            }
        };
        ins.push(out);
    }
    let rule = if r.switch {
        Rule::Switch
    } else {
        Rule::Threshold { threshold: 0.5 }
    };
    let cond = m
        .add("cond", Op::Cond { rule, batch: false }, &ins, None)
        .unwrap();
    m.add("head", dense, &[cond], Some(3)).unwrap();
    (m, denses)
}

fn out(m: &Model, x: &Tensor, c: &[f32]) -> Vec<Vec<f32>> {
    let ct = Tensor::from_vec(c.to_vec(), (c.len(), 1), &Device::Cpu).unwrap();
    let f = Executor::new(m)
        .unwrap()
        .run(m, &[x.clone(), ct], &Run::eval())
        .unwrap();
    f.outputs[0].to_vec2().unwrap()
}

fn cases() -> u32 {
    std::env::var("GRAFT_DYNAMIC_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn batched_equals_per_sample_and_growth_keeps_every_branch(r in recipe()) {
        let (mut m, denses) = build(&r);
        let n = r.controls.len();
        let x = Tensor::randn(0f32, 1.0, (n, r.features), &Device::Cpu).unwrap();
        let cs: Vec<f32> = r.controls.iter().map(|&i| VALUES[i as usize]).collect();

        // 1. Batched = per sample.
        let batched = out(&m, &x, &cs);
        for i in 0..n {
            let alone = out(&m, &x.narrow(0, i, 1).unwrap(), &cs[i..=i]);
            for (a, b) in batched[i].iter().zip(&alone[0]) {
                prop_assert!((a - b).abs() <= 1e-6, "sample {}: {} vs {}", i, a, b);
            }
        }

        // 2. Growth keeps every branch's function.
        let per_value = |m: &Model| -> Vec<Vec<Vec<f32>>> {
            VALUES.iter().map(|&v| out(m, &x, &[v])).collect()
        };
        let before = per_value(&m);
        let mixed_before = out(&m, &x, &cs);
        for &(pick, by) in &r.growth {
            let v = denses[pick % denses.len()];
            let req = Request::new().nout(v, by as i64);
            if m.change_sizes(&req).is_err() {
                continue;
            }
            m.graph().check().unwrap();
            let after = per_value(&m);
            for (b, a) in before.iter().flatten().flatten().zip(after.iter().flatten().flatten()) {
                prop_assert!((a - b).abs() <= 1e-5, "{} vs {} after growing {}", a, b, m.graph().name(v));
            }
            let mixed = out(&m, &x, &cs);
            for (b, a) in mixed_before.iter().flatten().zip(mixed.iter().flatten()) {
                prop_assert!((a - b).abs() <= 1e-5);
            }
        }
    }
}
