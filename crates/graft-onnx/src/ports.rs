//! The graph inputs and outputs export writes for an [`Interface`]: their
//! names, element types and shapes, and the few nodes that bind them to the
//! values the vertices compute.
//!
//! The exporter names each vertex's value after the vertex. This module
//! then decides, in named steps:
//!
//! 1. [`bind_inputs`]: each graph input keeps its name; an input read in
//!    another axis order than graft's (a sequence for a recurrent layer)
//!    gets a `Transpose` into graft's order;
//! 2. [`bind_outputs`]: the vertex computing a graph output writes the
//!    output's own name (its consumers read that name too); a second output
//!    on the same vertex, or an output that is a graph input, is an
//!    `Identity`; a sink of the model the interface does not know (a model
//!    mutated after import) is written under its vertex name;
//! 3. [`avoid_clashes`]: a vertex whose name is taken by a written input or
//!    output writes its value under another name;
//! 4. [`rename`]: the renames are applied to every node, `If` branches
//!    included.
//!
//! Output shapes come from graft's per-sample shapes ([`Model::cost`]):
//! axes keep their symbolic names as written, while fixed sizes are the
//! model's current ones (a pruned classifier's feature count changes).

use std::collections::{HashMap, HashSet};

use graft_core::{SizeKind, VertexId};
use graft_nn::Model;

use crate::error::OnnxError;
use crate::interface::{Dim, Interface, Port};
use crate::proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, NodeProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::tensor::FLOAT;

/// Graft's per-sample shape of every vertex (batch axis dropped).
pub(crate) type Shapes = HashMap<VertexId, Vec<usize>>;

/// What [`ports`] decided.
pub(crate) struct Ports {
    /// The graph inputs, in interface order.
    pub inputs: Vec<ValueInfoProto>,
    /// The graph outputs: the interface's, then sinks it does not know.
    pub outputs: Vec<ValueInfoProto>,
    /// Nodes that go before the exporter's (input transposes).
    pub before: Vec<NodeProto>,
    /// Nodes that go after the exporter's (identities for outputs).
    pub after: Vec<NodeProto>,
    /// Value names to write instead of the vertex names.
    renames: HashMap<String, String>,
    /// The value name each vertex's output has once renamed.
    written: HashMap<VertexId, String>,
}

/// A value info with an element type and, when known, a shape.
pub(crate) fn value_info(name: &str, elem_type: i32, dims: Option<&[Dim]>) -> ValueInfoProto {
    use tensor_shape_proto::dimension::Value as D;
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .map(|x| tensor_shape_proto::Dimension {
                value: match x {
                    Dim::Fixed(v) => Some(D::DimValue(*v)),
                    Dim::Param(p) => Some(D::DimParam(p.clone())),
                    Dim::Unknown => None,
                },
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(op: &str, name: &str, input: &str, output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: vec![input.into()],
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

/// Decide the graph's inputs and outputs (see the module docs). `shapes`
/// is `None` when graft could not size the model; outputs then keep the
/// shapes as written.
///
/// # Errors
/// An input of the model the interface does not describe.
pub(crate) fn ports(
    model: &Model,
    ex: &graft_nn::Executor,
    iface: &Interface,
    shapes: Option<&Shapes>,
) -> Result<Ports, OnnxError> {
    let mut p = Ports {
        inputs: Vec::new(),
        outputs: Vec::new(),
        before: Vec::new(),
        after: Vec::new(),
        renames: HashMap::new(),
        written: HashMap::new(),
    };
    bind_inputs(&mut p, model, ex, iface)?;
    bind_outputs(&mut p, model, ex, iface, shapes);
    avoid_clashes(&mut p, model);
    Ok(p)
}

/// The batch axis of values the interface does not describe: the first
/// input's, as written.
fn batch_dim(iface: &Interface) -> Dim {
    iface
        .inputs
        .first()
        .and_then(|p| p.dims.as_ref())
        .and_then(|d| d.first().cloned())
        .unwrap_or_else(|| Dim::Param("batch".into()))
}

fn bind_inputs(
    p: &mut Ports,
    model: &Model,
    ex: &graft_nn::Executor,
    iface: &Interface,
) -> Result<(), OnnxError> {
    let g = model.graph();
    for &v in ex.inputs() {
        if !iface.inputs.iter().any(|port| port.vertex == v) {
            return Err(OnnxError::Export {
                vertex: g.name(v),
                reason: "the interface has no graph input for this input vertex".into(),
            });
        }
    }
    for port in &iface.inputs {
        if !ex.inputs().contains(&port.vertex) {
            continue; // an input the model no longer has
        }
        let vname = g.name(port.vertex);
        let graft_name = match &port.perm {
            Some(perm) => {
                let t = format!("{}.graft_layout", port.name);
                let perm = perm.iter().map(|&a| a as i64).collect();
                let attr = AttributeProto {
                    name: Some("perm".into()),
                    ints: perm,
                    r#type: Some(AttributeType::Ints as i32),
                    ..Default::default()
                };
                p.before
                    .push(node("Transpose", &t, &port.name, &t, vec![attr]));
                t
            }
            None => port.name.clone(),
        };
        if graft_name != vname {
            p.renames.insert(vname, graft_name.clone());
        }
        p.written.insert(port.vertex, graft_name);
        let dims = port.dims.clone().or_else(|| {
            port.example_shape().map(|s| {
                s.iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if i == 0 {
                            Dim::Param("batch".into())
                        } else {
                            Dim::Fixed(d as i64)
                        }
                    })
                    .collect()
            })
        });
        p.inputs
            .push(value_info(&port.name, port.elem_type, dims.as_deref()));
    }
    Ok(())
}

/// An output's dimensions: as written where symbolic or unknown, graft's
/// current sizes where fixed (the batch axis as written).
fn output_dims(
    port: Option<&Port>,
    per_sample: Option<&Vec<usize>>,
    batch: &Dim,
) -> Option<Vec<Dim>> {
    let written = port.and_then(|p| p.dims.as_ref());
    let Some(s) = per_sample else {
        return written.cloned();
    };
    match written {
        Some(d) if d.len() == s.len() + 1 => Some(
            std::iter::once(d[0].clone())
                .chain(d[1..].iter().zip(s).map(|(w, &now)| match w {
                    Dim::Fixed(_) => Dim::Fixed(now as i64),
                    Dim::Param(_) | Dim::Unknown => w.clone(),
                }))
                .collect(),
        ),
        _ => Some(
            std::iter::once(batch.clone())
                .chain(s.iter().map(|&d| Dim::Fixed(d as i64)))
                .collect(),
        ),
    }
}

fn bind_outputs(
    p: &mut Ports,
    model: &Model,
    ex: &graft_nn::Executor,
    iface: &Interface,
    shapes: Option<&Shapes>,
) {
    let g = model.graph();
    let batch = batch_dim(iface);
    let mut claimed: HashSet<VertexId> = HashSet::new();
    for port in &iface.outputs {
        let Ok(vx) = g.vertex(port.vertex) else {
            continue; // removed since import
        };
        let v = port.vertex;
        let dims = output_dims(Some(port), shapes.and_then(|s| s.get(&v)), &batch);
        p.outputs
            .push(value_info(&port.name, port.elem_type, dims.as_deref()));
        let is_input = vx.kind() == SizeKind::Input;
        if is_input || claimed.contains(&v) {
            let src = p.written.get(&v).cloned().unwrap_or_else(|| g.name(v));
            let name = format!("{}.output", port.name);
            p.after
                .push(node("Identity", &name, &src, &port.name, vec![]));
            continue;
        }
        claimed.insert(v);
        let vname = g.name(v);
        if vname != port.name {
            p.renames.insert(vname, port.name.clone());
        }
        p.written.insert(v, port.name.clone());
    }
    for &v in ex.outputs() {
        if iface.outputs.iter().any(|port| port.vertex == v) {
            continue;
        }
        let name = g.name(v);
        let dims = output_dims(None, shapes.and_then(|s| s.get(&v)), &batch);
        p.outputs.push(value_info(&name, FLOAT, dims.as_deref()));
        p.written.insert(v, name);
    }
}

/// A vertex whose own name is one a graph input or output now has writes
/// its value as `name#value`.
fn avoid_clashes(p: &mut Ports, model: &Model) {
    let g = model.graph();
    // Graph input names (before any transpose) and output names belong to
    // no vertex's own value.
    let taken: HashMap<String, Option<VertexId>> = p
        .inputs
        .iter()
        .chain(&p.outputs)
        .filter_map(|vi| Some((vi.name.clone()?, None)))
        .chain(p.written.iter().map(|(v, name)| (name.clone(), Some(*v))))
        .collect();
    for v in g.ids() {
        if p.written.contains_key(&v) {
            continue;
        }
        let name = g.name(v);
        if taken.get(&name).is_some_and(|&owner| owner != Some(v)) {
            p.renames.insert(name.clone(), format!("{name}#value"));
        }
    }
}

/// Apply the renames to `nodes` and to the `If` branches inside them.
pub(crate) fn rename(p: &Ports, nodes: &mut [NodeProto]) {
    if p.renames.is_empty() {
        return;
    }
    for n in nodes {
        for s in n.input.iter_mut().chain(n.output.iter_mut()) {
            if let Some(to) = p.renames.get(s.as_str()) {
                *s = to.clone();
            }
        }
        for a in &mut n.attribute {
            if let Some(sub) = a.g.as_mut() {
                rename(p, &mut sub.node);
            }
        }
    }
}

/// Shapes of the values between vertices, for `value_info`: each vertex of
/// the main graph that is not an input or output, batch axis as the first
/// input's. Written only when every input's per-sample sizes are fixed
/// (graft's shapes are then the file's, not examples of symbolic sizes).
pub(crate) fn inner_value_infos(
    p: &Ports,
    model: &Model,
    iface: &Interface,
    shapes: &Shapes,
    main_graph: impl Fn(VertexId) -> bool,
) -> Vec<ValueInfoProto> {
    let fixed = iface.inputs.iter().all(|port| {
        port.dims
            .as_ref()
            .is_some_and(|d| d.iter().skip(1).all(|x| matches!(x, Dim::Fixed(_))))
    });
    if !fixed {
        return Vec::new();
    }
    let g = model.graph();
    let batch = batch_dim(iface);
    let mut out = Vec::new();
    for v in g.ids() {
        if p.written.contains_key(&v) || !main_graph(v) {
            continue;
        }
        let Some(s) = shapes.get(&v) else { continue };
        let name = g.name(v);
        let name = p.renames.get(&name).cloned().unwrap_or(name);
        let dims: Vec<Dim> = std::iter::once(batch.clone())
            .chain(s.iter().map(|&d| Dim::Fixed(d as i64)))
            .collect();
        out.push(value_info(&name, FLOAT, Some(&dims)));
    }
    out
}
