//! GraphML for layered DAGs, the format networkx reads and writes
//! (`networkx.read_graphml`). Only what a DAG needs is written: directed
//! edges between nodes `n0`, `n1`, ... The reader accepts any node ids and
//! numbers them in order of appearance.
//!
//! Written by hand rather than with an XML crate: the subset is a dozen
//! lines each way, and the reader only looks at `node` and `edge` elements.

use std::collections::HashMap;

use crate::dag::LayeredDag;
use crate::error::SparseError;

/// The graph as GraphML text.
pub fn to_graphml(g: &LayeredDag) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n\
         <graph edgedefault=\"directed\">\n",
    );
    for v in 0..g.len() {
        s += &format!("<node id=\"n{v}\"/>\n");
    }
    for (a, b) in g.edges() {
        s += &format!("<edge source=\"n{a}\" target=\"n{b}\"/>\n");
    }
    s += "</graph>\n</graphml>\n";
    s
}

/// The value of attribute `key` in an element's text.
fn attr<'a>(element: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=\"");
    let start = element.find(&pat)? + pat.len();
    let end = element[start..].find('"')? + start;
    Some(&element[start..end])
}

/// Read GraphML text.
///
/// # Errors
/// [`SparseError::Unsupported`] for an edge naming an unknown node or
/// malformed elements, [`SparseError::Cycle`] for a cycle.
pub fn from_graphml(text: &str) -> Result<LayeredDag, SparseError> {
    let bad = |reason: String| SparseError::Unsupported {
        vertex: "graphml".into(),
        reason,
    };
    let mut g = LayeredDag::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    for piece in text.split('<').skip(1) {
        let element = piece.split('>').next().unwrap_or("");
        if let Some(rest) = element.strip_prefix("node") {
            let id =
                attr(rest, "id").ok_or_else(|| bad(format!("node without id: <{element}>")))?;
            ids.insert(id.to_string(), g.add_node());
        } else if let Some(rest) = element.strip_prefix("edge") {
            let end = |k: &str| -> Result<usize, SparseError> {
                let name =
                    attr(rest, k).ok_or_else(|| bad(format!("edge without {k}: <{element}>")))?;
                ids.get(name)
                    .copied()
                    .ok_or_else(|| bad(format!("edge names unknown node `{name}`")))
            };
            let (a, b) = (end("source")?, end("target")?);
            g.add_edge(a, b)?;
        }
    }
    Ok(g)
}

/// A neuron-level graph as GraphML with node attributes `vertex`, `layer`
/// and `index` and an edge attribute `weight` (networkx reads them as
/// node and edge data).
pub fn neurons_to_graphml(
    g: &petgraph::graph::DiGraph<crate::structure::NeuronNode, f32>,
) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\">\n\
         <key id=\"vertex\" for=\"node\" attr.name=\"vertex\" attr.type=\"string\"/>\n\
         <key id=\"layer\" for=\"node\" attr.name=\"layer\" attr.type=\"int\"/>\n\
         <key id=\"index\" for=\"node\" attr.name=\"index\" attr.type=\"int\"/>\n\
         <key id=\"weight\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n\
         <graph edgedefault=\"directed\">\n",
    );
    let esc = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;")
    };
    for n in g.node_indices() {
        let w = &g[n];
        s += &format!(
            "<node id=\"n{}\"><data key=\"vertex\">{}</data><data key=\"layer\">{}</data><data key=\"index\">{}</data></node>\n",
            n.index(),
            esc(&w.vertex),
            w.layer,
            w.index
        );
    }
    for e in g.edge_indices() {
        let (a, b) = g.edge_endpoints(e).expect("an edge of this graph");
        s += &format!(
            "<edge source=\"n{}\" target=\"n{}\"><data key=\"weight\">{}</data></edge>\n",
            a.index(),
            b.index(),
            g[e]
        );
    }
    s += "</graph>\n</graphml>\n";
    s
}

/// Read a neuron-level graph written by [`neurons_to_graphml`].
///
/// # Errors
/// Malformed elements or unknown node ids.
pub fn neurons_from_graphml(
    text: &str,
) -> Result<petgraph::graph::DiGraph<crate::structure::NeuronNode, f32>, SparseError> {
    let bad = |reason: String| SparseError::Unsupported {
        vertex: "graphml".into(),
        reason,
    };
    let unesc = |t: &str| {
        t.replace("&lt;", "<")
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
    };
    let data = |body: &str, key: &str| -> Option<String> {
        let pat = format!("<data key=\"{key}\">");
        let start = body.find(&pat)? + pat.len();
        let end = body[start..].find("</data>")? + start;
        Some(unesc(&body[start..end]))
    };
    let mut g = petgraph::graph::DiGraph::new();
    let mut ids: HashMap<String, petgraph::graph::NodeIndex> = HashMap::new();
    let mut rest = text;
    while let Some(p) = rest.find('<') {
        rest = &rest[p + 1..];
        let (tag, body, after) = if rest.starts_with("node ") || rest.starts_with("edge ") {
            let close = if rest.starts_with("node ") {
                "</node>"
            } else {
                "</edge>"
            };
            let head_end = rest
                .find('>')
                .ok_or_else(|| bad("an unclosed element".into()))?;
            let head = &rest[..head_end];
            if head.ends_with('/') {
                (&rest[..4], head, &rest[head_end + 1..])
            } else {
                let end = rest.find(close).ok_or_else(|| bad(format!("no {close}")))?;
                (&rest[..4], &rest[..end], &rest[end + close.len()..])
            }
        } else {
            continue;
        };
        if tag == "node" {
            let id = attr(body, "id").ok_or_else(|| bad("node without id".into()))?;
            let num = |k: &str| -> Result<usize, SparseError> {
                data(body, k)
                    .ok_or_else(|| bad(format!("node `{id}` without {k}")))?
                    .parse()
                    .map_err(|_| bad(format!("node `{id}`: {k} is not a number")))
            };
            let node = crate::structure::NeuronNode {
                vertex: data(body, "vertex").unwrap_or_default(),
                layer: num("layer")?,
                index: num("index")?,
            };
            ids.insert(id.to_string(), g.add_node(node));
        } else {
            let end = |k: &str| -> Result<petgraph::graph::NodeIndex, SparseError> {
                let name = attr(body, k).ok_or_else(|| bad(format!("edge without {k}")))?;
                ids.get(name)
                    .copied()
                    .ok_or_else(|| bad(format!("edge names unknown node `{name}`")))
            };
            let w: f32 = data(body, "weight")
                .and_then(|x| x.parse().ok())
                .unwrap_or(1.0);
            g.add_edge(end("source")?, end("target")?, w);
        }
        rest = after;
    }
    Ok(g)
}
