//! `graft draw`: the vertex graph as SVG, optionally with the vertices a
//! size change would touch.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use graft::svg::{to_svg, Drawing};
use graft::Plan;

use crate::io::{load, write_file};
use crate::Usage;

/// `NAME=N` (N signed): the change to draw.
pub fn parse_change(s: &str) -> Result<(String, i64)> {
    let bad = || {
        Usage(format!(
            "--plan `{s}`: give VERTEX=N, e.g. conv3=+16 or fc1=-4"
        ))
    };
    let (name, by) = s.rsplit_once('=').ok_or_else(bad)?;
    let by: i64 = by.trim().parse().map_err(|_| bad())?;
    if name.is_empty() {
        return Err(bad().into());
    }
    Ok((name.to_string(), by))
}

/// The drawing of a model: op names as labels and, with a plan, the
/// vertices it changes.
pub fn drawing(model: &graft::nn::Model, title: &str, plan: Option<&Plan>) -> Drawing {
    let g = model.graph();
    let labels = g
        .ids()
        .map(|v| {
            (
                v,
                model.layer(v).map_or("input", |l| l.op.name()).to_string(),
            )
        })
        .collect();
    let changed: HashMap<_, _> = plan
        .map(|p| {
            p.changes
                .iter()
                .filter(|c| c.nout_before != c.nout_after)
                .map(|c| (c.vertex, (c.nout_before, c.nout_after)))
                .collect()
        })
        .unwrap_or_default();
    Drawing {
        title: Some(title.to_string()),
        labels,
        changed,
    }
}

pub fn run(
    path: &Path,
    change: Option<&str>,
    relaxed: bool,
    out: &Path,
    json_out: bool,
) -> Result<String> {
    let l = load(path)?;
    let change = change.map(parse_change).transpose()?;
    let mut title = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let p = match &change {
        Some((name, by)) => {
            title.push_str(&format!(" — plan: {name} {by:+}"));
            Some(super::resize::plan_change(
                &l.model, path, name, *by, relaxed,
            )?)
        }
        None => None,
    };
    let d = drawing(&l.model, &title, p.as_ref());
    let svg =
        to_svg(l.model.graph(), &d).with_context(|| format!("drawing `{}`", path.display()))?;
    write_file(out, svg.as_bytes())?;
    let mut changed: Vec<(String, usize, usize)> = d
        .changed
        .iter()
        .map(|(&v, &(a, b))| (l.model.graph().name(v), a, b))
        .collect();
    changed.sort();
    if json_out {
        let doc = serde_json::json!({
            "vertices": l.model.graph().ids().count(),
            "changed": changed.iter().map(|(n, a, b)| serde_json::json!({
                "vertex": n, "before": a, "after": b,
            })).collect::<Vec<_>>(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut text = format!(
        "drew {} vertices to {}\n",
        l.model.graph().ids().count(),
        out.display()
    );
    if change.is_some() {
        let names: Vec<String> = changed
            .iter()
            .map(|(n, a, b)| format!("{n} {a}→{b}"))
            .collect();
        text.push_str(&format!(
            "the plan changes {} vertices: {}\n",
            names.len(),
            names.join(", ")
        ));
    }
    Ok(text)
}
