//! The neuron-level graph of a model: one node per neuron (the vertex it
//! belongs to, its layer and index), one edge per unmasked weight (a plain
//! dense layer: per nonzero weight) with the weight's value. Activations,
//! norms and other unary elementwise vertices keep their input's neurons;
//! a concatenation joins its inputs' neurons; an elementwise add, sub or
//! mul is a new layer reading neuron i of every input. Neurons without any
//! connection stay as isolated nodes. Reading a model never changes it.

use std::collections::HashMap;

use graft_core::{SizeKind, VertexId};
use graft_nn::{Model, Op};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::dag::LayeredDag;
use crate::error::SparseError;

/// A neuron.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeuronNode {
    /// The vertex whose output it is.
    pub vertex: String,
    /// Its layer (graph inputs are layer 0; each weighted layer adds one).
    pub layer: usize,
    /// Its index within the vertex.
    pub index: usize,
}

/// Which neurons to include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    /// The graph inputs' neurons.
    pub input: bool,
    /// The graph outputs' neurons.
    pub output: bool,
}

impl Include {
    /// Everything.
    pub const ALL: Include = Include {
        input: true,
        output: true,
    };
    /// Hidden neurons only.
    pub const HIDDEN: Include = Include {
        input: false,
        output: false,
    };
}

/// A vertex's neurons in the exported graph (`None`: left out) and layer.
struct Block {
    nodes: Vec<Option<NodeIndex>>,
    layer: usize,
}

/// The neuron-level graph of `model`.
///
/// # Errors
/// Vertices without a neuron-level form here (convolutions, pooling,
/// recurrent layers), tensor errors.
pub fn neuron_graph(
    model: &Model,
    include: Include,
) -> Result<DiGraph<NeuronNode, f32>, SparseError> {
    let g = model.graph();
    let order = g.topological_order().map_err(graft_nn::NnError::from)?;
    let outputs: Vec<VertexId> = g
        .ids()
        .filter(|&v| g.vertex(v).map(|x| x.outputs().is_empty()).unwrap_or(false))
        .collect();
    let mut out: DiGraph<NeuronNode, f32> = DiGraph::new();
    let mut blocks: HashMap<VertexId, Block> = HashMap::new();
    let unsupported = |v: VertexId, what: &str| SparseError::Unsupported {
        vertex: g.name(v),
        reason: format!("{what} has no neuron-level form here"),
    };
    for v in order {
        let vx = g.vertex(v).map_err(graft_nn::NnError::from)?;
        let name = vx.name().to_string();
        let keep = |layer: usize,
                    out: &mut DiGraph<NeuronNode, f32>,
                    n: usize,
                    on: bool|
         -> Vec<Option<NodeIndex>> {
            (0..n)
                .map(|index| {
                    on.then(|| {
                        out.add_node(NeuronNode {
                            vertex: name.clone(),
                            layer,
                            index,
                        })
                    })
                })
                .collect()
        };
        let is_out = outputs.contains(&v);
        if vx.kind() == SizeKind::Input {
            let nodes = keep(0, &mut out, vx.nout(), include.input);
            blocks.insert(v, Block { nodes, layer: 0 });
            continue;
        }
        let layer_op = &model
            .layer(v)
            .ok_or_else(|| unsupported(v, "a vertex without a layer"))?
            .op;
        let ins: Vec<&Block> = vx.inputs().iter().map(|u| &blocks[u]).collect();
        let depth = ins.iter().map(|b| b.layer).max().unwrap_or(0);
        let block = match layer_op {
            Op::Dense { .. } | Op::MaskedDense { .. } => {
                let w: Vec<Vec<f32>> = model
                    .param(v, "weight")?
                    .to_dtype(graft_nn::DType::F32)?
                    .to_vec2()?;
                let mask: Option<Vec<Vec<f32>>> = match layer_op {
                    Op::MaskedDense { .. } => Some(
                        model
                            .param(v, "mask")?
                            .to_dtype(graft_nn::DType::F32)?
                            .to_vec2()?,
                    ),
                    _ => None,
                };
                let src = ins[0].nodes.clone();
                let nodes = keep(depth + 1, &mut out, vx.nout(), include.output || !is_out);
                for (i, row) in w.iter().enumerate() {
                    let Some(t) = nodes[i] else { continue };
                    for (j, &x) in row.iter().enumerate() {
                        let on = match &mask {
                            Some(m) => m[i][j] != 0.0,
                            None => x != 0.0,
                        };
                        if let (true, Some(s)) = (on, src[j]) {
                            out.add_edge(s, t, x);
                        }
                    }
                }
                Block {
                    nodes,
                    layer: depth + 1,
                }
            }
            Op::Concat => Block {
                nodes: ins.iter().flat_map(|b| b.nodes.iter().copied()).collect(),
                layer: depth,
            },
            Op::Add | Op::Sub | Op::Mul if ins.len() > 1 => {
                let srcs: Vec<Vec<Option<NodeIndex>>> =
                    ins.iter().map(|b| b.nodes.clone()).collect();
                let nodes = keep(depth + 1, &mut out, vx.nout(), include.output || !is_out);
                for (i, t) in nodes.iter().enumerate() {
                    for s in &srcs {
                        if let (Some(t), Some(s)) = (t, s[i]) {
                            out.add_edge(s, *t, 1.0);
                        }
                    }
                }
                Block {
                    nodes,
                    layer: depth + 1,
                }
            }
            Op::Activation(_)
            | Op::BatchNorm { .. }
            | Op::Dropout { .. }
            | Op::Scale { .. }
            | Op::Identity
            | Op::Add
            | Op::Sub
            | Op::Mul => Block {
                nodes: ins[0].nodes.clone(),
                layer: depth,
            },
            other => return Err(unsupported(v, other.name())),
        };
        blocks.insert(v, block);
    }
    Ok(out)
}

/// The exported graph as a layered DAG (node `k` is `NodeIndex(k)`).
///
/// # Errors
/// None in practice (an exported graph is acyclic).
pub fn to_dag(g: &DiGraph<NeuronNode, f32>) -> Result<LayeredDag, SparseError> {
    let edges: Vec<(usize, usize)> = g
        .edge_indices()
        .filter_map(|e| g.edge_endpoints(e))
        .map(|(a, b)| (a.index(), b.index()))
        .collect();
    LayeredDag::from_edges(g.node_count(), &edges)
}
