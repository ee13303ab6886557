//! Saving and loading: the graph with every layer's op as JSON, the
//! parameters and buffers as safetensors named `vertex/param`. Vertices are
//! written in topological order (ties by id), so a loaded model runs its
//! inputs and outputs in the same order and computes bit for bit the same.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor, Var};
use graft_core::json::{GraphSpec, VertexSpec};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::layers::Vars;
use crate::model::{Layer, Model};
use crate::op::Op;

/// The format tag written into every model file.
pub const FORMAT: &str = "graft-model/1";

/// One vertex of a saved model: its size rule and its op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSpec {
    /// The vertex as the core sees it.
    #[serde(flatten)]
    pub vertex: VertexSpec,
    /// What it computes.
    pub layer: Op,
}

/// A saved model's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Always [`FORMAT`].
    pub format: String,
    /// Parameter dtype (`f32` or `f64`).
    pub dtype: String,
    /// Vertices in topological order.
    pub vertices: Vec<LayerSpec>,
    /// [`Model::read_batch`] (written when it is not 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub read_batch: usize,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn io(path: &Path, reason: impl ToString) -> NnError {
    NnError::Io {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl Model {
    /// The model's JSON description (no parameters).
    pub fn spec(&self) -> ModelSpec {
        let g = GraphSpec::from_graph(self.graph());
        let vertices = g
            .vertices
            .into_iter()
            .map(|vertex| {
                let id = self.graph().id(&vertex.name).expect("name from the graph");
                LayerSpec {
                    layer: self.layer(id).map(|l| l.op.clone()).unwrap_or(Op::Input),
                    vertex,
                }
            })
            .collect();
        ModelSpec {
            format: FORMAT.to_string(),
            dtype: match self.dtype() {
                DType::F64 => "f64".into(),
                _ => "f32".into(),
            },
            vertices,
            read_batch: self.read_batch(),
        }
    }

    /// Save to `json` (graph and ops) and `weights` (safetensors).
    ///
    /// # Errors
    /// File errors, named.
    pub fn save(&self, json: &Path, weights: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.spec()).map_err(|e| io(json, e))?;
        std::fs::write(json, text).map_err(|e| io(json, e))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (v, name, var) in self.all_params() {
            tensors.insert(
                format!("{}/{name}", self.graph().name(v)),
                var.as_tensor().clone(),
            );
        }
        candle_core::safetensors::save(&tensors, weights).map_err(|e| io(weights, e))?;
        Ok(())
    }

    /// Load parameters saved with [`Model::save`] into this model, by
    /// vertex and parameter name (a model rebuilt from the same structure).
    /// All or nothing.
    ///
    /// # Errors
    /// A missing or unreadable file, a missing tensor or a wrong shape,
    /// named.
    pub fn load_weights(&mut self, weights: &Path) -> Result<()> {
        let tensors = candle_core::safetensors::load(weights, &candle_core::Device::Cpu)
            .map_err(|e| io(weights, e))?;
        let mut updates = Vec::new();
        for (v, name, var) in self.all_params() {
            let key = format!("{}/{name}", self.graph().name(v));
            let t = tensors
                .get(&key)
                .ok_or_else(|| io(weights, format!("no tensor `{key}`")))?;
            if t.dims() != var.dims() {
                return Err(io(
                    weights,
                    format!(
                        "`{key}` has shape {:?}, the model needs {:?}",
                        t.dims(),
                        var.dims()
                    ),
                ));
            }
            updates.push((var, t.to_dtype(self.dtype())?));
        }
        for (var, t) in updates {
            var.set(&t)?;
        }
        Ok(())
    }

    /// Load a model saved with [`Model::save`], on the CPU.
    ///
    /// # Errors
    /// Missing or malformed files, a graph that does not build, parameters
    /// missing or of the wrong shape, each named.
    pub fn load(json: &Path, weights: &Path) -> Result<Model> {
        let text = std::fs::read_to_string(json).map_err(|e| io(json, e))?;
        let spec: ModelSpec = serde_json::from_str(&text).map_err(|e| io(json, e))?;
        if spec.format != FORMAT {
            return Err(io(
                json,
                format!("format `{}`, expected `{FORMAT}`", spec.format),
            ));
        }
        let dtype = match spec.dtype.as_str() {
            "f32" => DType::F32,
            "f64" => DType::F64,
            other => return Err(io(json, format!("dtype `{other}` is not f32 or f64"))),
        };
        let tensors = candle_core::safetensors::load(weights, &candle_core::Device::Cpu)
            .map_err(|e| io(weights, e))?;
        let graph = GraphSpec {
            vertices: spec.vertices.iter().map(|l| l.vertex.clone()).collect(),
        }
        .to_graph()?;
        let mut layers = Vec::new();
        for l in &spec.vertices {
            let id = graph.id(&l.vertex.name)?;
            let vx = graph.vertex(id)?;
            let mut params = Vars::new();
            for s in l.layer.params(vx.nin(), vx.nout()) {
                let key = format!("{}/{}", l.vertex.name, s.name);
                let t = tensors
                    .get(&key)
                    .ok_or_else(|| io(weights, format!("no tensor `{key}`")))?;
                if t.dims() != s.shape.as_slice() {
                    return Err(io(
                        weights,
                        format!(
                            "`{key}` has shape {:?}, the graph needs {:?}",
                            t.dims(),
                            s.shape
                        ),
                    ));
                }
                params.insert(
                    s.name.to_string(),
                    Var::from_tensor(&t.to_dtype(dtype)?)?.into(),
                );
            }
            layers.push((
                id,
                Layer {
                    op: l.layer.clone(),
                    params,
                },
            ));
        }
        let mut m = Model::from_parts(graph, layers, dtype)?;
        m.set_read_batch(spec.read_batch);
        Ok(m)
    }
}
