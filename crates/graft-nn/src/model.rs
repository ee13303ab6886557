//! A model: the core graph plus one layer (op and parameters) per vertex.
//! Every size change goes through the core (a plan or a patch) and is then
//! replayed on the parameters, so graph and tensors never disagree.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use graft_core::{
    plan_or_relax, Applied, Committed, Graph, NewVertex, Patch, Planned, Request, Reroute,
    VertexChange, VertexId,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};

use crate::error::{NnError, Result};
use crate::layers::Vars;
use crate::op::{FanIn, Fill, Groups, Op};
use crate::param::Param;
use crate::surgery::{layout, select_axis, select_net2net, selections, Growth, Side};

/// One vertex's computation: its op and its parameters (buffers such as a
/// batch norm's running statistics included). Cloning copies the
/// parameters: a cloned model is independent of the original.
#[derive(Debug)]
pub struct Layer {
    /// What it computes.
    pub op: Op,
    pub(crate) params: Vars,
}

impl Clone for Layer {
    fn clone(&self) -> Self {
        let params = self
            .params
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.deep_copy().expect("copying a CPU or device tensor"),
                )
            })
            .collect();
        Layer {
            op: self.op.clone(),
            params,
        }
    }
}

impl Layer {
    /// The same op and the same parameter variables (shared storage): the
    /// draft that a mutation builds before it replaces the changed ones.
    fn shallow(&self) -> Layer {
        Layer {
            op: self.op.clone(),
            params: self.params.clone(),
        }
    }

    /// Parameter and buffer names.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.keys().map(String::as_str)
    }
}

/// How an inserted layer's parameters start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Init {
    /// Random, as a freshly built layer.
    #[default]
    Default,
    /// The identity (dense: unit matrix; convolution: Dirac kernel), so that
    /// inserting it keeps the function. Needs nout = nin and, for a
    /// convolution, stride 1 and "same" padding.
    Identity,
    /// All weights and biases 0 (a residual branch that starts switched off).
    Zero,
}

/// A layer to be created by an insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLayer {
    /// Unique vertex name.
    pub name: String,
    /// Its op.
    pub op: Op,
    /// Its nout, for ops that choose their size (`None`: the size of the
    /// vertex it follows).
    pub nout: Option<usize>,
    /// How its parameters start.
    pub init: Init,
}

impl NewLayer {
    /// A new layer.
    pub fn new(name: &str, op: Op, init: Init) -> Self {
        Self {
            name: name.to_string(),
            op,
            nout: None,
            init,
        }
    }
    /// With an explicit nout.
    pub fn with_nout(mut self, n: usize) -> Self {
        self.nout = Some(n);
        self
    }

    /// The core's view of it, after a vertex of size `n`.
    pub fn vertex(&self, n: usize) -> Result<NewVertex> {
        let nout = self.nout.unwrap_or(n);
        let d = self.op.declare(&[n], n).map_err(|reason| NnError::Layer {
            vertex: self.name.clone(),
            reason,
        })?;
        Ok(NewVertex {
            name: self.name.clone(),
            kind: d.kind,
            nout: Some(nout),
            constraints: d.constraints,
        })
    }
}

/// A parameter selection made by a mutation, for optimiser state to follow:
/// (axis, index list, gate blocks) applied in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEdit {
    /// The vertex.
    pub vertex: VertexId,
    /// The parameter.
    pub param: String,
    /// Selections along axes, in order.
    pub selections: Vec<(usize, Vec<graft_core::Neuron>, usize)>,
}

/// What a mutation of a model did: the core's report and the parameter
/// selections (for optimiser state).
#[derive(Debug, Clone)]
pub struct Mutated {
    /// The core's report.
    pub committed: Committed,
    /// Every parameter selection, in order.
    pub edits: Vec<ParamEdit>,
}

/// When masked dense layers use the sparse kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparseKernel {
    /// On the CPU in f32 when the mask's density is below
    /// [`crate::SPARSE_BELOW`].
    #[default]
    Auto,
    /// Never (the dense product with the mask multiplied in).
    Never,
    /// Whenever possible (CPU, f32).
    Always,
}

/// Mask patterns of masked dense layers, built on first use. Cleared by
/// every change of a mask that goes through the model (`set_param`, plans,
/// patches); a clone starts empty.
#[derive(Debug, Default)]
struct PatternCache(
    std::sync::Mutex<
        std::collections::HashMap<VertexId, std::sync::Arc<crate::layers::sparse::Csr>>,
    >,
);

impl Clone for PatternCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// The most elements one parameter tensor may have (2^31: 8 GiB of
/// floats, above the largest embedding of today's language models); a layer
/// may hold twice that. A size read from a file asking for more is refused
/// before anything is allocated.
pub const MAX_PARAM_ELEMENTS: usize = 1 << 31;

/// A graph with real layers.
#[derive(Debug, Clone)]
pub struct Model {
    graph: Graph,
    layers: BTreeMap<VertexId, Layer>,
    device: Device,
    dtype: DType,
    rng: StdRng,
    growth: Growth,
    kernel: SparseKernel,
    patterns: PatternCache,
    /// The batch size the model's sizes were read at (a file's fixed
    /// batch, 1 for a symbolic one): see [`Model::read_batch`].
    read_batch: usize,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// An empty model on the CPU, f32, seed 0.
    pub fn new() -> Self {
        Self::with(Device::Cpu, DType::F32, 0)
    }

    /// An empty model on `device` with parameters of `dtype`; `seed` drives
    /// every random initialisation and new-neuron fill.
    pub fn with(device: Device, dtype: DType, seed: u64) -> Self {
        Self {
            graph: Graph::new(),
            layers: BTreeMap::new(),
            device,
            dtype,
            rng: StdRng::seed_from_u64(seed),
            growth: Growth::Default,
            kernel: SparseKernel::Auto,
            patterns: PatternCache::default(),
            read_batch: 1,
        }
    }

    /// The batch size the model was read at: an imported file's fixed
    /// batch size, 1 for a symbolic one or a model built in graft. Where
    /// the graph holds that size (a transpose moved the batch before a
    /// reshape, see [`crate::Executor::run`]) larger batches are evaluated
    /// in groups of this many samples.
    pub fn read_batch(&self) -> usize {
        self.read_batch
    }

    /// Set [`Model::read_batch`] (at least 1).
    pub fn set_read_batch(&mut self, n: usize) {
        self.read_batch = n.max(1);
    }

    /// Choose when masked dense layers use the sparse kernel.
    pub fn set_sparse_kernel(&mut self, k: SparseKernel) {
        self.kernel = k;
    }

    /// The mask pattern of masked dense vertex `v` when the sparse kernel
    /// applies to it now.
    pub(crate) fn sparse_pattern(
        &self,
        v: VertexId,
    ) -> Option<std::sync::Arc<crate::layers::sparse::Csr>> {
        if self.kernel == SparseKernel::Never || !self.device.is_cpu() || self.dtype != DType::F32 {
            return None;
        }
        let layer = self.layers.get(&v)?;
        if !matches!(layer.op, Op::MaskedDense { .. }) {
            return None;
        }
        let mut cache = self.patterns.0.lock().ok()?;
        let csr = match cache.get(&v) {
            Some(c) => c.clone(),
            None => {
                let m = layer.params.get("mask")?.tensor();
                let (r, c) = m.dims2().ok()?;
                let vals: Vec<f32> = m.flatten_all().ok()?.to_vec1().ok()?;
                let csr = std::sync::Arc::new(crate::layers::sparse::Csr::from_mask(&vals, r, c));
                cache.insert(v, csr.clone());
                csr
            }
        };
        (self.kernel == SparseKernel::Always || csr.density() < crate::layers::sparse::SPARSE_BELOW)
            .then_some(csr)
    }

    fn forget_patterns(&self) {
        if let Ok(mut c) = self.patterns.0.lock() {
            c.clear();
        }
    }

    /// A model from a graph and its layers (every vertex needs one),
    /// checked like any committed change.
    pub(crate) fn from_parts(
        graph: Graph,
        layers: Vec<(VertexId, Layer)>,
        dtype: DType,
    ) -> Result<Model> {
        let mut m = Model::with(Device::Cpu, dtype, 0);
        let rng = m.rng.clone();
        m.commit_state(graph, layers.into_iter().collect(), rng)?;
        Ok(m)
    }

    /// How new output neurons get their weights from now on.
    pub fn set_growth(&mut self, g: Growth) {
        self.growth = g;
    }

    /// The size graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }
    /// The device parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The parameters' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    /// The graph's revision.
    pub fn revision(&self) -> u64 {
        self.graph.revision()
    }
    /// The layer of a vertex.
    pub fn layer(&self, v: VertexId) -> Option<&Layer> {
        self.layers.get(&v)
    }
    /// Look a vertex up by name.
    ///
    /// # Errors
    /// Unknown name.
    pub fn id(&self, name: &str) -> Result<VertexId> {
        Ok(self.graph.id(name)?)
    }

    /// Add a core constraint to a vertex (the graph's revision moves).
    pub(crate) fn add_constraint(&mut self, v: VertexId, c: graft_core::Constraint) -> Result<()> {
        let mut g = self.graph.clone();
        g.add_constraint(v, c)?;
        g.check()?;
        self.graph = g;
        Ok(())
    }

    /// A graph input of `size` features or channels.
    ///
    /// # Errors
    /// Duplicate name, size 0.
    pub fn input(&mut self, name: &str, size: usize) -> Result<VertexId> {
        self.add(name, Op::Input, &[], Some(size))
    }

    /// Add a layer reading `inputs`. `nout` is required for ops that choose
    /// their size (dense, convolutions, recurrent, inputs) and derived
    /// otherwise. Parameters start random (seeded). All or nothing.
    ///
    /// # Errors
    /// Duplicate name, unknown input, sizes that break the op's rule.
    pub fn add(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[VertexId],
        nout: Option<usize>,
    ) -> Result<VertexId> {
        self.add_with_init(name, op, inputs, nout, Init::Default)
    }

    /// [`Model::add`] with its parameters zero (norms' scales one) instead
    /// of random: for an importer that sets every parameter from a file
    /// next. The zeros cost no memory until written (they are mapped on
    /// demand), so a large model is not initialised twice.
    ///
    /// # Errors
    /// As [`Model::add`].
    pub fn add_zeroed(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[VertexId],
        nout: Option<usize>,
    ) -> Result<VertexId> {
        self.add_with_init(name, op, inputs, nout, Init::Zero)
    }

    fn add_with_init(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[VertexId],
        nout: Option<usize>,
        init: Init,
    ) -> Result<VertexId> {
        let nin: Vec<usize> = inputs
            .iter()
            .map(|&i| self.graph.nout(i))
            .collect::<std::result::Result<_, _>>()?;
        let layer_err = |reason: String| NnError::Layer {
            vertex: name.to_string(),
            reason,
        };
        let nout = match (op.chooses_size(), &op, nout) {
            (_, Op::Reshape { shape }, _) => shape.first().copied().unwrap_or(0),
            (true, _, Some(n)) => n,
            (true, _, None) => return Err(layer_err("needs an output size".into())),
            (false, Op::Flatten { spatial }, _) => spatial
                .checked_mul(nin.first().copied().unwrap_or(0))
                .ok_or_else(|| layer_err(format!("{spatial} x {nin:?} neurons overflow")))?,
            (false, Op::Concat, _) => nin
                .iter()
                .try_fold(0usize, |a, &n| a.checked_add(n))
                .ok_or_else(|| {
                    layer_err(format!("a concatenation of {nin:?} neurons overflows"))
                })?,
            (false, Op::Reduce(r), _) if r.over_neurons() => 1,
            (false, Op::Slice(p), _) if p.cuts_neurons() => p.len,
            (false, Op::Pad(p), _) if p.pads_neurons() => {
                let extra: usize = p
                    .pads
                    .iter()
                    .filter(|&&(a, _, _)| Some(a) == p.neurons)
                    .map(|&(_, b, e)| b + e)
                    .sum();
                nin.first().copied().unwrap_or(0) + extra
            }
            (false, Op::Join(j), _) if j.stacks() => nin.iter().sum(),
            (false, Op::Elementwise(e), given) if e.chooses_size(nin.len()) => {
                given.ok_or_else(|| layer_err("needs an output size".into()))?
            }
            (false, Op::Elementwise(e), _) => (0..nin.len())
                .find(|p| !e.free.contains(p))
                .map_or(0, |p| nin[p]),
            (false, Op::Cond { .. } | Op::Gate { .. } | Op::Moe { .. }, _) => {
                nin.get(1).copied().unwrap_or(0)
            }
            (false, _, _) => nin.first().copied().unwrap_or(0),
        };
        let d = op.declare(&nin, nout).map_err(layer_err)?;
        // Parameters first (they need no graph), then the vertex with its
        // constraints in one all-or-nothing step: no copy of the graph, so
        // adding n vertices costs O(n), not O(n²).
        let mut rng = self.rng.clone();
        let params = self.init_params(&mut rng, &op, &nin, nout, init, name)?;
        let id = self
            .graph
            .add_vertex_with(name, d.kind, inputs, Some(nout), &d.constraints)?;
        self.rng = rng;
        self.layers.insert(id, Layer { op, params });
        Ok(id)
    }

    fn init_params(
        &self,
        rng: &mut StdRng,
        op: &Op,
        nin: &[usize],
        nout: usize,
        init: Init,
        name: &str,
    ) -> Result<Vars> {
        let is_norm = matches!(
            op,
            Op::BatchNorm { .. }
                | Op::LayerNormLast(_)
                | Op::LayerNorm { .. }
                | Op::GroupNorm { .. }
                | Op::InstanceNorm { .. }
        );
        let mut params = Vars::new();
        params_fit(op, nin, nout, name)?;
        let specs = op.params(nin, nout);
        for s in specs {
            let n: usize = s.shape.iter().product();
            let fan_in: usize = match op.fan_in() {
                FanIn::Hidden => nout,
                FanIn::Weight => {
                    let w = op.params(nin, nout);
                    w[0].shape.iter().skip(1).product::<usize>().max(1)
                }
                FanIn::Own => s.shape.iter().skip(1).product::<usize>().max(1),
            };
            let bound = 1.0 / (fan_in as f64).sqrt();
            let constant = match s.new_out {
                Fill::Value(v) if is_norm || !s.trainable || s.name == "mask_logits" => Some(v),
                _ => None,
            };
            if let (None, Init::Zero) = (constant, init) {
                // Straight in the model's type, untouched until written
                // (`Var::from_tensor` would copy the zeros, touching every
                // page).
                let var = Var::zeros(s.shape.clone(), self.dtype, &self.device)?;
                params.insert(s.name.to_string(), var.into());
                continue;
            }
            let vals: Vec<f64> = match (constant, init) {
                (Some(v), _) => vec![v; n],
                (None, Init::Zero) => vec![0.0; n],
                (None, Init::Identity) => {
                    identity(op, &s.shape, &s.name).map_err(|reason| NnError::Layer {
                        vertex: name.to_string(),
                        reason,
                    })?
                }
                (None, Init::Default) => {
                    let d = Uniform::new_inclusive(-bound, bound).expect("valid bound");
                    (0..n).map(|_| d.sample(rng)).collect()
                }
            };
            let t = Tensor::from_vec(vals, s.shape.clone(), &self.device)?.to_dtype(self.dtype)?;
            params.insert(s.name.to_string(), Var::from_tensor(&t)?.into());
        }
        Ok(params)
    }

    /// The value of a parameter or buffer.
    ///
    /// # Errors
    /// Unknown vertex or parameter.
    pub fn param(&self, v: VertexId, name: &str) -> Result<Tensor> {
        self.var(v, name).map(|x| x.as_tensor().clone())
    }

    pub(crate) fn var(&self, v: VertexId, name: &str) -> Result<&Var> {
        self.param_of(v, name).map(Param::var)
    }

    /// A parameter without reading its values (see [`Param`]).
    ///
    /// # Errors
    /// Unknown vertex or parameter.
    pub fn param_of(&self, v: VertexId, name: &str) -> Result<&Param> {
        let l = self
            .layers
            .get(&v)
            .ok_or(graft_core::GraphError::UnknownId {
                id: v.index() as u32,
            })?;
        l.params.get(name).ok_or_else(|| NnError::Layer {
            vertex: self.graph.name(v),
            reason: format!("no parameter `{name}`"),
        })
    }

    /// Overwrite a parameter (same shape; converted to the model's dtype).
    ///
    /// # Errors
    /// Unknown vertex or parameter, or a different shape.
    pub fn set_param(&mut self, v: VertexId, name: &str, value: &Tensor) -> Result<()> {
        let var = self.var(v, name)?;
        if var.dims() != value.dims() {
            return Err(NnError::Layer {
                vertex: self.graph.name(v),
                reason: format!(
                    "parameter `{name}` has shape {:?}, got {:?}",
                    var.dims(),
                    value.dims()
                ),
            });
        }
        var.set(&value.to_dtype(self.dtype)?.to_device(&self.device)?)?;
        if name == "mask" {
            self.forget_patterns();
        }
        Ok(())
    }

    /// Replace a parameter by `vals` (same shape), taking the buffer as the
    /// parameter's storage when the model holds f32 on the CPU (no copy:
    /// how an importer hands a file's weights over), converting it
    /// otherwise.
    ///
    /// # Errors
    /// Unknown vertex or parameter, or a different shape.
    pub fn put_param(
        &mut self,
        v: VertexId,
        name: &str,
        dims: &[usize],
        vals: Vec<f32>,
    ) -> Result<()> {
        let old = self.var(v, name)?;
        if old.dims() != dims || vals.len() != dims.iter().product::<usize>() {
            return Err(NnError::Layer {
                vertex: self.graph.name(v),
                reason: format!(
                    "parameter `{name}` has shape {:?}, got {dims:?} ({} values)",
                    old.dims(),
                    vals.len()
                ),
            });
        }
        let var = if self.dtype == DType::F32 && self.device.is_cpu() {
            Var::from_vec(vals, dims, &self.device)?
        } else {
            let t = Tensor::from_vec(vals, dims, &Device::Cpu)?;
            Var::from_tensor(&t.to_dtype(self.dtype)?.to_device(&self.device)?)?
        };
        if let Some(l) = self.layers.get_mut(&v) {
            l.params.insert(name.to_string(), var.into());
        }
        if name == "mask" {
            self.forget_patterns();
        }
        Ok(())
    }

    /// Replace a parameter (same shape) by one whose values `backing` gives
    /// when they are first needed ([`Param::backed`]; read at once when the
    /// model does not hold f32 on the CPU).
    ///
    /// # Errors
    /// Unknown vertex or parameter, or a different shape.
    pub fn put_backed_param(
        &mut self,
        v: VertexId,
        name: &str,
        dims: &[usize],
        backing: std::sync::Arc<dyn crate::param::Backing>,
    ) -> Result<()> {
        if self.dtype != DType::F32 || !self.device.is_cpu() {
            let mut vals = vec![0f32; dims.iter().product()];
            backing.read(0, &mut vals);
            return self.put_param(v, name, dims, vals);
        }
        let old = self.param_of(v, name)?;
        if old.dims() != dims {
            return Err(NnError::Layer {
                vertex: self.graph.name(v),
                reason: format!(
                    "parameter `{name}` has shape {:?}, got {dims:?}",
                    old.dims()
                ),
            });
        }
        if let Some(l) = self.layers.get_mut(&v) {
            l.params
                .insert(name.to_string(), Param::backed(dims, backing));
        }
        if name == "mask" {
            self.forget_patterns();
        }
        Ok(())
    }

    /// Every parameter's shape: (vertex, name, dims, trainable), in vertex
    /// order, without reading any values.
    pub fn param_shapes(&self) -> Vec<(VertexId, String, Vec<usize>, bool)> {
        let mut out = Vec::new();
        for (&v, l) in &self.layers {
            let trainable: Vec<_> =
                l.op.params(&[1], 1)
                    .into_iter()
                    .filter(|s| s.trainable)
                    .map(|s| s.name)
                    .collect();
            for (n, p) in &l.params {
                let t = trainable.iter().any(|s| s == n);
                out.push((v, n.clone(), p.dims().to_vec(), t));
            }
        }
        out
    }

    /// Every trainable parameter: (vertex, name, variable), in vertex order.
    pub fn trainable(&self) -> Vec<(VertexId, String, Var)> {
        let mut out = Vec::new();
        for (&v, l) in &self.layers {
            for s in l.op.params(&[1], 1) {
                if s.trainable {
                    if let Some(x) = l.params.get(&s.name) {
                        out.push((v, s.name.to_string(), x.var().clone()));
                    }
                }
            }
        }
        out
    }

    /// Every parameter and buffer: (vertex, name, variable).
    pub fn all_params(&self) -> Vec<(VertexId, String, Var)> {
        let mut out = Vec::new();
        for (&v, l) in &self.layers {
            for (n, x) in &l.params {
                out.push((v, n.clone(), x.var().clone()));
            }
        }
        out
    }

    /// Turn every dense layer and 2-D convolution into its masked form
    /// ([`Op::MaskedDense`], [`Op::MaskedConv2d`]) with a mask of ones, so
    /// the function is unchanged and unstructured pruning can start.
    /// Returns the vertices changed, in id order; layers already masked are
    /// left as they are.
    ///
    /// # Errors
    /// Tensor errors (the model is unchanged).
    pub fn mask_weights(&mut self) -> Result<Vec<VertexId>> {
        let mut layers: BTreeMap<VertexId, Layer> =
            self.layers.iter().map(|(&v, l)| (v, l.shallow())).collect();
        let mut changed = Vec::new();
        for (&v, layer) in layers.iter_mut() {
            let Some(op) = layer.op.masked_form() else {
                continue;
            };
            let vx = self.graph.vertex(v)?;
            for s in op.params(vx.nin(), vx.nout()) {
                if s.name == "mask" {
                    let t = Tensor::ones(s.shape.clone(), self.dtype, &self.device)?;
                    layer
                        .params
                        .insert(s.name.to_string(), Var::from_tensor(&t)?.into());
                }
            }
            layer.op = op;
            changed.push(v);
        }
        let rng = self.rng.clone();
        self.commit_state(self.graph.clone(), layers, rng)?;
        Ok(changed)
    }

    pub(crate) fn layers(&self) -> &BTreeMap<VertexId, Layer> {
        &self.layers
    }

    /// Plan a size change with the default chain and apply it to the graph
    /// and the parameters.
    ///
    /// # Errors
    /// As the planner; the model is unchanged on error.
    pub fn change_sizes(&mut self, req: &Request) -> Result<(Planned, Vec<ParamEdit>)> {
        let planned = plan_or_relax(&self.graph, req)?.proven(&self.graph, req)?;
        let edits = self.apply_plan(&planned.plan)?;
        Ok((planned, edits))
    }

    /// Apply a plan to the graph and the parameters. All or nothing.
    ///
    /// # Errors
    /// A stale plan, or parameters that do not fit it.
    pub fn apply_plan(&mut self, plan: &graft_core::Plan) -> Result<Vec<ParamEdit>> {
        let mut g = self.graph.clone();
        plan.apply(&mut g)?;
        for c in &plan.changes {
            if let (Some(l), Ok(v)) = (self.layers.get(&c.vertex), g.vertex(c.vertex)) {
                params_fit(&l.op, v.nin(), v.nout(), v.name())?;
            }
        }
        let mut layers: BTreeMap<VertexId, Layer> =
            self.layers.iter().map(|(k, l)| (*k, l.shallow())).collect();
        let mut rng = self.rng.clone();
        let edits = change_layers(&mut layers, &g, &plan.changes, self.growth, &mut rng)?;
        self.commit_state(g, layers, rng)?;
        Ok(edits)
    }

    /// Apply a core patch to the graph and the parameters. Inserts create
    /// their layers from `new_layers` (matched by name). All or nothing.
    ///
    /// # Errors
    /// A refused patch, an insert without a matching layer, parameters that
    /// cannot follow.
    pub fn commit(&mut self, patch: &Patch, new_layers: &[NewLayer]) -> Result<Mutated> {
        let (g, done) = self.graph.dry_run(patch)?;
        let mut layers: BTreeMap<VertexId, Layer> =
            self.layers.iter().map(|(k, l)| (*k, l.shallow())).collect();
        let mut rng = self.rng.clone();
        let mut edits = Vec::new();
        for step in &done.steps {
            match step {
                Applied::Resize { plan, .. } => {
                    for c in &plan.changes {
                        change_layer(&mut layers, &g, c, self.growth, &mut rng, &mut edits)?;
                    }
                }
                Applied::EdgeAdded {
                    follow,
                    to,
                    position,
                    ..
                } => {
                    follow_arity(&mut layers, &g, *to, *position, true)?;
                    for c in follow {
                        change_layer(&mut layers, &g, c, self.growth, &mut rng, &mut edits)?;
                    }
                }
                Applied::EdgeRemoved {
                    follow,
                    to,
                    position,
                    ..
                } => {
                    follow_arity(&mut layers, &g, *to, *position, false)?;
                    for c in follow {
                        change_layer(&mut layers, &g, c, self.growth, &mut rng, &mut edits)?;
                    }
                }
                Applied::Inserted {
                    vertex, name, size, ..
                } => {
                    let nl = new_layers.iter().find(|l| &l.name == name).ok_or_else(|| {
                        NnError::Layer {
                            vertex: name.clone(),
                            reason: "inserted without a layer (no NewLayer of that name)".into(),
                        }
                    })?;
                    let params =
                        self.init_params(&mut rng, &nl.op, &[*size], *size, nl.init, name)?;
                    layers.insert(
                        *vertex,
                        Layer {
                            op: nl.op.clone(),
                            params,
                        },
                    );
                }
                Applied::Removed { vertex, .. } => {
                    layers.remove(vertex);
                }
            }
        }
        self.commit_state(g, layers, rng)?;
        Ok(Mutated {
            committed: done,
            edits,
        })
    }

    /// Insert a layer after `after`, taking over the consumers `reroute`
    /// chooses.
    ///
    /// # Errors
    /// As [`Model::commit`].
    pub fn insert_after(
        &mut self,
        after: VertexId,
        layer: NewLayer,
        reroute: Reroute,
    ) -> Result<Mutated> {
        let n = self.graph.nout(after)?;
        let vertex = layer.vertex(n)?;
        let patch = Patch::new().push(graft_core::Edit::Insert {
            after: after.into(),
            vertex,
            reroute,
            utility: Default::default(),
        });
        self.commit(&patch, &[layer])
    }

    /// Check every layer against the graph, then take the new state.
    fn commit_state(
        &mut self,
        g: Graph,
        layers: BTreeMap<VertexId, Layer>,
        rng: StdRng,
    ) -> Result<()> {
        for v in g.ids() {
            let vx = g.vertex(v)?;
            let l = layers.get(&v).ok_or_else(|| NnError::Layer {
                vertex: vx.name().to_string(),
                reason: "no layer".into(),
            })?;
            for s in l.op.params(vx.nin(), vx.nout()) {
                let have = l.params.get(&s.name).map(|x| x.dims().to_vec());
                let want = s.shape.clone();
                if have.as_deref() != Some(&want[..]) {
                    return Err(NnError::Layer {
                        vertex: vx.name().to_string(),
                        reason: format!(
                            "parameter `{}` has shape {have:?}, the graph needs {want:?}",
                            s.name
                        ),
                    });
                }
            }
            if let Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) = &l.op {
                if let Groups::Fixed(k) = c.groups {
                    if vx.nin()[0] % k != 0 {
                        return Err(NnError::Layer {
                            vertex: vx.name().to_string(),
                            reason: format!("nin {} is not a multiple of {k} groups", vx.nin()[0]),
                        });
                    }
                }
            }
        }
        self.graph = g;
        self.layers = layers;
        self.rng = rng;
        self.forget_patterns();
        Ok(())
    }
}

/// Apply one vertex change to its layer's parameters.
/// Refuse, before anything is allocated, parameters of `op` at these
/// sizes above [`MAX_PARAM_ELEMENTS`] per tensor or twice that per layer
/// (sizes come from files and from growth requests).
fn params_fit(op: &Op, nin: &[usize], nout: usize, name: &str) -> Result<()> {
    let mut total = 0usize;
    for s in op.params(nin, nout) {
        let n = s.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        match n.filter(|&n| n <= MAX_PARAM_ELEMENTS) {
            Some(n) => total = total.saturating_add(n),
            None => {
                return Err(NnError::Layer {
                    vertex: name.to_string(),
                    reason: format!(
                        "parameter `{}` of shape {:?} is larger than graft allocates ({MAX_PARAM_ELEMENTS} elements)",
                        s.name, s.shape
                    ),
                })
            }
        }
    }
    if total > 2 * MAX_PARAM_ELEMENTS {
        return Err(NnError::Layer {
            vertex: name.to_string(),
            reason: format!(
                "{total} parameter elements, more than graft allocates for one layer ({})",
                2 * MAX_PARAM_ELEMENTS
            ),
        });
    }
    Ok(())
}

/// Whether `c`'s new output neurons must start at zero: new query
/// dimensions (`feeds_query`), which read the other layers' ops.
fn starts_quiet(layers: &BTreeMap<VertexId, Layer>, g: &Graph, c: &VertexChange) -> bool {
    let grows = c
        .outs
        .as_ref()
        .is_some_and(|l| l.contains(&graft_core::Neuron::New));
    grows && {
        let op_of = |u: VertexId| layers.get(&u).map(|l| l.op.clone());
        crate::layers::attention::feeds_query(g, &op_of, c.vertex)
    }
}

/// Every change of a plan applied to its layer, the layers in parallel
/// (rayon): each layer's new random entries come from a stream of its
/// own (one seed drawn from `rng`, mixed with the vertex), so one thread
/// or many give the same bytes. The edits come in the plan's order.
fn change_layers(
    layers: &mut BTreeMap<VertexId, Layer>,
    g: &Graph,
    changes: &[VertexChange],
    growth: Growth,
    rng: &mut StdRng,
) -> Result<Vec<ParamEdit>> {
    use rand::{Rng, SeedableRng};
    use rayon::prelude::*;
    let base: u64 = rng.random();
    // Phase 1, in order: what each change reads of the other layers.
    let quiet: Vec<bool> = changes.iter().map(|c| starts_quiet(layers, g, c)).collect();
    // Phase 2, in parallel: each changed layer on its own.
    let work: Vec<(usize, Layer)> = changes
        .iter()
        .enumerate()
        .filter_map(|(k, c)| layers.remove(&c.vertex).map(|l| (k, l)))
        .collect();
    let done: Vec<Result<(usize, Layer, Vec<ParamEdit>)>> = work
        .into_par_iter()
        .map(|(k, mut layer)| {
            let c = &changes[k];
            let mix = (c.vertex.index() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut r = StdRng::seed_from_u64(base ^ mix);
            let mut edits = Vec::new();
            change_one(&mut layer, g, c, quiet[k], growth, &mut r, &mut edits)?;
            Ok((k, layer, edits))
        })
        .collect();
    // Phase 3: the layers back, the edits in the plan's order.
    let mut edits = Vec::new();
    let mut first_err = None;
    for r in done {
        match r {
            Ok((k, layer, e)) => {
                layers.insert(changes[k].vertex, layer);
                edits.extend(e);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(edits),
    }
}

fn change_layer(
    layers: &mut BTreeMap<VertexId, Layer>,
    g: &Graph,
    c: &VertexChange,
    growth: Growth,
    rng: &mut StdRng,
    edits: &mut Vec<ParamEdit>,
) -> Result<()> {
    let quiet = starts_quiet(layers, g, c);
    let Some(layer) = layers.get_mut(&c.vertex) else {
        return Ok(());
    };
    change_one(layer, g, c, quiet, growth, rng, edits)
}

/// One change of a plan on its layer: the op follows the vertex, and every
/// parameter is re-laid along its roles (kept entries, new ones filled).
fn change_one(
    layer: &mut Layer,
    g: &Graph,
    c: &VertexChange,
    quiet: bool,
    growth: Growth,
    rng: &mut StdRng,
    edits: &mut Vec<ParamEdit>,
) -> Result<()> {
    if let Ok(v) = g.vertex(c.vertex) {
        layer.op.follow(v);
    }
    let names: Vec<String> = layer.params.keys().cloned().collect();
    for name in names {
        let Some((roles, fill)) = layout(&layer.op, &name) else {
            continue;
        };
        let sels = selections(&roles, fill, c);
        if sels.is_empty() {
            continue;
        }
        let param = &layer.params[&name];
        if let Some(picks) = pruned_picks(param, &sels, quiet, growth) {
            // Pruning alone: every axis in one pass, no intermediate copy,
            // read from where the values lie (a file-backed parameter is
            // not loaded).
            let kept = param.keep_axes(&picks)?;
            layer.params.insert(name.clone(), kept.into());
            edits.push(ParamEdit {
                vertex: c.vertex,
                param: name,
                selections: sels
                    .iter()
                    .map(|&(axis, list, gates, _, _)| (axis, list.to_vec(), gates))
                    .collect(),
            });
            continue;
        }
        let mut t = param.tensor().clone();
        for &(axis, list, gates, fill, side) in &sels {
            let r = match (growth, side) {
                // New query dimensions start at zero (`feeds_query`).
                (_, Some(Side::Out)) if quiet => {
                    select_axis(&t, axis, list, gates, Fill::Value(0.0), 0.0, rng)
                }
                (Growth::Net2Net { seed }, Some(side)) => {
                    select_net2net(&t, axis, list, gates, side, seed)
                }
                _ => select_axis(&t, axis, list, gates, fill, growth.std(), rng),
            };
            t = r.map_err(|e| NnError::Layer {
                vertex: g.name(c.vertex),
                reason: format!("parameter `{name}`: {e}"),
            })?;
        }
        layer
            .params
            .insert(name.clone(), Var::from_tensor(&t)?.into());
        edits.push(ParamEdit {
            vertex: c.vertex,
            param: name,
            selections: sels
                .iter()
                .map(|&(a, l, g, _, _)| (a, l.to_vec(), g))
                .collect(),
        });
    }
    Ok(())
}

/// The entries a parameter keeps along every axis of `sels`, when pruning
/// is all they do (no new entries, each axis once, f32 on the CPU); `None`
/// otherwise (then the selections run one after another).
fn pruned_picks(
    p: &Param,
    sels: &[crate::surgery::Selection<'_>],
    quiet: bool,
    growth: Growth,
) -> Option<Vec<Option<Vec<u32>>>> {
    let fresh = sels
        .iter()
        .any(|(_, list, _, _, _)| list.contains(&graft_core::Neuron::New));
    let special = quiet || matches!(growth, Growth::Net2Net { .. });
    if fresh || special || !p.is_cpu_f32() {
        return None;
    }
    let dims = p.dims();
    let mut picks: Vec<Option<Vec<u32>>> = vec![None; dims.len()];
    for &(axis, list, gates, _, _) in sels {
        let slot = picks.get_mut(axis).filter(|p| p.is_none())?;
        let idx = crate::surgery::indices(dims[axis], list, gates);
        if idx.iter().any(|&i| i as usize >= dims[axis]) {
            return None;
        }
        *slot = Some(idx);
    }
    Some(picks)
}

/// Identity values for a parameter, or why there are none.
fn identity(op: &Op, shape: &[usize], name: &str) -> std::result::Result<Vec<f64>, String> {
    if name == "bias" {
        return Ok(vec![0.0; shape.iter().product()]);
    }
    match op {
        Op::Dense { .. } | Op::MaskedDense { .. } | Op::LearnableMaskedDense { .. } => {
            crate::layers::dense::identity(shape)
        }
        Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
            crate::layers::conv::identity(c, shape)
        }
        Op::Input
        | Op::ConvTranspose2d { .. }
        | Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::InstanceNorm { .. }
        | Op::Activation(_)
        | Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::GlobalAvgPool
        | Op::GlobalMaxPool
        | Op::Resize(_)
        | Op::Dropout { .. }
        | Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::Concat
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Scale { .. }
        | Op::Identity
        | Op::LastStep
        | Op::Recurrent { .. }
        | Op::Cond { .. }
        | Op::Gate { .. }
        | Op::Exit { .. }
        | Op::Moe { .. }
        | Op::Unary { .. }
        | Op::Elementwise(_)
        | Op::Transpose(_)
        | Op::View(_)
        | Op::Reduce(_)
        | Op::SoftmaxAxis(_)
        | Op::Slice(_)
        | Op::Shuffle(_)
        | Op::Join(_)
        | Op::Pad(_)
        | Op::LinearLast(_)
        | Op::Embedding(_)
        | Op::MatMul(_)
        | Op::Token(_)
        | Op::Regroup(_)
        | Op::TopK(_)
        | Op::GatherRows(_)
        | Op::RoutedLinear(_)
        | Op::LayerNormLast(_)
        | Op::ActivationAt { .. } => Err(format!("no identity initialisation for {}", op.name())),
    }
}

/// An edge added to (or removed from) vertex `to` at input `position`: its
/// layer's op follows ([`Op::input_edited`]) or the edit is refused.
fn follow_arity(
    layers: &mut BTreeMap<VertexId, Layer>,
    g: &Graph,
    to: VertexId,
    position: usize,
    added: bool,
) -> Result<()> {
    let Some(layer) = layers.get_mut(&to) else {
        return Ok(());
    };
    let refused = |reason: String| NnError::Layer {
        vertex: g.name(to),
        reason,
    };
    let mut op = layer.op.clone();
    op.input_edited(position, added).map_err(refused)?;
    *layer = Layer {
        op,
        params: layer.params.clone(),
    };
    Ok(())
}
