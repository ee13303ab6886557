//! Import: a `ModelProto` into a graft model.
//!
//! Values are either runtime tensors (a graft vertex and the shape graft's
//! forward gives it, batch first) or constants (initializers, `Constant`
//! nodes). Nodes are taken in file order (ONNX requires a topological one)
//! and handed to the importer of their op family (`ops/`). Before anything
//! is built, every op type is looked up, and all unsupported ones are
//! reported in one error with their node names.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use graft_core::VertexId;
use graft_nn::{Model, Op};
use prost::Message;

use crate::error::OnnxError;
use crate::mapped::Source;
use crate::ops::registry;
use crate::proto::{attribute_proto::AttributeType, AttributeProto, ModelProto, NodeProto};
use crate::tensor::{decode_from, Const, Floats};

/// A value flowing between nodes.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// Computed by a vertex; `shape` is graft's shape of it (batch first).
    Runtime { v: VertexId, shape: Vec<usize> },
    /// Known at import time.
    Const(Const),
    /// A vertex's output seen through transposes and unit axes: ONNX axis
    /// `i` is graft axis `order[i]`, or a size-1 axis graft does not have
    /// (`None`). Only view ops and recurrent layers read these.
    View {
        v: VertexId,
        shape: Vec<usize>,
        order: Vec<Option<usize>>,
    },
    /// `control > threshold` on a one-column control vertex, waiting for
    /// the `If` or `Where` that reads it.
    Test { v: VertexId, threshold: f64 },
    /// The value named `of` flattened to 1-D, batch axis included (the
    /// first half of PyTorch's `as_strided`, which the dynamo exporter
    /// writes as `Reshape(x, [-1])` then a `Gather` of constant element
    /// indices), waiting for the Gather that gives it a batch-first shape
    /// again. Only that Gather reads it.
    Flat { of: String, len: usize },
}

impl Value {
    /// A runtime value as a view (identity order for a plain one).
    pub fn view(&self) -> Option<(VertexId, Vec<usize>, Vec<Option<usize>>)> {
        match self {
            Value::Runtime { v, shape } => {
                Some((*v, shape.clone(), (0..shape.len()).map(Some).collect()))
            }
            Value::View { v, shape, order } => Some((*v, shape.clone(), order.clone())),
            Value::Const(_) | Value::Test { .. } | Value::Flat { .. } => None,
        }
    }
    /// A view, simplified to a plain runtime value when it is one.
    pub fn from_view(v: VertexId, shape: Vec<usize>, order: Vec<Option<usize>>) -> Value {
        let plain =
            order.len() == shape.len() && order.iter().enumerate().all(|(i, o)| *o == Some(i));
        if plain {
            Value::Runtime { v, shape }
        } else {
            Value::View { v, shape, order }
        }
    }
    /// The ONNX dimensions of a view.
    pub fn onnx_dims(shape: &[usize], order: &[Option<usize>]) -> Vec<usize> {
        order.iter().map(|o| o.map_or(1, |a| shape[a])).collect()
    }
}

/// An imported model and the names of its graph inputs and outputs.
#[derive(Debug)]
pub struct Imported {
    /// The model.
    pub model: Model,
    /// Graph inputs, in the model's order, with the vertex of each.
    pub inputs: Vec<(String, VertexId)>,
    /// Graph outputs, in the model's order, with the vertex of each.
    pub outputs: Vec<(String, VertexId)>,
    /// For each input, when graft's axis order differs from the ONNX
    /// input's (sequences feeding a recurrent layer: graft takes
    /// `[N, F, T]`), the ONNX axis each graft axis comes from: feed
    /// `x.permute(perm)`.
    pub input_perms: Vec<Option<Vec<usize>>>,
    /// Each input's shape as the executor takes it (graft's axis order;
    /// a symbolic or missing batch size reads as 1), for exporting the
    /// model again and for costing it.
    pub input_shapes: Vec<Vec<usize>>,
    /// What the file promised its readers (names, types and dimensions of
    /// the inputs and outputs, opset, producer, doc strings, metadata), for
    /// writing the model back with the same interface.
    pub interface: crate::Interface,
}

/// One node, with typed access to its attributes.
pub(crate) struct Node<'a> {
    pub proto: &'a NodeProto,
    pub name: String,
    pub op: String,
}

impl<'a> Node<'a> {
    fn attr(&self, key: &str) -> Option<&'a AttributeProto> {
        self.proto
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(key))
    }
    /// An integer attribute.
    pub fn int(&self, key: &str, default: i64) -> i64 {
        self.attr(key).and_then(|a| a.i).unwrap_or(default)
    }
    /// A float attribute.
    pub fn float(&self, key: &str, default: f32) -> f32 {
        self.attr(key).and_then(|a| a.f).unwrap_or(default)
    }
    /// An integer list attribute.
    pub fn ints(&self, key: &str) -> Option<Vec<i64>> {
        self.attr(key).map(|a| a.ints.clone())
    }
    /// A string attribute.
    pub fn string(&self, key: &str) -> Option<String> {
        self.attr(key)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
    /// A graph attribute (the branches of `If`).
    pub fn graph(&self, key: &str) -> Option<&'a crate::proto::GraphProto> {
        self.attr(key).and_then(|a| a.g.as_ref())
    }
    /// A tensor attribute.
    pub fn tensor(&self, key: &str) -> Option<&'a crate::proto::TensorProto> {
        self.attr(key).and_then(|a| {
            if a.r#type == Some(AttributeType::Tensor as i32) || a.t.is_some() {
                a.t.as_ref()
            } else {
                None
            }
        })
    }
    /// Input names (empty strings are absent optional inputs).
    pub fn inputs(&self) -> &'a [String] {
        &self.proto.input
    }
    /// Input `k`'s name, or an error naming the node.
    pub fn input(&self, k: usize) -> Result<&'a str, OnnxError> {
        self.proto
            .input
            .get(k)
            .map(String::as_str)
            .ok_or_else(|| self.err(format!("needs input {k}")))
    }
    /// The first output's name.
    pub fn output(&self) -> &'a str {
        self.proto.output.first().map(String::as_str).unwrap_or("")
    }
    /// An error about this node.
    pub fn err(&self, reason: impl Into<String>) -> OnnxError {
        // An unnamed node is named by its first output.
        let node = if self.name.is_empty() {
            format!("<unnamed, output {}>", self.output())
        } else {
            self.name.clone()
        };
        OnnxError::Node {
            node,
            op: self.op.clone(),
            reason: reason.into(),
        }
    }
}

/// Import state.
pub(crate) struct Ctx {
    pub model: Model,
    pub values: HashMap<String, Value>,
    /// How many node inputs and graph outputs read each value.
    pub uses: HashMap<String, usize>,
    names: BTreeMap<String, usize>,
    /// Read splits of the neuron axis as attention heads (see
    /// [`import_bytes`]).
    pub heads: bool,
    /// Read them as head dimensions ([`Reading::HeadDims`]).
    pub head_dims: bool,
    /// Reshape outputs only selections read (see
    /// [`crate::ops::attention::selected_reshapes`]).
    pub selected: std::collections::HashSet<String>,
    /// Parameters set from constants, moved into the model when the
    /// import ends ([`Ctx::finish`]).
    pending: Vec<Pending>,
    /// A graph input's batch size is symbolic: it reads as 1, and the
    /// shape arithmetic is evaluated at batch size 2 as well ([`Ctx::alts`])
    /// to tell which axes carry the batch.
    pub symbolic_batch: bool,
    /// Constants computed from shapes, as they are at batch size 2 (only
    /// those that differ from batch size 1 matter): which reshape axes
    /// carry the batch.
    pub alts: HashMap<String, Const>,
    /// The axis of each vertex's value that carries the batch, where known
    /// ([`Ctx::batch_axis`]).
    batch_axes: HashMap<VertexId, usize>,
}

/// A parameter set from a constant, moved into the model when the import
/// ends: `dims` its shape, `vals` the constant's values, read as they
/// are or, with `transposed`, as the `[dims[1], dims[0]]` matrix a file
/// holds (ONNX's MatMul weights are `[in, out]`).
struct Pending {
    v: VertexId,
    param: String,
    dims: Vec<usize>,
    vals: Floats,
    transposed: bool,
}

/// How the importer reads a split of the neuron axis into two (an
/// attention head split `[.., H · D]` to `[.., H, D]`, and the merge back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reading {
    /// One neuron per head: whole heads are kept, dropped and added in
    /// every projection, a KV head with its query heads.
    #[default]
    Heads,
    /// One neuron per head dimension, shared by every head: the same
    /// dimensions are kept in every head (rotary pairs `i`, `i + D/2`
    /// together), the query's and key's together, the value's and the
    /// output projection's together. Heads keep their number.
    HeadDims,
}

impl Ctx {
    /// The value named `name`, read by `node`.
    pub fn get(&self, node: &Node, name: &str) -> Result<Value, OnnxError> {
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| OnnxError::MissingValue {
                node: node.name.clone(),
                value: name.to_string(),
            })
    }
    /// Input `k` as a runtime value; a view (a transposed value, or one
    /// with unit axes graft's vertex does not have) becomes vertices here
    /// (a transpose, then a reshape that keeps the neuron axis whole), once
    /// for all its readers.
    pub fn runtime(&mut self, node: &Node, k: usize) -> Result<(VertexId, Vec<usize>), OnnxError> {
        let name = node
            .inputs()
            .get(k)
            .ok_or_else(|| node.err(format!("needs input {k}")))?;
        self.runtime_of(node, k, name)
    }

    /// [`Ctx::runtime`] of the value named `name`, read by `node` as its
    /// input `k`.
    pub fn runtime_of(
        &mut self,
        node: &Node,
        k: usize,
        name: &str,
    ) -> Result<(VertexId, Vec<usize>), OnnxError> {
        match self.get(node, name)? {
            Value::Runtime { v, shape } => Ok((v, shape)),
            Value::Const(_) => Err(node.err(format!(
                "input {k} (`{name}`) must be computed, not constant"
            ))),
            Value::View { v, shape, order } => {
                let (w, dims) = self.materialize(node, name, v, &shape, &order)?;
                self.values.insert(
                    name.to_string(),
                    Value::Runtime {
                        v: w,
                        shape: dims.clone(),
                    },
                );
                Ok((w, dims))
            }
            Value::Test { .. } => Err(node.err(format!(
                "input {k} (`{name}`) is a comparison, which only If and Where read"
            ))),
            Value::Flat { of, len } => Err(node.err(format!(
                "input {k} (`{name}`) is `{of}` flattened to [{len}] with its batch axis; \
                 only a Gather restoring a batch-first shape (as_strided) reads it"
            ))),
        }
    }

    /// The neuron axis of a vertex's value (batch axis included).
    pub fn neuron_axis(&self, v: VertexId) -> Option<usize> {
        self.model.layer(v).and_then(|l| l.op.neuron_axis())
    }

    /// The axis of `v`'s value that carries the batch: the first, unless a
    /// transpose moved it or a regroup put it elsewhere ([`graft_nn::BatchAt`]);
    /// other ops keep it where their first input has it.
    pub fn batch_axis(&mut self, v: VertexId) -> usize {
        // Up the chain of first inputs to a vertex already known, then
        // down again (iterative: graphs are deep).
        let mut chain = Vec::new();
        let mut cur = v;
        let mut axis = loop {
            if let Some(&a) = self.batch_axes.get(&cur) {
                break a;
            }
            chain.push(cur);
            let first = self
                .model
                .graph()
                .vertex(cur)
                .ok()
                .and_then(|x| x.inputs().first().copied());
            match first {
                Some(u) => cur = u,
                None => break 0,
            }
        };
        while let Some(w) = chain.pop() {
            axis = self
                .model
                .layer(w)
                .map_or(axis, |l| l.op.batch_axis_after(axis));
            self.batch_axes.insert(w, axis);
        }
        axis
    }

    /// Vertices computing a view of `v` (graft shape `shape`): a transpose
    /// when graft's axes appear out of order, then a [`graft_nn::View`]
    /// adding the unit axes. Returns the last vertex and its shape.
    fn materialize(
        &mut self,
        node: &Node,
        value: &str,
        v: VertexId,
        shape: &[usize],
        order: &[Option<usize>],
    ) -> Result<(VertexId, Vec<usize>), OnnxError> {
        let perm: Vec<usize> = order.iter().flatten().copied().collect();
        if perm.len() != shape.len() {
            return Err(node.err(format!(
                "`{value}` drops an axis of its producer (axes {order:?})"
            )));
        }
        let axis = self.neuron_axis(v);
        let (mut cur, mut cur_shape, mut cur_axis) = (v, shape.to_vec(), axis);
        if perm.iter().enumerate().any(|(i, &p)| i != p) {
            let moved = axis.and_then(|a| perm.iter().position(|&p| p == a));
            let op = graft_nn::Op::Transpose(graft_nn::Transpose {
                perm: perm.clone(),
                axis: moved,
            });
            let name = self.fresh_name(&format!("{value}.transpose"));
            cur = self.model.add(&name, op, &[cur], None)?;
            cur_shape = perm.iter().map(|&p| shape[p]).collect();
            cur_axis = moved;
        }
        let dims = Value::onnx_dims(shape, order);
        if dims == cur_shape {
            return Ok((cur, cur_shape));
        }
        // Positions of the graft axes in the ONNX dims, in order.
        let at: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_some())
            .map(|(i, _)| i)
            .collect();
        let neuron_at = cur_axis.map(|a| at[a]);
        if dims.first() != cur_shape.first() || neuron_at == Some(0) {
            // Unit axes before the batch axis (a file exported at batch
            // size 1): a regroup of the whole value, neurons last.
            let (op, nout) = crate::ops::attention::regroup_op(self, cur, &cur_shape, &dims);
            let name = self.fresh_name(&format!("{value}.regroup"));
            let w = self.model.add(&name, op, &[cur], Some(nout))?;
            return Ok((w, dims));
        }
        let view = graft_nn::View {
            dims: dims[1..]
                .iter()
                .enumerate()
                .map(|(i, &d)| {
                    if Some(i + 1) == neuron_at {
                        graft_nn::ViewDim::Neurons
                    } else {
                        graft_nn::ViewDim::Fixed(d)
                    }
                })
                .collect(),
            from: cur_axis,
        };
        let name = self.fresh_name(&format!("{value}.view"));
        let w = self
            .model
            .add(&name, graft_nn::Op::View(view), &[cur], None)?;
        Ok((w, dims))
    }

    /// A vertex name not yet taken, from `base`.
    pub fn fresh_name(&mut self, base: &str) -> String {
        let k = self.names.entry(base.to_string()).or_insert(0);
        *k += 1;
        if *k == 1 && self.model.graph().id(base).is_err() {
            base.to_string()
        } else {
            format!("{base}#{k}")
        }
    }
    /// Input `k` as a constant, if present.
    pub fn constant(&self, node: &Node, k: usize) -> Result<Option<Const>, OnnxError> {
        match node.inputs().get(k).filter(|n| !n.is_empty()) {
            None => Ok(None),
            Some(name) => match self.get(node, name)? {
                Value::Const(c) => Ok(Some(c)),
                Value::Runtime { .. }
                | Value::View { .. }
                | Value::Test { .. }
                | Value::Flat { .. } => Err(node.err(format!(
                    "input {k} (`{name}`) must be a constant (an initializer)"
                ))),
            },
        }
    }
    /// A fresh vertex name derived from the node's output.
    pub fn vertex_name(&mut self, node: &Node) -> String {
        let base = self.vertex_base(node);
        self.fresh_name(&base)
    }
    /// The name a node's vertices are named after: the node's name, else
    /// its output's, else its op's.
    pub fn vertex_base(&self, node: &Node) -> String {
        let base = if node.name.is_empty() {
            node.output().to_string()
        } else {
            node.name.clone()
        };
        if base.is_empty() {
            node.op.to_lowercase()
        } else {
            base
        }
    }
    /// Add a vertex for `node`, bind its output, and return it.
    pub fn add(
        &mut self,
        node: &Node,
        op: Op,
        inputs: &[VertexId],
        nout: Option<usize>,
        shape: Vec<usize>,
    ) -> Result<VertexId, OnnxError> {
        let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        if elements.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
            return Err(node.err(format!(
                "an output of shape {shape:?}: more than the {MAX_INPUT_ELEMENTS} elements graft holds in a value"
            )));
        }
        let name = self.vertex_name(node);
        // Every parameter is set from the file next: no random start.
        let v = self.model.add_zeroed(&name, op, inputs, nout)?;
        self.values
            .insert(node.output().to_string(), Value::Runtime { v, shape });
        Ok(v)
    }
    /// Make `node`'s output the same value as another.
    pub fn alias(&mut self, node: &Node, value: Value) {
        self.values.insert(node.output().to_string(), value);
    }
    /// Set a parameter from constant values. The values are checked
    /// against the parameter's shape now and moved into the model when
    /// the import ends ([`Ctx::finish`]): by then the constants are
    /// dropped, so a weight read by one layer is moved, not copied.
    pub fn set(
        &mut self,
        v: VertexId,
        param: &str,
        dims: &[usize],
        vals: impl Into<Floats>,
    ) -> Result<(), OnnxError> {
        let vals = vals.into();
        let want = self.model.param_of(v, param)?;
        if want.dims() != dims || vals.len() != dims.iter().product::<usize>() {
            return Err(OnnxError::Model(graft_nn::NnError::Layer {
                vertex: self.model.graph().name(v),
                reason: format!(
                    "parameter `{param}` has shape {:?}, got {dims:?} ({} values)",
                    want.dims(),
                    vals.len()
                ),
            }));
        }
        self.pending.push(Pending {
            v,
            param: param.to_string(),
            dims: dims.to_vec(),
            vals,
            transposed: false,
        });
        Ok(())
    }

    /// [`Ctx::set`] from the transpose of `vals` (a file's `[in, out]`
    /// matrix for a `[out, in]` parameter `dims`), transposed when the
    /// import ends, once the file's copy is no longer read: one matrix at
    /// a time is held twice, not the model.
    pub fn set_transposed(
        &mut self,
        v: VertexId,
        param: &str,
        dims: &[usize],
        vals: Floats,
    ) -> Result<(), OnnxError> {
        self.set(v, param, dims, vals)?;
        if let Some(p) = self.pending.last_mut() {
            p.transposed = true;
        }
        Ok(())
    }

    /// The model, with every pending parameter moved in: backed by the
    /// file when no importer read its values, else moved (copied only when
    /// two layers share one constant).
    fn finish(self) -> Result<Model, OnnxError> {
        let Ctx {
            mut model,
            values,
            pending,
            ..
        } = self;
        drop(values);
        for p in pending {
            if let (false, Some(file)) = (p.transposed, p.vals.unread()) {
                // Still in the file: the parameter reads it when needed.
                let backing = std::sync::Arc::new(file.clone());
                model.put_backed_param(p.v, &p.param, &p.dims, backing)?;
                continue;
            }
            let vals = if p.transposed {
                graft_nn::files::transpose_f32(&p.vals, p.dims[1], p.dims[0])
            } else {
                p.vals.into_vec()
            };
            model.put_param(p.v, &p.param, &p.dims, vals)?;
        }
        Ok(model)
    }
}

/// Import a model from a file.
///
/// # Errors
/// Unreadable or malformed files, unsupported opsets or ops (all listed),
/// missing initializers, shapes that do not fit.
pub fn import(path: &Path) -> Result<Imported, OnnxError> {
    import_reading(path, Reading::Heads)
}

/// Import a model from its protobuf bytes.
///
/// # Errors
/// As [`import`].
pub fn import_bytes(bytes: &[u8]) -> Result<Imported, OnnxError> {
    import_bytes_reading(bytes, Reading::Heads)
}

/// Import a model from a file, reading attention as `reading` says.
///
/// # Errors
/// As [`import`].
pub fn import_reading(path: &Path, reading: Reading) -> Result<Imported, OnnxError> {
    // The file is mapped and decoded in place: tensor bytes are slices of
    // the mapping, read into the model's buffers once (see `mapped.rs`).
    let mut src = Source::default();
    let bytes = src.map(path)?;
    let mut m = ModelProto::decode(bytes).map_err(|e| OnnxError::Malformed(e.to_string()))?;
    if crate::external::has_external(&m) {
        // External data lives beside the model, inside its directory.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        crate::external::resolve(&mut m, dir, &mut src)?;
    }
    let imported = import_proto(&m, reading, &src);
    src.release_pages();
    imported
}

/// Import a model from its protobuf bytes, reading attention as `reading`
/// says.
///
/// # Errors
/// As [`import`].
pub fn import_bytes_reading(bytes: &[u8], reading: Reading) -> Result<Imported, OnnxError> {
    let m = ModelProto::decode(bytes).map_err(|e| OnnxError::Malformed(e.to_string()))?;
    if crate::external::has_external(&m) {
        return Err(OnnxError::Malformed(
            "the model keeps weights in external data files: import it from its path, beside them"
                .into(),
        ));
    }
    import_proto(&m, reading, &Source::default())
}

fn import_proto(m: &ModelProto, reading: Reading, src: &Source) -> Result<Imported, OnnxError> {
    // A split of the neuron axis into two is read as `reading` says when
    // the whole graph agrees: a model that moves the split axis elsewhere
    // (torchvision's fused in-projection splits [3, E] and moves the 3
    // into the batch axis) is read again with such splits frozen.
    match import_model(m, Some(reading), src) {
        Ok(imp) => Ok(imp),
        Err(_) => import_model(m, None, src),
    }
}

/// The most inputs an op takes, for the ops whose extra inputs an importer
/// would otherwise ignore (ONNX's schemas; ops not listed are checked by
/// their importers).
fn max_inputs(op: &str) -> Option<usize> {
    Some(match op {
        "Relu" | "Sigmoid" | "Tanh" | "Erf" | "Exp" | "Log" | "Neg" | "Abs" | "Sqrt"
        | "Reciprocal" | "Softmax" | "LogSoftmax" | "Identity" | "Flatten" | "Transpose"
        | "GlobalAveragePool" | "GlobalMaxPool" | "Not" | "IsNaN" | "Cast" | "Shape" | "Floor"
        | "Ceil" | "Sign" | "Sin" | "Cos" | "HardSigmoid" | "HardSwish" | "LeakyRelu" | "Elu"
        | "Selu" | "Softplus" | "MaxPool" | "AveragePool" | "Gelu" => 1,
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "MatMul" | "Equal" | "Greater" | "Less" | "And"
        | "Or" | "Mod" | "PRelu" | "Reshape" | "Expand" | "Tile" | "Gather" | "GatherElements"
        | "GatherND" | "Unsqueeze" | "Squeeze" => 2,
        "Gemm" | "Conv" | "ConvTranspose" | "Where" | "Clip" | "Range" | "TopK"
        | "LayerNormalization" => 3,
        "BatchNormalization" => 5,
        _ => return None,
    })
}

/// One pass over the graph's integrity before anything is imported: it has
/// outputs, every value is written once (no initializer twice, no node
/// output clashing with another's, an input's or an initializer's), and
/// no node has more inputs than its op takes. Errors name the culprits.
fn validate(g: &crate::proto::GraphProto) -> Result<(), OnnxError> {
    if g.output.is_empty() {
        return Err(OnnxError::Malformed("the graph has no outputs".into()));
    }
    let mut written: HashMap<&str, String> = HashMap::new();
    for i in &g.input {
        written.insert(
            i.name.as_deref().unwrap_or_default(),
            "a graph input".into(),
        );
    }
    let mut inits = std::collections::HashSet::new();
    for t in &g.initializer {
        let name = t.name.as_deref().unwrap_or_default();
        if !inits.insert(name) {
            return Err(OnnxError::Malformed(format!(
                "initializer `{name}` is given twice"
            )));
        }
        // An initializer may also be a graph input (its default value).
        written
            .entry(name)
            .or_insert_with(|| "an initializer".into());
    }
    for n in &g.node {
        let node = n.name.as_deref().unwrap_or_default();
        let op = n.op_type.as_deref().unwrap_or_default();
        if let Some(max) = max_inputs(op) {
            if n.input.len() > max {
                return Err(OnnxError::Malformed(format!(
                    "node `{node}` ({op}) has {} inputs; {op} takes at most {max}",
                    n.input.len()
                )));
            }
        }
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(before) = written.insert(o, format!("node `{node}`")) {
                return Err(OnnxError::Malformed(format!(
                    "value `{o}` is written by {before} and by node `{node}` ({op})"
                )));
            }
        }
    }
    Ok(())
}

/// Import a decoded model, reading splits of the neuron axis as `reading`
/// says, or frozen when `None`: the opsets and the graph are checked, every
/// unsupported op is reported at once, then initializers, inputs, nodes
/// and outputs are bound in turn, and the parameters move into the model.
fn import_model(
    m: &ModelProto,
    reading: Option<Reading>,
    src: &Source,
) -> Result<Imported, OnnxError> {
    check_opsets(m)?;
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Malformed("no graph".into()))?;
    let reg = registry();
    validate(g)?;
    check_supported(g, &reg)?;
    let mut ctx = Ctx {
        model: Model::new(),
        values: HashMap::new(),
        uses: count_uses(g),
        names: BTreeMap::new(),
        heads: reading == Some(Reading::Heads),
        head_dims: reading == Some(Reading::HeadDims),
        selected: crate::ops::attention::selected_reshapes(&g.node),
        pending: Vec::new(),
        symbolic_batch: false,
        alts: HashMap::new(),
        batch_axes: HashMap::new(),
    };
    bind_initializers(&mut ctx, g, src)?;
    let bound = bind_inputs(&mut ctx, g)?;
    // The batch the sizes are read at: the file's, 1 when symbolic.
    let batch = bound.shapes.first().and_then(|s| s.first().copied());
    ctx.model.set_read_batch(batch.unwrap_or(1));
    import_nodes(&mut ctx, g, &reg)?;
    let outputs = bind_outputs(&mut ctx, g)?;
    let interface = crate::Interface::capture(m, &bound.inputs, &outputs, &bound.perms);
    let model = ctx.finish()?;
    Ok(Imported {
        interface,
        model,
        inputs: bound.inputs,
        outputs,
        input_perms: bound.perms,
        input_shapes: bound.shapes,
    })
}

/// Every default-domain opset within 13 to 21.
fn check_opsets(m: &ModelProto) -> Result<(), OnnxError> {
    for o in &m.opset_import {
        let domain = o.domain.clone().unwrap_or_default();
        let version = o.version.unwrap_or(0);
        if (domain.is_empty() || domain == "ai.onnx") && !(13..=21).contains(&version) {
            return Err(OnnxError::Opset { domain, version });
        }
    }
    Ok(())
}

/// Every op type graft neither imports nor folds, each with its nodes, in
/// one error.
fn check_supported(
    g: &crate::proto::GraphProto,
    reg: &HashMap<&'static str, crate::ops::Importer>,
) -> Result<(), OnnxError> {
    let mut unsupported: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &g.node {
        let op = n.op_type.clone().unwrap_or_default();
        let domain = n.domain.clone().unwrap_or_default();
        let known = reg.contains_key(op.as_str()) || crate::fold::FOLDABLE.contains(&op.as_str());
        if !(domain.is_empty() || domain == "ai.onnx") || !known {
            let shown = if domain.is_empty() {
                op
            } else {
                format!("{domain}.{op}")
            };
            unsupported
                .entry(shown)
                .or_default()
                .push(n.name.clone().unwrap_or_default());
        }
    }
    if unsupported.is_empty() {
        Ok(())
    } else {
        Err(OnnxError::Unsupported {
            ops: unsupported.into_iter().collect(),
        })
    }
}

/// How many node inputs and graph outputs read each value.
fn count_uses(g: &crate::proto::GraphProto) -> HashMap<String, usize> {
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for i in &n.input {
            *uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &g.output {
        *uses.entry(o.name.clone().unwrap_or_default()).or_default() += 1;
    }
    uses
}

/// Every initializer as a constant, its values read from `src`.
fn bind_initializers(
    ctx: &mut Ctx,
    g: &crate::proto::GraphProto,
    src: &Source,
) -> Result<(), OnnxError> {
    for t in &g.initializer {
        ctx.values.insert(
            t.name.clone().unwrap_or_default(),
            Value::Const(decode_from(t, src)?),
        );
    }
    Ok(())
}

/// The graph inputs as graft bound them: vertex, axis order and shape of
/// each, in the model's order.
struct BoundInputs {
    inputs: Vec<(String, VertexId)>,
    perms: Vec<Option<Vec<usize>>>,
    shapes: Vec<Vec<usize>>,
}

/// Every graph input (but initializers listed as inputs) as an input
/// vertex; a sequence read by a recurrent layer is held `[N, F, T]`.
fn bind_inputs(ctx: &mut Ctx, g: &crate::proto::GraphProto) -> Result<BoundInputs, OnnxError> {
    let seq_axes = sequence_inputs(g);
    let last_axis_inputs = last_axis_inputs(g);
    let mut bound = BoundInputs {
        inputs: Vec::new(),
        perms: Vec::new(),
        shapes: Vec::new(),
    };
    for vi in &g.input {
        let name = vi.name.clone().unwrap_or_default();
        if ctx.values.contains_key(&name) {
            continue; // an initializer listed as an input (old exporters)
        }
        let shape = input_shape(vi).ok_or_else(|| OnnxError::Tensor {
            name: name.clone(),
            reason: "a graph input needs a tensor type with a known channel count (axis 1)".into(),
        })?;
        ctx.symbolic_batch |= symbolic_batch(vi);
        let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
        if elements.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
            return Err(OnnxError::Tensor {
                name: name.clone(),
                reason: format!(
                    "an input of shape {shape:?}: more than the {MAX_INPUT_ELEMENTS} elements graft takes"
                ),
            });
        }
        if let Some(&[pn, pf, pt]) = seq_axes.get(&name).map(|a| a.as_slice()) {
            // A sequence: graft holds [N, F, T].
            if shape.len() != 3 {
                return Err(OnnxError::Tensor {
                    name: name.clone(),
                    reason: format!(
                        "a recurrent layer reads it as a sequence [T, N, F], but its shape is {shape:?}"
                    ),
                });
            }
            let v = ctx.model.input(&name, shape[pf])?;
            let mut order = vec![None; 3];
            order[pn] = Some(0);
            order[pf] = Some(1);
            order[pt] = Some(2);
            let gshape = vec![shape[pn], shape[pf], shape[pt]];
            bound.shapes.push(gshape.clone());
            ctx.values
                .insert(name.clone(), Value::from_view(v, gshape, order));
            let perm = vec![pn, pf, pt];
            bound.perms.push((perm != [0, 1, 2]).then_some(perm));
            bound.inputs.push((name, v));
            continue;
        }
        if shape.len() >= 3 && last_axis_inputs.contains(&name) {
            // Features on the last axis ([N, T, C] tokens read by dense
            // layers): graft holds [N, C, T..], the file's layout a view.
            let k = shape.len();
            let perm: Vec<usize> = [0, k - 1].into_iter().chain(1..k - 1).collect();
            let gshape: Vec<usize> = perm.iter().map(|&a| shape[a]).collect();
            let v = ctx.model.input(&name, gshape[1])?;
            let mut order = vec![None; k];
            for (graft, &onnx) in perm.iter().enumerate() {
                order[onnx] = Some(graft);
            }
            bound.shapes.push(gshape.clone());
            ctx.values
                .insert(name.clone(), Value::from_view(v, gshape, order));
            bound.perms.push(Some(perm));
            bound.inputs.push((name, v));
            continue;
        }
        let v = ctx.model.input(&name, shape[1])?;
        bound.shapes.push(shape.clone());
        ctx.values.insert(name.clone(), Value::Runtime { v, shape });
        bound.perms.push(None);
        bound.inputs.push((name, v));
    }
    Ok(bound)
}

/// Graph inputs whose features are on the last axis: read, directly or
/// through transposes that bring the last axis back last (graft's own
/// export of such an input), by a MatMul with a constant 2-D weight on the
/// right (a dense layer on the last axis) or a LayerNormalization over the
/// last axis, and by no op that reads features on axis 1 (a convolution,
/// a norm over channels, a pool, a recurrent layer).
fn last_axis_inputs(g: &crate::proto::GraphProto) -> std::collections::HashSet<String> {
    let weights: HashMap<&str, usize> = g
        .initializer
        .iter()
        .map(|t| (t.name.as_deref().unwrap_or_default(), t.dims.len()))
        .collect();
    let attr = |n: &NodeProto, name: &str| {
        n.attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .cloned()
    };
    let mut found = std::collections::HashSet::new();
    for vi in &g.input {
        let name = vi.name.as_deref().unwrap_or_default();
        // (value, perm): axis i of the value is the input's axis perm[i].
        let mut todo = vec![(name.to_string(), None::<Vec<usize>>)];
        let (mut last, mut first) = (false, false);
        for _ in 0..64 {
            let Some((cur, perm)) = todo.pop() else { break };
            // The value's last axis is the input's last axis.
            let kept = perm
                .as_ref()
                .is_none_or(|p| p.last() == Some(&(p.len() - 1)));
            for n in g.node.iter().filter(|n| n.input.contains(&cur)) {
                match n.op_type.as_deref().unwrap_or_default() {
                    "Transpose" => {
                        let Some(p) = attr(n, "perm").map(|a| a.ints) else {
                            continue;
                        };
                        let Ok(p) = p
                            .iter()
                            .map(|&x| usize::try_from(x))
                            .collect::<Result<Vec<_>, _>>()
                        else {
                            continue;
                        };
                        let composed: Option<Vec<usize>> = match &perm {
                            None => Some(p),
                            Some(q) => p.iter().map(|&i| q.get(i).copied()).collect(),
                        };
                        if let (Some(c), Some(out)) = (composed, n.output.first()) {
                            todo.push((out.clone(), Some(c)));
                        }
                    }
                    "MatMul" => {
                        let w = n.input.get(1).map(String::as_str);
                        last |= kept
                            && n.input.first() == Some(&cur)
                            && w.and_then(|w| weights.get(w)) == Some(&2);
                    }
                    "LayerNormalization" => {
                        let axis = attr(n, "axis").and_then(|a| a.i).unwrap_or(-1);
                        last |= kept && axis == -1;
                    }
                    "Conv"
                    | "ConvTranspose"
                    | "BatchNormalization"
                    | "InstanceNormalization"
                    | "GroupNormalization"
                    | "MaxPool"
                    | "AveragePool"
                    | "GlobalAveragePool"
                    | "GlobalMaxPool"
                    | "LSTM"
                    | "GRU"
                    | "RNN" => first = true,
                    _ => {}
                }
            }
        }
        if last && !first {
            found.insert(name.to_string());
        }
    }
    found
}

/// Every node in file order, the chains that span several nodes (channel
/// shuffles, an expert's gathered matrices) taken together at their last.
fn import_nodes(
    ctx: &mut Ctx,
    g: &crate::proto::GraphProto,
    reg: &HashMap<&'static str, crate::ops::Importer>,
) -> Result<(), OnnxError> {
    // Channel shuffles span three nodes; the first two wait for the third
    // to tell whether they are one.
    let shuffles = crate::ops::axes::shuffle_chains(&g.node, &ctx.uses);
    // An expert's gathered matrices wait for the product that reads them.
    let routed = crate::ops::routing::routed_chains(&g.node, &ctx.uses);
    // torch's group norm below opset 18 spans three nodes.
    let groups = crate::ops::norm::group_chains(&g.node, &ctx.uses);
    let deferred: std::collections::HashSet<usize> = shuffles
        .values()
        .chain(groups.values())
        .flat_map(|ab| ab.iter().copied())
        .chain(routed.values().copied())
        .collect();
    let node_at = |i: usize| Node {
        proto: &g.node[i],
        name: g.node[i].name.clone().unwrap_or_default(),
        op: g.node[i].op_type.clone().unwrap_or_default(),
    };
    for i in 0..g.node.len() {
        if deferred.contains(&i) {
            continue;
        }
        let node = node_at(i);
        if let Some(&gi) = routed.get(&i) {
            let gather = node_at(gi);
            if !crate::ops::routing::routed_linear(ctx, &gather, &node)? {
                import_node(ctx, reg, &gather)?;
                import_node(ctx, reg, &node)?;
            }
            continue;
        }
        if let Some(&[a, b]) = groups.get(&i) {
            let (a, b) = (node_at(a), node_at(b));
            if crate::ops::norm::decomposed_group(ctx, &a, &b, &node)? {
                continue;
            }
            import_node(ctx, reg, &a)?;
            import_node(ctx, reg, &b)?;
        }
        if let Some(&[a, b]) = shuffles.get(&i) {
            let (a, b) = (node_at(a), node_at(b));
            if crate::ops::axes::shuffle(ctx, &a, &b, &node)?
                || crate::ops::axes::folded_transpose(ctx, &a, &b, &node)?
            {
                continue;
            }
            import_node(ctx, reg, &a)?;
            import_node(ctx, reg, &b)?;
        }
        import_node(ctx, reg, &node)?;
    }
    Ok(())
}

/// Every graph output's vertex, in the model's order.
fn bind_outputs(
    ctx: &mut Ctx,
    g: &crate::proto::GraphProto,
) -> Result<Vec<(String, VertexId)>, OnnxError> {
    let proto = NodeProto::default();
    let node = Node {
        proto: &proto,
        name: "(graph output)".into(),
        op: String::new(),
    };
    g.output
        .iter()
        .map(|vi| {
            let name = vi.name.clone().unwrap_or_default();
            match ctx.values.get(&name).cloned() {
                Some(Value::Runtime { v, .. }) => Ok((name, v)),
                // A transposed view or one with unit axes: computed in
                // the file's layout.
                Some(Value::View { v, shape, order }) => {
                    let (w, _) = ctx.materialize(&node, &name, v, &shape, &order)?;
                    Ok((name, w))
                }
                Some(Value::Const(_)) => Err(node.err(format!(
                    "`{name}` is a constant: graft models compute their outputs"
                ))),
                Some(Value::Test { .. } | Value::Flat { .. }) => Err(node.err(format!(
                    "`{name}` is an intermediate value graft does not compute on its own"
                ))),
                None => Err(OnnxError::MissingValue {
                    node: "(graph output)".into(),
                    value: name,
                }),
            }
        })
        .collect()
}

/// Import one node: fold it when its inputs are constants, else the
/// registry's importer for its op.
fn import_node(
    ctx: &mut Ctx,
    reg: &HashMap<&'static str, crate::ops::Importer>,
    node: &Node,
) -> Result<(), OnnxError> {
    if fold_node(ctx, node)? {
        return Ok(());
    }
    let f = reg.get(node.op.as_str()).ok_or_else(|| {
        node.err("graft evaluates this op only on constants; here an input is computed")
    })?;
    f(ctx, node)
}

/// Evaluate a node whose inputs are all constants (see [`crate::fold`]) and
/// bind its outputs; false when it is not such a node.
fn fold_node(ctx: &mut Ctx, node: &Node) -> Result<bool, OnnxError> {
    let mut ins = Vec::with_capacity(node.inputs().len());
    for name in node.inputs() {
        if name.is_empty() {
            ins.push(None);
            continue;
        }
        match ctx.values.get(name) {
            Some(Value::Const(c)) => ins.push(Some(c.clone())),
            _ => return Ok(false),
        }
    }
    if ins.is_empty() {
        return Ok(false);
    }
    let Some(outs) = crate::fold::fold(node, &ins) else {
        return Ok(false);
    };
    let outs = outs?;
    fold_alt(ctx, node, ins, &outs);
    for (name, c) in node.proto.output.iter().zip(outs) {
        ctx.values.insert(name.clone(), Value::Const(c));
    }
    Ok(true)
}

/// The node's outputs at batch size 2 ([`Ctx::alts`]), when an input has
/// a value there that differs. Shape arithmetic that cannot be evaluated
/// at batch size 2 leaves no alternative (the reshape reading it then
/// keeps the batch where batch size 1 puts it).
fn fold_alt(ctx: &mut Ctx, node: &Node, mut ins: Vec<Option<Const>>, outs: &[Const]) {
    let mut any = false;
    for (slot, name) in ins.iter_mut().zip(node.inputs()) {
        if let Some(a) = ctx.alts.get(name) {
            *slot = Some(a.clone());
            any = true;
        }
    }
    if !any {
        return;
    }
    let Some(Ok(alts)) = crate::fold::fold(node, &ins) else {
        return;
    };
    for ((name, a), primary) in node.proto.output.iter().zip(alts).zip(outs) {
        if &a != primary {
            ctx.alts.insert(name.clone(), a);
        }
    }
}

/// Rank-3 graph inputs that reach a recurrent layer's input through
/// transposes alone: the input axes of batch, features and time.
fn sequence_inputs(g: &crate::proto::GraphProto) -> HashMap<String, Vec<usize>> {
    let mut found = HashMap::new();
    for vi in &g.input {
        let name = vi.name.clone().unwrap_or_default();
        let mut cur = name.clone();
        // perm[i]: the input axis that axis i of `cur` comes from.
        let mut perm = vec![0usize, 1, 2];
        for _ in 0..8 {
            // Shape nodes only read the dimensions (exporters compute the
            // initial state from them); they do not consume the layout.
            let readers: Vec<&NodeProto> = g
                .node
                .iter()
                .filter(|n| n.input.contains(&cur) && n.op_type.as_deref() != Some("Shape"))
                .collect();
            let [n] = readers.as_slice() else { break };
            match n.op_type.as_deref() {
                Some("Transpose") => {
                    let p: Vec<usize> = n
                        .attribute
                        .iter()
                        .find(|a| a.name.as_deref() == Some("perm"))
                        .map(|a| a.ints.iter().map(|&x| x.max(0) as usize).collect())
                        .unwrap_or_else(|| vec![2, 1, 0]);
                    if p.len() != 3 || p.iter().any(|&x| x > 2) {
                        break;
                    }
                    perm = p.iter().map(|&i| perm[i]).collect();
                    cur = n.output.first().cloned().unwrap_or_default();
                }
                Some("LSTM" | "GRU" | "RNN") if n.input.first() == Some(&cur) => {
                    let layout = n
                        .attribute
                        .iter()
                        .find(|a| a.name.as_deref() == Some("layout"))
                        .and_then(|a| a.i)
                        .unwrap_or(0);
                    let (t, b) = if layout == 0 { (0, 1) } else { (1, 0) };
                    found.insert(name.clone(), vec![perm[b], perm[2], perm[t]]);
                    break;
                }
                _ => break,
            }
        }
    }
    found
}

/// The most elements a graph input, or any value an op computes from it,
/// may hold (2^36, a quarter of a terabyte of floats): shapes stay far
/// from overflowing, and a file declaring more (a huge input, pads, an
/// expansion) is refused at import, not when a forward pass allocates.
pub const MAX_INPUT_ELEMENTS: u64 = 1 << 36;

/// True when a graph input's first dimension is symbolic or missing.
fn symbolic_batch(vi: &crate::proto::ValueInfoProto) -> bool {
    use crate::proto::tensor_shape_proto::dimension::Value as D;
    use crate::proto::type_proto::Value as T;
    let Some(Some(T::TensorType(t))) = vi.r#type.as_ref().map(|t| t.value.as_ref()) else {
        return false;
    };
    let first = t.shape.as_ref().and_then(|s| s.dim.first());
    !matches!(first.and_then(|d| d.value.as_ref()), Some(D::DimValue(v)) if *v > 0)
}

/// A graph input's shape with symbolic dimensions as 1.
fn input_shape(vi: &crate::proto::ValueInfoProto) -> Option<Vec<usize>> {
    use crate::proto::tensor_shape_proto::dimension::Value as D;
    use crate::proto::type_proto::Value as T;
    let Some(T::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let dims: Vec<usize> = t
        .shape
        .as_ref()?
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(D::DimValue(v)) if *v > 0 => *v as usize,
            _ => 1,
        })
        .collect();
    (dims.len() >= 2).then_some(dims)
}
