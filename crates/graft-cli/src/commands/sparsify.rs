//! `graft sparsify`: unstructured pruning. Every dense layer and 2-D
//! convolution gets a mask; the weights of least saliency are masked off
//! until the density holds. `--compact` then removes the neurons the masks
//! left dead, through the planner, so the model is structurally smaller.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::data::Dataset;
use graft::nn::train::Loss;
use graft::nn::{Executor, Mode};
use graft::sparse::prune::{kept, masked_layers, prune, to_structure, Amount, Fisher, Saliency};
use serde_json::json;

use crate::io::{bar, load, save, spinner, table, thousands};
use crate::Usage;

/// How weights are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaliencyArg {
    /// |w|: the smallest weights go first.
    Magnitude,
    /// A seeded random order (a baseline).
    Random,
    /// Optimal Brain Damage: ½·w²·E[g²], the expected squared gradient of
    /// the loss measured on `--data` (a diagonal Fisher estimate).
    Obd,
}

pub struct Options {
    pub density: f64,
    pub saliency: SaliencyArg,
    pub per_layer: bool,
    pub compact: bool,
    pub seed: u64,
    /// Data for `--saliency obd`.
    pub data: Option<String>,
}

pub fn run(path: &Path, o: &Options, out: &Path, json_out: bool, show: bool) -> Result<String> {
    if !(o.density > 0.0 && o.density <= 1.0) {
        return Err(Usage(format!(
            "--density {}: the share of weights kept must be above 0 and at most 1",
            o.density
        ))
        .into());
    }
    match (o.saliency, &o.data) {
        (SaliencyArg::Obd, None) => return Err(Usage("--saliency obd needs --data".into()).into()),
        (SaliencyArg::Magnitude | SaliencyArg::Random, Some(_)) => {
            return Err(Usage("--data is used by --saliency obd only".into()).into())
        }
        _ => {}
    }
    let mut l = load(path)?;
    let name = path.display().to_string();
    let data = match &o.data {
        Some(spec) => Some((spec, super::train::data_for(&l, path, spec)?)),
        None => None,
    };
    let shapes = l.sample_shapes();
    let params0 = l.model.parameter_count();
    let macs0 = l.model.cost(&shapes)?.total();
    l.model
        .mask_weights()
        .with_context(|| format!("masking the layers of `{name}`"))?;
    let layers = masked_layers(&l.model);
    if layers.is_empty() {
        return Err(Usage(format!(
            "model `{name}` has no dense layer or 2-D convolution to sparsify"
        ))
        .into());
    }
    let total = kept(&l.model)?;
    let saliency = match (o.saliency, &data) {
        (SaliencyArg::Obd, Some((spec, d))) => {
            let batch = 64;
            let b = bar(d.len().div_ceil(batch) as u64, "gradients for OBD", show);
            let f = fisher(&l.model, d, batch, || b.inc(1))
                .with_context(|| format!("gradients of `{name}` on `{spec}`"))?;
            b.finish_and_clear();
            Saliency::Obd(f)
        }
        (SaliencyArg::Random, _) => Saliency::Random { seed: o.seed },
        _ => Saliency::Magnitude,
    };
    let amount = if o.per_layer {
        Amount::Fraction(1.0 - o.density)
    } else {
        Amount::Keep((total as f64 * o.density).round() as usize)
    };
    let sp = spinner("masking weights", show);
    prune(&mut l.model, &saliency, amount, o.per_layer)
        .with_context(|| format!("pruning the weights of `{name}`"))?;
    let weights = kept(&l.model)?;
    let removed = if o.compact {
        to_structure(&mut l.model).with_context(|| format!("removing dead neurons of `{name}`"))?
    } else {
        0
    };
    sp.finish_and_clear();
    let weights_after = kept(&l.model)?;
    let params1 = l.model.parameter_count();
    let cost1 = l.model.cost(&shapes)?;
    let macs1 = cost1.total();
    let nonzero_macs = nonzero_macs(&l.model, &cost1)?;
    save(&l.model, &l.interface, out)?;
    if json_out {
        let doc = json!({
            "layers": layers.len(),
            "weights": [total, weights],
            "density": weights as f64 / total.max(1) as f64,
            "neurons_removed": removed,
            "weights_after_compaction": weights_after,
            "params": [params0, params1],
            "macs": [macs0, macs1],
            "nonzero_macs": nonzero_macs,
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut text = format!(
        "{} layers masked; {} of {} weights kept (density {:.3})\n",
        layers.len(),
        thousands(weights as u64),
        thousands(total as u64),
        weights as f64 / total.max(1) as f64
    );
    if o.compact {
        text.push_str(&format!(
            "--compact: {removed} dead neurons removed by the planner\n"
        ));
    }
    text.push('\n');
    let rows = vec![
        vec![
            "weights kept (nonzero mask)".into(),
            thousands(total as u64),
            thousands(weights_after as u64),
        ],
        vec![
            "parameters (dense count)".into(),
            thousands(params0),
            thousands(params1),
        ],
        vec![
            "MACs per sample (dense count)".into(),
            thousands(macs0),
            thousands(macs1),
        ],
        vec![
            "MACs per sample (nonzero weights)".into(),
            thousands(macs0),
            thousands(nonzero_macs),
        ],
    ];
    text.push_str(&table(&["", "before", "after"], &rows));
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}

/// Multiply-accumulates of the weights that are on: each masked layer's
/// dense count times the share of its mask that is on (exact for dense
/// layers; for a convolution, taps that fall on padding are counted as
/// the dense count counts them).
fn nonzero_macs(model: &graft::nn::Model, cost: &graft::nn::cost::Cost) -> Result<u64> {
    let masked = masked_layers(model);
    let mut total = 0u64;
    for (v, &m) in &cost.macs {
        if !masked.contains(v) {
            total += m;
            continue;
        }
        let mask: Vec<f32> = model.param(*v, "mask")?.flatten_all()?.to_vec1()?;
        let on = mask.iter().filter(|&&x| x != 0.0).count() as u64;
        total += m * on / mask.len().max(1) as u64;
    }
    Ok(total)
}

/// The diagonal Fisher estimate of the masked layers' weights: one pass
/// over the data in batches, the mean of each batch's squared gradients of
/// the cross-entropy (evaluation mode; the model is not changed).
fn fisher(
    model: &graft::nn::Model,
    d: &Dataset,
    batch: usize,
    mut each_batch: impl FnMut(),
) -> Result<Fisher> {
    let ex = Executor::new(model)?;
    let mut f = Fisher::new();
    let n = d.len();
    let mut start = 0;
    while start < n {
        let len = (n - start).min(batch);
        let xb = d.x.narrow(0, start, len)?;
        let yb = d.y.narrow(0, start, len)?;
        let out = ex.forward(model, &[xb], Mode::Eval, false)?;
        let grads = Loss::CrossEntropy
            .compute(&out.outputs[0], &yb)?
            .backward()?;
        f.observe(model, &grads)?;
        each_batch();
        start += len;
    }
    Ok(f)
}
