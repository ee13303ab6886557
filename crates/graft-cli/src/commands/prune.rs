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
    /// Activation-aware (Wanda's score per neuron): Σ |W[o, i]| · ‖X_i‖ over
    /// a calibration pass on `--data` (for a language model, a text file:
    /// its bytes modulo the vocabulary are the token ids).
    Activation,
}

/// Calibration token ids from a text file: its bytes modulo `vocab`, cut
/// into at most 64 windows of `seq` tokens, as a `[n, seq]` batch.
fn text_ids(path: &str, vocab: usize, seq: usize) -> Result<graft::nn::Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading `{path}`"))?;
    let n = (bytes.len() / seq.max(1)).min(64);
    if n == 0 || vocab == 0 {
        return Err(Usage(format!(
            "`{path}` has {} bytes: at least one window of {seq} tokens is needed",
            bytes.len()
        ))
        .into());
    }
    let ids: Vec<f32> = bytes[..n * seq]
        .iter()
        .map(|&b| (b as usize % vocab) as f32)
        .collect();
    Ok(graft::nn::Tensor::from_vec(
        ids,
        (n, seq),
        &graft::nn::Device::Cpu,
    )?)
}

/// The vocabulary of a language model: the first token embedding's rows.
fn vocabulary(m: &graft::nn::Model) -> Option<usize> {
    let g = m.graph();
    g.topological_order().ok()?.into_iter().find_map(|v| {
        if let Some(graft::nn::Op::Embedding(e)) = m.layer(v).map(|l| &l.op) {
            Some(e.vocab)
        } else {
            None
        }
    })
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
    let activation = utility == UtilityArg::Activation;
    match data {
        None if taylor => return Err(Usage("--utility taylor needs --data".into()).into()),
        None if activation => return Err(Usage("--utility activation needs --data".into()).into()),
        None if recalibrate => return Err(Usage("--recalibrate needs --data".into()).into()),
        Some(_) if !taylor && !activation && !recalibrate => {
            return Err(Usage(
                "--data is used by --utility taylor or activation and --recalibrate only".into(),
            )
            .into())
        }
        _ => {}
    }
    let mut l = load(path)?.with_shapes(shapes, path)?;
    let name = path.display().to_string();
    // A language model calibrates on a text file's bytes as token ids.
    let text = match (data, vocabulary(&l.model)) {
        (Some(spec), Some(vocab)) if activation => {
            let seq = l.sample_shapes()[0].iter().product::<usize>();
            Some(text_ids(spec, vocab, seq)?)
        }
        _ => None,
    };
    let d = match data {
        Some(spec) if text.is_none() => Some((spec, super::train::data_for(&l, path, spec)?)),
        _ => None,
    };
    let u = match (&d, &text) {
        (_, Some(ids)) => graft::nn::utility::activation_aware(&l.model, std::slice::from_ref(ids))
            .with_context(|| format!("activation-aware utility of `{name}`"))?,
        (Some((spec, d)), None) if activation => {
            graft::nn::utility::activation_aware(&l.model, std::slice::from_ref(&d.x))
                .with_context(|| format!("activation-aware utility of `{name}` on `{spec}`"))?
        }
        _ => match &d {
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
        },
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
