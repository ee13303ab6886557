//! Execution, apart from the graph: an [`Executor`] fixes the order and
//! buffer lifetimes for one revision of a model and runs forward passes
//! (backward is candle's autodiff on the result). A model mutated since the
//! executor was built is refused with [`NnError::StaleExecutor`].

use std::collections::HashMap;

use candle_core::Tensor;
use graft_core::{SizeKind, VertexId};

use crate::error::{NnError, Result};
use crate::layers::{forward, Ctx};
use crate::model::Model;

/// Evaluation or training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Running statistics, no dropout.
    Eval,
    /// Batch statistics and dropout; `seed` draws the dropout masks.
    Train {
        /// Seed of this pass.
        seed: u64,
    },
}

/// The result of a forward pass.
#[derive(Debug)]
pub struct Forward {
    /// One tensor per graph output (vertices without consumers, in
    /// topological order, ties by id).
    pub outputs: Vec<Tensor>,
    /// Every vertex's output, when asked for (vertices inside a branch
    /// appear only when they ran on the whole batch).
    pub activations: HashMap<VertexId, Tensor>,
    /// With probes: per vertex, a variable of ones shaped `[1, C, 1, ...]`
    /// multiplied into its output. The forward values are unchanged, and the
    /// gradient of a probe is Σ over batch and space of activation ×
    /// gradient, per neuron (candle keeps gradients of variables only).
    pub probes: HashMap<VertexId, candle_core::Var>,
    /// With [`Run::trace`]: the path each sample took and the cost spent.
    pub trace: Option<Trace>,
    /// Training passes: every gate's straight-through values, `[N, 1]`: the
    /// hard 0/1 decisions forward, the sigmoid's gradient backward (for the
    /// target-rate loss).
    pub gates: Vec<(VertexId, Tensor)>,
    /// Training passes (or exits switched off): every early exit's head
    /// output on the whole batch, in execution order, for the joint loss.
    pub exit_heads: Vec<(VertexId, Tensor)>,
    /// Every mixture of experts' load-balancing loss (a scalar).
    pub balance: Vec<(VertexId, Tensor)>,
    /// New running statistics from training-mode batch norms.
    pub(crate) updates: Vec<(VertexId, &'static str, Tensor)>,
}

impl Forward {
    /// The value of vertex `v` after a run of `ex`: a graph output's
    /// tensor, or a kept activation (`Run::keep`) for any other vertex.
    /// How an imported model's named outputs are read, whichever vertices
    /// the executor counts as outputs.
    pub fn value_of(&self, ex: &Executor, v: VertexId) -> Option<&Tensor> {
        match ex.outputs().iter().position(|&o| o == v) {
            Some(i) => self.outputs.get(i),
            None => self.activations.get(&v),
        }
    }
}

impl Executor {
    /// Whether reading `wanted` after a run needs the activations kept
    /// (some of them are not the executor's outputs).
    pub fn needs_keep(&self, wanted: &[VertexId]) -> bool {
        wanted.iter().any(|v| !self.outputs().contains(v))
    }
}

/// Forcing gates, for ablations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateForce {
    /// Each gate decides by its head.
    #[default]
    Learned,
    /// Every gate is on for every sample.
    On,
    /// Every gate is off for every sample (the branches never run).
    Off,
}

/// Options of one forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Evaluation or training.
    pub mode: Mode,
    /// Keep every vertex's output.
    pub keep: bool,
    /// Probe every vertex (see [`Forward::probes`]).
    pub probe: bool,
    /// Return a [`Trace`].
    pub trace: bool,
    /// Force gates on or off.
    pub gates: GateForce,
    /// Early exits may stop samples (evaluation only; training always runs
    /// every sample to the end).
    pub exits: bool,
    /// Inference only: parameters enter as constants, so no gradient graph
    /// is built (nothing reaches the parameters' gradients; a long
    /// recurrence or a very deep chain leaves no deep graph behind).
    pub detach: bool,
}

impl Run {
    /// Evaluation with exits on, no trace.
    pub fn eval() -> Self {
        Run {
            mode: Mode::Eval,
            keep: false,
            probe: false,
            trace: false,
            gates: GateForce::Learned,
            exits: true,
            detach: false,
        }
    }
    /// Evaluation for inference only ([`Run::detach`]): what `graft run`,
    /// `graft eval` and the neuron graph use.
    pub fn inference() -> Self {
        Run {
            detach: true,
            ..Run::eval()
        }
    }
    /// Training with this seed.
    pub fn train(seed: u64) -> Self {
        Run {
            mode: Mode::Train { seed },
            ..Run::eval()
        }
    }
    /// With a trace.
    pub fn traced(self) -> Self {
        Run {
            trace: true,
            ..self
        }
    }
    /// With gates forced.
    pub fn force_gates(self, gates: GateForce) -> Self {
        Run { gates, ..self }
    }
    /// Without early exits.
    pub fn without_exits(self) -> Self {
        Run {
            exits: false,
            ..self
        }
    }
}

/// A compiled order of execution for one revision of a model.
///
/// The branches of dynamic vertices (conditionals, gates, exits, experts)
/// are *regions*: the vertices whose every path to an output passes through
/// that branch's input. A region does not run in the main order; its dynamic
/// vertex runs it on the samples that take it (gathered, then scattered
/// back), or not at all. Regions nest; each vertex belongs to the innermost.
#[derive(Debug, Clone)]
pub struct Executor {
    revision: u64,
    order: Vec<VertexId>,
    inputs: Vec<VertexId>,
    outputs: Vec<VertexId>,
    /// Vertices outside every region, in topological order.
    top: Vec<VertexId>,
    /// The vertices a region owns directly, in topological order, keyed by
    /// (dynamic vertex, input position).
    regions: HashMap<(VertexId, usize), Vec<VertexId>>,
    /// For each step of `top`, the vertices whose last reader it is.
    free_after: Vec<Vec<VertexId>>,
    /// The first vertex that holds the batch size at the one the model was
    /// read at ([`batch_bound`], [`Model::read_batch`]), and its name.
    batch_bound: Option<String>,
}

/// The first vertex (in `order`) whose forward pass needs the batch on its
/// input's first axis ([`Op::needs_batch_first`]) while a transpose has
/// moved it elsewhere: a file exported at a fixed batch size whose graph
/// folds the batch into other axes (torch's multi-head attention views
/// `[T, N, E]` as `[T, N·heads, d]`) runs right only at that batch size.
fn batch_bound(model: &Model, order: &[VertexId]) -> Result<Option<VertexId>> {
    let g = model.graph();
    let mut at: HashMap<VertexId, usize> = HashMap::new();
    for &v in order {
        let Some(layer) = model.layers().get(&v) else {
            continue;
        };
        let from = g
            .vertex(v)?
            .inputs()
            .first()
            .map_or(0, |u| at.get(u).copied().unwrap_or(0));
        if from != 0 && layer.op.needs_batch_first() {
            return Ok(Some(v));
        }
        at.insert(v, layer.op.batch_axis_after(from));
    }
    Ok(None)
}

/// The vertices whose every path to a graph output passes through input
/// `pos` of `s` (never inputs or outputs).
fn region(
    g: &graft_core::Graph,
    order: &[VertexId],
    s: VertexId,
    pos: usize,
) -> Result<Vec<VertexId>> {
    let sx = g.vertex(s)?;
    let mut inside: std::collections::HashSet<VertexId> = std::collections::HashSet::new();
    let at = order.iter().position(|&v| v == s).unwrap_or(0);
    for &v in order[..at].iter().rev() {
        let vx = g.vertex(v)?;
        if vx.kind() == SizeKind::Input || vx.outputs().is_empty() {
            continue;
        }
        let only_here = vx.outputs().iter().all(|&c| {
            if c == s {
                sx.inputs()
                    .iter()
                    .enumerate()
                    .all(|(k, &u)| u != v || k == pos)
            } else {
                inside.contains(&c)
            }
        });
        if only_here {
            inside.insert(v);
        }
    }
    Ok(order
        .iter()
        .copied()
        .filter(|v| inside.contains(v))
        .collect())
}

impl Executor {
    /// Build for the model as it is now.
    ///
    /// # Errors
    /// An inconsistent graph.
    pub fn new(model: &Model) -> Result<Self> {
        let g = model.graph();
        g.check()?;
        let order = g.topological_order()?;
        // Inputs and outputs in topological order (ties by id), which
        // saving and loading preserve.
        let inputs: Vec<VertexId> = order
            .iter()
            .copied()
            .filter(|&v| {
                g.vertex(v)
                    .map(|x| x.kind() == SizeKind::Input)
                    .unwrap_or(false)
            })
            .collect();
        let outputs: Vec<VertexId> = order
            .iter()
            .copied()
            .filter(|&v| g.vertex(v).map(|x| x.outputs().is_empty()).unwrap_or(false))
            .collect();

        // Regions of every lazy input; each vertex goes to the smallest
        // region holding it (regions are nested or disjoint).
        let mut full: Vec<((VertexId, usize), Vec<VertexId>)> = Vec::new();
        for &v in &order {
            if let Some(layer) = model.layers().get(&v) {
                let n = g.vertex(v)?.inputs().len();
                for pos in layer.op.lazy_inputs(n) {
                    full.push(((v, pos), region(g, &order, v, pos)?));
                }
            }
        }
        let mut owner: HashMap<VertexId, (VertexId, usize)> = HashMap::new();
        let mut owner_size: HashMap<VertexId, usize> = HashMap::new();
        for (key, verts) in &full {
            for &v in verts {
                if owner_size.get(&v).is_none_or(|&n| verts.len() < n) {
                    owner.insert(v, *key);
                    owner_size.insert(v, verts.len());
                }
            }
        }
        let mut regions: HashMap<(VertexId, usize), Vec<VertexId>> =
            full.iter().map(|(k, _)| (*k, Vec::new())).collect();
        let mut top = Vec::new();
        for &v in &order {
            match owner.get(&v) {
                Some(k) => regions.entry(*k).or_default().push(v),
                None => top.push(v),
            }
        }

        // What each top step reads: its own inputs and those of everything
        // its regions run, from outside them.
        let closure_of = |v: VertexId| -> Vec<VertexId> {
            let mut out = vec![v];
            let mut i = 0;
            while i < out.len() {
                let x = out[i];
                for ((s, _), verts) in &regions {
                    if *s == x {
                        out.extend(verts);
                    }
                }
                i += 1;
            }
            out
        };
        let pos: HashMap<VertexId, usize> = top.iter().enumerate().map(|(i, &v)| (v, i)).collect();
        let mut last: HashMap<VertexId, usize> = HashMap::new();
        for (i, &v) in top.iter().enumerate() {
            let cl = closure_of(v);
            for &x in &cl {
                for &u in g.vertex(x)?.inputs() {
                    if !cl.contains(&u) {
                        last.insert(u, i);
                    }
                }
            }
        }
        let mut free_after = vec![Vec::new(); top.len()];
        for (&u, &i) in &last {
            if !outputs.contains(&u) && pos.get(&u).is_some_and(|&p| p < i) {
                free_after[i].push(u);
            }
        }
        let batch_bound = batch_bound(model, &order)?.map(|v| g.name(v));
        Ok(Self {
            revision: model.revision(),
            order,
            inputs,
            outputs,
            top,
            regions,
            free_after,
            batch_bound,
        })
    }

    /// The first vertex that holds the batch size the model was read at
    /// ([`Model::read_batch`]) where a transpose moved the batch: batches
    /// of another size are evaluated in groups of that size.
    pub fn batch_bound(&self) -> Option<&str> {
        self.batch_bound.as_deref()
    }

    /// The graph inputs, in the order `forward` takes them.
    pub fn inputs(&self) -> &[VertexId] {
        &self.inputs
    }
    /// The graph outputs, in the order `forward` returns them.
    pub fn outputs(&self) -> &[VertexId] {
        &self.outputs
    }
    /// The vertices that run only when a dynamic vertex sends samples to
    /// them: (dynamic vertex, input position) to the vertices it runs
    /// directly, in topological order.
    pub fn regions(&self) -> &HashMap<(VertexId, usize), Vec<VertexId>> {
        &self.regions
    }

    /// Run forward. With `keep`, every vertex's output is returned too.
    ///
    /// # Errors
    /// A stale executor, a wrong number of inputs, shapes that do not fit.
    pub fn forward(
        &self,
        model: &Model,
        inputs: &[Tensor],
        mode: Mode,
        keep: bool,
    ) -> Result<Forward> {
        self.forward_with(model, inputs, mode, keep, false)
    }

    /// [`Executor::forward`], optionally with probes on every non-input
    /// vertex (see [`Forward::probes`]).
    ///
    /// # Errors
    /// As [`Executor::forward`].
    pub fn forward_with(
        &self,
        model: &Model,
        inputs: &[Tensor],
        mode: Mode,
        keep: bool,
        probe: bool,
    ) -> Result<Forward> {
        self.run(
            model,
            inputs,
            &Run {
                mode,
                keep,
                probe,
                ..Run::eval()
            },
        )
    }

    /// Run forward with every option of [`Run`].
    ///
    /// # Errors
    /// A stale executor, a wrong number of inputs, shapes that do not fit,
    /// a control with a row count other than 1 or the batch's.
    ///
    /// A model whose graph holds the batch size it was read at
    /// ([`Model::read_batch`]) where a transpose moved the batch (see
    /// [`batch_bound`]) is evaluated in groups of that many samples, its
    /// outputs joined; other passes over it take exactly that many.
    pub fn run(&self, model: &Model, inputs: &[Tensor], opts: &Run) -> Result<Forward> {
        let rows = inputs
            .iter()
            .map(|x| x.dim(0))
            .try_fold(0usize, |a, d| d.map(|d| a.max(d)))?;
        match &self.batch_bound {
            Some(vertex) if rows != model.read_batch() => {
                self.run_in_groups(model, inputs, opts, rows, vertex)
            }
            _ => self.run_batch(model, inputs, opts),
        }
    }

    /// [`Executor::run`] of a batch-bound model on `rows` samples: in
    /// groups of [`Model::read_batch`] samples (plain evaluation only), the
    /// outputs joined.
    fn run_in_groups(
        &self,
        model: &Model,
        inputs: &[Tensor],
        opts: &Run,
        rows: usize,
        vertex: &str,
    ) -> Result<Forward> {
        let k = model.read_batch();
        let plain = matches!(opts.mode, Mode::Eval) && !opts.keep && !opts.probe && !opts.trace;
        let (each, multiple) = match k {
            1 => ("one sample".to_string(), String::new()),
            _ => (
                format!("{k} samples"),
                format!(", and a batch must be a multiple of {k}"),
            ),
        };
        let refuse = || NnError::Invalid {
            what: format!("a batch of {rows}"),
            reason: format!(
                "the model was read at batch size {k} and vertex `{vertex}` reshapes values \
                 whose batch a transpose moved as its file does at that size: it is evaluated \
                 {each} at a time, which training, probes, traces and kept activations do not \
                 do{multiple} (a file with a symbolic batch runs whole batches)"
            ),
        };
        let fits = rows.is_multiple_of(k) && inputs.iter().all(|x| x.dim(0).ok() == Some(rows));
        if !plain || !fits {
            return Err(refuse());
        }
        let mut outs: Vec<Vec<Tensor>> = Vec::new();
        for i in (0..rows).step_by(k) {
            let group: Vec<Tensor> = inputs
                .iter()
                .map(|x| x.narrow(0, i, k))
                .collect::<candle_core::Result<_>>()?;
            let f = self.run_batch(model, &group, opts)?;
            let batch_first = f.outputs.iter().all(|y| y.dim(0).ok() == Some(k));
            if !(batch_first
                && f.gates.is_empty()
                && f.exit_heads.is_empty()
                && f.balance.is_empty())
            {
                return Err(refuse());
            }
            outs.push(f.outputs);
        }
        let joined = (0..outs[0].len())
            .map(|k| {
                let parts: Vec<&Tensor> = outs.iter().map(|o| &o[k]).collect();
                Tensor::cat(&parts, 0)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Forward {
            outputs: joined,
            activations: HashMap::new(),
            probes: HashMap::new(),
            trace: None,
            gates: Vec::new(),
            exit_heads: Vec::new(),
            balance: Vec::new(),
            updates: Vec::new(),
        })
    }

    /// [`Executor::run`] on the whole batch at once.
    fn run_batch(&self, model: &Model, inputs: &[Tensor], opts: &Run) -> Result<Forward> {
        if model.revision() != self.revision {
            return Err(NnError::StaleExecutor {
                built: self.revision,
                now: model.revision(),
            });
        }
        if inputs.len() != self.inputs.len() {
            return Err(NnError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        let mut n = 0;
        let mut vals: HashMap<VertexId, Tensor> = HashMap::new();
        for (&v, x) in self.inputs.iter().zip(inputs) {
            n = n.max(x.dim(0)?);
            vals.insert(v, x.to_dtype(model.dtype())?);
        }
        let mut top = Scope {
            parent: None,
            vals,
            n,
            global: (0..n as u32).collect(),
        };
        let mut rec = Rec::new(n, opts);
        let ctx = RunCtx { model, opts };
        for (step, &v) in self.top.iter().enumerate() {
            if !top.vals.contains_key(&v) {
                let y = self.eval(&ctx, v, &mut top, &mut rec)?;
                top.vals.insert(v, y);
            }
            if !opts.keep {
                for u in &self.free_after[step] {
                    top.vals.remove(u);
                }
            }
        }
        let outputs = self
            .outputs
            .iter()
            .map(|o| top.get(*o, model))
            .collect::<Result<Vec<_>>>()?;
        let trace = if opts.trace {
            let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.dims()[1..].to_vec()).collect();
            let cost = model.cost(&shapes)?;
            let spent = rec
                .rows
                .iter()
                .map(|(v, &r)| cost.macs.get(v).copied().unwrap_or(0) * r as u64)
                .sum();
            let mut decisions = rec.decisions;
            decisions.sort_by_key(|d| self.order.iter().position(|&v| v == d.vertex));
            Some(Trace {
                samples: n,
                decisions,
                rows: rec.rows,
                macs_spent: spent,
                macs_full: cost.total() * n as u64,
            })
        } else {
            None
        };
        Ok(Forward {
            outputs,
            activations: if opts.keep { top.vals } else { HashMap::new() },
            probes: rec.probes,
            trace,
            gates: rec.gates,
            exit_heads: rec.exit_heads,
            balance: rec.balance,
            updates: rec.updates,
        })
    }

    /// Run a list of vertices in a scope.
    fn run_list(
        &self,
        ctx: &RunCtx,
        list: &[VertexId],
        sc: &mut Scope,
        rec: &mut Rec,
    ) -> Result<()> {
        for &v in list {
            let y = self.eval(ctx, v, sc, rec)?;
            sc.vals.insert(v, y);
        }
        Ok(())
    }

    /// The value at input `pos` of `s`, computed by its region on `rows` of
    /// the scope (None: all rows, in the scope itself).
    pub(crate) fn branch(
        &self,
        ctx: &RunCtx,
        s: VertexId,
        pos: usize,
        sc: &mut Scope,
        rows: Option<&[u32]>,
        rec: &mut Rec,
    ) -> Result<Tensor> {
        let g = ctx.model.graph();
        let producer = g.vertex(s)?.inputs()[pos];
        let empty = Vec::new();
        let list = self.regions.get(&(s, pos)).unwrap_or(&empty);
        match rows {
            None => {
                self.run_list(ctx, list, sc, rec)?;
                sc.get(producer, ctx.model)
            }
            Some(r) => {
                let idx = Tensor::from_vec(r.to_vec(), r.len(), ctx.model.device())?;
                let global = r.iter().map(|&i| sc.global[i as usize]).collect();
                let mut child = Scope {
                    parent: Some((&*sc, idx)),
                    vals: HashMap::new(),
                    n: r.len(),
                    global,
                };
                self.run_list(ctx, list, &mut child, rec)?;
                child.get(producer, ctx.model)
            }
        }
    }

    /// The per-sample shape of `u`'s value in a scope, computed or inferred.
    fn shape_of(&self, model: &Model, u: VertexId, sc: &Scope) -> Result<Vec<usize>> {
        if let Some(t) = sc.peek(u)? {
            return Ok(t.dims()[1..].to_vec());
        }
        let g = model.graph();
        let ux = g.vertex(u)?;
        let ins = ux
            .inputs()
            .iter()
            .map(|&x| self.shape_of(model, x, sc))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Vec<usize>> = ins.iter().collect();
        let op = &model
            .layer(u)
            .ok_or_else(|| NnError::Layer {
                vertex: ux.name().to_string(),
                reason: "no layer".into(),
            })?
            .op;
        crate::cost::infer(op, &refs, ux.nout()).map_err(|reason| NnError::Layer {
            vertex: ux.name().to_string(),
            reason,
        })
    }

    /// Evaluate one vertex in a scope.
    fn eval(&self, ctx: &RunCtx, v: VertexId, sc: &mut Scope, rec: &mut Rec) -> Result<Tensor> {
        let model = ctx.model;
        let g = model.graph();
        let vx = g.vertex(v)?;
        let layer = model.layers().get(&v).ok_or_else(|| NnError::Layer {
            vertex: vx.name().to_string(),
            reason: "no layer".into(),
        })?;
        if layer.op.is_dynamic() {
            return crate::dynamic::eval(self, ctx, v, &layer.op, sc, rec);
        }
        let xs: Vec<Tensor> = vx
            .inputs()
            .iter()
            .map(|&u| sc.get(u, model))
            .collect::<Result<_>>()?;
        let (train, seed) = match ctx.opts.mode {
            Mode::Eval => (false, 0),
            Mode::Train { seed } => (true, seed),
        };
        let lctx = Ctx {
            train,
            seed: seed ^ (v.index() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            csr: model.sparse_pattern(v),
            rows: sc.n,
        };
        let params: crate::layers::Params = layer
            .params
            .iter()
            .map(|(k, p)| {
                let t = if ctx.opts.detach {
                    p.detached()
                } else {
                    p.tensor().clone()
                };
                (k.clone(), t)
            })
            .collect();
        let (y, up) = forward(&layer.op, &params, &xs, &lctx).map_err(|e| NnError::Layer {
            vertex: vx.name().to_string(),
            reason: crate::error::tensor_reason(&e),
        })?;
        let axis = layer.op.neuron_axis();
        // The neuron axis holds nout values, or nout per sample where a
        // file read at batch size 1 merged the batch into it (multi-head
        // attention's `[T, B·H, D]`, see `BatchAt`).
        let holds = |d: usize| d == vx.nout() || (sc.n > 1 && d == vx.nout() * sc.n);
        if axis.is_some_and(|a| !y.dim(a).is_ok_and(holds))
            && !matches!(
                layer.op,
                crate::op::Op::Recurrent {
                    sequences: true,
                    ..
                }
            )
        {
            return Err(NnError::Layer {
                vertex: vx.name().to_string(),
                reason: format!(
                    "output shape {:?}, the graph says {} neurons",
                    y.dims(),
                    vx.nout()
                ),
            });
        }
        rec.updates.extend(up.into_iter().map(|(n, t)| (v, n, t)));
        *rec.rows.entry(v).or_default() += y.dim(0)?;
        if let (true, Some(a)) = (ctx.opts.probe, axis) {
            let mut shape = vec![1usize; y.rank()];
            shape[a] = vx.nout();
            let ones = Tensor::ones(shape, y.dtype(), y.device())?;
            let var = candle_core::Var::from_tensor(&ones)?;
            let y = y.broadcast_mul(var.as_tensor())?;
            rec.probes.insert(v, var);
            return Ok(y);
        }
        Ok(y)
    }

    /// Scatter parts (rows of the scope, values) into one `[n, shape]`
    /// value; rows not covered are 0, rows covered twice are summed.
    pub(crate) fn merge(
        &self,
        model: &Model,
        n: usize,
        shape: &[usize],
        parts: Vec<(Vec<u32>, Tensor)>,
    ) -> Result<Tensor> {
        if let [(rows, t)] = parts.as_slice() {
            if rows.len() == n && rows.iter().enumerate().all(|(i, &r)| i as u32 == r) {
                return Ok(t.clone());
            }
        }
        let mut dims = vec![n];
        dims.extend_from_slice(shape);
        let mut out = Tensor::zeros(dims, model.dtype(), model.device())?;
        for (rows, t) in parts {
            if rows.is_empty() {
                continue;
            }
            let idx = Tensor::from_vec(rows.clone(), rows.len(), model.device())?;
            out = out.index_add(&idx, &t, 0)?;
        }
        Ok(out)
    }

    /// [`Executor::branch`] on these rows, in place when they are all.
    pub(crate) fn branch_on(
        &self,
        ctx: &RunCtx,
        s: VertexId,
        pos: usize,
        sc: &mut Scope,
        rows: &[u32],
        rec: &mut Rec,
    ) -> Result<Tensor> {
        if rows.len() == sc.n {
            self.branch(ctx, s, pos, sc, None, rec)
        } else {
            self.branch(ctx, s, pos, sc, Some(rows), rec)
        }
    }

    /// The per-sample shape of `u` in a scope.
    pub(crate) fn shape_in(&self, model: &Model, u: VertexId, sc: &Scope) -> Result<Vec<usize>> {
        self.shape_of(model, u, sc)
    }
}

/// The model and options of one pass.
pub(crate) struct RunCtx<'a> {
    pub model: &'a Model,
    pub opts: &'a Run,
}

/// The values of one set of rows: the whole batch, or the samples a branch
/// took (gathered from the parent scope on first use).
pub(crate) struct Scope<'a> {
    parent: Option<(&'a Scope<'a>, Tensor)>,
    vals: HashMap<VertexId, Tensor>,
    /// Rows in this scope.
    pub n: usize,
    /// Each row's sample index in the batch.
    pub global: Vec<u32>,
}

impl Scope<'_> {
    /// `u`'s rows in this scope, if computed here or above.
    fn peek(&self, u: VertexId) -> Result<Option<Tensor>> {
        if let Some(t) = self.vals.get(&u) {
            return Ok(Some(t.clone()));
        }
        match &self.parent {
            None => Ok(None),
            Some((p, rows)) => match p.peek(u)? {
                // One row for a whole batch (a batch-level control) stays.
                Some(t) if t.dim(0)? == 1 && p.n > 1 => Ok(Some(t)),
                Some(t) => Ok(Some(t.index_select(rows, 0)?)),
                None => Ok(None),
            },
        }
    }

    /// `u`'s rows in this scope.
    pub(crate) fn get(&mut self, u: VertexId, model: &Model) -> Result<Tensor> {
        if let Some(t) = self.vals.get(&u) {
            return Ok(t.clone());
        }
        let t = self.peek(u)?.ok_or_else(|| NnError::Layer {
            vertex: model.graph().name(u),
            reason: "read before it was computed".into(),
        })?;
        self.vals.insert(u, t.clone());
        Ok(t)
    }
}

/// What a pass records besides values.
pub(crate) struct Rec {
    pub rows: HashMap<VertexId, usize>,
    pub decisions: Vec<Decision>,
    pub probes: HashMap<VertexId, candle_core::Var>,
    pub updates: Vec<(VertexId, &'static str, Tensor)>,
    pub gates: Vec<(VertexId, Tensor)>,
    pub exit_heads: Vec<(VertexId, Tensor)>,
    pub balance: Vec<(VertexId, Tensor)>,
    pub samples: usize,
    pub tracing: bool,
}

impl Rec {
    fn new(n: usize, opts: &Run) -> Self {
        Rec {
            rows: HashMap::new(),
            decisions: Vec::new(),
            probes: HashMap::new(),
            updates: Vec::new(),
            gates: Vec::new(),
            exit_heads: Vec::new(),
            balance: Vec::new(),
            samples: n,
            tracing: opts.trace,
        }
    }

    /// Record a dynamic vertex's choices for the scope's rows.
    pub(crate) fn decide(&mut self, model: &Model, v: VertexId, sc: &Scope, choices: Vec<Choice>) {
        if !self.tracing {
            return;
        }
        let mut per_sample = vec![None; self.samples];
        for (i, c) in choices.into_iter().enumerate() {
            if let Some(&gi) = sc.global.get(i) {
                per_sample[gi as usize] = Some(c);
            }
        }
        self.decisions.push(Decision {
            vertex: v,
            name: model.graph().name(v),
            per_sample,
        });
    }
}

/// What one sample did at one dynamic vertex.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    /// A conditional's branch (0-based, in input order after the control).
    Branch(usize),
    /// A gate: on or off.
    Gate(bool),
    /// An early exit: true if the sample left here.
    Exit(bool),
    /// A mixture of experts: (expert, weight) of every expert that ran on
    /// the sample (capacity may have dropped some of its top-k).
    Experts(Vec<(usize, f32)>),
}

/// One dynamic vertex's decisions, per sample of the batch (None where the
/// sample never reached it: it left at an exit or took another branch).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The vertex.
    pub vertex: VertexId,
    /// Its name.
    pub name: String,
    /// Per sample.
    pub per_sample: Vec<Option<Choice>>,
}

/// The path each sample took through a dynamic graph, and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Samples in the batch.
    pub samples: usize,
    /// Every dynamic vertex that ran, in topological order.
    pub decisions: Vec<Decision>,
    /// Rows each vertex ran on (vertices that did not run are absent).
    pub rows: HashMap<VertexId, usize>,
    /// Multiply-accumulates actually spent.
    pub macs_spent: u64,
    /// Multiply-accumulates of the full static graph on the same batch
    /// (every branch and every expert on every sample).
    pub macs_full: u64,
}

impl Trace {
    /// The decisions of one vertex.
    pub fn of(&self, v: VertexId) -> Option<&Decision> {
        self.decisions.iter().find(|d| d.vertex == v)
    }
    /// The exit a sample left at (None: it ran to the end).
    pub fn exit_taken(&self, sample: usize) -> Option<VertexId> {
        self.decisions
            .iter()
            .find_map(|d| match d.per_sample.get(sample) {
                Some(Some(Choice::Exit(true))) => Some(d.vertex),
                _ => None,
            })
    }
}

impl Model {
    /// Write back the running statistics of a training pass.
    ///
    /// # Errors
    /// Unknown vertex or buffer.
    pub fn apply_updates(&mut self, f: &Forward) -> Result<()> {
        for (v, name, t) in &f.updates {
            self.var(*v, name)?.set(t)?;
        }
        Ok(())
    }
}
