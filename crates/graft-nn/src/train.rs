//! Training: losses, optimisers whose state follows mutations, mini-batch
//! fitting and evaluation. Seeded and deterministic on the CPU.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use graft_core::VertexId;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::Result;
use crate::exec::{Executor, Mode};
use crate::model::{Model, ParamEdit};
use crate::op::Fill;
use crate::surgery::select_axis;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Softmax cross-entropy against class indices (`u32`, shape `[N]`).
    CrossEntropy,
    /// Mean squared error against targets of the output's shape.
    Mse,
    /// A language model's next-token loss: logits `[N, T, V]` against the
    /// token ids `[N, T]` that were its input, position `t` predicting id
    /// `t + 1` (softmax cross-entropy over the `T − 1` pairs).
    NextToken,
}

impl Loss {
    /// The mean loss of a batch (a scalar tensor).
    ///
    /// # Errors
    /// Shape or dtype mismatches.
    pub fn compute(self, y: &Tensor, target: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::CrossEntropy => {
                let m = y.max_keepdim(1)?.detach();
                let shifted = y.broadcast_sub(&m)?;
                let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
                let logp = shifted.broadcast_sub(&lse)?;
                let idx = target.to_dtype(DType::U32)?.unsqueeze(1)?;
                logp.gather(&idx, 1)?.neg()?.mean_all()?
            }
            Loss::Mse => y.sub(&target.to_dtype(y.dtype())?)?.sqr()?.mean_all()?,
            Loss::NextToken => {
                let (n, t, v) = y.dims3()?;
                if t < 2 || target.dims() != [n, t] {
                    return Err(crate::error::NnError::Invalid {
                        what: "next-token loss".into(),
                        reason: format!(
                            "logits {:?} and ids {:?} (ids [N, T] with T >= 2 needed)",
                            y.dims(),
                            target.dims()
                        ),
                    });
                }
                let logits = y
                    .narrow(1, 0, t - 1)?
                    .contiguous()?
                    .reshape((n * (t - 1), v))?;
                let next = target
                    .narrow(1, 1, t - 1)?
                    .contiguous()?
                    .reshape(n * (t - 1))?;
                Loss::CrossEntropy.compute(&logits, &next)?
            }
        })
    }
}

/// Optimiser state for one parameter, kept under (vertex, name) so that it
/// survives parameter replacement and follows mutations.
type Key = (VertexId, String);

/// An optimiser.
pub trait Optimizer {
    /// One update of every trainable parameter that has a gradient.
    ///
    /// # Errors
    /// Tensor errors.
    fn step(&mut self, model: &Model, grads: &GradStore) -> Result<()>;

    /// The state tensors, for [`Optimizer::follow`].
    fn states(&mut self) -> Vec<&mut HashMap<Key, Tensor>>;

    /// Apply a mutation's parameter selections to the state (new entries
    /// 0), and drop the state of vertices that no longer exist.
    ///
    /// # Errors
    /// Tensor errors.
    fn follow(&mut self, model: &Model, edits: &[ParamEdit]) -> Result<()> {
        let mut rng = StdRng::seed_from_u64(0);
        for st in self.states() {
            for e in edits {
                let key = (e.vertex, e.param.clone());
                if let Some(t) = st.get(&key) {
                    let mut t = t.clone();
                    for (axis, list, gates) in &e.selections {
                        t = select_axis(&t, *axis, list, *gates, Fill::Value(0.0), 0.0, &mut rng)?;
                    }
                    st.insert(key, t);
                }
            }
            st.retain(|(v, _), _| model.layer(*v).is_some());
        }
        Ok(())
    }
}

/// Stochastic gradient descent with momentum and (coupled) weight decay,
/// as PyTorch's `SGD`.
#[derive(Debug, Clone)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum (0: none).
    pub momentum: f64,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f64,
    velocity: HashMap<Key, Tensor>,
}

impl Sgd {
    /// SGD with this learning rate and momentum.
    pub fn new(lr: f64, momentum: f64) -> Self {
        Self {
            lr,
            momentum,
            weight_decay: 0.0,
            velocity: HashMap::new(),
        }
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, model: &Model, grads: &GradStore) -> Result<()> {
        for (v, name, var) in model.trainable() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            // Detached, as in Adam: the velocity must not hold the graph.
            let mut g = g.detach();
            if self.weight_decay != 0.0 {
                g = g.add(&var.as_tensor().affine(self.weight_decay, 0.0)?)?;
            }
            let d = if self.momentum != 0.0 {
                let key = (v, name);
                let b = match self.velocity.get(&key) {
                    Some(b) => b.affine(self.momentum, 0.0)?.add(&g)?,
                    None => g,
                };
                self.velocity.insert(key, b.detach());
                b
            } else {
                g
            };
            var.set(&var.as_tensor().sub(&d.affine(self.lr, 0.0)?)?)?;
        }
        Ok(())
    }
    fn states(&mut self) -> Vec<&mut HashMap<Key, Tensor>> {
        vec![&mut self.velocity]
    }
}

/// Adam, or AdamW with decoupled weight decay, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay: added to the gradient (Adam) or applied to the weights
    /// directly (AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled decay.
    pub decoupled: bool,
    steps: HashMap<Key, i32>,
    m: HashMap<Key, Tensor>,
    v: HashMap<Key, Tensor>,
}

impl Adam {
    /// Adam with PyTorch's defaults and this learning rate.
    pub fn new(lr: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            steps: HashMap::new(),
            m: HashMap::new(),
            v: HashMap::new(),
        }
    }
    /// AdamW with this learning rate and weight decay.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            decoupled: true,
            ..Self::new(lr)
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self, model: &Model, grads: &GradStore) -> Result<()> {
        for (vx, name, var) in model.trainable() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let key = (vx, name);
            let w = var.as_tensor();
            // Detached: a gradient computed by candle's own backward ops
            // (convolutions) still records how it was made, and a moment
            // kept from it would hold every earlier step's graph alive.
            let mut g = g.detach();
            if self.weight_decay != 0.0 && !self.decoupled {
                g = g.add(&w.affine(self.weight_decay, 0.0)?)?;
            }
            let t = self.steps.entry(key.clone()).or_insert(0);
            *t += 1;
            let t = *t;
            let m = match self.m.get(&key) {
                Some(m) => m
                    .affine(self.beta1, 0.0)?
                    .add(&g.affine(1.0 - self.beta1, 0.0)?)?,
                None => g.affine(1.0 - self.beta1, 0.0)?,
            };
            let g2 = g.sqr()?;
            let v = match self.v.get(&key) {
                Some(v) => v
                    .affine(self.beta2, 0.0)?
                    .add(&g2.affine(1.0 - self.beta2, 0.0)?)?,
                None => g2.affine(1.0 - self.beta2, 0.0)?,
            };
            let mhat = m.affine(1.0 / (1.0 - self.beta1.powi(t)), 0.0)?;
            let vhat = v.affine(1.0 / (1.0 - self.beta2.powi(t)), 0.0)?;
            let upd = mhat.div(&vhat.sqrt()?.affine(1.0, self.eps)?)?;
            let mut neww = w.sub(&upd.affine(self.lr, 0.0)?)?;
            if self.weight_decay != 0.0 && self.decoupled {
                neww = neww.sub(&w.affine(self.lr * self.weight_decay, 0.0)?)?;
            }
            var.set(&neww)?;
            self.m.insert(key.clone(), m.detach());
            self.v.insert(key, v.detach());
        }
        Ok(())
    }
    fn states(&mut self) -> Vec<&mut HashMap<Key, Tensor>> {
        vec![&mut self.m, &mut self.v]
    }
}

/// Mini-batch training of a one-input, one-output model.
#[derive(Debug, Clone)]
pub struct Fit {
    /// Samples per batch.
    pub batch: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// The loss.
    pub loss: Loss,
    /// Seed of the shuffles and dropout masks.
    pub seed: u64,
    /// Run every step with probes and activations kept (for
    /// [`crate::utility::Taylor`]).
    pub probes: bool,
    /// Auxiliary losses of dynamic networks (early exits, gate rates,
    /// expert balance), added to the main loss; the default adds nothing.
    pub objective: crate::dynamic::Objective,
}

impl Fit {
    /// Train; returns the mean training loss of every epoch.
    ///
    /// # Errors
    /// Shape errors, a stale model.
    pub fn run(
        &self,
        model: &mut Model,
        opt: &mut dyn Optimizer,
        x: &Tensor,
        y: &Tensor,
        each_step: impl FnMut(&Model, &crate::exec::Forward, &GradStore) -> Result<()>,
    ) -> Result<Vec<f64>> {
        self.run_inputs(model, opt, std::slice::from_ref(x), y, each_step)
    }

    /// [`Fit::run`] for a model with several inputs, each with one row per
    /// sample (features, per-sample controls), in the executor's order.
    ///
    /// # Errors
    /// Shape errors, a stale model, inputs with different row counts.
    pub fn run_inputs(
        &self,
        model: &mut Model,
        opt: &mut dyn Optimizer,
        xs: &[Tensor],
        y: &Tensor,
        mut each_step: impl FnMut(&Model, &crate::exec::Forward, &GradStore) -> Result<()>,
    ) -> Result<Vec<f64>> {
        if self.batch == 0 {
            return Err(crate::error::NnError::Invalid {
                what: "Fit::batch".into(),
                reason: "a batch needs at least one sample".into(),
            });
        }
        let n = y.dim(0)?;
        for (i, x) in xs.iter().enumerate() {
            if x.dim(0)? != n {
                return Err(crate::error::NnError::Invalid {
                    what: format!("Fit input {i}"),
                    reason: format!("{} rows, the targets have {n}", x.dim(0)?),
                });
            }
        }
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut losses = Vec::with_capacity(self.epochs);
        let mut step = 0u64;
        for _ in 0..self.epochs {
            order.shuffle(&mut rng);
            let ex = Executor::new(model)?;
            let mut total = 0.0;
            let mut batches = 0;
            for chunk in order.chunks(self.batch) {
                let idx = Tensor::from_vec(chunk.to_vec(), chunk.len(), y.device())?;
                let xb = xs
                    .iter()
                    .map(|x| x.index_select(&idx, 0))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let yb = y.index_select(&idx, 0)?;
                step += 1;
                let mode = Mode::Train {
                    seed: self.seed ^ step,
                };
                let f = ex.forward_with(model, &xb, mode, self.probes, self.probes)?;
                let mut l = self.loss.compute(&f.outputs[0], &yb)?;
                if !self.objective.is_empty() {
                    l = l.add(&self.objective.loss(&f, self.loss, &yb)?)?;
                }
                let grads = l.backward()?;
                each_step(model, &f, &grads)?;
                opt.step(model, &grads)?;
                model.apply_updates(&f)?;
                total += l.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                batches += 1;
            }
            losses.push(total / batches.max(1) as f64);
        }
        Ok(losses)
    }
}

/// Mean loss and, for class targets, accuracy of a one-output model in
/// evaluation mode, in batches of 512.
///
/// # Errors
/// Shape errors.
pub fn evaluate(model: &Model, x: &Tensor, y: &Tensor, loss: Loss) -> Result<(f64, f64)> {
    let ex = Executor::new(model)?;
    let n = x.dim(0)?;
    let (mut total, mut correct) = (0.0, 0usize);
    let mut start = 0;
    while start < n {
        let len = (n - start).min(512);
        let xb = x.narrow(0, start, len)?;
        let yb = y.narrow(0, start, len)?;
        let out = ex
            .run(model, &[xb], &crate::exec::Run::inference())?
            .outputs
            .remove(0);
        total += loss
            .compute(&out, &yb)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?
            * len as f64;
        if loss == Loss::CrossEntropy {
            let pred: Vec<u32> = out.argmax(1)?.to_vec1()?;
            let truth: Vec<u32> = yb.to_dtype(DType::U32)?.to_vec1()?;
            correct += pred.iter().zip(&truth).filter(|(a, b)| a == b).count();
        }
        start += len;
    }
    Ok((total / n as f64, correct as f64 / n as f64))
}

/// Re-estimate every batch norm's running mean and variance on `x` (in
/// batches of `batch`, in training mode), leaving every trainable parameter
/// as it is. After pruning or resizing, the statistics a batch norm sees
/// have changed while its running estimates have not; re-estimating them
/// alone often recovers much of the accuracy. The estimate is the mean of
/// the batches' statistics weighted by their size (PyTorch's
/// `momentum=None`), not a moving average. Returns how many batch norms
/// were updated.
///
/// # Errors
/// Shape errors, an empty data set or a batch of 0.
pub fn recalibrate_batch_norm(model: &mut Model, x: &Tensor, batch: usize) -> Result<usize> {
    let n = x.dim(0)?;
    if batch == 0 || n == 0 {
        return Err(crate::error::NnError::Invalid {
            what: "batch-norm recalibration".into(),
            reason: format!("{n} samples in batches of {batch}"),
        });
    }
    let ex = Executor::new(model)?;
    let mut sums: HashMap<(VertexId, &'static str), Tensor> = HashMap::new();
    let mut start = 0;
    while start < n {
        let len = (n - start).min(batch);
        let xb = x.narrow(0, start, len)?;
        let f = ex.forward(model, &[xb], Mode::Train { seed: start as u64 }, false)?;
        for (v, name, new) in &f.updates {
            let Some(crate::op::Op::BatchNorm { momentum, .. }) = model.layer(*v).map(|l| &l.op)
            else {
                continue;
            };
            if *momentum <= 0.0 {
                return Err(crate::error::NnError::Layer {
                    vertex: model.graph().name(*v),
                    reason: "a batch norm with momentum 0 never updates its statistics".into(),
                });
            }
            // new = (1 - momentum) · old + momentum · batch statistic.
            let old = model.param(*v, name)?;
            let stat = new
                .sub(&old.affine(1.0 - momentum, 0.0)?)?
                .affine(1.0 / momentum, 0.0)?
                .affine(len as f64, 0.0)?;
            let acc = match sums.remove(&(*v, *name)) {
                Some(s) => s.add(&stat)?,
                None => stat,
            };
            sums.insert((*v, *name), acc);
        }
        start += len;
    }
    let mut layers = std::collections::HashSet::new();
    for ((v, name), sum) in sums {
        model.set_param(v, name, &sum.affine(1.0 / n as f64, 0.0)?)?;
        layers.insert(v);
    }
    Ok(layers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_next_token_loss_scores_each_position_against_the_next_id() {
        // Two positions of a 3-token vocabulary: position 0 says token 2
        // with certainty (a large logit), position 1 is never scored.
        let y = Tensor::from_vec(vec![0f32, 0., 30., 5., 5., 5.], (1, 2, 3), &Device::Cpu).unwrap();
        let right = Tensor::from_vec(vec![0f32, 2.], (1, 2), &Device::Cpu).unwrap();
        let wrong = Tensor::from_vec(vec![0f32, 1.], (1, 2), &Device::Cpu).unwrap();
        let l = |t: &Tensor| {
            Loss::NextToken
                .compute(&y, t)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(l(&right) < 1e-6, "{}", l(&right));
        assert!((l(&wrong) - 30.0).abs() < 1e-3, "{}", l(&wrong));
        let short = Tensor::zeros((1, 1, 3), DType::F32, &Device::Cpu).unwrap();
        let ids = Tensor::zeros((1, 1), DType::F32, &Device::Cpu).unwrap();
        assert!(Loss::NextToken.compute(&short, &ids).is_err());
    }
}
