//! `graft resize`: change one vertex's size; the coupled vertices follow.

use std::path::Path;

use anyhow::{Context, Result};
use graft::{plan, Plan, Request};
use serde_json::json;

use crate::io::{load, save, table};

/// The plan of changing `name` (a vertex of the model read from `path`) by
/// `by` neurons. Neurons are valued by their weights' magnitude, so a
/// shrink removes the smallest. Errors name the vertex and, for an exact
/// request, say that `--relaxed` exists.
pub fn plan_change(
    model: &graft::nn::Model,
    path: &Path,
    name: &str,
    by: i64,
    relaxed: bool,
) -> Result<Plan> {
    let v = model
        .id(name)
        .with_context(|| format!("vertex `{name}` in `{}`", path.display()))?;
    let u = graft::nn::utility::magnitude(model)
        .with_context(|| format!("magnitudes of `{}`", path.display()))?;
    let req = if relaxed {
        Request::new().nout_relaxed(v, by)
    } else {
        Request::new().nout(v, by)
    }
    .with_utility(u)
    .within(crate::io::time_limit());
    let hint = if relaxed {
        ""
    } else {
        " (--relaxed accepts the nearest size that works)"
    };
    let p =
        plan(model.graph(), &req).with_context(|| format!("changing `{name}` by {by}{hint}"))?;
    crate::io::warn_unproven(&p);
    Ok(p)
}

pub fn run(
    path: &Path,
    vertex: &str,
    by: i64,
    relaxed: bool,
    out: &Path,
    json_out: bool,
) -> Result<String> {
    let mut l = load(path)?;
    let p = plan_change(&l.model, path, vertex, by, relaxed)?;
    l.model
        .apply_plan(&p)
        .with_context(|| format!("applying the plan to `{}`", path.display()))?;
    save(&l.model, &l.interface, out)?;
    let changed: Vec<_> = p
        .changes
        .iter()
        .filter(|c| c.nout_before != c.nout_after)
        .collect();
    if json_out {
        let doc = json!({
            "vertex": vertex,
            "changed": changed.iter().map(|c| json!({
                "vertex": c.name, "before": c.nout_before, "after": c.nout_after,
            })).collect::<Vec<_>>(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let rows: Vec<Vec<String>> = changed
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.nout_before.to_string(),
                c.nout_after.to_string(),
                format!("{:+}", c.nout_after as i64 - c.nout_before as i64),
            ]
        })
        .collect();
    let mut text = format!(
        "resize `{vertex}` by {by:+}: {} vertices change size\n\n",
        rows.len()
    );
    text.push_str(&table(&["vertex", "before", "after", "change"], &rows));
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}
