//! Cell networks (deepstruct's DeepCellDAN): every DAG node is a small
//! module the caller builds, and a node's input is its predecessors'
//! outputs concatenated (the network input for sources). The sinks' outputs
//! are concatenated into the network's output. Because the wiring is an
//! ordinary graft graph, cells can then be widened, pruned or removed like
//! any other layer.

use graft_core::VertexId;
use graft_nn::{Model, Op};

use crate::dag::LayeredDag;
use crate::error::SparseError;

/// A cell network: the model and each DAG node's cell output vertex.
#[derive(Debug)]
pub struct CellNetwork {
    /// The model; its one output is the concatenation of the sinks.
    pub model: Model,
    /// The output vertex of every node's cell.
    pub cells: Vec<VertexId>,
    /// The concatenation of the sinks' outputs.
    pub output: VertexId,
}

/// Build a cell network over `dag` reading an input of `channels`
/// channels. `cell(model, name, input)` adds one cell reading `input` and
/// returns its output vertex.
///
/// # Errors
/// An empty DAG, or what `cell` returns.
pub fn cell_network(
    channels: usize,
    dag: &LayeredDag,
    mut cell: impl FnMut(&mut Model, &str, VertexId) -> Result<VertexId, SparseError>,
) -> Result<CellNetwork, SparseError> {
    if dag.is_empty() {
        return Err(SparseError::Unsupported {
            vertex: "dag".into(),
            reason: "an empty DAG has no cells".into(),
        });
    }
    let mut m = Model::new();
    let x = m.input("in", channels)?;
    // Nodes in layer order (predecessors first).
    let layers = dag.layers();
    let mut order: Vec<usize> = (0..dag.len()).collect();
    order.sort_by_key(|&v| (layers[v], v));
    let mut out = vec![x; dag.len()];
    for v in order {
        let preds = dag.predecessors(v);
        let input = match preds {
            [] => x,
            [p] => out[*p],
            _ => {
                let ins: Vec<VertexId> = preds.iter().map(|&p| out[p]).collect();
                m.add(&format!("cat{v}"), Op::Concat, &ins, None)?
            }
        };
        out[v] = cell(&mut m, &format!("cell{v}"), input)?;
    }
    let sinks: Vec<VertexId> = (0..dag.len())
        .filter(|&v| dag.successors(v).is_empty())
        .map(|v| out[v])
        .collect();
    let output = m.add("sinks", Op::Concat, &sinks, None)?;
    Ok(CellNetwork {
        model: m,
        cells: out,
        output,
    })
}
