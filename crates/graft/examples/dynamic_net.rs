//! The seed's `DynamicNet(10, 5, 2)` as one graph with a control input:
//! `fc1 -> relu -> [fc2 -> relu only if control > 0.5] -> fc3`. The planner
//! then grows the hidden size by 3 (fc1, fc2 and fc3 follow together, the
//! function kept on both branches) and removes fc2 (both branches become
//! the identity). Outputs are printed for both control values at each step.
//!
//! Run: `cargo run -p graft --example dynamic_net`.

use graft::nn::{zoo, Device, Executor, Model, Run, Tensor};
use graft::{Patch, Request};

fn outputs(m: &Model, x: &Tensor) -> Result<(), Box<dyn std::error::Error>> {
    let ex = Executor::new(m)?;
    for c in [0.7f32, 0.3] {
        let control = Tensor::from_vec(vec![c], (1, 1), &Device::Cpu)?;
        let f = ex.run(m, &[x.clone(), control], &Run::eval().traced())?;
        let y: Vec<f32> = f.outputs[0].flatten_all()?.to_vec1()?;
        let t = f.trace.expect("traced");
        println!(
            "  control {c}: output [{:+.6}, {:+.6}]  ({} of {} multiply-accumulates)",
            y[0], y[1], t.macs_spent, t.macs_full
        );
    }
    Ok(())
}

fn sizes(m: &Model) -> String {
    ["fc1", "fc2", "fc3"]
        .iter()
        .filter_map(|n| {
            let v = m.id(n).ok()?;
            let g = m.graph();
            Some(format!("{n} {}->{}", g.nin(v).ok()?[0], g.nout(v).ok()?))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut m = zoo::dynamic_net(10, 5, 2, true, 0)?;
    let x = Tensor::randn(0f32, 1.0, (1, 10), &Device::Cpu)?;
    println!("DynamicNet(10, 5, 2): {}", sizes(&m));
    outputs(&m, &x)?;

    let fc1 = m.id("fc1")?;
    let (planned, _) = m.change_sizes(&Request::new().nout(fc1, 3))?;
    println!(
        "\ngrow the hidden size by 3 ({:?} plan): {}",
        planned.step,
        sizes(&m)
    );
    outputs(&m, &x)?;

    m.commit(&Patch::new().remove("fc2"), &[])?;
    println!(
        "\nremove fc2 (both branches are now relu(fc1)): {}",
        sizes(&m)
    );
    outputs(&m, &x)?;
    Ok(())
}
