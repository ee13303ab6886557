//! Networks from a DAG (deepstruct's MaskedDeepDAN): every DAG vertex is one
//! hidden neuron, placed in its longest-path layer. The input is fully
//! connected to layer 0; each layer `l ≥ 1` reads layer `l − 1` through a
//! masked "main" block (always present) and every earlier layer that has an
//! edge into it through a masked "skip" block; the last layer is fully
//! connected to the output. A block's mask has a one exactly where the DAG
//! has an edge.
//!
//! Aggregation is a documented choice: [`Aggregation::ReluPerBlock`] applies
//! ReLU to every block and sums (deepstruct's), [`Aggregation::SumThenRelu`]
//! sums the blocks and then applies one ReLU (the usual neuron).

use graft_core::VertexId;
use graft_nn::{Activation, Model, Op, Tensor};

use crate::dag::LayeredDag;
use crate::error::SparseError;

/// How a layer combines its incoming blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// ReLU per block, then the sum (deepstruct).
    ReluPerBlock,
    /// The sum of the blocks, then one ReLU.
    SumThenRelu,
}

/// Whether a block joins consecutive layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Input to layer 0.
    First,
    /// Layer `l − 1` to layer `l`.
    Main,
    /// A non-adjacent earlier layer to layer `l`.
    Skip,
    /// Last layer to the output.
    Output,
}

/// One masked block of a DAG network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Kind.
    pub kind: BlockKind,
    /// Source layer (`None`: the input).
    pub from: Option<usize>,
    /// Target layer (`None`: the output).
    pub to: Option<usize>,
    /// The masked dense vertex.
    pub vertex: VertexId,
}

/// A DAG network: the model, its blocks, and each DAG node's (layer, index).
#[derive(Debug, Clone)]
pub struct Dan {
    /// The model (one input, one output).
    pub model: Model,
    /// Every block, in construction order.
    pub blocks: Vec<Block>,
    /// (layer, position within the layer) of each DAG node.
    pub place: Vec<(usize, usize)>,
}

/// Build the network of `dag` with `inputs` inputs and `outputs` outputs.
///
/// # Errors
/// An empty DAG, model errors.
pub fn dan(
    inputs: usize,
    outputs: usize,
    dag: &LayeredDag,
    agg: Aggregation,
    seed: u64,
) -> Result<Dan, SparseError> {
    dan_with(inputs, outputs, dag, agg, false, seed)
}

/// [`dan`], optionally with a layer norm after every hidden layer (as
/// deepstruct's scalable networks).
///
/// # Errors
/// An empty DAG, model errors.
pub fn dan_with(
    inputs: usize,
    outputs: usize,
    dag: &LayeredDag,
    agg: Aggregation,
    layer_norm: bool,
    seed: u64,
) -> Result<Dan, SparseError> {
    if dag.is_empty() {
        return Err(SparseError::Unsupported {
            vertex: "dag".into(),
            reason: "an empty DAG has no neurons".into(),
        });
    }
    let layers = dag.layers();
    let nl = layers.iter().max().map_or(0, |m| m + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nl];
    let mut place = vec![(0, 0); dag.len()];
    for (v, &l) in layers.iter().enumerate() {
        place[v] = (l, members[l].len());
        members[l].push(v);
    }
    let mut m = Model::with(graft_nn::Device::Cpu, graft_nn::DType::F32, seed);
    let x = m.input("in", inputs)?;
    let mut blocks = Vec::new();
    let relu = Op::Activation(Activation::Relu);
    let add_block = |m: &mut Model,
                     name: String,
                     src: VertexId,
                     rows: usize,
                     mask: Option<Vec<f32>>|
     -> Result<VertexId, SparseError> {
        let v = m.add(&name, Op::MaskedDense { bias: true }, &[src], Some(rows))?;
        if let Some(mask) = mask {
            let cols = m.graph().nout(src).map_err(graft_nn::NnError::from)?;
            m.set_param(
                v,
                "mask",
                &Tensor::from_vec(mask, (rows, cols), &graft_nn::Device::Cpu)?,
            )?;
        }
        Ok(v)
    };
    let first = add_block(&mut m, "first".into(), x, members[0].len(), None)?;
    blocks.push(Block {
        kind: BlockKind::First,
        from: None,
        to: Some(0),
        vertex: first,
    });
    let norm = |m: &mut Model, l: usize, h: VertexId| -> Result<VertexId, SparseError> {
        if layer_norm {
            Ok(m.add(&format!("norm{l}"), Op::LayerNorm { eps: 1e-5 }, &[h], None)?)
        } else {
            Ok(h)
        }
    };
    let h0 = m.add("layer0", relu.clone(), &[first], None)?;
    let mut out_of: Vec<VertexId> = vec![norm(&mut m, 0, h0)?];
    for l in 1..nl {
        let mut parts = Vec::new();
        for s in (0..l).rev() {
            let mut mask = vec![0f32; members[l].len() * members[s].len()];
            let mut any = false;
            for (i, &t) in members[l].iter().enumerate() {
                for &p in dag.predecessors(t) {
                    if layers[p] == s {
                        mask[i * members[s].len() + place[p].1] = 1.0;
                        any = true;
                    }
                }
            }
            let kind = if s == l - 1 {
                BlockKind::Main
            } else {
                BlockKind::Skip
            };
            if kind == BlockKind::Skip && !any {
                continue;
            }
            let name = format!(
                "{}{s}_{l}",
                if kind == BlockKind::Main {
                    "main"
                } else {
                    "skip"
                }
            );
            let b = add_block(&mut m, name, out_of[s], members[l].len(), Some(mask))?;
            blocks.push(Block {
                kind,
                from: Some(s),
                to: Some(l),
                vertex: b,
            });
            parts.push(b);
        }
        let h = match agg {
            Aggregation::ReluPerBlock => {
                let acts: Vec<VertexId> = parts
                    .iter()
                    .enumerate()
                    .map(|(k, &b)| m.add(&format!("relu{l}_{k}"), relu.clone(), &[b], None))
                    .collect::<Result<_, _>>()?;
                if acts.len() == 1 {
                    acts[0]
                } else {
                    m.add(&format!("layer{l}"), Op::Add, &acts, None)?
                }
            }
            Aggregation::SumThenRelu => {
                let sum = if parts.len() == 1 {
                    parts[0]
                } else {
                    m.add(&format!("sum{l}"), Op::Add, &parts, None)?
                };
                m.add(&format!("layer{l}"), relu.clone(), &[sum], None)?
            }
        };
        out_of.push(norm(&mut m, l, h)?);
    }
    let last = *out_of.last().expect("at least one layer");
    let o = add_block(&mut m, "out".into(), last, outputs, None)?;
    blocks.push(Block {
        kind: BlockKind::Output,
        from: Some(nl - 1),
        to: None,
        vertex: o,
    });
    Ok(Dan {
        model: m,
        blocks,
        place,
    })
}
