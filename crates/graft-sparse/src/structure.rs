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

/// A vertex's neurons (provisional ids; `None`: left out), their layer,
/// and whether they are the fresh output of a weighted layer read by
/// nothing else (such blocks summed by an add are one layer of neurons).
struct Block {
    ids: Vec<Option<usize>>,
    layer: usize,
    fresh: bool,
}

/// Provisional neurons, merged by a union-find when an add sums fresh
/// blocks, then numbered.
#[derive(Default)]
struct Neurons {
    info: Vec<Option<NeuronNode>>,
    parent: Vec<usize>,
    edges: Vec<(usize, usize, f32)>,
}

impl Neurons {
    fn block(&mut self, vertex: &str, layer: usize, n: usize, on: bool) -> Vec<Option<usize>> {
        (0..n)
            .map(|index| {
                on.then(|| {
                    self.info.push(Some(NeuronNode {
                        vertex: vertex.to_string(),
                        layer,
                        index,
                    }));
                    self.parent.push(self.parent.len());
                    self.parent.len() - 1
                })
            })
            .collect()
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    /// Merge `b` into `a` (a's description wins, at the deeper layer).
    fn merge(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let lb = self.info[rb].as_ref().map_or(0, |n| n.layer);
            if let Some(n) = self.info[ra].as_mut() {
                n.layer = n.layer.max(lb);
            }
            self.parent[rb] = ra;
        }
    }
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
    let nodes = g
        .ids()
        .map(|v| g.nout(v).unwrap_or(0) as u64)
        .fold(0u64, u64::saturating_add);
    check_limits(nodes, model.parameter_count())?;
    build(model, include, None)
}

/// The most neurons a neuron-level graph is built with (2^24, every
/// channel at every position).
pub const MAX_NEURONS: u64 = 1 << 24;
/// The most weight edges (2^26).
pub const MAX_EDGES: u64 = 1 << 26;

/// Refuse, before running or allocating anything, a neuron graph of
/// `model` at `input_shapes` above the limits: its neurons are every
/// vertex's values per sample, its edges about its multiply-accumulates.
fn within_limits(model: &Model, input_shapes: &[Vec<usize>]) -> Result<(), SparseError> {
    let cost = model.cost(input_shapes)?;
    let elements = |s: &Vec<usize>| {
        s.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
            .unwrap_or(u64::MAX)
    };
    // The inputs are among the shapes.
    let nodes = cost
        .shapes
        .values()
        .map(elements)
        .fold(0u64, u64::saturating_add);
    check_limits(nodes, cost.total())
}

fn check_limits(nodes: u64, edges: u64) -> Result<(), SparseError> {
    if nodes > MAX_NEURONS || edges > MAX_EDGES {
        return Err(SparseError::TooLarge {
            nodes,
            edges,
            max_nodes: MAX_NEURONS,
            max_edges: MAX_EDGES,
        });
    }
    Ok(())
}

/// The neuron-level graph of a model with spatial layers: `input_shapes`
/// gives each graph input's shape without the batch axis (in the
/// executor's input order), and every neuron of every channel and position
/// becomes a node; convolutions (padding, stride, dilation, groups) give
/// exactly the taps that fall inside the input, pools their windows. The
/// batch plays no part.
///
/// # Errors
/// As [`neuron_graph`], and shapes that do not fit the model.
pub fn neuron_graph_for(
    model: &Model,
    input_shapes: &[Vec<usize>],
    include: Include,
) -> Result<DiGraph<NeuronNode, f32>, SparseError> {
    within_limits(model, input_shapes)?;
    let ex = graft_nn::Executor::new(model)?;
    let xs: Vec<graft_nn::Tensor> = input_shapes
        .iter()
        .map(|s| {
            let mut d = vec![1];
            d.extend(s);
            graft_nn::Tensor::zeros(d, graft_nn::DType::F32, &graft_nn::Device::Cpu)
        })
        .collect::<Result<_, _>>()?;
    let run = graft_nn::Run {
        keep: true,
        ..graft_nn::Run::inference()
    };
    let f = ex.run(model, &xs, &run)?;
    let shapes: HashMap<VertexId, Vec<usize>> = f
        .activations
        .iter()
        .map(|(v, t)| (*v, t.dims()[1..].to_vec()))
        .collect();
    build(model, include, Some(&shapes))
}

fn build(
    model: &Model,
    include: Include,
    shapes: Option<&HashMap<VertexId, Vec<usize>>>,
) -> Result<DiGraph<NeuronNode, f32>, SparseError> {
    let g = model.graph();
    let count = |v: VertexId| -> usize {
        shapes
            .and_then(|s| s.get(&v))
            .map(|d| d.iter().product())
            .unwrap_or_else(|| g.nout(v).unwrap_or(0))
    };
    let order = g.topological_order().map_err(graft_nn::NnError::from)?;
    let is_output = |v: VertexId| g.vertex(v).map(|x| x.outputs().is_empty()).unwrap_or(false);
    let single_reader = |v: VertexId| g.vertex(v).map(|x| x.outputs().len() == 1).unwrap_or(false);
    let mut nn = Neurons::default();
    let mut blocks: HashMap<VertexId, Block> = HashMap::new();
    let unsupported = |v: VertexId, what: &str| SparseError::Unsupported {
        vertex: g.name(v),
        reason: format!("{what} has no neuron-level form here"),
    };
    for v in order {
        let vx = g.vertex(v).map_err(graft_nn::NnError::from)?;
        let name = vx.name().to_string();
        let on = include.output || !is_output(v);
        if vx.kind() == SizeKind::Input {
            let ids = nn.block(&name, 0, count(v), include.input);
            blocks.insert(
                v,
                Block {
                    ids,
                    layer: 0,
                    fresh: false,
                },
            );
            continue;
        }
        let op = &model
            .layer(v)
            .ok_or_else(|| unsupported(v, "a vertex without a layer"))?
            .op;
        let ins: Vec<&Block> = vx.inputs().iter().map(|u| &blocks[u]).collect();
        let depth = ins.iter().map(|b| b.layer).max().unwrap_or(0);
        let block = match op {
            Op::Dense { .. } | Op::MaskedDense { .. } => {
                let w: Vec<Vec<f32>> = model
                    .param(v, "weight")?
                    .to_dtype(graft_nn::DType::F32)?
                    .to_vec2()?;
                let mask: Option<Vec<Vec<f32>>> = match op {
                    Op::MaskedDense { .. } => Some(
                        model
                            .param(v, "mask")?
                            .to_dtype(graft_nn::DType::F32)?
                            .to_vec2()?,
                    ),
                    _ => None,
                };
                let src = ins[0].ids.clone();
                let ids = nn.block(&name, depth + 1, count(v), on);
                for (i, row) in w.iter().enumerate() {
                    let Some(t) = ids[i] else { continue };
                    for (j, &x) in row.iter().enumerate() {
                        let kept = match &mask {
                            Some(m) => m[i][j] != 0.0,
                            None => x != 0.0,
                        };
                        if let (true, Some(s)) = (kept, src[j]) {
                            nn.edges.push((s, t, x));
                        }
                    }
                }
                Block {
                    ids,
                    layer: depth + 1,
                    fresh: single_reader(v),
                }
            }
            Op::Conv2d(c) | Op::MaskedConv2d(c) => {
                let sh = shapes.ok_or_else(|| {
                    unsupported(
                        v,
                        "a convolution without input shapes (use neuron_graph_for)",
                    )
                })?;
                let u = vx.inputs()[0];
                let (ci, hi, wi) = (sh[&u][0], sh[&u][1], sh[&u][2]);
                let (co, ho, wo) = (sh[&v][0], sh[&v][1], sh[&v][2]);
                let groups = match c.groups {
                    graft_nn::Groups::One => 1,
                    graft_nn::Groups::Depthwise => ci,
                    graft_nn::Groups::Fixed(k) => k,
                };
                let (cig, cog, (kh, kw)) = (ci / groups, co / groups, (c.kernel.h, c.kernel.w));
                let w: Vec<f32> = model
                    .param(v, "weight")?
                    .to_dtype(graft_nn::DType::F32)?
                    .flatten_all()?
                    .to_vec1()?;
                let mask: Option<Vec<f32>> = match op {
                    Op::MaskedConv2d(_) => Some(
                        model
                            .param(v, "mask")?
                            .to_dtype(graft_nn::DType::F32)?
                            .flatten_all()?
                            .to_vec1()?,
                    ),
                    _ => None,
                };
                let src = ins[0].ids.clone();
                let ids = nn.block(&name, depth + 1, count(v), on);
                for o in 0..co {
                    let grp = o / cog;
                    for cl in 0..cig {
                        let ch = grp * cig + cl;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let at = ((o * cig + cl) * kh + ky) * kw + kx;
                                let x = w[at];
                                let kept = match &mask {
                                    Some(m) => m[at] != 0.0,
                                    None => x != 0.0,
                                };
                                if !kept {
                                    continue;
                                }
                                for y in 0..ho {
                                    let iy = (y * c.stride.h + ky * c.dilation.h) as isize
                                        - c.padding.h as isize;
                                    if iy < 0 || iy >= hi as isize {
                                        continue;
                                    }
                                    for xx in 0..wo {
                                        let ix = (xx * c.stride.w + kx * c.dilation.w) as isize
                                            - c.padding.w as isize;
                                        if ix < 0 || ix >= wi as isize {
                                            continue;
                                        }
                                        let s = src[ch * hi * wi + iy as usize * wi + ix as usize];
                                        let t = ids[o * ho * wo + y * wo + xx];
                                        if let (Some(s), Some(t)) = (s, t) {
                                            nn.edges.push((s, t, x));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Block {
                    ids,
                    layer: depth + 1,
                    fresh: false,
                }
            }
            Op::MaxPool2d { .. } | Op::AvgPool2d { .. } | Op::GlobalAvgPool | Op::GlobalMaxPool => {
                let sh = shapes.ok_or_else(|| {
                    unsupported(v, "pooling without input shapes (use neuron_graph_for)")
                })?;
                let u = vx.inputs()[0];
                let ids = nn.block(&name, depth + 1, count(v), on);
                for (s, t, w) in pool_edges(op, &sh[&u], &sh[&v]) {
                    if let (Some(s), Some(t)) = (ins[0].ids[s], ids[t]) {
                        nn.edges.push((s, t, w));
                    }
                }
                Block {
                    ids,
                    layer: depth + 1,
                    fresh: false,
                }
            }
            Op::Flatten { .. } => Block {
                ids: ins[0].ids.clone(),
                layer: depth,
                fresh: false,
            },
            Op::Concat => Block {
                ids: ins.iter().flat_map(|b| b.ids.iter().copied()).collect(),
                layer: depth,
                fresh: false,
            },
            Op::Add | Op::Sub | Op::Mul
                if ins.len() > 1 && ins.iter().all(|b| b.fresh) && matches!(op, Op::Add) =>
            {
                // Weighted layers summed: one layer of neurons.
                let ids = ins[0].ids.clone();
                for b in &ins[1..] {
                    for (a, c) in ids.iter().zip(&b.ids) {
                        if let (Some(a), Some(c)) = (a, c) {
                            nn.merge(*a, *c);
                        }
                    }
                }
                Block {
                    ids,
                    layer: depth,
                    fresh: single_reader(v),
                }
            }
            Op::Add | Op::Sub | Op::Mul if ins.len() > 1 => {
                let srcs: Vec<Vec<Option<usize>>> = ins.iter().map(|b| b.ids.clone()).collect();
                // One neuron per channel and position (count, not nout:
                // spatial joins have H·W neurons per channel).
                let ids = nn.block(&name, depth + 1, count(v), on);
                for (i, t) in ids.iter().enumerate() {
                    for s in &srcs {
                        if let (Some(t), Some(s)) = (t, s[i]) {
                            nn.edges.push((s, *t, 1.0));
                        }
                    }
                }
                Block {
                    ids,
                    layer: depth + 1,
                    fresh: false,
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
                ids: ins[0].ids.clone(),
                layer: depth,
                fresh: ins[0].fresh && single_reader(v),
            },
            other => return Err(unsupported(v, other.name())),
        };
        blocks.insert(v, block);
    }
    // Number the representatives in creation order.
    let mut out: DiGraph<NeuronNode, f32> = DiGraph::new();
    let n = nn.info.len();
    let roots: Vec<bool> = (0..n).map(|x| nn.find(x) == x).collect();
    let index: Vec<Option<NodeIndex>> = nn
        .info
        .iter()
        .zip(&roots)
        .map(|(info, &root)| match (root, info) {
            (true, Some(info)) => Some(out.add_node(info.clone())),
            _ => None,
        })
        .collect();
    let edges = std::mem::take(&mut nn.edges);
    for (a, b, w) in edges {
        let (ra, rb) = (nn.find(a), nn.find(b));
        if let (Some(a), Some(b)) = (index[ra], index[rb]) {
            out.add_edge(a, b, w);
        }
    }
    Ok(out)
}

/// The connections of a pooling vertex: (input neuron, output neuron,
/// weight), neurons numbered channel-major over the per-sample shapes
/// `[C, ...]`. Each output reads its window of the same channel: weight 1
/// for a max (the neuron that wins depends on the input), 1/window for an
/// average. Windows are clipped to the input (padding never wins).
fn pool_edges(op: &Op, input: &[usize], output: &[usize]) -> Vec<(usize, usize, f32)> {
    let c = input[0];
    let si: usize = input[1..].iter().product();
    let mut edges = Vec::new();
    match op {
        Op::GlobalAvgPool | Op::GlobalMaxPool => {
            let w = if matches!(op, Op::GlobalAvgPool) {
                1.0 / si.max(1) as f32
            } else {
                1.0
            };
            for ch in 0..c {
                edges.extend((0..si).map(|i| (ch * si + i, ch, w)));
            }
        }
        Op::MaxPool2d { kernel, stride, .. } | Op::AvgPool2d { kernel, stride }
            if input.len() == 3 && output.len() == 3 =>
        {
            let (pad, w) = match op {
                Op::MaxPool2d { padding, .. } => (*padding, 1.0),
                _ => (graft_nn::Hw::default(), 1.0 / (kernel.h * kernel.w) as f32),
            };
            let (hi, wi, ho, wo) = (input[1], input[2], output[1], output[2]);
            for ch in 0..c {
                for y in 0..ho {
                    for x in 0..wo {
                        let t = (ch * ho + y) * wo + x;
                        for ky in 0..kernel.h {
                            for kx in 0..kernel.w {
                                let iy = (y * stride.h + ky) as isize - pad.h as isize;
                                let ix = (x * stride.w + kx) as isize - pad.w as isize;
                                if iy < 0 || ix < 0 || iy >= hi as isize || ix >= wi as isize {
                                    continue;
                                }
                                edges.push(((ch * hi + iy as usize) * wi + ix as usize, t, w));
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    edges
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
