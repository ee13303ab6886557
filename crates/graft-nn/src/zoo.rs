//! Models of known shapes, with random weights, for benchmarks and demos.

use graft_core::VertexId;

use crate::error::Result;
use crate::model::Model;
use crate::op::{Activation, Conv, Groups, Op};

fn conv(k: usize, stride: usize) -> Op {
    Op::Conv2d(Conv {
        kernel: k.into(),
        stride: stride.into(),
        padding: (k / 2).into(),
        dilation: 1.into(),
        groups: Groups::One,
        bias: false,
    })
}

fn bn() -> Op {
    Op::BatchNorm {
        eps: 1e-5,
        momentum: 0.1,
    }
}

fn relu() -> Op {
    Op::Activation(Activation::Relu)
}

struct Builder {
    m: Model,
    n: usize,
}

impl Builder {
    fn add(&mut self, p: &str, op: Op, ins: &[VertexId], nout: Option<usize>) -> Result<VertexId> {
        self.n += 1;
        let name = format!("{p}{}", self.n);
        self.m.add(&name, op, ins, nout)
    }
    /// conv -> batch norm (-> relu).
    fn cbr(&mut self, x: VertexId, k: usize, s: usize, out: usize, act: bool) -> Result<VertexId> {
        let c = self.add("conv", conv(k, s), &[x], Some(out))?;
        let b = self.add("bn", bn(), &[c], None)?;
        if act {
            self.add("relu", relu(), &[b], None)
        } else {
            Ok(b)
        }
    }
}

/// ResNet-50 (torchvision's layout: 7×7 stem, padded 3×3 max pool,
/// bottleneck blocks 3-4-6-3 with widths 64 to 512 and expansion 4, global
/// pool, 1000 classes): 25.6M parameters.
///
/// # Errors
/// None in practice (the construction is fixed).
pub fn resnet50(seed: u64) -> Result<Model> {
    let mut b = Builder {
        m: Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed),
        n: 0,
    };
    let x = b.m.input("image", 3)?;
    let s = b.cbr(x, 7, 2, 64, true)?;
    let mut h = b.add(
        "pool",
        Op::MaxPool2d {
            kernel: 3.into(),
            stride: 2.into(),
            padding: 1.into(),
        },
        &[s],
        None,
    )?;
    for (stage, (blocks, w)) in [(3, 64usize), (4, 128), (6, 256), (3, 512)]
        .into_iter()
        .enumerate()
    {
        for blk in 0..blocks {
            let stride = if stage > 0 && blk == 0 { 2 } else { 1 };
            let a = b.cbr(h, 1, 1, w, true)?;
            let c = b.cbr(a, 3, stride, w, true)?;
            let d = b.cbr(c, 1, 1, 4 * w, false)?;
            let short = if blk == 0 {
                b.cbr(h, 1, stride, 4 * w, false)?
            } else {
                h
            };
            let sum = b.add("add", Op::Add, &[d, short], None)?;
            h = b.add("relu", relu(), &[sum], None)?;
        }
    }
    let p = b.add("gap", Op::GlobalAvgPool, &[h], None)?;
    b.add("fc", Op::Dense { bias: true }, &[p], Some(1000))?;
    Ok(b.m)
}

/// ResNet-18 with a CIFAR stem (3×3 convolution, no max pool): basic blocks
/// 2-2-2-2 with 64 to 512 channels, batch norm, global pool, 10 classes.
///
/// # Errors
/// None in practice (the construction is fixed).
pub fn resnet18_cifar(seed: u64) -> Result<Model> {
    let mut b = Builder {
        m: Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed),
        n: 0,
    };
    let x = b.m.input("image", 3)?;
    let mut h = b.cbr(x, 3, 1, 64, true)?;
    let mut width = 64;
    for (stage, out) in [64usize, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let r1 = b.cbr(h, 3, stride, out, true)?;
            let b2 = b.cbr(r1, 3, 1, out, false)?;
            let short = if stride != 1 || width != out {
                b.cbr(h, 1, stride, out, false)?
            } else {
                h
            };
            let sum = b.add("add", Op::Add, &[b2, short], None)?;
            h = b.add("relu", relu(), &[sum], None)?;
            width = out;
        }
    }
    let p = b.add("gap", Op::GlobalAvgPool, &[h], None)?;
    b.add("fc", Op::Dense { bias: true }, &[p], Some(10))?;
    Ok(b.m)
}

/// The seed's `DynamicNet(input, hidden, output)` as one graph: inputs `x`
/// (`input` features) and `control` (1 column), then
/// `fc1 -> relu1 -> [fc2 -> relu2 if control > 0.5] -> fc3`, where the
/// conditional `cond` picks `relu2` above the threshold and `relu1`
/// otherwise. Weights are seeded. With `batch`, the control is one value
/// for the whole batch (as in the seed; exported to ONNX as `If`);
/// otherwise each sample may carry its own.
///
/// # Errors
/// Sizes of 0.
pub fn dynamic_net(
    input: usize,
    hidden: usize,
    output: usize,
    batch: bool,
    seed: u64,
) -> Result<Model> {
    let mut m = Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed);
    let x = m.input("x", input)?;
    let c = m.input("control", 1)?;
    let fc1 = m.add("fc1", Op::Dense { bias: true }, &[x], Some(hidden))?;
    let r1 = m.add("relu1", relu(), &[fc1], None)?;
    let fc2 = m.add("fc2", Op::Dense { bias: true }, &[r1], Some(hidden))?;
    let r2 = m.add("relu2", relu(), &[fc2], None)?;
    let cond = m.add(
        "cond",
        Op::Cond {
            rule: crate::op::Rule::Threshold { threshold: 0.5 },
            batch,
        },
        &[c, r2, r1],
        None,
    )?;
    m.add("fc3", Op::Dense { bias: true }, &[cond], Some(output))?;
    Ok(m)
}

/// A gated residual MLP: `x(features) -> stem(hidden) -> relu`, then
/// `blocks` SkipNet-style blocks `h + gate(head(h), relu(dense(h)))`, then a
/// dense head of `classes`. Straight-through gates; seeded weights.
///
/// # Errors
/// Sizes of 0.
pub fn gated_mlp(
    features: usize,
    hidden: usize,
    blocks: usize,
    classes: usize,
    seed: u64,
) -> Result<Model> {
    use crate::dynamic::GateHead;
    use crate::op::GateEstimator;
    let mut m = Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed);
    let x = m.input("x", features)?;
    let s = m.add("stem", Op::Dense { bias: true }, &[x], Some(hidden))?;
    let mut at = m.add("stem.relu", relu(), &[s], None)?;
    for b in 0..blocks {
        at = m.gated_residual(
            &format!("block{b}"),
            at,
            GateHead::Dense,
            GateEstimator::StraightThrough,
            |m, h| {
                let d = m.add(
                    &format!("block{b}.dense"),
                    Op::Dense { bias: true },
                    &[h],
                    Some(hidden),
                )?;
                m.add(&format!("block{b}.relu"), relu(), &[d], None)
            },
        )?;
    }
    m.add("head", Op::Dense { bias: true }, &[at], Some(classes))?;
    Ok(m)
}

/// An MLP with early exits: `stages` dense-relu stages of `hidden`, a side
/// head of `classes` after each stage but the last and a final head; exit
/// `exit{i}` takes head `i` when its `confidence` reaches `threshold`.
///
/// # Errors
/// Sizes of 0, fewer than 2 stages.
pub fn early_exit_mlp(
    features: usize,
    hidden: usize,
    stages: usize,
    classes: usize,
    confidence: crate::op::Confidence,
    threshold: f64,
    seed: u64,
) -> Result<Model> {
    if stages < 2 {
        return Err(crate::error::NnError::Invalid {
            what: "early_exit_mlp stages".into(),
            reason: "an exit needs at least 2 stages".into(),
        });
    }
    let mut m = Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed);
    let mut at = m.input("x", features)?;
    let mut heads = Vec::new();
    for i in 0..stages {
        let d = m.add(
            &format!("stage{i}"),
            Op::Dense { bias: true },
            &[at],
            Some(hidden),
        )?;
        at = m.add(&format!("stage{i}.relu"), relu(), &[d], None)?;
        if i + 1 < stages {
            heads.push(m.add(
                &format!("head{i}"),
                Op::Dense { bias: true },
                &[at],
                Some(classes),
            )?);
        }
    }
    let mut out = m.add("final", Op::Dense { bias: true }, &[at], Some(classes))?;
    for (i, h) in heads.into_iter().enumerate().rev() {
        let op = Op::Exit {
            confidence,
            threshold,
        };
        out = m.add(&format!("exit{i}"), op, &[h, out], None)?;
    }
    Ok(m)
}

/// A mixture-of-experts layer on `[N, features]`: a router and `experts`
/// experts `dense(features -> hidden) -> relu -> dense(hidden -> features)`,
/// top-`k` routing, then a dense head of `classes`.
///
/// # Errors
/// Sizes of 0, k outside 1..=experts.
pub fn moe_mlp(
    features: usize,
    hidden: usize,
    experts: usize,
    k: usize,
    classes: usize,
    seed: u64,
) -> Result<Model> {
    let mut m = Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed);
    let x = m.input("x", features)?;
    let mix = m.mixture("moe", x, experts, k, None, |m, e, x| {
        let a = m.add(
            &format!("expert{e}.in"),
            Op::Dense { bias: true },
            &[x],
            Some(hidden),
        )?;
        let r = m.add(&format!("expert{e}.relu"), relu(), &[a], None)?;
        m.add(
            &format!("expert{e}.out"),
            Op::Dense { bias: true },
            &[r],
            Some(features),
        )
    })?;
    m.add("head", Op::Dense { bias: true }, &[mix], Some(classes))?;
    Ok(m)
}

/// A conditional over `branches` dense-relu branches of `hidden` on the
/// features of `x`, picked per sample by `rule` from input `control` (one
/// column for a switch, one per branch for an argmax), then a dense head
/// of `classes`. Seeded weights.
///
/// # Errors
/// Sizes of 0, a threshold rule with other than 2 branches.
pub fn switch_mlp(
    features: usize,
    hidden: usize,
    branches: usize,
    classes: usize,
    rule: crate::op::Rule,
    seed: u64,
) -> Result<Model> {
    let mut m = Model::with(candle_core::Device::Cpu, candle_core::DType::F32, seed);
    let x = m.input("x", features)?;
    let width = match rule {
        crate::op::Rule::Argmax => branches,
        _ => 1,
    };
    let c = m.input("control", width)?;
    let stem = m.add("stem", Op::Dense { bias: true }, &[x], Some(hidden))?;
    let mut ins = vec![c];
    for b in 0..branches {
        let d = m.add(
            &format!("branch{b}"),
            Op::Dense { bias: true },
            &[stem],
            Some(hidden),
        )?;
        ins.push(m.add(&format!("branch{b}.relu"), relu(), &[d], None)?);
    }
    let cond = m.add("cond", Op::Cond { rule, batch: false }, &ins, None)?;
    m.add("head", Op::Dense { bias: true }, &[cond], Some(classes))?;
    Ok(m)
}
