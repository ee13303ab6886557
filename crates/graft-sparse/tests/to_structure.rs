//! From masks to structure: neurons that pruning left without inputs or
//! outputs are removed by the planner, the layers shrink, the function
//! stays.

use graft_nn::{Device, Executor, Mode, Model, Tensor};
use graft_sparse::ffn::masked_ffn;
use graft_sparse::prune::{masked_layers, prune_global, to_structure};

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

fn params(m: &Model) -> usize {
    m.trainable().iter().map(|(_, _, v)| v.elem_count()).sum()
}

#[test]
fn pruned_mlp_shrinks_and_keeps_its_function() {
    let mut m = masked_ffn(20, 5, &[30, 30], 9).unwrap();
    // Unstructured pruning, plus a few neurons cut off entirely: fc1's
    // neuron 3 loses every input, and fc2's inputs from neuron 7 are gone.
    prune_global(&mut m, 0.8).unwrap();
    let fc1 = m.id("fc1").unwrap();
    let fc2 = m.id("fc2").unwrap();
    let set = |m: &mut Model, v, f: &dyn Fn(usize, usize) -> bool| {
        let t = m.param(v, "mask").unwrap();
        let (r, c) = t.dims2().unwrap();
        let mut vals: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        for i in 0..r {
            for j in 0..c {
                if f(i, j) {
                    vals[i * c + j] = 0.0;
                }
            }
        }
        m.set_param(
            v,
            "mask",
            &Tensor::from_vec(vals, (r, c), &Device::Cpu).unwrap(),
        )
        .unwrap();
    };
    set(&mut m, fc1, &|i, _| i == 3);
    set(&mut m, fc2, &|_, j| j == 7);
    let x = Tensor::randn(0f32, 1.0, (16, 20), &Device::Cpu).unwrap();
    let before = out(&m, &x);
    let (p0, w0) = (params(&m), m.graph().nout(fc1).unwrap());

    let removed = to_structure(&mut m).unwrap();
    assert!(removed >= 2, "removed {removed}");
    assert!(m.graph().nout(fc1).unwrap() < w0);
    assert!(params(&m) < p0);
    let after = out(&m, &x);
    for (a, b) in after.iter().zip(&before) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    // Nothing dead is left.
    assert_eq!(to_structure(&mut m).unwrap(), 0);
    assert_eq!(masked_layers(&m).len(), 3);
}
