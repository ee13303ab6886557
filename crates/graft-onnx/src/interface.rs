//! A model's interface: what a file promised its readers, captured at
//! import so that export can keep it. The graph inputs and outputs with
//! their names, element types and dimensions as written (fixed sizes,
//! named symbolic sizes such as `batch_size`, unknown sizes), the opset and
//! IR version, and the descriptive fields (producer, doc strings, graph
//! name, metadata).
//!
//! A model built in Rust has no file behind it: [`Interface::for_model`]
//! gives it one with its vertex names, a symbolic batch axis named `batch`,
//! and opset 21.

use graft_core::VertexId;
use graft_nn::Model;

use crate::error::OnnxError;
use crate::proto::{
    tensor_shape_proto::dimension::Value as D, type_proto::Value as T, ModelProto, ValueInfoProto,
};
use crate::tensor::FLOAT;

/// The default-domain opset written for a model with no file behind it.
pub const DEFAULT_OPSET: i64 = 21;

/// The lowest and highest default-domain opsets graft reads and writes.
pub const OPSETS: std::ops::RangeInclusive<i64> = 13..=21;

/// The IR version that goes with a default-domain opset (onnx's
/// `VERSION_TABLE`: the IR version of the onnx release that introduced
/// the opset).
pub fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=14 => 7,
        15..=18 => 8,
        19..=20 => 9,
        _ => 10,
    }
}

/// One dimension of a graph input or output, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named symbolic size (`batch_size`, `N`, `seq`).
    Param(String),
    /// A dimension with neither a value nor a name.
    Unknown,
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The value's name in the file.
    pub name: String,
    /// The graft vertex it is (an input vertex) or that computes it.
    pub vertex: VertexId,
    /// The ONNX element type (`TensorProto.DataType`; 1 is float).
    pub elem_type: i32,
    /// The dimensions as written, `None` when the file gave no shape.
    pub dims: Option<Vec<Dim>>,
    /// For an input whose axis order differs from graft's (a sequence
    /// feeding a recurrent layer, which graft holds as `[N, F, T]`): the
    /// input axis each graft axis comes from. Export writes a `Transpose`
    /// with this permutation after the input.
    pub perm: Option<Vec<usize>>,
}

impl Port {
    /// The dimensions with every symbolic or unknown size read as 1, in
    /// graft's axis order (batch first).
    pub fn example_shape(&self) -> Option<Vec<usize>> {
        let dims: Vec<usize> = self
            .dims
            .as_ref()?
            .iter()
            .map(|d| match d {
                Dim::Fixed(v) if *v > 0 => *v as usize,
                Dim::Fixed(_) | Dim::Param(_) | Dim::Unknown => 1,
            })
            .collect();
        Some(match &self.perm {
            Some(p) => p
                .iter()
                .map(|&a| dims.get(a).copied().unwrap_or(1))
                .collect(),
            None => dims,
        })
    }
}

/// What a model file promised its readers, kept so that export writes a
/// file with the same interface: see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The default-domain opset to write (by default the one read).
    pub opset: i64,
    /// The default-domain opset the file was read at (`None`: no file).
    pub read_opset: Option<i64>,
    /// Opset imports of other domains, (domain, version), kept as read.
    pub other_opsets: Vec<(String, i64)>,
    /// The IR version read (`None`: no file).
    pub ir_version: Option<i64>,
    /// Producer name and version (graft's when the file had none).
    pub producer: (String, String),
    /// The model's domain and version, when given.
    pub model_domain: Option<String>,
    /// The model's version number, when given.
    pub model_version: Option<i64>,
    /// The model's doc string.
    pub doc_string: Option<String>,
    /// The graph's name.
    pub graph_name: String,
    /// The graph's doc string.
    pub graph_doc_string: Option<String>,
    /// The model's metadata, (key, value), in file order.
    pub metadata: Vec<(String, String)>,
    /// The graph inputs, in file order.
    pub inputs: Vec<Port>,
    /// The graph outputs, in file order. Several may share a vertex.
    pub outputs: Vec<Port>,
}

fn graft_producer() -> (String, String) {
    ("graft".into(), env!("CARGO_PKG_VERSION").into())
}

/// Element type and dimensions of a value info, as written.
fn port_type(vi: &ValueInfoProto) -> (i32, Option<Vec<Dim>>) {
    let Some(T::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return (FLOAT, None);
    };
    let dims = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(D::DimValue(v)) => Dim::Fixed(*v),
                Some(D::DimParam(p)) if !p.is_empty() => Dim::Param(p.clone()),
                Some(D::DimParam(_)) | None => Dim::Unknown,
            })
            .collect()
    });
    (t.elem_type.unwrap_or(FLOAT), dims)
}

impl Interface {
    /// Capture the interface of a decoded file, given the graph inputs and
    /// outputs import bound (name and vertex) and the inputs' axis
    /// permutations (see [`crate::Imported::input_perms`]).
    pub(crate) fn capture(
        m: &ModelProto,
        inputs: &[(String, VertexId)],
        outputs: &[(String, VertexId)],
        perms: &[Option<Vec<usize>>],
    ) -> Interface {
        let g = m.graph.clone().unwrap_or_default();
        let info = |name: &str, list: &[ValueInfoProto]| {
            list.iter()
                .find(|vi| vi.name.as_deref() == Some(name))
                .map(port_type)
                .unwrap_or((FLOAT, None))
        };
        let port = |(name, v): &(String, VertexId), list: &[ValueInfoProto], perm| {
            let (elem_type, dims) = info(name, list);
            Port {
                name: name.clone(),
                vertex: *v,
                elem_type,
                dims,
                perm,
            }
        };
        let mut read_opset = None;
        let mut other_opsets = Vec::new();
        for o in &m.opset_import {
            let domain = o.domain.clone().unwrap_or_default();
            let version = o.version.unwrap_or(0);
            if domain.is_empty() || domain == "ai.onnx" {
                read_opset = Some(version);
            } else {
                other_opsets.push((domain, version));
            }
        }
        let producer = match (&m.producer_name, &m.producer_version) {
            (Some(n), v) if !n.is_empty() => (n.clone(), v.clone().unwrap_or_default()),
            _ => graft_producer(),
        };
        Interface {
            opset: read_opset.unwrap_or(DEFAULT_OPSET),
            read_opset,
            other_opsets,
            ir_version: m.ir_version,
            producer,
            model_domain: m.domain.clone().filter(|d| !d.is_empty()),
            model_version: m.model_version,
            doc_string: m.doc_string.clone().filter(|d| !d.is_empty()),
            graph_name: g.name.clone().unwrap_or_default(),
            graph_doc_string: g.doc_string.clone().filter(|d| !d.is_empty()),
            metadata: m
                .metadata_props
                .iter()
                .map(|e| {
                    (
                        e.key.clone().unwrap_or_default(),
                        e.value.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            inputs: inputs
                .iter()
                .enumerate()
                .map(|(i, p)| port(p, &g.input, perms.get(i).cloned().flatten()))
                .collect(),
            outputs: outputs.iter().map(|p| port(p, &g.output, None)).collect(),
        }
    }

    /// The interface of a model with no file behind it: inputs and outputs
    /// named after their vertices (outputs in the executor's order), each
    /// input shaped like `input_shapes` (batch first, graft's axis order)
    /// with the batch axis written as the symbolic `batch`, float
    /// elements, opset 21 and graft as the producer.
    ///
    /// # Errors
    /// A model the executor cannot plan, or a number of shapes other than
    /// the model's number of inputs.
    ///
    /// ```
    /// use graft_nn::{Model, Op};
    /// let mut m = Model::new();
    /// let x = m.input("x", 4).unwrap();
    /// m.add("fc", Op::Dense { bias: true }, &[x], Some(2)).unwrap();
    /// let i = graft_onnx::Interface::for_model(&m, &[vec![1, 4]]).unwrap();
    /// assert_eq!(i.opset, 21);
    /// assert_eq!(i.outputs[0].name, "fc");
    /// ```
    pub fn for_model(model: &Model, input_shapes: &[Vec<usize>]) -> Result<Interface, OnnxError> {
        let ex = graft_nn::Executor::new(model)?;
        if ex.inputs().len() != input_shapes.len() {
            return Err(OnnxError::Export {
                vertex: "(inputs)".into(),
                reason: format!(
                    "{} input shapes for {} inputs",
                    input_shapes.len(),
                    ex.inputs().len()
                ),
            });
        }
        let g = model.graph();
        let inputs = ex
            .inputs()
            .iter()
            .zip(input_shapes)
            .map(|(&v, s)| Port {
                name: g.name(v),
                vertex: v,
                elem_type: FLOAT,
                dims: Some(
                    s.iter()
                        .enumerate()
                        .map(|(i, &d)| {
                            if i == 0 {
                                Dim::Param("batch".into())
                            } else {
                                Dim::Fixed(d as i64)
                            }
                        })
                        .collect(),
                ),
                perm: None,
            })
            .collect();
        let outputs = ex
            .outputs()
            .iter()
            .map(|&v| Port {
                name: g.name(v),
                vertex: v,
                elem_type: FLOAT,
                dims: None,
                perm: None,
            })
            .collect();
        Ok(Interface {
            opset: DEFAULT_OPSET,
            read_opset: None,
            other_opsets: Vec::new(),
            ir_version: None,
            producer: graft_producer(),
            model_domain: None,
            model_version: None,
            doc_string: None,
            graph_name: "graft".into(),
            graph_doc_string: None,
            metadata: Vec::new(),
            inputs,
            outputs,
        })
    }

    /// The same interface written at another default-domain opset.
    ///
    /// # Errors
    /// [`OnnxError::Opset`] for an opset outside 13 to 21.
    pub fn with_opset(mut self, opset: i64) -> Result<Interface, OnnxError> {
        if !OPSETS.contains(&opset) {
            return Err(OnnxError::Opset {
                domain: String::new(),
                version: opset,
            });
        }
        self.opset = opset;
        Ok(self)
    }

    /// The IR version to write: the one read when the opset is the one
    /// read and the IR version is new enough for it (and at most 10),
    /// otherwise the opset's own (see [`ir_version_for`]).
    pub fn ir_version_to_write(&self) -> i64 {
        let least = ir_version_for(self.opset);
        match (self.read_opset, self.ir_version) {
            (Some(r), Some(ir)) if r == self.opset && (least..=10).contains(&ir) => ir,
            _ => least,
        }
    }

    /// Each input's example shape in graft's axis order, batch first
    /// (symbolic sizes read as 1), in interface order.
    ///
    /// # Errors
    /// An input written without a shape.
    pub fn input_shapes(&self) -> Result<Vec<Vec<usize>>, OnnxError> {
        self.inputs
            .iter()
            .map(|p| {
                p.example_shape().ok_or_else(|| OnnxError::Tensor {
                    name: p.name.clone(),
                    reason: "a graph input needs a shape".into(),
                })
            })
            .collect()
    }
}
