//! Export: a graft model as an ONNX `ModelProto`, one or a few nodes per
//! vertex, parameters as initializers named `vertex.param`, written with an
//! [`Interface`]: the graph's input and output names, types and shapes,
//! its opset and its descriptive fields (see `ports.rs`). Each op is
//! written in the form valid at the interface's opset, or refused with
//! [`OnnxError::OpsetTooLow`]. The match over graft's ops is exhaustive, so
//! a new op cannot be forgotten here.

use std::path::Path;

use graft_core::SizeKind;
use std::collections::HashMap;

use graft_nn::{Confidence, Model, Op, Rule};

use crate::error::OnnxError;
use crate::interface::Interface;
use crate::ports::{self, value_info, Shapes};
use crate::proto::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto,
};
use crate::tensor::{encode_f32, encode_i64, Init, FLOAT};
use crate::write::{Prepared, PROTOBUF_LIMIT};

pub(crate) fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..Default::default()
    }
}
pub(crate) fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..Default::default()
    }
}
pub(crate) fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(AttributeType::String as i32),
        ..Default::default()
    }
}
pub(crate) fn attr_ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v,
        r#type: Some(AttributeType::Ints as i32),
        ..Default::default()
    }
}

/// The nodes and initializers written so far.
pub(crate) struct Out {
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) inits: Vec<crate::tensor::Init>,
    /// The default-domain opset written.
    pub(crate) opset: i64,
    /// Graph inputs written with an integer element type (token ids):
    /// their readers take them as they are, with no cast.
    pub(crate) int_inputs: std::collections::HashSet<graft_core::VertexId>,
}

impl Out {
    pub(crate) fn new(opset: i64) -> Out {
        Out {
            nodes: Vec::new(),
            inits: Vec::new(),
            opset,
            int_inputs: Default::default(),
        }
    }
    /// Refuse `op` for `vertex` when the opset written predates it.
    pub(crate) fn require(&self, vertex: &str, op: &str, since: i64) -> Result<(), OnnxError> {
        if self.opset < since {
            return Err(OnnxError::OpsetTooLow {
                vertex: vertex.into(),
                op: op.into(),
                opset: self.opset,
                needs: since,
            });
        }
        Ok(())
    }
    pub(crate) fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: Some(op.into()),
            name: Some(name.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs,
            ..Default::default()
        });
    }
    pub(crate) fn param(
        &mut self,
        m: &Model,
        v: graft_core::VertexId,
        vname: &str,
        p: &str,
    ) -> Result<String, OnnxError> {
        let name = format!("{vname}.{p}");
        self.inits.push(Init::param(&name, m.param_of(v, p)?));
        Ok(name)
    }
    /// The weight, and the bias when there is one, as initializers.
    pub(crate) fn weight_bias(
        &mut self,
        m: &Model,
        v: graft_core::VertexId,
        vname: &str,
        bias: bool,
    ) -> Result<Vec<String>, OnnxError> {
        let mut p = vec![self.param(m, v, vname, "weight")?];
        if bias {
            p.push(self.param(m, v, vname, "bias")?);
        }
        Ok(p)
    }
    /// One node whose node and output are both named `output`; the name.
    fn named(
        &mut self,
        op: &str,
        output: String,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.node(op, &output, inputs, &output, attrs);
        output
    }
    pub(crate) fn scalar(&mut self, name: &str, v: f32) -> String {
        self.inits.push(encode_f32(name, &[], &[v]));
        name.to_string()
    }
}

/// Export `model` with `interface`: the graph inputs and outputs keep
/// their names, element types and symbolic dimensions, output sizes are
/// the model's current ones, and the file is written at
/// `interface.opset` with its IR version, producer, doc strings, graph
/// name and metadata. Use [`Interface::for_model`] for a model with no
/// file behind it, and [`crate::Imported::interface`] for an imported one.
///
/// # Errors
/// Vertices ONNX cannot express ([`OnnxError::Export`]), ops the opset
/// predates ([`OnnxError::OpsetTooLow`]), an input the interface does not
/// describe.
///
/// ```
/// use graft_nn::{Model, Op};
/// use graft_onnx::{export_bytes, import_bytes, Interface};
/// let mut m = Model::new();
/// let x = m.input("x", 4).unwrap();
/// m.add("fc", Op::Dense { bias: true }, &[x], Some(2)).unwrap();
/// let iface = Interface::for_model(&m, &[vec![1, 4]]).unwrap().with_opset(13).unwrap();
/// let back = import_bytes(&export_bytes(&m, &iface).unwrap()).unwrap();
/// assert_eq!(back.interface.opset, 13);
/// assert_eq!(back.outputs[0].0, "fc");
/// ```
pub fn export_bytes(model: &Model, interface: &Interface) -> Result<Vec<u8>, OnnxError> {
    prepare(model, interface, None)?.model_bytes()
}

/// Export `model` to a file (see [`export_bytes`]), streamed: the weights
/// go from the model's memory to the file. Above protobuf's 2 GiB the
/// weights go to a data file beside it ([`data_location`]).
///
/// # Errors
/// As [`export_bytes`], and file errors.
pub fn export(model: &Model, interface: &Interface, path: &Path) -> Result<(), OnnxError> {
    let location = data_location(path);
    prepare_sized(model, interface, &location, false)?.save(path, &location)
}

/// The data file's name for a model written to `path`: its file name with
/// `.data` added (`model.onnx.data`), beside it.
pub fn data_location(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model.onnx".into());
    format!("{name}.data")
}

/// `model` as ONNX bytes and, when it is written with external data
/// (`external`, or larger than protobuf's 2 GiB), the data file's bytes:
/// every initializer of at least 1 KiB moved into one file named
/// `location` beside the model. [`prepare_sized`] writes the same bytes
/// to any writer without holding them in memory.
///
/// # Errors
/// As [`export_bytes`].
pub fn export_parts(
    model: &Model,
    interface: &Interface,
    location: &str,
    external: bool,
) -> Result<(Vec<u8>, Option<Vec<u8>>), OnnxError> {
    let p = prepare_sized(model, interface, location, external)?;
    Ok((p.model_bytes()?, p.data_bytes()?))
}

/// `model` laid out for writing (see [`Prepared`]): with external data
/// named `location` when `external` is set or the model would pass
/// protobuf's 2 GiB. Everything that can fail but the writing itself
/// fails here, so a caller can prepare before it creates any file.
///
/// # Errors
/// As [`export_bytes`].
pub fn prepare_sized(
    model: &Model,
    interface: &Interface,
    location: &str,
    external: bool,
) -> Result<Prepared, OnnxError> {
    let (m, inits) = to_proto(model, interface)?;
    if external {
        return Ok(Prepared::new(m, inits, Some(location)));
    }
    let inline = Prepared::new(m.clone(), inits.clone(), None);
    if inline.model_len() > PROTOBUF_LIMIT {
        return Ok(Prepared::new(m, inits, Some(location)));
    }
    Ok(inline)
}

/// `model` laid out for writing with its weights inside, or in the data
/// file `external` names.
fn prepare(
    model: &Model,
    interface: &Interface,
    external: Option<&str>,
) -> Result<Prepared, OnnxError> {
    let (m, inits) = to_proto(model, interface)?;
    Ok(Prepared::new(m, inits, external))
}

/// The driver: size the model, emit its vertices, bind the interface's
/// inputs and outputs to them, and wrap the graph in the model's header.
fn to_proto(model: &Model, iface: &Interface) -> Result<(ModelProto, Vec<Init>), OnnxError> {
    if !crate::interface::OPSETS.contains(&iface.opset) {
        return Err(OnnxError::Opset {
            domain: String::new(),
            version: iface.opset,
        });
    }
    let ex = graft_nn::Executor::new(model)?;
    let input_shapes = executor_shapes(model, &ex, iface)?;
    let plan = Dyn::new(model, &ex, &input_shapes)?;
    let mut out = Out::new(iface.opset);
    out.int_inputs = iface
        .inputs
        .iter()
        .filter(|p| crate::tensor::is_int_type(i64::from(p.elem_type)))
        .map(|p| p.vertex)
        .collect();
    emit_level(&mut out, model, &plan, None)?;
    crate::tied::share(&mut out)?;
    let ports = ports::ports(model, &ex, iface, plan.shapes.as_ref())?;
    ports::rename(&ports, &mut out.nodes);
    let value_info = plan.shapes.as_ref().map_or_else(Vec::new, |s| {
        ports::inner_value_infos(&ports, model, iface, s, |v| plan.home(v).is_none())
    });
    let mut nodes = ports.before.clone();
    nodes.append(&mut out.nodes);
    nodes.extend(ports.after.iter().cloned());
    let graph = GraphProto {
        name: Some(iface.graph_name.clone()),
        doc_string: iface.graph_doc_string.clone(),
        node: nodes,
        input: ports.inputs,
        output: ports.outputs,
        value_info,
        ..Default::default()
    };
    Ok((header(iface, graph), out.inits))
}

/// Each executor input's example shape (batch first, graft's axis order),
/// from the interface.
fn executor_shapes(
    model: &Model,
    ex: &graft_nn::Executor,
    iface: &Interface,
) -> Result<Vec<Vec<usize>>, OnnxError> {
    ex.inputs()
        .iter()
        .map(|&v| {
            let port = iface.inputs.iter().find(|p| p.vertex == v);
            port.and_then(|p| p.example_shape())
                .ok_or_else(|| OnnxError::Export {
                    vertex: model.graph().name(v),
                    reason: "the interface gives no shape for this input".into(),
                })
        })
        .collect()
}

/// The model around `graph`: opsets, IR version, producer, doc string and
/// metadata from the interface.
fn header(iface: &Interface, graph: GraphProto) -> ModelProto {
    let mut opsets = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(iface.opset),
    }];
    opsets.extend(iface.other_opsets.iter().map(|(d, v)| OperatorSetIdProto {
        domain: Some(d.clone()),
        version: Some(*v),
    }));
    ModelProto {
        ir_version: Some(iface.ir_version_to_write()),
        producer_name: Some(iface.producer.0.clone()),
        producer_version: Some(iface.producer.1.clone()),
        domain: iface.model_domain.clone(),
        model_version: iface.model_version,
        doc_string: iface.doc_string.clone(),
        metadata_props: iface
            .metadata
            .iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        opset_import: opsets,
        graph: Some(graph),
        ..Default::default()
    }
}

/// Where dynamic vertices put their branches: a batch-level threshold
/// conditional becomes an `If` whose two subgraphs hold its branch regions;
/// everything else is in the main graph (mask-and-merge: every branch runs
/// on every sample and the control picks among the results).
struct Dyn {
    order: Vec<graft_core::VertexId>,
    /// The innermost `If` branch holding each vertex that is in one.
    homes: HashMap<graft_core::VertexId, (graft_core::VertexId, usize)>,
    /// Graft's per-sample shape of each vertex's value (`None` when the
    /// model could not be sized; always sized when it has dynamic vertices).
    shapes: Option<Shapes>,
}

fn is_if(op: &Op) -> bool {
    matches!(
        op,
        Op::Cond {
            rule: Rule::Threshold { .. },
            batch: true
        }
    )
}

impl Dyn {
    fn new(
        model: &Model,
        ex: &graft_nn::Executor,
        input_shapes: &[Vec<usize>],
    ) -> Result<Self, OnnxError> {
        let order = model.graph().topological_order()?;
        let op = |v| model.layer(v).map(|l| &l.op);
        let per_sample: Vec<Vec<usize>> = input_shapes
            .iter()
            .map(|s| s[1.min(s.len())..].to_vec())
            .collect();
        let shapes = match model.cost(&per_sample) {
            // Values whose first axis is not the batch axis get no
            // `value_info`.
            Ok(mut cost) => {
                cost.shapes.retain(|v, _| !cost.leads.contains_key(v));
                Some(cost.shapes)
            }
            // Without dynamic vertices shapes only decorate the file.
            Err(_) if !order.iter().any(|&v| op(v).is_some_and(Op::is_dynamic)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut owner = HashMap::new();
        for (key, verts) in ex.regions() {
            for &v in verts {
                owner.insert(v, *key);
            }
        }
        let mut homes = HashMap::new();
        for &v in &order {
            let mut at = owner.get(&v).copied();
            while let Some((s, pos)) = at {
                if op(s).is_some_and(is_if) {
                    homes.insert(v, (s, pos));
                    break;
                }
                at = owner.get(&s).copied();
            }
        }
        Ok(Dyn {
            order,
            homes,
            shapes,
        })
    }
    fn home(&self, v: graft_core::VertexId) -> Option<(graft_core::VertexId, usize)> {
        self.homes.get(&v).copied()
    }
    fn rank(&self, v: graft_core::VertexId) -> usize {
        self.shapes
            .as_ref()
            .and_then(|s| s.get(&v))
            .map_or(2, |s| s.len() + 1)
    }
}

/// `x` (`[N, 1]`) unsqueezed to broadcast over a value of `rank` axes.
fn per_sample(out: &mut Out, name: &str, x: &str, rank: usize) -> String {
    if rank <= 2 {
        return x.to_string();
    }
    let axes: Vec<i64> = (2..rank as i64).collect();
    let a = format!("{name}.axes");
    out.inits.push(encode_i64(&a, &[axes.len()], &axes));
    out.node("Unsqueeze", name, &[x, &a], name, vec![]);
    name.to_string()
}

fn attr_graph(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        g: Some(g),
        r#type: Some(AttributeType::Graph as i32),
        ..Default::default()
    }
}

/// A dynamic vertex: `If` for a batch-level threshold conditional, the
/// mask-and-merge form otherwise (documented in docs/onnx-dynamic.md).
#[allow(clippy::too_many_arguments)]
fn dynamic(
    out: &mut Out,
    model: &Model,
    plan: &Dyn,
    v: graft_core::VertexId,
    name: &str,
    ins: &[String],
    op: &Op,
) -> Result<(), OnnxError> {
    let rank = plan.rank(v);
    let err = |reason: String| OnnxError::Export {
        vertex: name.to_string(),
        reason,
    };
    match op {
        Op::Cond {
            rule: Rule::Threshold { threshold },
            batch,
        } => {
            let t = out.scalar(&format!("{name}.threshold"), *threshold as f32);
            if *batch {
                let when = format!("{name}.when");
                out.node("Greater", &when, &[&ins[0], &t], &when, vec![]);
                let mut attrs = Vec::new();
                for (pos, key) in [(1, "then_branch"), (2, "else_branch")] {
                    let mut sub = Out::new(out.opset);
                    sub.int_inputs = out.int_inputs.clone();
                    emit_level(&mut sub, model, plan, Some((v, pos)))?;
                    let result = format!("{name}.branch{pos}");
                    sub.node("Identity", &result, &[&ins[pos]], &result, vec![]);
                    // Parameters live in the main graph (outer scope).
                    out.inits.append(&mut sub.inits);
                    attrs.push(attr_graph(
                        key,
                        GraphProto {
                            name: Some(format!("{name}.{key}")),
                            node: sub.nodes,
                            output: vec![value_info(&result, FLOAT, None)],
                            ..Default::default()
                        },
                    ));
                }
                out.node("If", name, &[&when], name, attrs);
            } else {
                let c = per_sample(out, &format!("{name}.control"), &ins[0], rank);
                let when = format!("{name}.when");
                out.node("Greater", &when, &[&c, &t], &when, vec![]);
                out.node("Where", name, &[&when, &ins[1], &ins[2]], name, vec![]);
            }
        }
        Op::Cond { rule, .. } => {
            // The branch index as a float [N, 1], then a chain of Wheres.
            let k = ins.len() - 1;
            let idx = format!("{name}.index");
            match rule {
                Rule::Switch => {
                    let r = format!("{name}.round");
                    out.node("Round", &r, &[&ins[0]], &r, vec![]);
                    let lo = out.scalar(&format!("{name}.first"), 0.0);
                    let hi = out.scalar(&format!("{name}.last"), (k - 1) as f32);
                    out.node("Clip", &idx, &[&r, &lo, &hi], &idx, vec![]);
                }
                Rule::Argmax => {
                    let a = format!("{name}.argmax");
                    out.node(
                        "ArgMax",
                        &a,
                        &[&ins[0]],
                        &a,
                        vec![attr_i("axis", 1), attr_i("keepdims", 1)],
                    );
                    out.node("Cast", &idx, &[&a], &idx, vec![attr_i("to", FLOAT as i64)]);
                }
                Rule::Threshold { .. } => unreachable!("matched above"),
            }
            let idx = per_sample(out, &format!("{name}.index_b"), &idx, rank);
            let mut acc = ins[k].clone();
            for b in (0..k - 1).rev() {
                let c = out.scalar(&format!("{name}.b{b}"), b as f32);
                let eq = format!("{name}.is{b}");
                out.node("Equal", &eq, &[&idx, &c], &eq, vec![]);
                let o = if b == 0 {
                    name.to_string()
                } else {
                    format!("{name}.w{b}")
                };
                out.node("Where", &o, &[&eq, &ins[b + 1], &acc], &o, vec![]);
                acc = o;
            }
        }
        Op::Gate { .. } => {
            let l = per_sample(out, &format!("{name}.logit"), &ins[0], rank);
            let zero = out.scalar(&format!("{name}.zero"), 0.0);
            let when = format!("{name}.on");
            out.node("Greater", &when, &[&l, &zero], &when, vec![]);
            out.node("Where", name, &[&when, &ins[1], &zero], name, vec![]);
        }
        Op::Exit {
            confidence,
            threshold,
        } => {
            if rank != 2 {
                return Err(err(format!(
                    "an exit's head must be [N, classes] for export, not rank {rank}"
                )));
            }
            let axes = format!("{name}.axes");
            // ReduceMax takes its axes as an input from opset 18, as an
            // attribute before (ReduceSum: an input from 13). An unused
            // initializer is left out.
            if out.opset >= 18 || *confidence == Confidence::NegEntropy {
                out.inits.push(encode_i64(&axes, &[1], &[1]));
            }
            let (max_in, max_attrs) = if out.opset >= 18 {
                (vec![axes.clone()], vec![attr_i("keepdims", 1)])
            } else {
                (
                    vec![],
                    vec![attr_i("keepdims", 1), attr_ints("axes", vec![1])],
                )
            };
            let probs = out.named(
                "Softmax",
                format!("{name}.probs"),
                &[&ins[0]],
                vec![attr_i("axis", 1)],
            );
            let conf = format!("{name}.confidence");
            let keep = vec![attr_i("keepdims", 1)];
            match confidence {
                Confidence::MaxSoftmax => {
                    let i: Vec<&str> = std::iter::once(probs.as_str())
                        .chain(max_in.iter().map(String::as_str))
                        .collect();
                    out.named("ReduceMax", conf.clone(), &i, max_attrs);
                }
                Confidence::NegEntropy => {
                    let ls = format!("{name}.log_probs");
                    out.node("LogSoftmax", &ls, &[&ins[0]], &ls, vec![attr_i("axis", 1)]);
                    let pl = format!("{name}.plogp");
                    out.node("Mul", &pl, &[&probs, &ls], &pl, vec![]);
                    out.named("ReduceSum", conf.clone(), &[&pl, &axes], keep.clone());
                }
            }
            let t = out.scalar(&format!("{name}.threshold"), *threshold as f32);
            let leave = format!("{name}.leave");
            out.node("GreaterOrEqual", &leave, &[&conf, &t], &leave, vec![]);
            out.node("Where", name, &[&leave, &ins[0], &ins[1]], name, vec![]);
        }
        Op::Moe { k, capacity } => {
            if capacity.is_some() {
                return Err(err(
                    "a capacity factor depends on the batch's routing, which the mask-and-merge form cannot express".into(),
                ));
            }
            let experts = ins.len() - 1;
            let probs = out.named(
                "Softmax",
                format!("{name}.probs"),
                &[&ins[0]],
                vec![attr_i("axis", 1)],
            );
            let kk = format!("{name}.k");
            out.inits.push(encode_i64(&kk, &[1], &[*k as i64]));
            let (topv, topi) = (format!("{name}.top_values"), format!("{name}.top_indices"));
            out.nodes.push(NodeProto {
                op_type: Some("TopK".into()),
                name: Some(format!("{name}.topk")),
                input: vec![probs.clone(), kk],
                output: vec![topv.clone(), topi.clone()],
                attribute: vec![attr_i("axis", 1)],
                ..Default::default()
            });
            let shape = format!("{name}.top_shape");
            out.node("Shape", &shape, &[&topv], &shape, vec![]);
            let one = out.scalar(&format!("{name}.one"), 1.0);
            let ones = format!("{name}.ones");
            out.node("Expand", &ones, &[&one, &shape], &ones, vec![]);
            let zero = out.scalar(&format!("{name}.zero"), 0.0);
            let zeros = format!("{name}.zeros");
            out.node("Mul", &zeros, &[&probs, &zero], &zeros, vec![]);
            let mask = format!("{name}.mask");
            out.node(
                "ScatterElements",
                &mask,
                &[&zeros, &topi, &ones],
                &mask,
                vec![attr_i("axis", 1)],
            );
            let top = format!("{name}.top");
            out.node("Mul", &top, &[&probs, &mask], &top, vec![]);
            let axes = format!("{name}.axes");
            out.inits.push(encode_i64(&axes, &[1], &[1]));
            let sum = format!("{name}.sum");
            out.node(
                "ReduceSum",
                &sum,
                &[&top, &axes],
                &sum,
                vec![attr_i("keepdims", 1)],
            );
            let w = format!("{name}.weights");
            out.node("Div", &w, &[&top, &sum], &w, vec![]);
            let mut acc: Option<String> = None;
            for e in 0..experts {
                let ie = format!("{name}.e{e}");
                out.inits.push(encode_i64(&ie, &[1], &[e as i64]));
                let we = format!("{name}.w{e}");
                out.node("Gather", &we, &[&w, &ie], &we, vec![attr_i("axis", 1)]);
                let we = per_sample(out, &format!("{name}.wb{e}"), &we, rank);
                let term = format!("{name}.term{e}");
                out.node("Mul", &term, &[&we, &ins[e + 1]], &term, vec![]);
                acc = Some(match acc {
                    None => term,
                    Some(a) => {
                        let o = if e + 1 == experts {
                            name.to_string()
                        } else {
                            format!("{name}.sum{e}")
                        };
                        out.node("Add", &o, &[&a, &term], &o, vec![]);
                        o
                    }
                });
            }
            if experts == 1 {
                out.node("Identity", name, &[&acc.unwrap_or_default()], name, vec![]);
            }
        }
        _ => unreachable!("only dynamic ops reach here"),
    }
    Ok(())
}

/// Emit the vertices whose home is `home` (None: the main graph; Some: the
/// branch of an `If`), in topological order.
fn emit_level(
    out: &mut Out,
    model: &Model,
    plan: &Dyn,
    home: Option<(graft_core::VertexId, usize)>,
) -> Result<(), OnnxError> {
    for &v in &plan.order {
        if plan.home(v) == home {
            emit(out, model, plan, v)?;
        }
    }
    Ok(())
}

/// Emit the nodes of one vertex.
fn emit(
    out: &mut Out,
    model: &Model,
    plan: &Dyn,
    v: graft_core::VertexId,
) -> Result<(), OnnxError> {
    let g = model.graph();
    let vx = g.vertex(v)?;
    if vx.kind() == SizeKind::Input {
        return Ok(());
    }
    let name = vx.name().to_string();
    let ins: Vec<String> = vx.inputs().iter().map(|&u| g.name(u)).collect();
    let x = ins[0].as_str();
    let layer = model.layer(v).ok_or_else(|| OnnxError::Export {
        vertex: name.clone(),
        reason: "no layer".into(),
    })?;
    match &layer.op {
        Op::Input => {}
        Op::Dense { bias } => crate::ops::linear::export_dense(out, model, v, &name, x, *bias)?,
        Op::MaskedDense { bias } => {
            crate::ops::linear::export_masked_dense(out, model, v, &name, x, false, *bias)?
        }
        Op::LearnableMaskedDense { bias } => {
            crate::ops::linear::export_masked_dense(out, model, v, &name, x, true, *bias)?
        }
        Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
            crate::ops::conv::export_conv(out, model, v, &name, x, &layer.op, c)?
        }
        Op::ConvTranspose2d {
            conv: c,
            output_padding,
        } => crate::ops::conv::export_conv_transpose(out, model, v, &name, x, c, *output_padding)?,
        Op::BatchNorm { eps, momentum } => {
            crate::ops::norm::export_batch_norm(out, model, v, &name, x, *eps, *momentum)?
        }
        Op::LayerNorm { eps } => {
            crate::ops::norm::export_norm(out, model, v, &name, x, true, *eps)?
        }
        Op::InstanceNorm { eps } => {
            crate::ops::norm::export_norm(out, model, v, &name, x, false, *eps)?
        }
        Op::GroupNorm { groups, eps } => {
            crate::ops::norm::export_group_norm(out, model, v, &name, x, *groups, *eps)?
        }
        Op::Activation(f) | Op::ActivationAt { f, .. } => {
            crate::ops::activation::export_activation(out, &name, x, f)?
        }
        Op::MaxPool2d {
            kernel,
            stride,
            padding,
        } => crate::ops::pool::export_max_pool(out, &name, x, kernel, stride, padding)?,
        Op::AvgPool2d { kernel, stride } => {
            crate::ops::pool::export_avg_pool(out, &name, x, kernel, stride)?
        }
        Op::GlobalAvgPool | Op::GlobalMaxPool => crate::ops::pool::export_global_pool(
            out,
            &name,
            x,
            matches!(layer.op, Op::GlobalAvgPool),
        )?,
        Op::Resize(r) => crate::ops::resize::export(out, &name, x, r)?,
        Op::Identity => crate::ops::shape::export_identity(out, &name, x),
        Op::Dropout { p } => crate::ops::shape::export_dropout(out, &name, x, *p)?,
        Op::Flatten { .. } => crate::ops::shape::export_flatten(out, &name, x),
        Op::Reshape { shape } => crate::ops::shape::export_reshape(out, &name, x, shape)?,
        Op::Concat => crate::ops::parts::export_concat(out, &name, &ins)?,
        Op::Add => crate::ops::pointwise::export_sum(out, &name, x, &ins, "Add")?,
        Op::Sub => crate::ops::pointwise::export_sum(out, &name, x, &ins, "Sub")?,
        Op::Mul => crate::ops::pointwise::export_sum(out, &name, x, &ins, "Mul")?,
        Op::Scale { factor } => crate::ops::pointwise::export_scale(out, &name, x, *factor)?,
        Op::LastStep => crate::ops::view::export_last_step(out, &name, x)?,
        Op::Recurrent { cell, sequences } => {
            crate::ops::recurrent::export(out, model, v, &name, x, *cell, *sequences, vx.nout())?;
        }
        Op::Cond { .. } | Op::Gate { .. } | Op::Exit { .. } | Op::Moe { .. } => {
            dynamic(out, model, plan, v, &name, &ins, &layer.op)?;
        }
        Op::Unary { .. } | Op::Elementwise(_) => {
            crate::ops::pointwise::export(out, model, v, &name, &ins, &layer.op)?;
        }
        Op::LinearLast(l) => crate::ops::linear::export_linear_last(out, model, v, &name, x, l)?,
        Op::Embedding(_) => crate::ops::linear::export_embedding(out, model, v, &name, x)?,
        Op::SoftmaxAxis(sm) => crate::ops::activation::export_softmax_axis(out, &name, x, sm)?,
        Op::LayerNormLast(l) => {
            crate::ops::norm::export_layer_norm_last(out, model, v, &name, x, l)?
        }
        Op::MatMul(_) | Op::Token(_) | Op::Regroup(_) => {
            crate::ops::attention::export(out, model, v, &name, &ins, &layer.op)?;
        }
        Op::TopK(_) | Op::GatherRows(_) | Op::RoutedLinear(_) => {
            crate::ops::routing::export(out, model, v, &name, &ins, &layer.op)?;
        }
        Op::Slice(_) | Op::Join(_) | Op::Pad(_) => {
            crate::ops::parts::export(out, &name, &ins, &layer.op)?;
        }
        Op::Transpose(_) | Op::View(_) | Op::Shuffle(_) | Op::Reduce(_) => {
            let opset = out.opset;
            crate::ops::axes::export(out, &name, x, &layer.op, vx.nout(), opset)?;
        }
    }
    Ok(())
}
