//! Saliencies (magnitude, random, OBD with a Fisher estimate), amounts
//! (fraction, count, survivors) and iterative pruning with fine-tuning.

use graft_nn::data::spirals;
use graft_nn::train::{evaluate, Adam, Fit, Loss};
use graft_nn::Tensor;
use graft_sparse::ffn::masked_ffn;
use graft_sparse::prune::{iterative, kept, prune, Amount, Fisher, Saliency};

fn fit(epochs: usize) -> Fit {
    Fit {
        batch: 32,
        epochs,
        loss: Loss::CrossEntropy,
        seed: 1,
        probes: false,
        objective: Default::default(),
    }
}

#[test]
fn amounts_and_random_saliency() {
    let mut m = masked_ffn(8, 3, &[16], 0).unwrap();
    let all = kept(&m).unwrap();
    prune(
        &mut m,
        &Saliency::Random { seed: 3 },
        Amount::Count(10),
        false,
    )
    .unwrap();
    assert_eq!(kept(&m).unwrap(), all - 10);
    prune(&mut m, &Saliency::Magnitude, Amount::Keep(100), false).unwrap();
    assert_eq!(kept(&m).unwrap(), 100);
    prune(&mut m, &Saliency::Magnitude, Amount::Fraction(0.5), true).unwrap();
    assert!(kept(&m).unwrap() <= 50 + 2);
}

#[test]
fn obd_prunes_weights_the_loss_does_not_see() {
    // Input feature 0 is always zero: its weights get no gradient, so OBD
    // gives them saliency 0 and prunes them first, whatever their size.
    let data = spirals(64, 0.02, 1).unwrap();
    let zero_col = Tensor::zeros((128, 1), graft_nn::DType::F32, &graft_nn::Device::Cpu).unwrap();
    let x = Tensor::cat(&[&zero_col, &data.x], 1).unwrap();
    let mut m = masked_ffn(3, 2, &[16], 2).unwrap();
    let fc1 = m.id("fc1").unwrap();
    let mut fisher = Fisher::new();
    let mut opt = Adam::new(1e-2);
    fit(3)
        .run(&mut m, &mut opt, &x, &data.y, |_, _, _| Ok(()))
        .unwrap();
    // Collect the estimate over a pass without updates.
    let ex = graft_nn::Executor::new(&m).unwrap();
    for k in 0..4 {
        let xb = x.narrow(0, 32 * k, 32).unwrap();
        let yb = data.y.narrow(0, 32 * k, 32).unwrap();
        let f = ex.forward(&m, &[xb], graft_nn::Mode::Eval, false).unwrap();
        let g = Loss::CrossEntropy
            .compute(&f.outputs[0], &yb)
            .unwrap()
            .backward()
            .unwrap();
        fisher.observe(&m, &g).unwrap();
    }
    // Pruning by OBD removes weights the loss does not depend on (the zero
    // input's column, dead units): the loss does not move. Magnitude
    // pruning of as many weights moves it.
    let loss = |m: &graft_nn::Model| evaluate(m, &x, &data.y, Loss::CrossEntropy).unwrap().0;
    let l0 = loss(&m);
    let mut by_obd = m.clone();
    prune(
        &mut by_obd,
        &Saliency::Obd(fisher),
        Amount::Count(16),
        false,
    )
    .unwrap();
    let mut by_mag = m.clone();
    prune(&mut by_mag, &Saliency::Magnitude, Amount::Count(16), false).unwrap();
    let (lo, lm) = (loss(&by_obd), loss(&by_mag));
    eprintln!("loss {l0:.6}: OBD {lo:.6}, magnitude {lm:.6}");
    assert!((lo - l0).abs() < 1e-6, "{lo} vs {l0}");
    assert!((lm - l0).abs() > (lo - l0).abs());
    // The zero input's column is among the weights OBD ranks lowest.
    let mask: Vec<Vec<f32>> = by_obd.param(fc1, "mask").unwrap().to_vec2().unwrap();
    assert!(mask.iter().any(|row| row[0] == 0.0));
}

#[test]
fn iterative_pruning_with_fine_tuning() {
    let data = spirals(96, 0.02, 4).unwrap();
    let mut m = masked_ffn(2, 2, &[32, 32], 5).unwrap();
    let mut opt = Adam::new(1e-2);
    fit(40)
        .run(&mut m, &mut opt, &data.x, &data.y, |_, _, _| Ok(()))
        .unwrap();
    let (_, acc0) = evaluate(&m, &data.x, &data.y, Loss::CrossEntropy).unwrap();
    let all = kept(&m).unwrap();
    let rounds = iterative(
        &mut m,
        &mut opt,
        &fit(10),
        &data.x,
        &data.y,
        &Saliency::Magnitude,
        Amount::Fraction(0.3),
        3,
    )
    .unwrap();
    let mut left = all;
    for r in &rounds {
        left -= left * 3 / 10;
        assert_eq!(r.0, left, "{r:?}");
    }
    let (_, acc) = evaluate(&m, &data.x, &data.y, Loss::CrossEntropy).unwrap();
    eprintln!(
        "spirals accuracy {acc0:.3} dense, {acc:.3} at {:.0}% of the weights",
        100.0 * rounds[2].0 as f64 / all as f64
    );
    assert!(
        acc >= acc0 - 0.05,
        "fine-tuning keeps the accuracy: {acc} vs {acc0}"
    );
}
