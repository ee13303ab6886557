//! Structured pruning to a share of neurons, a parameter budget or a MAC
//! budget, through the planner.

use graft_nn::shrink::{shrink, Scope, Target};
use graft_nn::{utility, Activation, Conv, Device, Executor, Model, Op, Run, Tensor};

/// conv(3->16) -> relu -> [conv -> relu -> conv] + skip -> relu ->
/// conv(16->32, stride 2) -> relu -> global pool -> dense(10).
fn small_resnet() -> Model {
    let mut m = Model::new();
    let relu = || Op::Activation(Activation::Relu);
    let x = m.input("x", 3).unwrap();
    let c0 = m
        .add("c0", Op::Conv2d(Conv::same(3)), &[x], Some(16))
        .unwrap();
    let r0 = m.add("r0", relu(), &[c0], None).unwrap();
    let c1 = m
        .add("c1", Op::Conv2d(Conv::same(3)), &[r0], Some(16))
        .unwrap();
    let r1 = m.add("r1", relu(), &[c1], None).unwrap();
    let c2 = m
        .add("c2", Op::Conv2d(Conv::same(3)), &[r1], Some(16))
        .unwrap();
    let add = m.add("add", Op::Add, &[r0, c2], None).unwrap();
    let r2 = m.add("r2", relu(), &[add], None).unwrap();
    let down = Conv {
        stride: 2.into(),
        ..Conv::same(3)
    };
    let c3 = m.add("c3", Op::Conv2d(down), &[r2], Some(32)).unwrap();
    let r3 = m.add("r3", relu(), &[c3], None).unwrap();
    let p = m.add("pool", Op::GlobalAvgPool, &[r3], None).unwrap();
    m.add("fc", Op::Dense { bias: true }, &[p], Some(10))
        .unwrap();
    m
}

#[test]
fn targets_are_met_and_the_network_still_runs() {
    let base = small_resnet();
    let shapes = vec![vec![3, 16, 16]];
    let macs0 = base.cost(&shapes).unwrap().total();
    let params0 = base.parameter_count();
    let x = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &Device::Cpu).unwrap();
    for (target, scope) in [
        (Target::Ratio(0.5), Scope::Global),
        (Target::Ratio(0.5), Scope::Layer),
        (Target::Macs(macs0 / 2), Scope::Global),
        (Target::Params(params0 / 3), Scope::Layer),
    ] {
        let mut m = base.clone();
        let u = utility::magnitude(&m).unwrap();
        let r = shrink(&mut m, &u, target, scope, &shapes).unwrap();
        assert_eq!(r.params.1, m.parameter_count());
        assert_eq!(r.macs.1, m.cost(&shapes).unwrap().total());
        assert_eq!((r.params.0, r.macs.0), (params0, macs0));
        match target {
            Target::Ratio(q) => {
                assert!(r.neurons.1 as f64 <= (1.0 - q) * r.neurons.0 as f64 + 1e-9)
            }
            Target::Macs(n) => assert!(r.macs.1 <= n && r.macs.1 > n / 2, "{r:?}"),
            Target::Params(n) => assert!(r.params.1 <= n, "{r:?}"),
        }
        m.graph().check().unwrap();
        let y = Executor::new(&m)
            .unwrap()
            .run(&m, std::slice::from_ref(&x), &Run::eval())
            .unwrap();
        assert_eq!(y.outputs[0].dims(), &[2, 10]);
    }
    // Budgets pruning cannot reach, and bad ratios, are typed errors; the
    // model is untouched.
    let mut m = base.clone();
    let u = utility::magnitude(&m).unwrap();
    for t in [
        Target::Macs(1),
        Target::Params(10),
        Target::Ratio(1.0),
        Target::Ratio(-0.1),
    ] {
        assert!(shrink(&mut m, &u, t, Scope::Global, &shapes).is_err());
    }
    assert_eq!(m.graph(), base.graph());
    let values = |m: &Model| -> Vec<Vec<f32>> {
        m.all_params()
            .into_iter()
            .map(|(_, _, p)| p.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
            .collect()
    };
    assert_eq!(values(&m), values(&base));
}

/// SqueezeNet's head: the classes come from a convolution, then ReLU, a
/// global pool and the graph output. Pruning must keep the classes: the
/// convolution's size is tied to the output's.
#[test]
fn a_convolution_tied_to_the_output_keeps_its_size() {
    let mut m = Model::new();
    let x = m.input("x", 3).unwrap();
    let c0 = m
        .add("c0", Op::Conv2d(Conv::same(3)), &[x], Some(16))
        .unwrap();
    let r0 = m
        .add("r0", Op::Activation(Activation::Relu), &[c0], None)
        .unwrap();
    let classes = m
        .add("classes", Op::Conv2d(Conv::same(1)), &[r0], Some(10))
        .unwrap();
    let r1 = m
        .add("r1", Op::Activation(Activation::Relu), &[classes], None)
        .unwrap();
    m.add("pool", Op::GlobalAvgPool, &[r1], None).unwrap();
    assert_eq!(graft_nn::shrink::prunable(&m), vec![c0]);
    let u = utility::magnitude(&m).unwrap();
    let shapes = vec![vec![3, 8, 8]];
    shrink(&mut m, &u, Target::Ratio(0.5), Scope::Global, &shapes).unwrap();
    assert_eq!(m.graph().nout(classes).unwrap(), 10);
    assert!(m.graph().nout(c0).unwrap() < 16);
}

#[test]
fn activation_aware_utility_weighs_weights_by_their_inputs() {
    // dense(2 -> 2): neuron 0 reads feature 0 with weight 1, neuron 1 reads
    // feature 1 with weight 3. Feature 1 is always 0 on the calibration
    // data, feature 0 has norm ‖(3, 4)‖ = 5: Wanda's scores are 1·5 = 5 and
    // 3·0 = 0, while magnitudes say 1 and 3.
    let mut m = Model::new();
    let x = m.input("x", 2).unwrap();
    let d = m
        .add("d", Op::Dense { bias: false }, &[x], Some(2))
        .unwrap();
    let head = m
        .add("head", Op::Dense { bias: false }, &[d], Some(1))
        .unwrap();
    let w = Tensor::from_vec(vec![1f32, 0., 0., 3.], (2, 2), &Device::Cpu).unwrap();
    m.set_param(d, "weight", &w).unwrap();
    // The head reads both of d's neurons with weight 1: d's outputs on the
    // calibration data are (3, 0) and (4, 0), so on the reading side
    // neuron 0 is worth ‖(3, 4)‖ · 1 = 5 and neuron 1 is worth 0 too.
    let h = Tensor::from_vec(vec![1f32, 1.], (1, 2), &Device::Cpu).unwrap();
    m.set_param(head, "weight", &h).unwrap();
    let calib = Tensor::from_vec(vec![3f32, 0., 4., 0.], (2, 2), &Device::Cpu).unwrap();
    let wanda = utility::activation_aware(&m, &[calib]).unwrap();
    let mag = utility::magnitude(&m).unwrap();
    let s = wanda.get(d).unwrap();
    assert!((s[0] - 5.0).abs() < 1e-9 && s[1].abs() < 1e-9, "{s:?}");
    let g = mag.get(d).unwrap();
    assert!(g[1] > g[0], "{g:?}");
}

#[test]
fn activation_aware_utility_judges_a_neuron_where_it_is_read() {
    // x(2) -> d(3) -> relu -> head(1). d's neurons are equally large on the
    // data (each reads feature 0 with weight 1), but the head reads neuron
    // 1 with weight 0.01 and the others with 1: neuron 1 is worth least,
    // though its incoming row is as large as the others'. The score lands
    // on d, the layer that makes the neurons, through the activation.
    let mut m = Model::new();
    let x = m.input("x", 2).unwrap();
    let d = m
        .add("d", Op::Dense { bias: false }, &[x], Some(3))
        .unwrap();
    let r = m
        .add("r", Op::Activation(Activation::Relu), &[d], None)
        .unwrap();
    let head = m
        .add("head", Op::Dense { bias: false }, &[r], Some(1))
        .unwrap();
    let w = Tensor::from_vec(vec![1f32, 0., 1., 0., 1., 0.], (3, 2), &Device::Cpu).unwrap();
    m.set_param(d, "weight", &w).unwrap();
    let h = Tensor::from_vec(vec![1f32, 0.01, 1.], (1, 3), &Device::Cpu).unwrap();
    m.set_param(head, "weight", &h).unwrap();
    let calib = Tensor::from_vec(vec![3f32, 1., 4., 1.], (2, 2), &Device::Cpu).unwrap();
    let s = utility::activation_aware(&m, &[calib]).unwrap();
    let s = s.get(d).unwrap().to_vec();
    assert!(
        (s[0] - 5.0).abs() < 1e-6 && (s[1] - 0.05).abs() < 1e-6 && (s[2] - 5.0).abs() < 1e-6,
        "{s:?}"
    );
}

#[test]
fn a_ratio_counts_only_neurons_a_plan_can_remove() {
    // x(4) -> a(8) -> relu -> b(8) -> reshape [2, 4]: the reshape freezes
    // b's neurons, so half of the prunable neurons means half of a's. With
    // b counted, a half could not be met (a keeps at least one neuron).
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let a = m.add("a", Op::Dense { bias: true }, &[x], Some(8)).unwrap();
    let r = m
        .add("r", Op::Activation(Activation::Relu), &[a], None)
        .unwrap();
    let b = m.add("b", Op::Dense { bias: true }, &[r], Some(8)).unwrap();
    m.add("view", Op::Reshape { shape: vec![2, 4] }, &[b], None)
        .unwrap();
    let u = utility::magnitude(&m).unwrap();
    let s = shrink(&mut m, &u, Target::Ratio(0.5), Scope::Global, &[vec![4]]).unwrap();
    assert_eq!(s.neurons, (8, 4));
    assert_eq!(m.graph().nout(a).unwrap(), 4);
    assert_eq!(m.graph().nout(b).unwrap(), 8);
}

#[test]
fn tied_utilities_still_give_the_share_asked_for() {
    // Every neuron worth the same: half of 16 means 8 kept, not 1 (the cut
    // passes all of them at once), the first ones, in both scopes and for
    // a budget.
    let build = || {
        let mut m = Model::new();
        let x = m.input("x", 4).unwrap();
        let a = m
            .add("a", Op::Dense { bias: true }, &[x], Some(16))
            .unwrap();
        let r = m
            .add("r", Op::Activation(Activation::Relu), &[a], None)
            .unwrap();
        m.add("out", Op::Dense { bias: true }, &[r], Some(3))
            .unwrap();
        (m, a)
    };
    for scope in [Scope::Global, Scope::Layer] {
        let (mut m, a) = build();
        let mut u = graft_core::Utility::new();
        u.set(a, vec![1.0; 16]);
        let s = shrink(&mut m, &u, Target::Ratio(0.5), scope, &[vec![4]]).unwrap();
        assert_eq!(s.neurons, (16, 8), "{scope:?}");
        let kept = s.plan.change(a).unwrap().outs.clone().unwrap();
        let first: Vec<graft_core::Neuron> = (0..8).map(graft_core::Neuron::Old).collect();
        assert_eq!(kept, first, "{scope:?}: the first neurons stay");
    }
    // A parameter budget over tied neurons: each neuron of `a` holds 4 + 1
    // + 3 weights; 16 · 8 + 3 = 131 parameters; 100 allows 12 neurons.
    let (mut m, a) = build();
    let mut u = graft_core::Utility::new();
    u.set(a, vec![2.0; 16]);
    let s = shrink(&mut m, &u, Target::Params(100), Scope::Global, &[vec![4]]).unwrap();
    assert_eq!(m.graph().nout(a).unwrap(), 12);
    assert!(s.params.1 <= 100);
}
