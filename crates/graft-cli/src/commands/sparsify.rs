//! `graft sparsify`: unstructured pruning. Every dense layer and 2-D
//! convolution gets a mask; the weights of least saliency are masked off
//! until the density holds. `--compact` then removes the neurons the masks
//! left dead, through the planner, so the model is structurally smaller.

use std::path::Path;

use anyhow::{Context, Result};
use graft::sparse::prune::{kept, masked_layers, prune, to_structure, Amount, Saliency};
use serde_json::json;

use crate::io::{load, save, spinner, table, thousands};
use crate::Usage;

/// How weights are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaliencyArg {
    /// |w|: the smallest weights go first.
    Magnitude,
    /// A seeded random order (a baseline).
    Random,
}

pub struct Options {
    pub density: f64,
    pub saliency: SaliencyArg,
    pub per_layer: bool,
    pub compact: bool,
    pub seed: u64,
}

pub fn run(path: &Path, o: &Options, out: &Path, json_out: bool, show: bool) -> Result<String> {
    if !(o.density > 0.0 && o.density <= 1.0) {
        return Err(Usage(format!(
            "--density {}: the share of weights kept must be above 0 and at most 1",
            o.density
        ))
        .into());
    }
    let mut l = load(path)?;
    let name = path.display().to_string();
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
    let saliency = match o.saliency {
        SaliencyArg::Magnitude => Saliency::Magnitude,
        SaliencyArg::Random => Saliency::Random { seed: o.seed },
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
    save(&l.model, &l.input_shapes, out)?;
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
