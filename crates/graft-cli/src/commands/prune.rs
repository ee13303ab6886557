//! `graft prune`: structured pruning with the planner to a share of
//! neurons, a parameter budget or a MAC budget.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::shrink::{shrink, Scope, Target};
use serde_json::json;

use crate::io::{load, save, table, thousands};

pub fn run(
    path: &Path,
    target: Target,
    scope: Scope,
    out: &Path,
    json_out: bool,
) -> Result<String> {
    let mut l = load(path)?;
    let u = graft::nn::utility::magnitude(&l.model)
        .with_context(|| format!("magnitudes of `{}`", path.display()))?;
    let shapes = l.sample_shapes();
    let r = shrink(&mut l.model, &u, target, scope, &shapes)
        .with_context(|| format!("pruning `{}`", path.display()))?;
    save(&l.model, &l.input_shapes, out)?;
    if json_out {
        let doc = json!({
            "neurons": [r.neurons.0, r.neurons.1],
            "params": [r.params.0, r.params.1],
            "macs": [r.macs.0, r.macs.1],
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
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}
