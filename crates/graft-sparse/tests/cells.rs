//! Cell networks: each DAG node a small convolutional cell reading its
//! predecessors' outputs concatenated; then mutated like any graph.

use graft_core::Request;
use graft_nn::{Activation, Conv, Device, Executor, Mode, Op, Tensor};
use graft_sparse::cells::cell_network;
use graft_sparse::generators::watts_strogatz;

#[test]
fn conv_cells_over_a_dag_run_and_mutate() {
    let g = watts_strogatz(12, 4, 0.3, 5);
    let mut net = cell_network(3, &g, |m, name, input| {
        let c = m.add(
            &format!("{name}.conv"),
            Op::Conv2d(Conv::same(3)),
            &[input],
            Some(8),
        )?;
        let b = m.add(
            &format!("{name}.bn"),
            Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
            &[c],
            None,
        )?;
        Ok(m.add(
            &format!("{name}.relu"),
            Op::Activation(Activation::Relu),
            &[b],
            None,
        )?)
    })
    .unwrap();
    let sinks = (0..g.len()).filter(|&v| g.successors(v).is_empty()).count();
    // Each cell's input has 8 channels per predecessor (3 for sources).
    for v in 0..g.len() {
        let conv = net.model.id(&format!("cell{v}.conv")).unwrap();
        let want = if g.predecessors(v).is_empty() {
            3
        } else {
            8 * g.predecessors(v).len()
        };
        assert_eq!(net.model.graph().nin(conv).unwrap(), &[want]);
    }
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap();
    let run = |m: &graft_nn::Model| {
        let ex = Executor::new(m).unwrap();
        ex.forward(m, std::slice::from_ref(&x), Mode::Eval, false)
            .unwrap()
            .outputs[0]
            .dims()
            .to_vec()
    };
    assert_eq!(run(&net.model), [2, 8 * sinks, 8, 8]);
    // Widening one cell: every concatenation reading it follows.
    let c0 = net.model.id("cell0.conv").unwrap();
    net.model.change_sizes(&Request::new().nout(c0, 4)).unwrap();
    net.model.graph().check().unwrap();
    let out = run(&net.model);
    assert_eq!(out[0], 2);
}
