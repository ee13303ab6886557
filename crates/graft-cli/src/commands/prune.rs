//! `graft prune`: structured pruning with the planner to a share of
//! neurons, a parameter budget or a MAC budget.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::data::Dataset;
use graft::nn::shrink::{shrink_parts, Part, Scope, Target};
use graft::onnx::Reading;
use graft::Utility;
use serde_json::json;

use crate::io::{bar, load_reading, save, spinner, table, thousands};
use crate::Usage;

/// How neurons are valued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UtilityArg {
    /// The norm of each neuron's weights (no data needed).
    Magnitude,
    /// |mean(activation × gradient)| of each neuron on `--data` (first-order
    /// Taylor estimate of the loss change when the neuron goes; for a
    /// language model the next-token loss on a text file, its bytes modulo
    /// the vocabulary the token ids).
    Taylor,
    /// Activation-aware (Wanda's score per neuron, on the reading side):
    /// Σ |W[o, j]| · ‖X_j‖ over the layers reading neuron j, on a
    /// calibration pass on `--data` (for a language model, a text file: its
    /// bytes modulo the vocabulary are the token ids)
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
    /// Head dimensions: the same dimensions of every head (rotary pairs
    /// together), the query's with the key's and the value's with the
    /// output projection's. Not with `heads` in one pass.
    HeadDims,
    /// Whole experts of a mixture of experts: a router's output with its
    /// rows in every expert table (at least top-k experts stay).
    Experts,
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
    check_flags(utility, data, recalibrate)?;
    let mut l = load_reading(path, reading_of(only)?)?.with_shapes(shapes, path)?;
    let calib = Calibration::read(&l, path, data, utility)?;
    let u = utility_of(&l.model, path, utility, &calib, show)?;
    let shapes = l.sample_shapes();
    let sp = spinner("pruning (planner bisection)", show);
    let r = shrink_parts(&mut l.model, &u, target, scope, &shapes, &parts_of(only))
        .with_context(|| format!("pruning `{}`", path.display()))?;
    sp.finish_and_clear();
    let recalibrated = match &calib {
        Calibration::Data(spec, d) if recalibrate => {
            graft::nn::train::recalibrate_batch_norm(&mut l.model, &d.x, 128).with_context(
                || {
                    format!(
                        "re-estimating the batch norms of `{}` on `{spec}`",
                        path.display()
                    )
                },
            )?
        }
        _ => 0,
    };
    save(&l.model, &l.interface, out)?;
    report(
        &r,
        recalibrate.then_some((recalibrated, data.unwrap_or_default())),
        out,
        json_out,
    )
}

/// `--utility` and `--recalibrate` against `--data`.
fn check_flags(utility: UtilityArg, data: Option<&str>, recalibrate: bool) -> Result<()> {
    let taylor = utility == UtilityArg::Taylor;
    let activation = utility == UtilityArg::Activation;
    let why = match data {
        None if taylor => "--utility taylor needs --data",
        None if activation => "--utility activation needs --data",
        None if recalibrate => "--recalibrate needs --data",
        Some(_) if !taylor && !activation && !recalibrate => {
            "--data is used by --utility taylor or activation and --recalibrate only"
        }
        _ => return Ok(()),
    };
    Err(Usage(why.into()).into())
}

/// What `--data` gives: nothing, a language model's calibration token ids
/// (a text file's bytes, for `--utility activation`), or a data set.
enum Calibration<'a> {
    None,
    Text(graft::nn::Tensor),
    Data(&'a str, Dataset),
}

impl<'a> Calibration<'a> {
    fn read(
        l: &crate::io::Loaded,
        path: &Path,
        data: Option<&'a str>,
        utility: UtilityArg,
    ) -> Result<Self> {
        let Some(spec) = data else {
            return Ok(Calibration::None);
        };
        match vocabulary(&l.model) {
            Some(vocab) if matches!(utility, UtilityArg::Activation | UtilityArg::Taylor) => {
                let seq = l.sample_shapes()[0].iter().product::<usize>();
                Ok(Calibration::Text(text_ids(spec, vocab, seq)?))
            }
            _ => Ok(Calibration::Data(
                spec,
                super::train::data_for(l, path, spec)?,
            )),
        }
    }
}

/// The neurons' utilities for `--utility`.
fn utility_of(
    m: &graft::nn::Model,
    path: &Path,
    utility: UtilityArg,
    calib: &Calibration,
    show: bool,
) -> Result<Utility> {
    let name = path.display();
    Ok(match (utility, calib) {
        (UtilityArg::Activation, Calibration::Text(ids)) => {
            graft::nn::utility::activation_aware(m, std::slice::from_ref(ids))
                .with_context(|| format!("activation-aware utility of `{name}`"))?
        }
        (UtilityArg::Activation, Calibration::Data(spec, d)) => {
            graft::nn::utility::activation_aware(m, std::slice::from_ref(&d.x))
                .with_context(|| format!("activation-aware utility of `{name}` on `{spec}`"))?
        }
        (UtilityArg::Taylor, Calibration::Text(ids)) => {
            // A language model: the next-token loss on the text's windows.
            let batch = 8;
            let b = bar(ids.dim(0)?.div_ceil(batch) as u64, "Taylor utility", show);
            let u = graft::nn::utility::taylor_on(
                m,
                ids,
                ids,
                graft::nn::train::Loss::NextToken,
                batch,
                || b.inc(1),
            )
            .with_context(|| format!("Taylor utility (next-token loss) of `{name}`"))?;
            b.finish_and_clear();
            u
        }
        (UtilityArg::Taylor, Calibration::Data(spec, d)) => {
            let batch = 64;
            let b = bar(d.len().div_ceil(batch) as u64, "Taylor utility", show);
            let u = graft::nn::utility::taylor_on(
                m,
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
        (UtilityArg::Magnitude | UtilityArg::Taylor | UtilityArg::Activation, _) => {
            graft::nn::utility::magnitude(m).with_context(|| format!("magnitudes of `{name}`"))?
        }
    })
}

/// How the model is read for `--only`: by head dimensions when it names
/// them, else by whole heads. Both at once cannot be: the planner's sizes
/// are whole heads or the same dimensions in every head, not both.
fn reading_of(only: &[PartArg]) -> Result<Reading> {
    match (only.contains(&PartArg::Heads), only.contains(&PartArg::HeadDims)) {
        (true, true) => Err(Usage(
            "--only heads,head-dims: a model is pruned by whole heads or by head dimensions in one pass, not both (run graft prune twice)"
                .into(),
        )
        .into()),
        (false, true) => Ok(Reading::HeadDims),
        (_, false) => Ok(Reading::Heads),
    }
}

/// The parts `--only` names (all of them when it names none).
fn parts_of(only: &[PartArg]) -> Vec<Part> {
    if only.is_empty() {
        return vec![Part::Heads, Part::Experts, Part::Hidden, Part::Mlp];
    }
    only.iter()
        .map(|p| match p {
            PartArg::Heads => Part::Heads,
            PartArg::HeadDims => Part::HeadDims,
            PartArg::Experts => Part::Experts,
            PartArg::Hidden => Part::Hidden,
            PartArg::Mlp => Part::Mlp,
        })
        .collect()
}

/// The table (or JSON) of sizes before and after; `recalibrated` is the
/// number of batch norms re-estimated and the data they saw.
fn report(
    r: &graft::nn::shrink::Shrunk,
    recalibrated: Option<(usize, &str)>,
    out: &Path,
    json_out: bool,
) -> Result<String> {
    if json_out {
        let doc = json!({
            "neurons": [r.neurons.0, r.neurons.1],
            "params": [r.params.0, r.params.1],
            "macs": [r.macs.0, r.macs.1],
            "recalibrated": recalibrated.map_or(0, |(n, _)| n),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let pct = |a: u64, b: u64| format!("{:.1}%", 100.0 * b as f64 / a.max(1) as f64);
    let row = |label: &str, (a, b): (u64, u64)| {
        vec![label.to_string(), thousands(a), thousands(b), pct(a, b)]
    };
    let rows = vec![
        row("prunable neurons", r.neurons),
        row("parameters", r.params),
        row("MACs per sample", r.macs),
    ];
    let mut text = table(&["", "before", "after", "kept"], &rows);
    if let Some((n, data)) = recalibrated {
        text.push_str(&format!(
            "\nre-estimated the statistics of {n} batch norms on `{data}`\n"
        ));
    }
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}
