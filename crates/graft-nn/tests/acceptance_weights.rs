//! Weight and output checks of scenarios A2, A4, A19, A20, A22 and A24 of
//! shared/acceptance/mutation.md (the size and index-list halves are in
//! graft-core's tests). Julia's `reshape(1:n, r, c)` is column-major:
//! entry (i, j) is `1 + i + r·j` (0-based).

use graft_core::{Alignment, NewVertex, Patch, Request, Reroute, Utility, VertexId};
use graft_nn::{utility, Executor, Growth, Init, Mode, Model, NewLayer, Op, Tensor};

fn dense() -> Op {
    Op::Dense { bias: false }
}

/// Julia's `reshape(1:r*c, r, c)` as a row-major `[r, c]` tensor.
fn julia(r: usize, c: usize) -> Tensor {
    let v: Vec<f32> = (0..r * c)
        .map(|k| {
            let (i, j) = (k / c, k % c);
            (1 + i + r * j) as f32
        })
        .collect();
    Tensor::from_vec(v, (r, c), &graft_nn::Device::Cpu).unwrap()
}

fn rows(m: &Model, v: VertexId) -> Vec<Vec<f32>> {
    m.param(v, "weight").unwrap().to_vec2().unwrap()
}

fn ones_weight(m: &mut Model, v: VertexId) {
    let w = m.param(v, "weight").unwrap();
    m.set_param(v, "weight", &w.ones_like().unwrap()).unwrap();
    if m.param(v, "bias").is_ok() {
        let b = m.param(v, "bias").unwrap();
        m.set_param(v, "bias", &b.zeros_like().unwrap()).unwrap();
    }
}

fn run(m: &Model, xs: &[Tensor]) -> Vec<f32> {
    let ex = Executor::new(m).unwrap();
    let f = ex.forward(m, xs, Mode::Eval, false).unwrap();
    f.outputs[0].flatten_all().unwrap().to_vec1().unwrap()
}

/// The output of one vertex.
fn value_of(m: &Model, xs: &[Tensor], v: VertexId) -> Vec<f32> {
    let ex = Executor::new(m).unwrap();
    let f = ex.forward(m, xs, Mode::Eval, true).unwrap();
    f.activations[&v].flatten_all().unwrap().to_vec1().unwrap()
}

fn ones(n: usize) -> Tensor {
    Tensor::ones((1, n), graft_nn::DType::F32, &graft_nn::Device::Cpu).unwrap()
}

#[test]
fn a02_weight_bookkeeping_concat_residual() {
    let mut m = Model::new();
    m.set_growth(Growth::Zero);
    let in1 = m.input("in1", 3).unwrap();
    let in2 = m.input("in2", 4).unwrap();
    let v1 = m.add("v1", dense(), &[in1], Some(4)).unwrap();
    let v2 = m.add("v2", dense(), &[in2], Some(3)).unwrap();
    let mm = m.add("m", Op::Concat, &[v1, v2], None).unwrap();
    let v3 = m.add("v3", dense(), &[in1], Some(7)).unwrap();
    m.add("add", Op::Add, &[v3, mm], None).unwrap();
    let v4 = m.add("v4", dense(), &[mm], Some(2)).unwrap();
    m.set_param(v1, "weight", &julia(4, 3)).unwrap();
    m.set_param(v2, "weight", &julia(3, 4)).unwrap();
    m.set_param(v3, "weight", &julia(7, 3)).unwrap();
    m.set_param(v4, "weight", &julia(2, 7)).unwrap();
    let before_v3 = rows(&m, v3);

    let req = Request::new()
        .nout(v2, -1)
        .nout(mm, 0)
        .with_utility(Utility::new().with(v2, vec![10.0, 1.0, 10.0]));
    m.change_sizes(&req).unwrap();

    let r1 = rows(&m, v1);
    assert_eq!(r1.len(), 5);
    assert_eq!(r1[4], vec![0.0; 3], "v1 gets an appended zero row");
    assert_eq!(
        rows(&m, v2),
        vec![vec![1., 4., 7., 10.], vec![3., 6., 9., 12.]]
    );
    assert_eq!(
        rows(&m, v4),
        vec![
            vec![1., 3., 5., 7., 0., 9., 13.],
            vec![2., 4., 6., 8., 0., 10., 14.]
        ]
    );
    let r3 = rows(&m, v3);
    let want: Vec<Vec<f32>> = vec![
        before_v3[0].clone(),
        before_v3[1].clone(),
        before_v3[2].clone(),
        before_v3[3].clone(),
        vec![0.0; 3],
        before_v3[4].clone(),
        before_v3[6].clone(),
    ];
    assert_eq!(r3, want);
}

/// The A3 graph after its relaxed change: all sizes 9.
fn a3_after_relax() -> (Model, VertexId) {
    let mut m = Model::new();
    m.set_growth(Growth::Zero);
    let x = m.input("in", 6).unwrap();
    let start = m.add("start", dense(), &[x], Some(6)).unwrap();
    let split = m.add("split", dense(), &[start], Some(2)).unwrap();
    let s2 = m
        .add("x2", Op::Scale { factor: 2.0 }, &[split], None)
        .unwrap();
    let s3 = m
        .add("x3", Op::Scale { factor: 3.0 }, &[split], None)
        .unwrap();
    let s5 = m
        .add("x5", Op::Scale { factor: 5.0 }, &[split], None)
        .unwrap();
    let joined = m.add("joined", Op::Concat, &[s2, s3, s5], None).unwrap();
    let out = m.add("out", Op::Add, &[start, joined], None).unwrap();
    ones_weight(&mut m, start);
    ones_weight(&mut m, split);
    assert_eq!(run(&m, &[ones(6)]), [78., 78., 114., 114., 186., 186.]);
    m.change_sizes(&Request::new().nout_relaxed(out, 2))
        .unwrap();
    assert_eq!(m.graph().nout(out).unwrap(), 9);
    assert_eq!(m.graph().nout(split).unwrap(), 3);
    assert_eq!(
        run(&m, &[ones(6)]),
        [78., 78., 0., 114., 114., 0., 186., 186., 0.]
    );
    (m, out)
}

#[test]
fn a04_utility_driven_choice() {
    let (mut m, out) = a3_after_relax();
    let asc = Utility::ascending(m.graph());
    m.change_sizes(&Request::new().nout(out, -3).with_utility(asc))
        .unwrap();
    assert_eq!(run(&m, &[ones(6)]), [42., 0., 60., 0., 96., 0.]);

    let (mut m, out) = a3_after_relax();
    let mut desc = Utility::new();
    for v in m.graph().ids().collect::<Vec<_>>() {
        let n = m.graph().nout(v).unwrap();
        desc.set(v, (0..n).map(|i| (n - i) as f64).collect());
    }
    m.change_sizes(&Request::new().nout(out, -3).with_utility(desc))
        .unwrap();
    assert_eq!(run(&m, &[ones(6)]), [78., 78., 114., 114., 186., 186.]);

    // Magnitude utility: the new zero rows are worth 0.
    let (mut m, out) = a3_after_relax();
    let mag = utility::magnitude(&m).unwrap();
    m.change_sizes(&Request::new().nout(out, -3).with_utility(mag))
        .unwrap();
    assert_eq!(run(&m, &[ones(6)]), [78., 78., 114., 114., 186., 186.]);
}

#[test]
fn a19_add_edge_into_concat_keeps_the_output() {
    let mut m = Model::new();
    let x = m.input("in", 3).unwrap();
    let v1 = m.add("v1", dense(), &[x], Some(3)).unwrap();
    let v2 = m.add("v2", dense(), &[x], Some(4)).unwrap();
    let v3 = m.add("v3", dense(), &[x], Some(5)).unwrap();
    let v4 = m.add("v4", Op::Concat, &[v1, v2], None).unwrap();
    let v5 = m.add("v5", dense(), &[v4], Some(3)).unwrap();
    let xin = Tensor::new(&[[0.3f32, -1.2, 0.7]], &graft_nn::Device::Cpu).unwrap();
    let before = value_of(&m, std::slice::from_ref(&xin), v5);
    m.commit(&Patch::new().add_edge(v3, v4), &[]).unwrap();
    assert_eq!(m.graph().nin(v4).unwrap(), [3, 4, 5]);
    assert_eq!(value_of(&m, &[xin], v5), before);
}

#[test]
fn a20_add_edge_into_add_with_size_mismatch() {
    let mut m = Model::new();
    let in1 = m.input("in1", 3).unwrap();
    let in2 = m.input("in2", 2).unwrap();
    let l1 = m.add("l1", dense(), &[in1], Some(4)).unwrap();
    let l2 = m.add("l2", dense(), &[in2], Some(4)).unwrap();
    let add = m.add("add", Op::Add, &[l1, l2], None).unwrap();
    let out = m.add("out", dense(), &[add], Some(5)).unwrap();
    let l3 = m.add("l3", dense(), &[in2], Some(6)).unwrap();
    for v in [l1, l2, out, l3] {
        ones_weight(&mut m, v);
    }
    // l3 is a second output of the graph until the edge exists; the first
    // output is `out`.
    m.commit(
        &Patch::new().push(graft_core::Edit::AddEdge {
            from: l3.into(),
            to: add.into(),
            position: None,
            align: Alignment::default(),
        }),
        &[],
    )
    .unwrap();
    assert_eq!(m.graph().nin(add).unwrap(), [6, 6, 6]);
    assert_eq!(run(&m, &[ones(3), ones(2)]), [28.0; 5]);
}

#[test]
fn a22_remove_duplicate_edge_output() {
    let mut m = Model::new();
    let x = m.input("in", 4).unwrap();
    let l1 = m.add("l1", dense(), &[x], Some(3)).unwrap();
    let l2 = m.add("l2", dense(), &[x], Some(5)).unwrap();
    let merged = m.add("merged", Op::Concat, &[l1, l2, l1], None).unwrap();
    let out = m.add("out", dense(), &[merged], Some(3)).unwrap();
    for v in [l1, l2, out] {
        ones_weight(&mut m, v);
    }
    assert_eq!(run(&m, &[ones(4)]), [44.0; 3]);
    m.commit(&Patch::new().remove_edge(l1, merged), &[])
        .unwrap();
    assert_eq!(m.graph().nin(merged).unwrap(), [5, 3]);
    assert_eq!(run(&m, &[ones(4)]), [32.0; 3]);
}

#[test]
fn a24_insert_keeps_the_function_only_with_identity_init() {
    let build = || {
        let mut m = Model::new();
        let x = m.input("in", 3).unwrap();
        let l1 = m.add("l1", dense(), &[x], Some(5)).unwrap();
        ones_weight(&mut m, l1);
        (m, x)
    };
    let (mut m, x) = build();
    assert_eq!(run(&m, &[ones(3)]), [3.0; 5]);
    let done = m
        .insert_after(
            x,
            NewLayer::new("new", dense(), Init::Default),
            Reroute::All,
        )
        .unwrap();
    let new = done.committed.created[0];
    ones_weight(&mut m, new);
    assert_eq!(m.graph().len(), 3);
    assert_eq!(run(&m, &[ones(3)]), [9.0; 5]);

    let (mut m, x) = build();
    let xin = Tensor::new(&[[0.25f32, -3.5, 1.125]], &graft_nn::Device::Cpu).unwrap();
    let before = run(&m, std::slice::from_ref(&xin));
    m.insert_after(
        x,
        NewLayer::new("id", dense(), Init::Identity),
        Reroute::All,
    )
    .unwrap();
    let after = run(&m, &[xin]);
    assert_eq!(
        before.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        after.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
        "bitwise equal"
    );
    let _ = NewVertex::invariant("unused");
}
