//! `graft train`: fine-tune a classifier on a data set, with a progress bar
//! per epoch and the held-out loss and accuracy after each.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::data::Dataset;
use graft::nn::train::{evaluate, Adam, Fit, Loss};
use graft::nn::Model;
use serde_json::json;

use crate::io::{bar, classes, load, save, table};
use crate::Usage;

/// How to train.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// One epoch's figures (epoch 0: before training).
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    pub epoch: usize,
    /// Mean training loss (None for epoch 0).
    pub train_loss: Option<f64>,
    pub held_loss: f64,
    pub held_accuracy: f64,
}

/// Train `model` on `train` with Adam, evaluating on `held` before and after
/// every epoch. Each epoch has its own progress bar when `show`.
pub fn fit(
    model: &mut Model,
    train: &Dataset,
    held: &Dataset,
    s: Schedule,
    what: &str,
    show: bool,
) -> Result<Vec<Epoch>> {
    let (l0, a0) = evaluate(model, &held.x, &held.y, Loss::CrossEntropy)?;
    let mut out = vec![Epoch {
        epoch: 0,
        train_loss: None,
        held_loss: l0,
        held_accuracy: a0,
    }];
    let mut opt = Adam::new(s.lr);
    let batches = train.len().div_ceil(s.batch.max(1)) as u64;
    for e in 1..=s.epochs {
        let fit = Fit {
            batch: s.batch,
            epochs: 1,
            loss: Loss::CrossEntropy,
            seed: s.seed.wrapping_add(e as u64),
            probes: false,
            objective: Default::default(),
        };
        let b = bar(batches, &format!("{what} {e}/{}", s.epochs), show);
        let losses = fit.run(model, &mut opt, &train.x, &train.y, |_, _, _| {
            b.inc(1);
            Ok(())
        })?;
        let (l, a) = evaluate(model, &held.x, &held.y, Loss::CrossEntropy)?;
        let train_loss = losses.first().copied();
        b.finish_and_clear();
        // On a terminal, each epoch's figures as it ends (the table comes
        // at the end, on stdout).
        if !b.is_hidden() {
            eprintln!(
                "{what} {e}/{}: train loss {:.4}, held-out loss {l:.4}, accuracy {:.1}%",
                s.epochs,
                train_loss.unwrap_or(f64::NAN),
                100.0 * a
            );
        }
        out.push(Epoch {
            epoch: e,
            train_loss,
            held_loss: l,
            held_accuracy: a,
        });
    }
    Ok(out)
}

/// The per-epoch table.
pub fn epochs_table(epochs: &[Epoch]) -> String {
    let rows: Vec<Vec<String>> = epochs
        .iter()
        .map(|e| {
            vec![
                e.epoch.to_string(),
                e.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
                format!("{:.4}", e.held_loss),
                format!("{:.1}%", 100.0 * e.held_accuracy),
            ]
        })
        .collect();
    table(
        &["epoch", "train loss", "held-out loss", "held-out accuracy"],
        &rows,
    )
}

/// `data` shaped for a classifier `l` read from `path` (one input, one
/// output of class scores); errors name the file at fault.
pub fn data_for(l: &crate::io::Loaded, path: &Path, data: &str) -> Result<Dataset> {
    let name = path.display().to_string();
    if l.input_shapes.len() != 1 {
        return Err(Usage(format!(
            "model `{name}` has {} inputs; a classifier needs exactly one",
            l.input_shapes.len()
        ))
        .into());
    }
    let k = classes(&l.model, &name)?;
    crate::data::shaped_for(crate::data::load(data)?, data, &l.sample_shapes()[0], k)
}

/// `graft eval`: loss and accuracy of a classifier on a whole data set.
pub fn eval(path: &Path, data: &str, json_out: bool) -> Result<String> {
    let l = load(path)?;
    let d = data_for(&l, path, data)?;
    if d.is_empty() {
        return Err(Usage(format!("data file `{data}` holds no sample to evaluate on")).into());
    }
    let (loss, acc) = evaluate(&l.model, &d.x, &d.y, Loss::CrossEntropy)
        .with_context(|| format!("evaluating `{}` on `{data}`", path.display()))?;
    if json_out {
        let doc = json!({
            "samples": d.len(),
            "loss": loss,
            "accuracy": acc,
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    Ok(format!(
        "{} samples of `{data}`: cross-entropy {loss:.4}, accuracy {:.1}%\n",
        d.len(),
        100.0 * acc
    ))
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    data: &str,
    s: Schedule,
    holdout: f64,
    out: &Path,
    json_out: bool,
    show: bool,
) -> Result<String> {
    if s.batch == 0 {
        return Err(Usage("--batch must be at least 1".into()).into());
    }
    if !(s.lr.is_finite() && s.lr > 0.0) {
        return Err(Usage(format!(
            "--lr {}: the learning rate must be a positive finite number",
            s.lr
        ))
        .into());
    }
    if !(0.0..1.0).contains(&holdout) {
        return Err(Usage(format!(
            "--holdout {holdout}: the share held out must be at least 0 and below 1"
        ))
        .into());
    }
    let mut l = load(path)?;
    let d = data_for(&l, path, data)?;
    let name = path.display().to_string();
    let n_held = (d.len() as f64 * holdout).round() as usize;
    if d.len() - n_held == 0 {
        return Err(Usage(format!("data file `{data}`: no sample left to train on")).into());
    }
    let (train, held) = if n_held == 0 {
        (d.clone(), d)
    } else {
        d.split(d.len() - n_held, s.seed)
            .with_context(|| format!("splitting `{data}`"))?
    };
    let epochs = fit(&mut l.model, &train, &held, s, "epoch", show)
        .with_context(|| format!("training `{name}` on `{data}`"))?;
    save(&l.model, &l.interface, out)?;
    let evaluated_on = if n_held == 0 {
        "the training data".to_string()
    } else {
        format!("{n_held} held-out samples")
    };
    if json_out {
        let doc = json!({
            "train_samples": train.len(),
            "held_out_samples": n_held,
            "epochs": epochs.iter().map(|e| json!({
                "epoch": e.epoch,
                "train_loss": e.train_loss,
                "held_out_loss": e.held_loss,
                "held_out_accuracy": e.held_accuracy,
            })).collect::<Vec<_>>(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut text = format!(
        "trained on {} samples of `{data}`, evaluated on {evaluated_on}\n\n",
        train.len()
    );
    text.push_str(&epochs_table(&epochs));
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}
