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
    /// Every vertex's output, when asked for.
    pub activations: HashMap<VertexId, Tensor>,
    /// With probes: per vertex, a variable of ones shaped `[1, C, 1, ...]`
    /// multiplied into its output. The forward values are unchanged, and the
    /// gradient of a probe is Σ over batch and space of activation ×
    /// gradient, per neuron (candle keeps gradients of variables only).
    pub probes: HashMap<VertexId, candle_core::Var>,
    /// New running statistics from training-mode batch norms.
    pub(crate) updates: Vec<(VertexId, &'static str, Tensor)>,
}

/// A compiled order of execution for one revision of a model.
#[derive(Debug, Clone)]
pub struct Executor {
    revision: u64,
    order: Vec<VertexId>,
    inputs: Vec<VertexId>,
    outputs: Vec<VertexId>,
    /// For each step, the vertices whose last reader it is.
    free_after: Vec<Vec<VertexId>>,
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
        let pos: HashMap<VertexId, usize> =
            order.iter().enumerate().map(|(i, &v)| (v, i)).collect();
        let mut last: HashMap<VertexId, usize> = HashMap::new();
        for (i, &v) in order.iter().enumerate() {
            for &u in g.vertex(v)?.inputs() {
                last.insert(u, i);
            }
        }
        let mut free_after = vec![Vec::new(); order.len()];
        for (&u, &i) in &last {
            if !outputs.contains(&u) && pos[&u] < i {
                free_after[i].push(u);
            }
        }
        Ok(Self {
            revision: model.revision(),
            order,
            inputs,
            outputs,
            free_after,
        })
    }

    /// The graph inputs, in the order `forward` takes them.
    pub fn inputs(&self) -> &[VertexId] {
        &self.inputs
    }
    /// The graph outputs, in the order `forward` returns them.
    pub fn outputs(&self) -> &[VertexId] {
        &self.outputs
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
        let g = model.graph();
        let mut vals: HashMap<VertexId, Tensor> = HashMap::new();
        for (&v, x) in self.inputs.iter().zip(inputs) {
            vals.insert(v, x.to_dtype(model.dtype())?);
        }
        let mut keep_all = HashMap::new();
        let mut updates = Vec::new();
        let mut probes = HashMap::new();
        let (train, seed) = match mode {
            Mode::Eval => (false, 0),
            Mode::Train { seed } => (true, seed),
        };
        for (step, &v) in self.order.iter().enumerate() {
            let vx = g.vertex(v)?;
            if vx.kind() != SizeKind::Input {
                let layer = model.layers().get(&v).ok_or_else(|| NnError::Layer {
                    vertex: vx.name().to_string(),
                    reason: "no layer".into(),
                })?;
                let xs: Vec<Tensor> = vx.inputs().iter().map(|u| vals[u].clone()).collect();
                let ctx = Ctx {
                    train,
                    seed: seed ^ (v.index() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    csr: model.sparse_pattern(v),
                };
                let (y, up) =
                    forward(&layer.op, &layer.params, &xs, &ctx).map_err(|e| NnError::Layer {
                        vertex: vx.name().to_string(),
                        reason: e.to_string(),
                    })?;
                if y.dim(1).ok() != Some(vx.nout())
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
                updates.extend(up.into_iter().map(|(n, t)| (v, n, t)));
                let y = if probe {
                    let mut shape = vec![1usize; y.rank()];
                    shape[1] = vx.nout();
                    let ones = Tensor::ones(shape, y.dtype(), y.device())?;
                    let var = candle_core::Var::from_tensor(&ones)?;
                    let y = y.broadcast_mul(var.as_tensor())?;
                    probes.insert(v, var);
                    y
                } else {
                    y
                };
                vals.insert(v, y);
            }
            if keep {
                keep_all.insert(v, vals[&v].clone());
            }
            for u in &self.free_after[step] {
                vals.remove(u);
            }
        }
        let outputs = self.outputs.iter().map(|o| vals[o].clone()).collect();
        Ok(Forward {
            outputs,
            activations: keep_all,
            probes,
            updates,
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
