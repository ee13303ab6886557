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
