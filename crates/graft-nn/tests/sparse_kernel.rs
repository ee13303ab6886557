//! The sparse kernel of masked dense layers gives the dense path's outputs
//! and gradients.

use graft_nn::{Device, Executor, Mode, Model, Op, SparseKernel, Tensor};

#[test]
fn sparse_and_dense_paths_agree() {
    let mut m = Model::new();
    let x = m.input("x", 96).unwrap();
    let l = m
        .add("l", Op::MaskedDense { bias: true }, &[x], Some(40))
        .unwrap();
    // Keep about 10% of the entries.
    let keep: Vec<f32> = (0..96 * 40)
        .map(|i| f32::from((i * 2654435761u64 as usize).is_multiple_of(10)))
        .collect();
    m.set_param(
        l,
        "mask",
        &Tensor::from_vec(keep, (40, 96), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let input = Tensor::randn(0f32, 1.0, (7, 96), &Device::Cpu).unwrap();
    let run = |m: &Model| {
        let ex = Executor::new(m).unwrap();
        let y = ex
            .forward(
                m,
                std::slice::from_ref(&input),
                Mode::Train { seed: 0 },
                false,
            )
            .unwrap()
            .outputs[0]
            .clone();
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gw = m
            .trainable()
            .into_iter()
            .map(|(_, n, v)| {
                (
                    n,
                    grads
                        .get(v.as_tensor())
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap(),
                )
            })
            .collect::<Vec<_>>();
        (y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), gw)
    };
    m.set_sparse_kernel(SparseKernel::Always);
    let (ys, gs) = run(&m);
    m.set_sparse_kernel(SparseKernel::Never);
    let (yd, gd) = run(&m);
    for (a, b) in ys.iter().zip(&yd) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    for ((n, a), (_, b)) in gs.iter().zip(&gd) {
        for (p, q) in a.iter().zip(b) {
            assert!((p - q).abs() <= 1e-4 * q.abs().max(1.0), "{n}: {p} vs {q}");
        }
    }
}
