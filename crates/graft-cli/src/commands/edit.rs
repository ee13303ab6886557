//! `graft insert`, `remove`, `connect` and `disconnect`: structural
//! mutations by vertex name, committed all or nothing.

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::{Activation, Conv, Init, NewLayer, Op};
use graft::{Alignment, Connect, Edit, Patch, Reroute};

use crate::io::{load, save};

/// What `graft insert` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewOp {
    /// A dense layer initialised to the identity.
    Dense,
    /// A 3x3 convolution initialised to the identity (Dirac kernel).
    Conv3x3,
    /// A ReLU.
    Relu,
    /// An identity vertex.
    Identity,
    /// A batch norm with unit scale and zero statistics (eval: identity).
    BatchNorm,
}

impl NewOp {
    fn op(self) -> Op {
        match self {
            NewOp::Dense => Op::Dense { bias: true },
            NewOp::Conv3x3 => Op::Conv2d(Conv::same(3)),
            NewOp::Relu => Op::Activation(Activation::Relu),
            NewOp::Identity => Op::Identity,
            NewOp::BatchNorm => Op::BatchNorm {
                eps: 1e-5,
                momentum: 0.1,
            },
        }
    }
}

/// One structural edit.
pub enum Change<'a> {
    Insert {
        after: &'a str,
        name: &'a str,
        op: NewOp,
        consumers: &'a [String],
    },
    Remove(&'a str),
    /// The residual block ending in this add.
    RemoveBlock(&'a str),
    Connect {
        from: &'a str,
        to: &'a str,
        position: Option<usize>,
    },
    Disconnect {
        from: &'a str,
        to: &'a str,
        nth: usize,
    },
}

pub fn run(path: &Path, change: Change, out: &Path, json_out: bool) -> Result<String> {
    let mut l = load(path)?;
    let m = &mut l.model;
    let known = |m: &graft::nn::Model, name: &str| {
        m.id(name)
            .with_context(|| format!("vertex `{name}` in `{}`", path.display()))
    };
    // Where sizes must be aligned (removing a vertex whose input and output
    // differ, joining an add), neurons with the smallest weights go first.
    let align = || -> Result<Alignment> {
        let u = graft::nn::utility::magnitude(m)
            .with_context(|| format!("magnitudes of `{}`", path.display()))?;
        Ok(Alignment::default().with_utility(u))
    };
    let (patch, layers, what) = match change {
        Change::Insert {
            after,
            name,
            op,
            consumers,
        } => {
            let a = known(m, after)?;
            let reroute = if consumers.is_empty() {
                Reroute::All
            } else {
                let mut ids = Vec::new();
                for c in consumers {
                    known(m, c)?;
                    ids.push(c.as_str().into());
                }
                Reroute::Only(ids)
            };
            let layer = NewLayer::new(name, op.op(), Init::Identity);
            let n = m.graph().nout(a)?;
            let vertex = layer.vertex(n)?;
            let patch = Patch::new().push(Edit::Insert {
                after: after.into(),
                vertex,
                reroute,
                utility: Default::default(),
            });
            (
                patch,
                vec![layer],
                format!("inserted `{name}` after `{after}`"),
            )
        }
        Change::Remove(name) => {
            known(m, name)?;
            let patch = Patch::new().push(Edit::Remove {
                vertex: name.into(),
                connect: Connect::Inputs,
                align: align()?,
            });
            (patch, vec![], format!("removed `{name}`"))
        }
        Change::RemoveBlock(name) => {
            let a = known(m, name)?;
            let block = graft::residual_block(m.graph(), a)?;
            let patch = Patch::new().remove_residual_block(m.graph(), a)?;
            (
                patch,
                vec![],
                format!(
                    "removed the residual block ending in `{name}` ({} vertices and the add)",
                    block.len()
                ),
            )
        }
        Change::Connect { from, to, position } => {
            known(m, from)?;
            known(m, to)?;
            let patch = Patch::new().push(Edit::AddEdge {
                from: from.into(),
                to: to.into(),
                position,
                align: align()?,
            });
            (patch, vec![], format!("connected `{from}` to `{to}`"))
        }
        Change::Disconnect { from, to, nth } => {
            known(m, from)?;
            known(m, to)?;
            let patch = Patch::new().push(Edit::RemoveEdge {
                from: from.into(),
                to: to.into(),
                nth,
            });
            (patch, vec![], format!("disconnected `{from}` from `{to}`"))
        }
    };
    let done = m
        .commit(&patch, &layers)
        .with_context(|| format!("editing `{}`", path.display()))?;
    save(m, &l.interface, out)?;
    if json_out {
        let g = m.graph();
        let names = |ids: &[graft::VertexId]| ids.iter().map(|&v| g.name(v)).collect::<Vec<_>>();
        let c = &done.committed;
        let doc = serde_json::json!({
            "change": what,
            "created": names(&c.created),
            "removed": c.removed.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
            "resized": c.resized.iter().map(|&v| serde_json::json!({
                "vertex": g.name(v),
                "nin": g.nin(v).map(<[usize]>::to_vec).unwrap_or_default(),
                "nout": g.nout(v).unwrap_or(0),
            })).collect::<Vec<_>>(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    Ok(format!(
        "{what}\n\n{}\nwrote {}\n",
        done.committed.render(m.graph()),
        out.display()
    ))
}
