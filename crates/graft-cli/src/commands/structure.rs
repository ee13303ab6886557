//! `graft structure`: the neuron-level graph of a model (every neuron a
//! node, every nonzero weight an edge) as GraphML or Graphviz DOT.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use graft::sparse::structure::{neuron_graph_for, Include};
use petgraph::visit::EdgeRef;

use crate::io::{load, spinner, thousands, write_file};
use crate::Usage;

pub fn run(path: &Path, out: &Path, json_out: bool, show: bool) -> Result<String> {
    let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "graphml" | "dot") {
        return Err(Usage(format!(
            "`{}`: the output must end in .graphml or .dot",
            out.display()
        ))
        .into());
    }
    let l = load(path)?;
    let sp = spinner("building the neuron graph", show);
    let g = neuron_graph_for(&l.model, &l.sample_shapes(), Include::ALL)
        .with_context(|| format!("the neuron graph of `{}`", path.display()))?;
    sp.finish_and_clear();
    let text = if ext == "graphml" {
        graft::sparse::graphml::neurons_to_graphml(&g)
    } else {
        let mut s = String::from("digraph neurons {\n  rankdir=LR;\n  node [shape=point];\n");
        for n in g.node_indices() {
            let w = &g[n];
            let _ = writeln!(
                s,
                "  n{} [label=\"{}[{}]\", layer={}];",
                n.index(),
                w.vertex.replace('"', "'"),
                w.index,
                w.layer
            );
        }
        for e in g.edge_references() {
            let _ = writeln!(
                s,
                "  n{} -> n{} [weight={}];",
                e.source().index(),
                e.target().index(),
                e.weight()
            );
        }
        s.push_str("}\n");
        s
    };
    write_file(out, text.as_bytes())?;
    if json_out {
        let doc = serde_json::json!({
            "neurons": g.node_count(),
            "connections": g.edge_count(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    Ok(format!(
        "{} neurons, {} connections: wrote {}\n",
        thousands(g.node_count() as u64),
        thousands(g.edge_count() as u64),
        out.display()
    ))
}
