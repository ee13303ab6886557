//! Structural edits from Python: `graft.Patch`, a list of edits that a
//! model commits together or not at all (`Model.commit`), and the edits
//! one at a time (`Model.insert`, `remove`, `remove_block`, `connect`,
//! `disconnect`). The same edits as `graft insert|remove|connect|
//! disconnect` on the command line, with new layers starting as the
//! identity (so the function is kept) and alignments by magnitude.

use std::collections::HashMap;

use graft::nn::{Activation, Conv, Init, NewLayer, Op};
use graft::{Alignment, Connect, Edit, Reroute};
use pyo3::prelude::*;

use crate::errors;

/// One edit, as Python gives it.
#[derive(Debug, Clone)]
pub enum PyEdit {
    Insert {
        after: String,
        name: String,
        op: String,
        consumers: Option<Vec<String>>,
    },
    Remove(String),
    RemoveBlock(String),
    Connect {
        from: String,
        to: String,
        position: Option<usize>,
    },
    Disconnect {
        from: String,
        to: String,
        nth: usize,
    },
}

/// Edits committed together by `Model.commit`: planned one after the
/// other on a draft of the model and applied at once, or refused with
/// the model untouched. Later edits may name vertices earlier ones insert.
#[pyclass(module = "graft", unsendable)]
#[derive(Default)]
pub struct Patch {
    pub edits: Vec<PyEdit>,
}

#[pymethods]
impl Patch {
    #[new]
    fn new() -> Self {
        Patch::default()
    }

    /// Insert a new vertex `name` after `after` (op: "identity", "relu",
    /// "dense", "conv3x3" or "batchnorm", starting as the identity), read
    /// by all of `after`'s consumers or only `consumers`.
    #[pyo3(signature = (after, name, op = "identity", consumers = None))]
    fn insert<'py>(
        mut slf: PyRefMut<'py, Self>,
        after: String,
        name: String,
        op: &str,
        consumers: Option<Vec<String>>,
    ) -> PyRefMut<'py, Self> {
        slf.edits.push(PyEdit::Insert {
            after,
            name,
            op: op.to_string(),
            consumers,
        });
        slf
    }

    /// Remove a vertex, its consumers reading its inputs.
    fn remove(mut slf: PyRefMut<'_, Self>, vertex: String) -> PyRefMut<'_, Self> {
        slf.edits.push(PyEdit::Remove(vertex));
        slf
    }

    /// Remove the residual block ending in the add `vertex`.
    fn remove_block(mut slf: PyRefMut<'_, Self>, vertex: String) -> PyRefMut<'_, Self> {
        slf.edits.push(PyEdit::RemoveBlock(vertex));
        slf
    }

    /// Add an edge from `src` into `dst` (at input `position`, by default
    /// last).
    #[pyo3(signature = (src, dst, position = None))]
    fn connect(
        mut slf: PyRefMut<'_, Self>,
        src: String,
        dst: String,
        position: Option<usize>,
    ) -> PyRefMut<'_, Self> {
        slf.edits.push(PyEdit::Connect {
            from: src,
            to: dst,
            position,
        });
        slf
    }

    /// Remove the `nth` edge from `src` into `dst`.
    #[pyo3(signature = (src, dst, nth = 0))]
    fn disconnect(
        mut slf: PyRefMut<'_, Self>,
        src: String,
        dst: String,
        nth: usize,
    ) -> PyRefMut<'_, Self> {
        slf.edits.push(PyEdit::Disconnect {
            from: src,
            to: dst,
            nth,
        });
        slf
    }

    fn __len__(&self) -> usize {
        self.edits.len()
    }

    fn __repr__(&self) -> String {
        format!("<graft.Patch: {} edits>", self.edits.len())
    }
}

fn new_op(op: &str) -> PyResult<Op> {
    Ok(match op {
        "identity" => Op::Identity,
        "relu" => Op::Activation(Activation::Relu),
        "dense" => Op::Dense { bias: true },
        "conv3x3" => Op::Conv2d(Conv::same(3)),
        "batchnorm" => Op::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        },
        other => {
            return Err(errors::data(format!(
                "op `{other}`: identity, relu, dense, conv3x3 or batchnorm"
            )))
        }
    })
}

/// Commit `edits` to `model` as one patch: all or nothing.
pub fn commit(model: &mut graft::nn::Model, edits: &[PyEdit]) -> PyResult<()> {
    let g = model.graph();
    let align = |m: &graft::nn::Model| -> PyResult<Alignment> {
        let u = graft::nn::utility::magnitude(m).map_err(errors::nn)?;
        Ok(Alignment::default().with_utility(u))
    };
    let known = |name: &str| model.id(name).map_err(errors::nn);
    let mut patch = graft::Patch::new();
    let mut layers = Vec::new();
    // Sizes of the vertices inserted so far, for inserts after them.
    let mut sizes: HashMap<String, usize> = HashMap::new();
    for e in edits {
        patch = match e {
            PyEdit::Insert {
                after,
                name,
                op,
                consumers,
            } => {
                let n = match model.id(after) {
                    Ok(a) => g.nout(a).map_err(errors::graph)?,
                    Err(e) => *sizes.get(after).ok_or_else(|| errors::nn(e))?,
                };
                let reroute = match consumers {
                    None => Reroute::All,
                    Some(cs) => Reroute::Only(cs.iter().map(|c| c.as_str().into()).collect()),
                };
                let layer = NewLayer::new(name, new_op(op)?, Init::Identity);
                let vertex = layer.vertex(n).map_err(errors::nn)?;
                sizes.insert(name.clone(), n);
                layers.push(layer);
                patch.push(Edit::Insert {
                    after: after.as_str().into(),
                    vertex,
                    reroute,
                    utility: Default::default(),
                })
            }
            PyEdit::Remove(v) => patch.push(Edit::Remove {
                vertex: v.as_str().into(),
                connect: Connect::Inputs,
                align: align(model)?,
            }),
            PyEdit::RemoveBlock(v) => patch
                .remove_residual_block(g, known(v)?)
                .map_err(errors::graph)?,
            PyEdit::Connect { from, to, position } => patch.push(Edit::AddEdge {
                from: from.as_str().into(),
                to: to.as_str().into(),
                position: *position,
                align: align(model)?,
            }),
            PyEdit::Disconnect { from, to, nth } => patch.push(Edit::RemoveEdge {
                from: from.as_str().into(),
                to: to.as_str().into(),
                nth: *nth,
            }),
        };
    }
    model.commit(&patch, &layers).map_err(errors::nn)?;
    Ok(())
}
