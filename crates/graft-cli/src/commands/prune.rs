//! `graft prune`: structured pruning with the planner to a share of
//! neurons, a parameter budget or a MAC budget.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::shrink::{shrink_parts, Part, Scope, Target};
use serde_json::json;

use crate::io::{bar, load, save, spinner, table, thousands};
use crate::Usage;

/// How neurons are valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UtilityArg {
    /// The norm of each neuron's weights (no data needed).
    Magnitude,
    /// |mean(activation × gradient)| of each neuron on `--data` (first-order
    /// Taylor estimate of the loss change when the neuron goes).
    Taylor,
}

/// Which parts of a transformer to prune (`--only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartArg {
    /// Whole attention heads (a KV head with its query heads).
    Heads,
    /// The hidden size: the residual stream, with the embedding, every
    /// norm and every projection reading or writing it.
    Hidden,
    /// Everything else: MLP widths (every layer of a CNN).
    Mlp,
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    path: &Path,
    target: Target,
    scope: Scope,
    only: &[PartArg],
    utility: UtilityArg,
    data: Option<&str>,
    recalibrate: bool,
    shapes: &[String],
    out: &Path,
    json_out: bool,
    show: bool,
) -> Result<String> {
    let taylor = utility == UtilityArg::Taylor;
    match data {
        None if taylor => return Err(Usage("--utility taylor needs --data".into()).into()),
        None if recalibrate => return Err(Usage("--recalibrate needs --data".into()).into()),
        Some(_) if !taylor && !recalibrate => {
            return Err(
                Usage("--data is used by --utility taylor and --recalibrate only".into()).into(),
            )
        }
        _ => {}
    }
    let mut l = load(path)?.with_shapes(shapes, path)?;
    let name = path.display().to_string();
    let d = match data {
        Some(spec) => Some((spec, super::train::data_for(&l, path, spec)?)),
        None => None,
    };
    let u = match &d {
        Some((spec, d)) if taylor => {
            let batch = 64;
            let b = bar(d.len().div_ceil(batch) as u64, "Taylor utility", show);
            let u = graft::nn::utility::taylor_on(
                &l.model,
                &d.x,
                &d.y,
                graft::nn::train::Loss::CrossEntropy,
                batch,
                || b.inc(1),
            )
            .with_context(|| format!("Taylor utility of `{name}` on `{spec}`"))?;
            b.finish_and_clear();
            u
        }
        _ => graft::nn::utility::magnitude(&l.model)
            .with_context(|| format!("magnitudes of `{name}`"))?,
    };
    let shapes = l.sample_shapes();
    let sp = spinner("pruning (planner bisection)", show);
    let parts: Vec<Part> = if only.is_empty() {
        vec![Part::Heads, Part::Hidden, Part::Mlp]
    } else {
        only.iter()
            .map(|p| match p {
                PartArg::Heads => Part::Heads,
                PartArg::Hidden => Part::Hidden,
                PartArg::Mlp => Part::Mlp,
            })
            .collect()
    };
    let r = shrink_parts(&mut l.model, &u, target, scope, &shapes, &parts)
        .with_context(|| format!("pruning `{}`", path.display()))?;
    sp.finish_and_clear();
    let recalibrated = match &d {
        Some((spec, d)) if recalibrate => {
            graft::nn::train::recalibrate_batch_norm(&mut l.model, &d.x, 128)
                .with_context(|| format!("re-estimating the batch norms of `{name}` on `{spec}`"))?
        }
        _ => 0,
    };
    save(&l.model, &l.interface, out)?;
    if json_out {
        let doc = json!({
            "neurons": [r.neurons.0, r.neurons.1],
            "params": [r.params.0, r.params.1],
            "macs": [r.macs.0, r.macs.1],
            "recalibrated": recalibrated,
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let pct = |a: u64, b: u64| format!("{:.1}%", 100.0 * b as f64 / a.max(1) as f64);
    let rows = vec![
        vec![
            "prunable neurons".into(),
            thousands(r.neurons.0),
            thousands(r.neurons.1),
            pct(r.neurons.0, r.neurons.1),
        ],
        vec![
            "parameters".into(),
            thousands(r.params.0),
            thousands(r.params.1),
            pct(r.params.0, r.params.1),
        ],
        vec![
            "MACs per sample".into(),
            thousands(r.macs.0),
            thousands(r.macs.1),
            pct(r.macs.0, r.macs.1),
        ],
    ];
    let mut text = table(&["", "before", "after", "kept"], &rows);
    if recalibrate {
        text.push_str(&format!(
            "\nre-estimated the statistics of {recalibrated} batch norms on `{}`\n",
            data.unwrap_or_default()
        ));
    }
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}
