//! Export: a graft model as an ONNX `ModelProto` (opset 21), one or a few
//! nodes per vertex, parameters as initializers named `vertex.param`.
//! The match over graft's ops is exhaustive, so a new op cannot be
//! forgotten here.

use std::path::Path;

use graft_core::SizeKind;
use graft_nn::{Activation, Groups, Model, Op};
use prost::Message;

use crate::error::OnnxError;
use crate::proto::{
    attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use crate::tensor::{encode_f32, encode_i64, FLOAT};

/// The opset written.
pub const OPSET: i64 = 21;

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..Default::default()
    }
}
fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..Default::default()
    }
}
fn attr_ints(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ints: v,
        r#type: Some(AttributeType::Ints as i32),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: Option<&[usize]>) -> ValueInfoProto {
    let shape = dims.map(|d| TensorShapeProto {
        dim: d
            .iter()
            .enumerate()
            .map(|(i, &x)| tensor_shape_proto::Dimension {
                value: Some(if i == 0 {
                    tensor_shape_proto::dimension::Value::DimParam("batch".into())
                } else {
                    tensor_shape_proto::dimension::Value::DimValue(x as i64)
                }),
                ..Default::default()
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(FLOAT),
                shape,
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

struct Out {
    nodes: Vec<NodeProto>,
    inits: Vec<crate::proto::TensorProto>,
}

impl Out {
    fn node(
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
    fn param(
        &mut self,
        m: &Model,
        v: graft_core::VertexId,
        vname: &str,
        p: &str,
    ) -> Result<String, OnnxError> {
        let t = m.param(v, p)?;
        let vals: Vec<f32> = t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
        let name = format!("{vname}.{p}");
        self.inits.push(encode_f32(&name, t.dims(), &vals));
        Ok(name)
    }
    /// The weight, and the bias when there is one, as initializers.
    fn weight_bias(
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
    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.inits.push(encode_f32(name, &[], &[v]));
        name.to_string()
    }
}

/// Export `model`; `input_shapes` gives each graph input's example shape
/// (batch first; the batch axis is written as symbolic), in the executor's
/// input order.
///
/// # Errors
/// Vertices ONNX cannot express here (recurrent layers), a wrong number of
/// input shapes.
pub fn export_bytes(model: &Model, input_shapes: &[Vec<usize>]) -> Result<Vec<u8>, OnnxError> {
    Ok(to_proto(model, input_shapes)?.encode_to_vec())
}

/// Export `model` to a file (see [`export_bytes`]).
///
/// # Errors
/// As [`export_bytes`], and file errors.
pub fn export(model: &Model, input_shapes: &[Vec<usize>], path: &Path) -> Result<(), OnnxError> {
    let bytes = export_bytes(model, input_shapes)?;
    std::fs::write(path, bytes).map_err(|e| OnnxError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn to_proto(model: &Model, input_shapes: &[Vec<usize>]) -> Result<ModelProto, OnnxError> {
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
    let mut out = Out {
        nodes: Vec::new(),
        inits: Vec::new(),
    };
    let mut inputs = Vec::new();
    for (v, s) in ex.inputs().iter().zip(input_shapes) {
        inputs.push(value_info(&g.name(*v), Some(s)));
    }
    for v in g.topological_order()? {
        let vx = g.vertex(v)?;
        if vx.kind() == SizeKind::Input {
            continue;
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
            Op::Dense { bias } => {
                let p = out.weight_bias(model, v, &name, *bias)?;
                let i: Vec<&str> = std::iter::once(x)
                    .chain(p.iter().map(String::as_str))
                    .collect();
                out.node("Gemm", &name, &i, &name, vec![attr_i("transB", 1)]);
            }
            Op::MaskedDense { bias } | Op::LearnableMaskedDense { bias } => {
                // ONNX has no mask: the masked weight is written.
                let mask = match layer.op {
                    Op::MaskedDense { .. } => model.param(v, "mask")?,
                    _ => {
                        let l = model.param(v, "mask_logits")?;
                        l.gt(0.0)?.to_dtype(l.dtype())?
                    }
                };
                let w = model.param(v, "weight")?.mul(&mask)?;
                let vals: Vec<f32> = w.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
                let wn = format!("{name}.weight");
                out.inits.push(encode_f32(&wn, w.dims(), &vals));
                let mut i = vec![x, wn.as_str()];
                let b;
                if *bias {
                    b = out.param(model, v, &name, "bias")?;
                    i.push(&b);
                }
                out.node("Gemm", &name, &i, &name, vec![attr_i("transB", 1)]);
            }
            Op::Conv1d(c) | Op::Conv2d(c) | Op::MaskedConv2d(c) => {
                let spatial = if matches!(layer.op, Op::Conv1d(_)) {
                    1
                } else {
                    2
                };
                let groups = match c.groups {
                    Groups::One => 1,
                    Groups::Depthwise => vx.nin()[0] as i64,
                    Groups::Fixed(k) => k as i64,
                };
                let mut p = out.weight_bias(model, v, &name, c.bias)?;
                if matches!(layer.op, Op::MaskedConv2d(_)) {
                    // ONNX has no mask: the masked kernel is written.
                    let w = model.param(v, "weight")?.mul(&model.param(v, "mask")?)?;
                    let vals: Vec<f32> =
                        w.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
                    let wn = format!("{name}.masked_weight");
                    out.inits.push(encode_f32(&wn, w.dims(), &vals));
                    p[0] = wn;
                }
                let i: Vec<&str> = std::iter::once(x)
                    .chain(p.iter().map(String::as_str))
                    .collect();
                let attrs = vec![
                    attr_ints("kernel_shape", vec![c.kernel as i64; spatial]),
                    attr_ints("strides", vec![c.stride as i64; spatial]),
                    attr_ints("pads", vec![c.padding as i64; 2 * spatial]),
                    attr_ints("dilations", vec![c.dilation as i64; spatial]),
                    attr_i("group", groups),
                ];
                out.node("Conv", &name, &i, &name, attrs);
            }
            Op::ConvTranspose2d {
                conv: c,
                output_padding,
            } => {
                let p = out.weight_bias(model, v, &name, c.bias)?;
                let i: Vec<&str> = std::iter::once(x)
                    .chain(p.iter().map(String::as_str))
                    .collect();
                let attrs = vec![
                    attr_ints("kernel_shape", vec![c.kernel as i64; 2]),
                    attr_ints("strides", vec![c.stride as i64; 2]),
                    attr_ints("pads", vec![c.padding as i64; 4]),
                    attr_ints("dilations", vec![c.dilation as i64; 2]),
                    attr_ints("output_padding", vec![*output_padding as i64; 2]),
                ];
                out.node("ConvTranspose", &name, &i, &name, attrs);
            }
            Op::BatchNorm { eps, momentum } => {
                let p: Vec<String> = ["weight", "bias", "running_mean", "running_var"]
                    .iter()
                    .map(|p| out.param(model, v, &name, p))
                    .collect::<Result<_, _>>()?;
                let i: Vec<&str> = std::iter::once(x)
                    .chain(p.iter().map(String::as_str))
                    .collect();
                let attrs = vec![
                    attr_f("epsilon", *eps as f32),
                    attr_f("momentum", (1.0 - *momentum) as f32),
                ];
                out.node("BatchNormalization", &name, &i, &name, attrs);
            }
            Op::LayerNorm { eps } | Op::InstanceNorm { eps } | Op::GroupNorm { eps, .. } => {
                let w = out.param(model, v, &name, "weight")?;
                let b = out.param(model, v, &name, "bias")?;
                let (op, mut attrs) = match &layer.op {
                    Op::LayerNorm { .. } => ("LayerNormalization", vec![attr_i("axis", 1)]),
                    Op::InstanceNorm { .. } => ("InstanceNormalization", vec![]),
                    Op::GroupNorm { groups, .. } => (
                        "GroupNormalization",
                        vec![attr_i("num_groups", *groups as i64)],
                    ),
                    _ => unreachable!("matched above"),
                };
                attrs.push(attr_f("epsilon", *eps as f32));
                out.node(op, &name, &[x, &w, &b], &name, attrs);
            }
            Op::Activation(f) => {
                let (op, attrs) = match f {
                    Activation::Relu => ("Relu", vec![]),
                    Activation::LeakyRelu { slope } => {
                        ("LeakyRelu", vec![attr_f("alpha", *slope as f32)])
                    }
                    Activation::Elu { alpha } => ("Elu", vec![attr_f("alpha", *alpha as f32)]),
                    Activation::Selu => ("Selu", vec![]),
                    Activation::Gelu => ("Gelu", vec![]),
                    Activation::Sigmoid => ("Sigmoid", vec![]),
                    Activation::Tanh => ("Tanh", vec![]),
                    Activation::Softmax => ("Softmax", vec![attr_i("axis", 1)]),
                    Activation::HardSwish => ("HardSwish", vec![]),
                    Activation::HardSigmoid { alpha, beta } => (
                        "HardSigmoid",
                        vec![attr_f("alpha", *alpha as f32), attr_f("beta", *beta as f32)],
                    ),
                    Activation::Relu6 => {
                        let lo = out.scalar(&format!("{name}.min"), 0.0);
                        let hi = out.scalar(&format!("{name}.max"), 6.0);
                        out.node("Clip", &name, &[x, &lo, &hi], &name, vec![]);
                        continue;
                    }
                };
                out.node(op, &name, &[x], &name, attrs);
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let attrs = vec![
                    attr_ints("kernel_shape", vec![*kernel as i64; 2]),
                    attr_ints("strides", vec![*stride as i64; 2]),
                    attr_ints("pads", vec![*padding as i64; 4]),
                ];
                out.node("MaxPool", &name, &[x], &name, attrs);
            }
            Op::AvgPool2d { kernel, stride } => {
                let attrs = vec![
                    attr_ints("kernel_shape", vec![*kernel as i64; 2]),
                    attr_ints("strides", vec![*stride as i64; 2]),
                ];
                out.node("AveragePool", &name, &[x], &name, attrs);
            }
            Op::GlobalAvgPool | Op::GlobalMaxPool => {
                let op = if matches!(layer.op, Op::GlobalAvgPool) {
                    "GlobalAveragePool"
                } else {
                    "GlobalMaxPool"
                };
                // graft's global pools give [N, C]; ONNX's [N, C, 1, 1].
                // The pool node keeps the vertex's name, so it imports back
                // as the same vertex (the Flatten after it is a no-op).
                let pooled = format!("{name}.pooled");
                out.node(op, &name, &[x], &pooled, vec![]);
                let flat = format!("{name}.flatten");
                out.node("Flatten", &flat, &[&pooled], &name, vec![attr_i("axis", 1)]);
            }
            Op::Identity => out.node("Identity", &name, &[x], &name, vec![]),
            Op::Dropout { p } => {
                let r = out.scalar(&format!("{name}.ratio"), *p as f32);
                out.node("Dropout", &name, &[x, &r], &name, vec![]);
            }
            Op::Flatten { .. } => out.node("Flatten", &name, &[x], &name, vec![attr_i("axis", 1)]),
            Op::Reshape { shape } => {
                let s = format!("{name}.shape");
                let mut dims = vec![0i64];
                dims.extend(shape.iter().map(|&d| d as i64));
                out.inits.push(encode_i64(&s, &[dims.len()], &dims));
                out.node("Reshape", &name, &[x, &s], &name, vec![]);
            }
            Op::Concat => {
                let i: Vec<&str> = ins.iter().map(String::as_str).collect();
                out.node("Concat", &name, &i, &name, vec![attr_i("axis", 1)]);
            }
            Op::Add | Op::Sub | Op::Mul => {
                let op = match layer.op {
                    Op::Add => "Add",
                    Op::Sub => "Sub",
                    _ => "Mul",
                };
                // ONNX's elementwise ops are binary: a chain for more inputs.
                let mut acc = ins[0].clone();
                for (k, y) in ins.iter().enumerate().skip(1) {
                    let o = if k + 1 == ins.len() {
                        name.clone()
                    } else {
                        format!("{name}.{k}")
                    };
                    out.node(op, &o, &[&acc, y], &o, vec![]);
                    acc = o;
                }
                if ins.len() == 1 {
                    out.node("Identity", &name, &[x], &name, vec![]);
                }
            }
            Op::Scale { factor } => {
                let k = out.scalar(&format!("{name}.factor"), *factor as f32);
                out.node("Mul", &name, &[x, &k], &name, vec![]);
            }
            Op::LastStep => {
                let idx = format!("{name}.index");
                out.inits.push(encode_i64(&idx, &[], &[-1]));
                out.node("Gather", &name, &[x, &idx], &name, vec![attr_i("axis", 2)]);
            }
            Op::Recurrent { cell, sequences } => {
                recurrent(&mut out, model, v, &name, x, *cell, *sequences, vx.nout())?;
            }
            Op::Cond { .. } | Op::Gate { .. } | Op::Exit { .. } | Op::Moe { .. } => {
                return Err(OnnxError::Export {
                    vertex: name,
                    reason: format!("{} is not exported yet", layer.op.name()),
                });
            }
        }
    }
    let outputs = ex
        .outputs()
        .iter()
        .map(|&o| value_info(&g.name(o), None))
        .collect();
    Ok(ModelProto {
        ir_version: Some(10),
        producer_name: Some("graft".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        graph: Some(GraphProto {
            name: Some("graft".into()),
            node: out.nodes,
            initializer: out.inits,
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A recurrent layer as ONNX's LSTM/GRU/RNN (layout 0, forward):
/// `[N, F, T]` is transposed to `[T, N, F]`, and the output `Y` back to
/// `[N, H, T]` (or `Y_h` squeezed to `[N, H]`). Gate blocks are reordered
/// from PyTorch's order (graft's) to ONNX's: LSTM i,f,g,o to i,o,f,c; GRU
/// r,z,n to z,r,h (with `linear_before_reset`, PyTorch's GRU).
#[allow(clippy::too_many_arguments)]
fn recurrent(
    out: &mut Out,
    model: &Model,
    v: graft_core::VertexId,
    name: &str,
    x: &str,
    cell: graft_nn::Cell,
    sequences: bool,
    hidden: usize,
) -> Result<(), OnnxError> {
    use graft_nn::Cell;
    let (op, order): (&str, Vec<usize>) = match cell {
        Cell::Lstm => ("LSTM", vec![0, 3, 1, 2]),
        Cell::Gru => ("GRU", vec![1, 0, 2]),
        Cell::Rnn => ("RNN", vec![0]),
    };
    let reorder = |t: graft_nn::Tensor| -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let dims = t.dims().to_vec();
        let rows = dims[0] / order.len();
        let cols: usize = dims[1..].iter().product();
        let vals: Vec<f32> = t.to_dtype(graft_nn::DType::F32)?.flatten_all()?.to_vec1()?;
        let mut outv = Vec::with_capacity(vals.len());
        for &b in &order {
            outv.extend_from_slice(&vals[b * rows * cols..(b + 1) * rows * cols]);
        }
        let mut d = vec![1];
        d.extend(dims);
        Ok((d, outv))
    };
    let (wd, w) = reorder(model.param(v, "weight_ih")?)?;
    let (rd, r) = reorder(model.param(v, "weight_hh")?)?;
    let (_, bi) = reorder(model.param(v, "bias_ih")?)?;
    let (_, bh) = reorder(model.param(v, "bias_hh")?)?;
    let (wn, rn, bn) = (
        format!("{name}.W"),
        format!("{name}.R"),
        format!("{name}.B"),
    );
    out.inits.push(encode_f32(&wn, &wd, &w));
    out.inits.push(encode_f32(&rn, &rd, &r));
    let mut b = bi;
    b.extend(bh);
    out.inits.push(encode_f32(&bn, &[1, b.len()], &b));
    let xt = format!("{name}.X");
    out.node(
        "Transpose",
        &xt,
        &[x],
        &xt,
        vec![attr_ints("perm", vec![2, 0, 1])],
    );
    let mut attrs = vec![attr_i("hidden_size", hidden as i64)];
    if cell == Cell::Gru {
        attrs.push(attr_i("linear_before_reset", 1));
    }
    let (y, yh) = (format!("{name}.Y"), format!("{name}.Y_h"));
    out.nodes.push(NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: vec![xt, wn, rn, bn],
        output: vec![y.clone(), yh.clone()],
        attribute: attrs,
        ..Default::default()
    });
    let axes = |n: &str, a: i64, out: &mut Out| -> String {
        out.inits.push(encode_i64(n, &[1], &[a]));
        n.to_string()
    };
    if sequences {
        let a = axes(&format!("{name}.axes"), 1, out);
        let sq = format!("{name}.Ysq");
        out.node("Squeeze", &sq, &[&y, &a], &sq, vec![]);
        out.node(
            "Transpose",
            &format!("{name}.out"),
            &[&sq],
            name,
            vec![attr_ints("perm", vec![1, 2, 0])],
        );
    } else {
        let a = axes(&format!("{name}.axes"), 0, out);
        out.node("Squeeze", &format!("{name}.out"), &[&yh, &a], name, vec![]);
    }
    Ok(())
}
