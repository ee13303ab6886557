//! Dynamic networks inside the mutable graph: conditionals, gates, early
//! exits and mixtures of experts.
//!
//! They are ordinary vertices ([`Op::Cond`], [`Op::Gate`], [`Op::Exit`],
//! [`Op::Moe`]); their branches are the regions of the graph that feed only
//! them (see [`crate::Executor`]). The core sees a conditional, a gate and a
//! mixture as a *select* (the control is free, the branches are tied like
//! the inputs of an add) and an exit as an invariant vertex, so every size
//! change and structural mutation works inside branches and experts.
//!
//! This module runs them (per-sample routing: gather the samples that take
//! a branch, run it on them only, scatter back), builds the usual blocks
//! (gated residuals, early-exit heads, expert layers) and computes the
//! auxiliary training losses.

use candle_core::{DType, Tensor};
use graft_core::{Constraint, VertexId};

use crate::error::{NnError, Result};
use crate::exec::{Choice, Executor, Forward, GateForce, Mode, Rec, RunCtx, Scope};
use crate::model::Model;
use crate::op::{Confidence, GateEstimator, Op, Rule};
use crate::train::Loss;

fn rows_of(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(DType::F32)?.flatten_from(1)?.to_vec2::<f32>()?)
}

/// Softmax over axis 1 of `[N, C]`.
fn softmax(x: &Tensor) -> Result<Tensor> {
    let m = x.max_keepdim(1)?.detach();
    let e = x.broadcast_sub(&m)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(1)?)?)
}

/// `w` of shape `[r]` or `[r, 1]` reshaped to broadcast over a tensor of
/// `rank` axes.
fn per_row(w: &Tensor, rank: usize) -> Result<Tensor> {
    let mut shape = vec![1usize; rank];
    shape[0] = w.dim(0)?;
    Ok(w.reshape(shape)?)
}

/// The branch a control row picks.
fn pick(rule: &Rule, row: &[f32], branches: usize) -> usize {
    match rule {
        Rule::Threshold { threshold } => usize::from(f64::from(row[0]) <= *threshold),
        Rule::Switch => {
            let r = row[0].round();
            if r.is_nan() || r < 0.0 {
                0
            } else {
                (r as usize).min(branches - 1)
            }
        }
        Rule::Argmax => {
            let mut best = 0;
            for (i, &x) in row.iter().enumerate() {
                if x > row[best] {
                    best = i;
                }
            }
            best
        }
    }
}

/// A sample's confidence from its head output row (logits).
fn confidence(c: Confidence, logits: &[f32]) -> f64 {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - m).exp()).sum();
    match c {
        Confidence::MaxSoftmax => 1.0 / z,
        Confidence::NegEntropy => logits
            .iter()
            .map(|&x| {
                let p = (x as f64 - m).exp() / z;
                if p > 0.0 {
                    p * p.ln()
                } else {
                    0.0
                }
            })
            .sum(),
    }
}

/// The control rows of a scope: one row (batch-level, repeated) or one per
/// sample.
fn control_rows(model: &Model, v: VertexId, t: &Tensor, n: usize) -> Result<Vec<Vec<f32>>> {
    let rows = rows_of(t)?;
    let width = model.graph().vertex(v)?.nin()[0];
    if t.rank() != 2 || t.dim(1)? != width {
        return Err(NnError::Layer {
            vertex: model.graph().name(v),
            reason: format!("the control is {:?}, not [rows, {width}]", t.dims()),
        });
    }
    match rows.len() {
        1 => Ok(vec![rows[0].clone(); n]),
        r if r == n => Ok(rows),
        r => Err(NnError::Layer {
            vertex: model.graph().name(v),
            reason: format!("the control has {r} rows, the batch {n}"),
        }),
    }
}

/// Run one dynamic vertex in a scope.
pub(crate) fn eval(
    ex: &Executor,
    ctx: &RunCtx,
    v: VertexId,
    op: &Op,
    sc: &mut Scope,
    rec: &mut Rec,
) -> Result<Tensor> {
    let model = ctx.model;
    let g = model.graph();
    let vx = g.vertex(v)?;
    let inputs = vx.inputs().to_vec();
    let n = sc.n;
    let train = matches!(ctx.opts.mode, Mode::Train { .. });
    let shape = |ex: &Executor, sc: &Scope, pos: usize| -> Result<Vec<usize>> {
        ex.shape_in(model, inputs[pos], sc)
    };
    match op {
        Op::Cond { rule, batch } => {
            let c = sc.get(inputs[0], model)?;
            if *batch && c.dim(0)? != 1 {
                return Err(NnError::Layer {
                    vertex: vx.name().to_string(),
                    reason: format!(
                        "a batch-level conditional takes a control of one row, not {}",
                        c.dim(0)?
                    ),
                });
            }
            let branches = inputs.len() - 1;
            let picks: Vec<usize> = control_rows(model, v, &c, n)?
                .iter()
                .map(|r| pick(rule, r, branches))
                .collect();
            let mut parts = Vec::new();
            let mut out_shape = None;
            for b in 0..branches {
                let rows: Vec<u32> = (0..n as u32).filter(|&i| picks[i as usize] == b).collect();
                if rows.is_empty() {
                    continue;
                }
                let y = ex.branch_on(ctx, v, b + 1, sc, &rows, rec)?;
                out_shape = Some(y.dims()[1..].to_vec());
                parts.push((rows, y));
            }
            rec.decide(
                model,
                v,
                sc,
                picks.into_iter().map(Choice::Branch).collect(),
            );
            let shape = match out_shape {
                Some(s) => s,
                None => shape(ex, sc, 1)?,
            };
            ex.merge(model, n, &shape, parts)
        }
        Op::Gate { estimator } => {
            let logit = sc.get(inputs[0], model)?;
            let learned = ctx.opts.gates == GateForce::Learned;
            if train && learned {
                // Every sample runs the branch; the hard gate multiplies it
                // and passes the sigmoid's gradient to the logit.
                let l = if logit.dim(0)? == 1 && n > 1 {
                    logit.broadcast_as((n, 1))?.contiguous()?
                } else {
                    logit.clone()
                };
                let z = match estimator {
                    GateEstimator::StraightThrough => l.clone(),
                    GateEstimator::Gumbel { tau } => {
                        let Mode::Train { seed } = ctx.opts.mode else {
                            unreachable!("training mode")
                        };
                        let u = uniform(n, seed ^ v.index() as u64, model)?;
                        // logistic noise: log u - log(1 - u)
                        let noise = u.log()?.sub(&u.affine(-1.0, 1.0)?.log()?)?;
                        l.add(&noise)?.affine(1.0 / tau, 0.0)?
                    }
                };
                let soft = candle_core::Tensor::ones_like(&z)?
                    .broadcast_div(&z.neg()?.exp()?.affine(1.0, 1.0)?)?;
                let hard = soft.ge(0.5)?.to_dtype(soft.dtype())?;
                let gate = hard.add(&soft.sub(&soft.detach())?)?;
                let y = ex.branch(ctx, v, 1, sc, None, rec)?;
                let on: Vec<f32> = hard
                    .flatten_all()?
                    .to_vec1::<f32>()
                    .or_else(|_| hard.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>())?;
                rec.decide(
                    model,
                    v,
                    sc,
                    on.iter().map(|&x| Choice::Gate(x > 0.5)).collect(),
                );
                rec.gates.push((v, gate.clone()));
                return Ok(y.broadcast_mul(&per_row(&gate, y.rank())?)?);
            }
            let on: Vec<bool> = match ctx.opts.gates {
                GateForce::On => vec![true; n],
                GateForce::Off => vec![false; n],
                GateForce::Learned => control_rows(model, v, &logit, n)?
                    .iter()
                    .map(|r| r[0] > 0.0)
                    .collect(),
            };
            let rows: Vec<u32> = (0..n as u32).filter(|&i| on[i as usize]).collect();
            rec.decide(model, v, sc, on.iter().map(|&b| Choice::Gate(b)).collect());
            if rows.is_empty() {
                let s = shape(ex, sc, 1)?;
                return ex.merge(model, n, &s, Vec::new());
            }
            let y = ex.branch_on(ctx, v, 1, sc, &rows, rec)?;
            let s = y.dims()[1..].to_vec();
            ex.merge(model, n, &s, vec![(rows, y)])
        }
        Op::Exit {
            confidence: c,
            threshold,
        } => {
            let head = sc.get(inputs[0], model)?;
            if train || !ctx.opts.exits {
                let rest = ex.branch(ctx, v, 1, sc, None, rec)?;
                rec.exit_heads.push((v, head));
                rec.decide(model, v, sc, vec![Choice::Exit(false); n]);
                return Ok(rest);
            }
            let leave: Vec<bool> = rows_of(&head)?
                .iter()
                .map(|r| confidence(*c, r) >= *threshold)
                .collect();
            rec.decide(
                model,
                v,
                sc,
                leave.iter().map(|&b| Choice::Exit(b)).collect(),
            );
            let stay: Vec<u32> = (0..n as u32).filter(|&i| !leave[i as usize]).collect();
            let gone: Vec<u32> = (0..n as u32).filter(|&i| leave[i as usize]).collect();
            if stay.is_empty() {
                return Ok(head);
            }
            let rest = ex.branch_on(ctx, v, 1, sc, &stay, rec)?;
            if gone.is_empty() {
                return Ok(rest);
            }
            let idx = Tensor::from_vec(gone.clone(), gone.len(), model.device())?;
            let left = head.index_select(&idx, 0)?;
            let s = rest.dims()[1..].to_vec();
            ex.merge(model, n, &s, vec![(gone, left), (stay, rest)])
        }
        Op::Moe { k, capacity } => {
            let logits = sc.get(inputs[0], model)?;
            let experts = inputs.len() - 1;
            let logits = if logits.dim(0)? == 1 && n > 1 {
                logits.broadcast_as((n, experts))?.contiguous()?
            } else {
                logits
            };
            let probs = softmax(&logits)?;
            let p = rows_of(&probs)?;
            // Top-k per sample (ties to the lower index).
            let mut chosen: Vec<Vec<usize>> = Vec::with_capacity(n);
            let mut mask = vec![0f32; n * experts];
            let mut count = vec![0usize; experts];
            for (i, row) in p.iter().enumerate() {
                let mut idx: Vec<usize> = (0..experts).collect();
                idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                idx.truncate(*k);
                for &e in &idx {
                    mask[i * experts + e] = 1.0;
                    count[e] += 1;
                }
                chosen.push(idx);
            }
            let cap = capacity.map(|f| (f * (*k * n) as f64 / experts as f64).ceil() as usize);
            let mut rows: Vec<Vec<u32>> = vec![Vec::new(); experts];
            for (i, idx) in chosen.iter().enumerate() {
                for &e in idx {
                    if cap.is_none_or(|c| rows[e].len() < c) {
                        rows[e].push(i as u32);
                    }
                }
            }
            let mask_t =
                Tensor::from_vec(mask, (n, experts), model.device())?.to_dtype(probs.dtype())?;
            let top = probs.mul(&mask_t)?;
            let weights = top.broadcast_div(&top.sum_keepdim(1)?)?;
            let w = rows_of(&weights)?;
            let mut parts = Vec::new();
            let mut out_shape = None;
            for (e, r) in rows.iter().enumerate() {
                if r.is_empty() {
                    continue;
                }
                let y = ex.branch_on(ctx, v, e + 1, sc, r, rec)?;
                let idx = Tensor::from_vec(r.clone(), r.len(), model.device())?;
                let we = weights.index_select(&idx, 0)?.narrow(1, e, 1)?;
                out_shape = Some(y.dims()[1..].to_vec());
                parts.push((r.clone(), y.broadcast_mul(&per_row(&we, y.rank())?)?));
            }
            if rec.tracing {
                let mut per: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
                for (e, r) in rows.iter().enumerate() {
                    for &i in r {
                        per[i as usize].push((e, w[i as usize][e]));
                    }
                }
                rec.decide(model, v, sc, per.into_iter().map(Choice::Experts).collect());
            }
            // Load balancing (Switch Transformer): E · Σ_e f_e · P_e, with f_e
            // the share of top-k assignments and P_e the mean router
            // probability of expert e.
            let f: Vec<f32> = count
                .iter()
                .map(|&c| c as f32 / (n * k).max(1) as f32)
                .collect();
            let f = Tensor::from_vec(f, experts, model.device())?.to_dtype(probs.dtype())?;
            let balance = probs
                .mean(0)?
                .mul(&f)?
                .sum_all()?
                .affine(experts as f64, 0.0)?;
            rec.balance.push((v, balance));
            let shape = match out_shape {
                Some(s) => s,
                None => shape(ex, sc, 1)?,
            };
            ex.merge(model, n, &shape, parts)
        }
        Op::Input
        | Op::Dense { .. }
        | Op::MaskedDense { .. }
        | Op::LearnableMaskedDense { .. }
        | Op::Conv1d(_)
        | Op::Conv2d(_)
        | Op::MaskedConv2d(_)
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
        | Op::ActivationAt { .. } => Err(NnError::Layer {
            vertex: vx.name().to_string(),
            reason: format!("{} is not a dynamic op", op.name()),
        }),
    }
}

/// `[n, 1]` uniform values in (0, 1), seeded.
fn uniform(n: usize, seed: u64, model: &Model) -> Result<Tensor> {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let u: Vec<f32> = (0..n)
        .map(|_| rng.random_range(1e-6f32..1.0 - 1e-6))
        .collect();
    Ok(Tensor::from_vec(u, (n, 1), model.device())?.to_dtype(model.dtype())?)
}

/// The auxiliary terms of a dynamic network's training loss.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Objective {
    /// Weight of each early exit's head loss, in execution order (see
    /// [`Forward::exit_heads`]; the main output's loss has weight 1). A
    /// head without a weight here adds nothing.
    pub exit_weights: Vec<f64>,
    /// Ask the gates to be on for this share of samples: adds weight ·
    /// (share of samples gated on − rate)² per gate, the share taken over
    /// the straight-through gates (its gradient reaches the gate heads).
    /// (rate, weight).
    pub gate_rate: Option<(f64, f64)>,
    /// Weight of the experts' load-balancing loss (0.01 is usual).
    pub balance: f64,
}

impl Objective {
    /// True when it adds nothing.
    pub fn is_empty(&self) -> bool {
        self.gate_rate.is_none() && self.balance == 0.0 && self.exit_weights.is_empty()
    }

    /// The auxiliary loss of a training pass, to add to the main loss (a
    /// scalar; 0 when nothing applies).
    ///
    /// # Errors
    /// Shape errors between heads and targets.
    pub fn loss(&self, f: &Forward, loss: Loss, target: &Tensor) -> Result<Tensor> {
        let device = f
            .outputs
            .first()
            .map(|t| t.device().clone())
            .unwrap_or(candle_core::Device::Cpu);
        let dtype = f.outputs.first().map_or(DType::F32, |t| t.dtype());
        let mut total = Tensor::zeros((), dtype, &device)?;
        for (i, (_, head)) in f.exit_heads.iter().enumerate() {
            let w = self.exit_weights.get(i).copied().unwrap_or(0.0);
            if w != 0.0 {
                total = total.add(&loss.compute(head, target)?.affine(w, 0.0)?)?;
            }
        }
        if let Some((rate, w)) = self.gate_rate {
            for (_, p) in &f.gates {
                let d = p.mean_all()?.affine(1.0, -rate)?;
                total = total.add(&d.sqr()?.affine(w, 0.0)?)?;
            }
        }
        if self.balance != 0.0 {
            for (_, b) in &f.balance {
                total = total.add(&b.affine(self.balance, 0.0)?)?;
            }
        }
        Ok(total)
    }
}

/// How a gate head reads its block's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateHead {
    /// A dense layer on `[N, F]` features.
    Dense,
    /// Global average pooling, then a dense layer (for `[N, C, H, W]`).
    PooledDense,
}

impl Model {
    /// Add a constraint to a vertex (e.g. [`Constraint::Fixed`] on a router
    /// whose size must stay the number of experts).
    ///
    /// # Errors
    /// Unknown vertex, a constraint the vertex cannot take.
    pub fn constrain(&mut self, v: VertexId, c: Constraint) -> Result<()> {
        self.add_constraint(v, c)
    }

    /// A gated residual block `x + gate(head(x), body(x))`: `body` builds
    /// the branch from `x` and returns its last vertex (of `x`'s size); the
    /// head (fixed at one output) is `{name}.head`, the gate `{name}.gate`
    /// and the sum `name`. Returns the sum.
    ///
    /// # Errors
    /// As [`Model::add`]; the body's errors.
    pub fn gated_residual(
        &mut self,
        name: &str,
        x: VertexId,
        head: GateHead,
        estimator: GateEstimator,
        body: impl FnOnce(&mut Model, VertexId) -> Result<VertexId>,
    ) -> Result<VertexId> {
        let mut m = self.clone();
        let feat = match head {
            GateHead::Dense => x,
            GateHead::PooledDense => {
                m.add(&format!("{name}.pool"), Op::GlobalAvgPool, &[x], None)?
            }
        };
        let h = m.add(
            &format!("{name}.head"),
            Op::Dense { bias: true },
            &[feat],
            Some(1),
        )?;
        m.constrain(h, Constraint::Fixed)?;
        let out = body(&mut m, x)?;
        let gate = m.add(
            &format!("{name}.gate"),
            Op::Gate { estimator },
            &[h, out],
            None,
        )?;
        let sum = m.add(name, Op::Add, &[x, gate], None)?;
        *self = m;
        Ok(sum)
    }

    /// A mixture of `experts` experts with top-`k` routing on `x`: the router
    /// `{name}.router` (dense, fixed at `experts` outputs), expert `i` built
    /// by `expert(model, i, x)`, and the mixture `name`, which is returned.
    ///
    /// # Errors
    /// As [`Model::add`]; the experts' errors.
    pub fn mixture(
        &mut self,
        name: &str,
        x: VertexId,
        experts: usize,
        k: usize,
        capacity: Option<f64>,
        mut expert: impl FnMut(&mut Model, usize, VertexId) -> Result<VertexId>,
    ) -> Result<VertexId> {
        let mut m = self.clone();
        let router = m.add(
            &format!("{name}.router"),
            Op::Dense { bias: true },
            &[x],
            Some(experts),
        )?;
        m.constrain(router, Constraint::Fixed)?;
        let mut ins = vec![router];
        for i in 0..experts {
            ins.push(expert(&mut m, i, x)?);
        }
        let out = m.add(name, Op::Moe { k, capacity }, &ins, None)?;
        *self = m;
        Ok(out)
    }
}

fn selects() -> std::result::Result<crate::op::Declared, String> {
    Ok(crate::op::Declared {
        kind: graft_core::SizeKind::Select,
        constraints: Vec::new(),
    })
}

/// The size rule of a conditional: it selects one of its branches (inputs
/// after the control), which its rule must be able to name.
pub(crate) fn declare_cond(
    rule: &Rule,
    nin: &[usize],
) -> std::result::Result<crate::op::Declared, String> {
    let branches = nin.len().saturating_sub(1);
    match rule {
        Rule::Threshold { .. } if branches != 2 => Err(format!(
            "a threshold picks one of 2 branches, not {branches}"
        )),
        Rule::Threshold { .. } | Rule::Switch if nin.first() != Some(&1) => {
            Err(format!("the control has 1 column, not {:?}", nin.first()))
        }
        Rule::Argmax if nin.first() != Some(&branches) => Err(format!(
            "an argmax control has one column per branch ({branches}), not {:?}",
            nin.first()
        )),
        Rule::Threshold { .. } | Rule::Switch | Rule::Argmax if branches == 0 => {
            Err("a conditional needs a branch".into())
        }
        Rule::Threshold { .. } | Rule::Switch | Rule::Argmax => selects(),
    }
}

/// The size rule of a gate: a 1-column logit and the branch it scales.
pub(crate) fn declare_gate(nin: &[usize]) -> std::result::Result<crate::op::Declared, String> {
    if nin.len() != 2 || nin[0] != 1 {
        return Err(format!(
            "a gate reads a 1-column logit and a branch, not sizes {nin:?}"
        ));
    }
    selects()
}

/// The size rule of a mixture: one router logit per expert, top-`k` of
/// them, a positive capacity factor.
pub(crate) fn declare_moe(
    k: usize,
    capacity: Option<f64>,
    nin: &[usize],
) -> std::result::Result<crate::op::Declared, String> {
    let experts = nin.len().saturating_sub(1);
    if experts == 0 || nin[0] != experts {
        return Err(format!(
            "the router has one logit per expert: {experts} experts, sizes {nin:?}"
        ));
    }
    if k == 0 || k > experts {
        return Err(format!("top-{k} of {experts} experts"));
    }
    if capacity.is_some_and(|c| c <= 0.0 || c.is_nan()) {
        return Err(format!("capacity factor {capacity:?}"));
    }
    selects()
}

/// The size rule of an early exit: invariant, reading a head and the rest.
pub(crate) fn declare_exit(
    threshold: f64,
    nin: &[usize],
) -> std::result::Result<crate::op::Declared, String> {
    if nin.len() != 2 {
        return Err(format!(
            "an exit reads a head and the rest of the network, not {} inputs",
            nin.len()
        ));
    }
    if threshold.is_nan() {
        return Err("threshold NaN".into());
    }
    Ok(crate::op::Declared {
        kind: graft_core::SizeKind::Invariant,
        constraints: Vec::new(),
    })
}
