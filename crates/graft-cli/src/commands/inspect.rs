//! `graft inspect`: the vertices of a model with their sizes, parameters
//! and multiply-accumulates.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::io::{load, table, thousands};

pub fn run(path: &Path, shapes: &[String], json_out: bool) -> Result<String> {
    let l = load(path)?.with_shapes(shapes, path)?;
    let m = &l.model;
    let cost = m
        .cost(&l.sample_shapes())
        .with_context(|| format!("costing `{}`", path.display()))?;
    let mut params: HashMap<graft::VertexId, u64> = HashMap::new();
    for (v, _, dims, trainable) in m.param_shapes() {
        if trainable {
            *params.entry(v).or_default() += dims.iter().product::<usize>() as u64;
        }
    }
    let g = m.graph();
    let mut rows = Vec::new();
    let mut records = Vec::new();
    for v in g.topological_order()? {
        let vx = g.vertex(v)?;
        let op = m.layer(v).map_or("input", |l| l.op.name());
        // Attention heads: a head split has one neuron per head.
        // A top-k router's choice: k of its input's experts.
        let shown = match (vx.heads(), vx.depthwise(), m.layer(v).map(|l| &l.op)) {
            (Some(w), _, _) => format!("{op} (heads of {w})"),
            (None, Some(k), Some(graft::nn::Op::Regroup(_))) => format!("{op} (each ×{k})"),
            (None, _, Some(graft::nn::Op::TopK(t))) => {
                format!(
                    "{op} ({} of {} experts)",
                    t.k,
                    vx.nin().first().copied().unwrap_or(0)
                )
            }
            (None, _, Some(graft::nn::Op::GatherRows(r))) if r.rows_from => {
                format!("{op} (a row per expert)")
            }
            (None, _, Some(graft::nn::Op::RoutedLinear(r))) => {
                format!("{op} ({} experts)", r.experts)
            }
            _ => op.to_string(),
        };
        let p = params.get(&v).copied().unwrap_or(0);
        let macs = cost.macs.get(&v).copied().unwrap_or(0);
        let nin: Vec<String> = vx.nin().iter().map(|n| n.to_string()).collect();
        rows.push(vec![
            vx.name().to_string(),
            shown,
            vx.kind().as_str().to_string(),
            if nin.is_empty() {
                "-".into()
            } else {
                nin.join("+")
            },
            vx.nout().to_string(),
            thousands(p),
            thousands(macs),
        ]);
        let inputs: Vec<&str> = vx
            .inputs()
            .iter()
            .filter_map(|&u| g.vertex(u).ok().map(|ux| ux.name()))
            .collect();
        let mut record = json!({
            "name": vx.name(), "op": op, "kind": vx.kind().as_str(),
            "inputs": inputs, "nin": vx.nin(), "nout": vx.nout(), "params": p, "macs": macs,
        });
        if let Some(w) = vx.heads() {
            record["head_width"] = json!(w);
        }
        if let Some(graft::nn::Op::TopK(t)) = m.layer(v).map(|l| &l.op) {
            record["top_k"] = json!(t.k);
            record["experts"] = json!(vx.nin().first().copied().unwrap_or(0));
        }
        records.push(record);
    }
    let total_p = m.parameter_count();
    let total_m = cost.total();
    // A graph that holds the batch size it was read at (see
    // `Executor::run`): said, with the vertex.
    let bound = graft::nn::Executor::new(m)
        .ok()
        .and_then(|ex| ex.batch_bound().map(str::to_string));
    if json_out {
        let doc = json!({
            "model": path.display().to_string(),
            "input_shapes": l.input_shapes,
            "sample_shapes": l.sample_shapes(),
            "vertices": records,
            "params": total_p,
            "macs": total_m,
            "read_batch": m.read_batch(),
            "batch_bound": bound,
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut out = table(
        &["vertex", "op", "kind", "nin", "nout", "params", "MACs"],
        &rows,
    );
    out.push_str(&format!(
        "\n{} vertices, {} parameters, {} multiply-accumulates per sample of shape {:?}\n",
        rows.len(),
        thousands(total_p),
        thousands(total_m),
        l.sample_shapes()
    ));
    if let Some(v) = bound {
        let k = m.read_batch();
        let how = match k {
            1 => "larger batches run one sample at a time".to_string(),
            _ => format!("other batches run in groups of {k}"),
        };
        out.push_str(&format!(
            "read at batch size {k}: vertex `{v}` reshapes values whose batch a transpose \
             moved as the file does at that size, so {how}\n"
        ));
    }
    Ok(out)
}
