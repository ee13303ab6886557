//! Written files keep the interface they were read with: for every
//! committed fixture graft imports, import -> export -> import keeps the
//! input and output names, their element types and dimensions (symbolic
//! names included), the opset, IR version, producer and metadata, and what
//! graft's executor computes for each named output. Files written at
//! opsets 13 and 18 read back with the same outputs.

mod common;

use std::collections::HashMap;

use common::fixture;
use graft_nn::{Device, Executor, Run, Tensor};
use graft_onnx::{export_bytes, import, import_bytes, Dim, Imported, Interface, OnnxError};

/// Every committed `.onnx` fixture that graft imports, with its import.
fn importable() -> Vec<(String, Imported)> {
    let dir = fixture("");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| import(&fixture(&n)).ok().map(|imp| (n, imp)))
        .collect()
}

/// A deterministic input for each graph input, by name, shaped as the
/// executor takes it (symbolic sizes as 1).
fn example_inputs(imp: &Imported) -> HashMap<String, Tensor> {
    imp.interface
        .inputs
        .iter()
        .enumerate()
        .map(|(k, port)| {
            let shape = port.example_shape().unwrap();
            let n: usize = shape.iter().product();
            // A spread of values in [-1.5, 1.5), different per input; token
            // ids (an int64 or int32 input) whole, in 0..97.
            let ids = matches!(port.elem_type, 6 | 7);
            let vals: Vec<f32> = (0..n)
                .map(|i| {
                    let r = ((i * 37 + k * 11) % 97) as f32;
                    if ids {
                        r
                    } else {
                        r / 97.0 * 3.0 - 1.5
                    }
                })
                .collect();
            let t = Tensor::from_vec(vals, shape, &Device::Cpu).unwrap();
            (port.name.clone(), t)
        })
        .collect()
}

/// What graft computes for each named graph output of `imp`.
fn outputs_by_name(imp: &Imported, inputs: &HashMap<String, Tensor>) -> Vec<(String, Vec<f32>)> {
    let ex = Executor::new(&imp.model).unwrap();
    let feed: Vec<Tensor> = ex
        .inputs()
        .iter()
        .map(|&v| {
            let port = imp.interface.inputs.iter().find(|p| p.vertex == v).unwrap();
            inputs[&port.name].clone()
        })
        .collect();
    let opts = Run {
        keep: true,
        ..Run::eval()
    };
    let f = ex.run(&imp.model, &feed, &opts).unwrap();
    imp.outputs
        .iter()
        .map(|(name, v)| {
            let t = match ex.outputs().iter().position(|o| o == v) {
                Some(k) => f.outputs[k].clone(),
                None => f.activations[v].clone(),
            };
            (name.clone(), t.flatten_all().unwrap().to_vec1().unwrap())
        })
        .collect()
}

fn assert_close(got: &[(String, Vec<f32>)], want: &[(String, Vec<f32>)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: outputs");
    for ((gn, g), (wn, w)) in got.iter().zip(want) {
        assert_eq!(gn, wn, "{what}: output names");
        assert_eq!(g.len(), w.len(), "{what}: {gn} lengths");
        let scale = w.iter().fold(1e-6f32, |a, &b| a.max(b.abs()));
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale,
                "{what}: {gn}[{i}] {a} vs {b}"
            );
        }
    }
}

fn dims_text(dims: &Option<Vec<Dim>>) -> String {
    format!("{dims:?}")
}

#[test]
fn every_importable_fixture_keeps_its_interface_through_export() {
    let all = importable();
    // The PyTorch fixtures (7 models, 2 exporters) and graft's own.
    assert!(all.len() >= 14, "only {} fixtures import", all.len());
    for (name, imp) in &all {
        let bytes = export_bytes(&imp.model, &imp.interface)
            .unwrap_or_else(|e| panic!("{name}: export: {e}"));
        let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: re-import: {e}"));
        let (a, b) = (&imp.interface, &back.interface);
        assert_eq!(a.opset, b.opset, "{name}: opset");
        assert_eq!(b.read_opset, Some(a.opset), "{name}: opset read back");
        assert_eq!(
            b.ir_version,
            Some(a.ir_version_to_write()),
            "{name}: IR version"
        );
        assert_eq!(a.producer, b.producer, "{name}: producer");
        assert_eq!(a.metadata, b.metadata, "{name}: metadata");
        assert_eq!(a.graph_name, b.graph_name, "{name}: graph name");
        assert_eq!(a.doc_string, b.doc_string, "{name}: doc string");
        assert_eq!(a.other_opsets, b.other_opsets, "{name}: other opsets");
        for (pa, pb) in [(&a.inputs, &b.inputs), (&a.outputs, &b.outputs)] {
            let names = |p: &Vec<graft_onnx::Port>| -> Vec<String> {
                p.iter().map(|x| x.name.clone()).collect()
            };
            assert_eq!(names(pa), names(pb), "{name}: names");
            for (x, y) in pa.iter().zip(pb) {
                assert_eq!(x.elem_type, y.elem_type, "{name}: {} type", x.name);
                assert_eq!(x.perm, y.perm, "{name}: {} layout", x.name);
                if x.dims.is_some() {
                    assert_eq!(
                        dims_text(&x.dims),
                        dims_text(&y.dims),
                        "{name}: {} dims",
                        x.name
                    );
                }
                // Every port carries a shape once written by graft.
                assert!(y.dims.is_some(), "{name}: {} has no shape", y.name);
            }
        }
        let inputs = example_inputs(imp);
        assert_close(
            &outputs_by_name(&back, &inputs),
            &outputs_by_name(imp, &inputs),
            name,
        );
    }
}

#[test]
fn files_written_at_opsets_13_and_18_read_back_with_the_same_outputs() {
    let all = importable();
    let mut written = HashMap::<i64, usize>::new();
    let mut refused = HashMap::<i64, usize>::new();
    for (name, imp) in &all {
        let inputs = example_inputs(imp);
        let want = outputs_by_name(imp, &inputs);
        for opset in [13, 18] {
            let iface = imp.interface.clone().with_opset(opset).unwrap();
            let bytes = match export_bytes(&imp.model, &iface) {
                Ok(b) => b,
                // An op that the opset predates is a typed refusal naming
                // the opset that has it.
                Err(OnnxError::OpsetTooLow { needs, .. }) if needs > opset => {
                    *refused.entry(opset).or_default() += 1;
                    continue;
                }
                Err(e) => panic!("{name} at opset {opset}: {e}"),
            };
            let back = import_bytes(&bytes)
                .unwrap_or_else(|e| panic!("{name} at opset {opset}: re-import: {e}"));
            assert_eq!(back.interface.opset, opset, "{name}");
            assert_eq!(
                back.interface.ir_version,
                Some(graft_onnx::ir_version_for(opset)),
                "{name}"
            );
            assert_close(
                &outputs_by_name(&back, &inputs),
                &want,
                &format!("{name} at opset {opset}"),
            );
            *written.entry(opset).or_default() += 1;
        }
    }
    // Every fixture graft imports is written at both opsets, or refused
    // because it holds an op the opset predates (Gelu before 20,
    // LayerNormalization before 17); the classic CNNs and recurrent
    // fixtures are all written.
    for opset in [13, 18] {
        let (w, r) = (written.get(&opset).copied(), refused.get(&opset).copied());
        assert_eq!(
            w.unwrap_or(0) + r.unwrap_or(0),
            all.len(),
            "{written:?} {refused:?}"
        );
        assert!(w.unwrap_or(0) >= 19, "{written:?}");
    }
}

/// ResNet-18 as the legacy exporter wrote it: the output keeps its name
/// and the batch of 1, and a pruned model's output still has 10 classes
/// while an inner channel count it writes has changed.
#[test]
fn a_pruned_model_keeps_the_names_and_writes_its_current_sizes() {
    let imp = import(&fixture("resnet18w8.legacy.onnx")).unwrap();
    let mut m = imp.model;
    graft_onnx::mutations::prune_half_by_magnitude(&mut m).unwrap();
    let bytes = export_bytes(&m, &imp.interface).unwrap();
    let back = import_bytes(&bytes).unwrap();
    assert_eq!(back.inputs[0].0, imp.inputs[0].0);
    assert_eq!(back.outputs[0].0, imp.outputs[0].0);
    assert_eq!(
        back.interface.outputs[0].dims,
        imp.interface.outputs[0].dims
    );
    assert_eq!(back.interface.inputs[0].dims, imp.interface.inputs[0].dims);
}

#[test]
fn ops_an_opset_predates_are_typed_errors_naming_the_vertex() {
    use graft_nn::{Activation, Model, Op};
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let h = m
        .add("fc", Op::Dense { bias: true }, &[x], Some(4))
        .unwrap();
    m.add("act", Op::Activation(Activation::Gelu), &[h], None)
        .unwrap();
    let iface = Interface::for_model(&m, &[vec![1, 4]]).unwrap();
    assert!(export_bytes(&m, &iface).is_ok());
    match export_bytes(&m, &iface.clone().with_opset(19).unwrap()) {
        Err(OnnxError::OpsetTooLow {
            vertex,
            opset,
            needs,
            ..
        }) => assert_eq!((vertex.as_str(), opset, needs), ("act", 19, 20)),
        other => panic!("expected OpsetTooLow, got {other:?}"),
    }
    assert!(matches!(
        iface.with_opset(12),
        Err(OnnxError::Opset { version: 12, .. })
    ));
}

#[test]
fn an_output_that_is_also_read_and_two_outputs_on_one_vertex() {
    use graft_nn::{Model, Op};
    let mut m = Model::new();
    let x = m.input("x", 4).unwrap();
    let h = m
        .add("fc", Op::Dense { bias: true }, &[x], Some(3))
        .unwrap();
    m.add("head", Op::Dense { bias: false }, &[h], Some(2))
        .unwrap();
    let mut iface = Interface::for_model(&m, &[vec![1, 4]]).unwrap();
    // `fc` is an output and read by `head`; `head` is two outputs; the
    // input is an output too.
    let port = |name: &str, v| graft_onnx::Port {
        name: name.into(),
        vertex: v,
        elem_type: 1,
        dims: None,
        perm: None,
    };
    let head = iface.outputs[0].vertex;
    iface.outputs = vec![
        port("hidden", h),
        port("logits", head),
        port("logits_again", head),
        port("echo", x),
    ];
    let bytes = export_bytes(&m, &iface).unwrap();
    let back = import_bytes(&bytes).unwrap();
    let names: Vec<&str> = back.outputs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["hidden", "logits", "logits_again", "echo"]);
    let x = Tensor::randn(0f32, 1.0, (2, 4), &Device::Cpu).unwrap();
    let inputs = HashMap::from([("x".to_string(), x)]);
    let mut imp_like = import_bytes(&bytes).unwrap();
    imp_like.model = m;
    imp_like.outputs = iface
        .outputs
        .iter()
        .map(|p| (p.name.clone(), p.vertex))
        .collect();
    imp_like.interface = iface;
    let orig: Vec<(String, Vec<f32>)> = outputs_by_name(&imp_like, &inputs);
    let got = outputs_by_name(&back, &inputs);
    assert_close(&got, &orig, "outputs");
    // Shapes are written for every output: [batch, 3] for `hidden`.
    assert_eq!(
        back.interface.outputs[0].dims,
        Some(vec![Dim::Param("batch".into()), Dim::Fixed(3)])
    );
}

/// A file with a symbolic batch named `batch_size`, an unknown dimension,
/// metadata and doc strings: all of it is written back, and the pruned
/// model's output keeps `batch_size` while its size is the current one.
#[test]
fn symbolic_dims_metadata_and_doc_strings_are_kept() {
    use graft_onnx::proto::{tensor_shape_proto::dimension::Value as D, type_proto::Value as T};
    use graft_onnx::proto::{ModelProto, StringStringEntryProto, ValueInfoProto};
    use prost::Message;
    let bytes = std::fs::read(fixture("mlp.legacy.onnx")).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let set_batch = |vi: &mut ValueInfoProto| {
        let Some(T::TensorType(t)) = vi.r#type.as_mut().unwrap().value.as_mut() else {
            panic!("a tensor")
        };
        t.shape.as_mut().unwrap().dim[0].value = Some(D::DimParam("batch_size".into()));
    };
    m.metadata_props.push(StringStringEntryProto {
        key: Some("author".into()),
        value: Some("someone".into()),
    });
    m.doc_string = Some("a small MLP".into());
    let g = m.graph.as_mut().unwrap();
    g.doc_string = Some("the graph".into());
    set_batch(&mut g.input[0]);
    set_batch(&mut g.output[0]);
    let imp = import_bytes(&m.encode_to_vec()).unwrap();
    let batch = Some(Dim::Param("batch_size".into()));
    assert_eq!(
        imp.interface.outputs[0]
            .dims
            .as_ref()
            .unwrap()
            .first()
            .cloned(),
        batch
    );
    let back = import_bytes(&export_bytes(&imp.model, &imp.interface).unwrap()).unwrap();
    assert_eq!(back.interface, {
        // Vertex ids may differ between the two imports; compare the rest.
        let mut i = imp.interface.clone();
        for (p, q) in i
            .inputs
            .iter_mut()
            .zip(&back.interface.inputs)
            .chain(i.outputs.iter_mut().zip(&back.interface.outputs))
        {
            p.vertex = q.vertex;
        }
        i.ir_version = back.interface.ir_version;
        i
    });
    assert_eq!(
        back.interface.metadata,
        [("author".into(), "someone".into())]
    );
    assert_eq!(back.interface.doc_string.as_deref(), Some("a small MLP"));
    assert_eq!(
        back.interface.graph_doc_string.as_deref(),
        Some("the graph")
    );

    // The output layer loses a neuron: the written output says so and
    // keeps its symbolic batch.
    let mut model = imp.model;
    let out_v = imp.outputs[0].1;
    let before = model.graph().nout(out_v).unwrap();
    let name = model.graph().name(out_v);
    graft_onnx::mutations::widen(&mut model, &name, -1).unwrap();
    let back = import_bytes(&export_bytes(&model, &imp.interface).unwrap()).unwrap();
    assert_eq!(
        back.interface.outputs[0].dims,
        Some(vec![
            Dim::Param("batch_size".into()),
            Dim::Fixed(before as i64 - 1)
        ])
    );
}
