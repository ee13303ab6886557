//! The model classes graft reads since issue 15, one narrow fixture each,
//! from both torch exporters (`scripts/class_fixtures.py`): squeeze-and-
//! excitation, GELU as Erf arithmetic, a hand-written channels-first layer
//! norm (reductions over the neurons and broadcasts), shape arithmetic
//! around a reshape with a symbolic batch, ShuffleNet's channel split and
//! shuffle, a max pool in ceil mode, an uneven Pad, and ConvNeXt's
//! channels-last block (permutes, a layer norm and dense layers on the last
//! axis), attention pooling (a softmax over positions), HRNet's resizes
//! (nearest and bilinear), Inception's uneven kernels, strides, pads and
//! pooling windows, ConvNeXt's head (as_strided from the dynamo exporter),
//! a channels-last read by as_strided with permuted strides (`strided`),
//! and the attention of vision transformers (ViT's class token and heads
//! folded into the batch axis, timm's q, k, v permuted in front of the
//! batch axis, Swin's shifted windows, MaxViT's Einsum), and Swin's q, k,
//! v picked in front of a symbolic batch run at batch 3 (`qkvbatch`),
//! torch's multi-head attention moving a symbolic batch to axis 1 and
//! folding it into the heads and the tokens, run at batch 3 (`vitbatch`),
//! timm's attention with a symbolic batch, run at batch 3 (`timmbatch`),
//! and a float input of tokens `[N, T, C]` read by dense layers on its last
//! axis (`tokens`), and a group norm written as reshapes around an instance
//! norm (`groupnorm`).
//! Each imports, matches onnxruntime, widens without changing its function,
//! prunes, and survives export and import.

mod common;

use common::{assert_close, assert_close_to, fixture, graft_input, read_tensor, run};
use graft_core::{Request, VertexId};
use graft_nn::{Model, Op};
use graft_onnx::{export_bytes, import, import_bytes};

/// Fixture name and which weighted layer (in topological order) to resize:
/// one whose growth keeps the function (after the layer norm for `lnchan`:
/// a new channel before it would move the mean over channels).
/// In `shuffle` the convolution after the shuffle changes here; the stem
/// and the branch (through the slices and the shuffle) have their own test.
/// In `chlast` the first dense layer on the last axis widens (the layer
/// norm before it is not neuron-separable), and so does the MLP of
/// `vitattn`. `winattn` and `einsum` have no norms: their stem widens, and
/// with it the tokens through the windows, both attention blocks' input and
/// output projections and the residual sums.
const CLASSES: [(&str, usize); 22] = [
    ("groupnorm", 1),
    ("timmbatch", 3),
    ("strided", 0),
    ("vitbatch", 3),
    ("qkvbatch", 0),
    ("tokens", 0),
    ("resize", 0),
    ("asym", 0),
    ("normhead", 0),
    ("vitattn", 3),
    ("timmattn", 3),
    ("winattn", 0),
    ("einsum", 0),
    ("attnpool", 0),
    ("chlast", 2),
    ("se", 0),
    ("gelu", 0),
    ("lnchan", 1),
    ("flat", 0),
    ("shuffle", 2),
    ("ceilpool", 0),
    ("padded", 0),
];

fn want(name: &str) -> Vec<f32> {
    read_tensor(name).flatten_all().unwrap().to_vec1().unwrap()
}

/// The `k`-th dense or convolution vertex in topological order.
fn weighted(m: &Model, k: usize) -> VertexId {
    let g = m.graph();
    g.topological_order()
        .unwrap()
        .into_iter()
        .filter(|&v| {
            matches!(
                m.layer(v).map(|l| &l.op),
                Some(Op::Dense { .. } | Op::Conv2d(_) | Op::LinearLast(_))
            )
        })
        .nth(k)
        .expect("a weighted layer")
}

#[test]
fn every_class_imports_and_matches_onnxruntime() {
    for (name, _) in CLASSES {
        let x = read_tensor(&format!("{name}.input.bin"));
        for exporter in ["legacy", "dynamo"] {
            let what = format!("{name}.{exporter}");
            let imp =
                import(&fixture(&format!("{what}.onnx"))).unwrap_or_else(|e| panic!("{what}: {e}"));
            imp.model.graph().check().unwrap();
            let x = graft_input(&imp, &x);
            assert_close(
                &run(&imp.model, &x),
                &want(&format!("{what}.out.bin")),
                &what,
            );
        }
    }
}

#[test]
fn every_class_widens_without_changing_its_function() {
    for (name, k) in CLASSES {
        let x = read_tensor(&format!("{name}.input.bin"));
        for exporter in ["legacy", "dynamo"] {
            let what = format!("{name}.{exporter}");
            let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
            let x = graft_input(&imp, &x);
            let mut m = imp.model;
            let before = run(&m, &x);
            let v = weighted(&m, k);
            let n = m.graph().nout(v).unwrap();
            m.change_sizes(&Request::new().nout(v, 3))
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            m.graph().check().unwrap();
            assert_eq!(m.graph().nout(v).unwrap(), n + 3, "{what}");
            assert_close_to(&run(&m, &x), &before, 1e-5, &format!("{what} widened"));
        }
    }
}

#[test]
fn every_class_prunes_and_round_trips_through_onnx() {
    for (name, k) in CLASSES {
        let x = read_tensor(&format!("{name}.input.bin"));
        for exporter in ["legacy", "dynamo"] {
            let what = format!("{name}.{exporter}");
            let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
            let x = graft_input(&imp, &x);
            let perms = imp.input_perms;
            let iface = imp.interface;
            let mut m = imp.model;
            // Unchanged, export then import gives the same outputs, with
            // the file's input and output names and layout.
            let bytes = export_bytes(&m, &iface).unwrap();
            let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(back.input_perms, perms, "{what}");
            assert_close_to(&run(&back.model, &x), &run(&m, &x), 1e-6, &what);
            assert_eq!(back.inputs[0].0, "input", "{what}");
            assert_eq!(back.outputs[0].0, "output", "{what}");
            // Pruned: still runs, same output shape, and round-trips.
            let v = weighted(&m, k);
            let n = m.graph().nout(v).unwrap();
            m.change_sizes(&Request::new().nout(v, -2)).unwrap();
            m.graph().check().unwrap();
            assert_eq!(m.graph().nout(v).unwrap(), n - 2);
            let pruned = run(&m, &x);
            assert_eq!(pruned.len(), want(&format!("{what}.out.bin")).len());
            let bytes = export_bytes(&m, &iface).unwrap();
            let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} pruned: {e}"));
            assert_close_to(
                &run(&back.model, &x),
                &pruned,
                1e-6,
                &format!("{what} pruned"),
            );
        }
    }
}

#[test]
fn the_layer_norm_reductions_free_their_inputs_and_tie_the_affine_constants() {
    let m = import(&fixture("lnchan.legacy.onnx")).unwrap().model;
    let g = m.graph();
    let stem = weighted(&m, 0);
    // The stem's component holds the centring, scaling and affine vertices
    // (tied), not the two means (free inputs, one fixed neuron).
    let comp = g.size_component(stem).unwrap();
    let reduces: Vec<VertexId> = g
        .topological_order()
        .unwrap()
        .into_iter()
        .filter(|&v| matches!(m.layer(v).map(|l| &l.op), Some(Op::Reduce(_))))
        .collect();
    assert_eq!(reduces.len(), 2);
    for r in &reduces {
        assert!(!comp.contains(r));
        assert_eq!(g.nout(*r).unwrap(), 1);
    }
    let elementwise = comp
        .iter()
        .filter(|&&v| matches!(m.layer(v).map(|l| &l.op), Some(Op::Elementwise(_))))
        .count();
    // x − u, (x − u)², (x − u) / σ, γ · x, + β.
    assert!(elementwise >= 4, "{elementwise}");
}

/// ShuffleNet's unit: the split halves are core slices of the stem and the
/// Reshape-Transpose-Reshape is one shuffle, so the stem and the branch
/// (which the shuffle ties row by row to the first half) prune and widen.
#[test]
fn the_shuffle_unit_prunes_and_widens_through_its_slices_and_shuffle() {
    let x = read_tensor("shuffle.input.bin");
    for exporter in ["legacy", "dynamo"] {
        let what = format!("shuffle.{exporter}");
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        let iface = imp.interface;
        let m = imp.model;
        let g = m.graph();
        let ops: Vec<&Op> = g.ids().filter_map(|v| m.layer(v).map(|l| &l.op)).collect();
        assert!(
            ops.iter()
                .any(|o| matches!(o, Op::Shuffle(s) if s.groups == 2)),
            "{what}: no shuffle"
        );
        let starts: Vec<usize> = g
            .ids()
            .filter_map(|v| g.vertex(v).unwrap().slice_start())
            .collect();
        assert_eq!(starts.len(), 2, "{what}: {starts:?}");
        let (stem, branch) = (weighted(&m, 0), weighted(&m, 1));
        let before = run(&m, &x);

        // Widen the branch: one row more in the shuffle for each neuron,
        // so the stem's first half grows with it.
        let mut wide = m.clone();
        wide.change_sizes(&Request::new().nout(branch, 2))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        wide.graph().check().unwrap();
        assert_eq!(wide.graph().nout(stem).unwrap(), 10, "{what}");
        assert_close_to(&run(&wide, &x), &before, 1e-5, &format!("{what} widened"));

        // Prune the branch: the stem's first half loses the same rows, the
        // second half's slice moves back.
        let mut narrow = m.clone();
        narrow
            .change_sizes(&Request::new().nout(branch, -2).without_new_neurons())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        narrow.graph().check().unwrap();
        assert_eq!(narrow.graph().nout(stem).unwrap(), 6, "{what}");
        let mut starts: Vec<usize> = narrow
            .graph()
            .ids()
            .filter_map(|v| narrow.graph().vertex(v).unwrap().slice_start())
            .collect();
        starts.sort();
        assert_eq!(starts, [0, 2], "{what}");
        let pruned = run(&narrow, &x);
        assert_eq!(pruned.len(), before.len());
        let bytes = export_bytes(&narrow, &iface).unwrap();
        let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} pruned: {e}"));
        assert_close_to(
            &run(&back.model, &x),
            &pruned,
            1e-6,
            &format!("{what} pruned"),
        );
        // The shuffle survives the trip as a shuffle.
        assert!(back
            .model
            .graph()
            .ids()
            .any(|v| matches!(back.model.layer(v).map(|l| &l.op), Some(Op::Shuffle(_)))));
    }
}

/// A fixture's bytes after `edit` of its first node of type `op` (and of
/// the initializers), with that node's name.
fn edited(
    fixture_name: &str,
    op: &str,
    edit: impl FnOnce(&mut graft_onnx::proto::NodeProto, &mut Vec<graft_onnx::proto::TensorProto>),
) -> (Vec<u8>, String) {
    use prost::Message;
    let bytes = std::fs::read(fixture(fixture_name)).unwrap();
    let mut m = graft_onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    let n = g
        .node
        .iter_mut()
        .find(|n| n.op_type.as_deref() == Some(op))
        .unwrap();
    let name = n.name.clone().unwrap_or_default();
    edit(n, &mut g.initializer);
    (m.encode_to_vec(), name)
}

/// The initializer that input `k` of `n` names, its raw bytes dropped so
/// that the typed data set next is what the file holds.
fn input_init<'a>(
    n: &graft_onnx::proto::NodeProto,
    k: usize,
    inits: &'a mut [graft_onnx::proto::TensorProto],
) -> &'a mut graft_onnx::proto::TensorProto {
    let name = n.input[k].clone();
    let t = inits
        .iter_mut()
        .find(|t| t.name.as_deref() == Some(name.as_str()))
        .unwrap();
    t.raw_data = None;
    t
}

fn refused_naming(bytes: &[u8], name: &str, what: &str) {
    match import_bytes(bytes) {
        Err(graft_onnx::OnnxError::Node { node, reason, .. }) => {
            assert_eq!(node, name, "{what}: {reason}");
        }
        other => panic!("{what}: expected an error naming `{name}`, got {other:?}"),
    }
}

#[test]
fn resizes_and_as_strided_views_graft_does_not_compute_are_refused_naming_the_node() {
    let set = |key: &'static str, val: &'static str| {
        move |n: &mut graft_onnx::proto::NodeProto, _: &mut Vec<graft_onnx::proto::TensorProto>| {
            let a = n
                .attribute
                .iter_mut()
                .find(|a| a.name.as_deref() == Some(key))
                .unwrap();
            a.s = Some(val.as_bytes().to_vec());
        }
    };
    let (b, name) = edited("resize.dynamo.onnx", "Resize", set("mode", "cubic"));
    refused_naming(&b, &name, "cubic");
    let (b, name) = edited(
        "resize.dynamo.onnx",
        "Resize",
        set("coordinate_transformation_mode", "tf_crop_and_resize"),
    );
    refused_naming(&b, &name, "tf_crop_and_resize");
    // Scaling the channel axis: the scales constant's second entry.
    let (b, name) = edited("resize.dynamo.onnx", "Resize", |n, inits| {
        input_init(n, 2, inits).float_data = vec![1.0, 2.0, 2.0, 2.0];
    });
    refused_naming(&b, &name, "channel scale");
    // as_strided with indices that are no contiguous layout (reversed).
    let (b, name) = edited("normhead.dynamo.onnx", "Gather", |n, inits| {
        let t = input_init(n, 1, inits);
        let count: i64 = t.dims.iter().product();
        t.int64_data = (0..count).rev().collect();
    });
    refused_naming(&b, &name, "reversed as_strided");
}

/// The head splits of a model (vertices with one neuron per head).
fn head_splits(m: &Model) -> Vec<VertexId> {
    let g = m.graph();
    g.topological_order()
        .unwrap()
        .into_iter()
        .filter(|&v| g.vertex(v).is_ok_and(|x| x.heads().is_some()))
        .collect()
}

#[test]
fn vision_transformer_attention_adds_and_drops_whole_heads() {
    // A fused in-projection `[.., 3·E]` is read as a fold of its three
    // parts (every part keeps the same neurons) and a head split, so the
    // query, key and value keep the same heads: timm's (`[.., 3, H, D]`,
    // permuted in front of the batch axis and unbound; its key's transpose
    // through the batch axis is one transpose) and torchvision's (`[.., 3,
    // E]`, the parts picked by Gathers, then each split into heads folded
    // into the batch axis), and Swin's windowed attention.
    for name in ["timmattn", "timmbatch", "vitattn", "vitbatch", "winattn"] {
        let x = read_tensor(&format!("{name}.input.bin"));
        for exporter in ["legacy", "dynamo"] {
            let what = format!("{name}.{exporter}");
            let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
            let (iface, m) = (imp.interface, imp.model);
            let before = run(&m, &x);
            let splits = head_splits(&m);
            assert!(!splits.is_empty(), "{what}");
            for &h in &splits {
                assert_eq!(m.graph().nout(h).unwrap(), 2, "{what}: two heads");
            }
            // Nothing is frozen: not the attention, not the residual.
            let frozen: Vec<String> = m
                .graph()
                .ids()
                .filter(|&v| m.graph().vertex(v).unwrap().kind() == graft_core::SizeKind::Immutable)
                .map(|v| m.graph().name(v))
                .collect();
            assert!(frozen.is_empty(), "{what}: frozen {frozen:?}");
            // A head more: the fused projection grows by a head of each
            // part, and every head split with it.
            let h = splits[0];
            let mut wide = m.clone();
            wide.change_sizes(&Request::new().nout(h, 1)).unwrap();
            wide.graph().check().unwrap();
            assert_eq!(wide.graph().nout(h).unwrap(), 3, "{what}");
            if name != "winattn" {
                // One block: its in-projection, and every split of it.
                assert_eq!(wide.graph().nout(weighted(&wide, 1)).unwrap(), 3 * 3 * 4);
                for &s in &splits {
                    assert_eq!(wide.graph().nout(s).unwrap(), 3, "{what}");
                }
            }
            assert_close_to(
                &run(&wide, &x),
                &before,
                1e-5,
                &format!("{what} a head more"),
            );
            let mut narrow = m.clone();
            narrow.change_sizes(&Request::new().nout(h, -1)).unwrap();
            assert!(narrow.parameter_count() < m.parameter_count(), "{what}");
            let got = run(&narrow, &x);
            let back = import_bytes(&export_bytes(&narrow, &iface).unwrap()).unwrap();
            // One head left: timm's layout still reads it as a head;
            // torchvision's folds it into the batch axis as a unit axis,
            // which may read back as a view of the whole width.
            if name.starts_with("timm") {
                assert_eq!(head_splits(&back.model).len(), 1, "{what}");
            }
            assert_close_to(
                &run(&back.model, &x),
                &got,
                1e-6,
                &format!("{what} a head fewer"),
            );
        }
    }
}

#[test]
fn timm_attention_read_along_the_head_dimension_keeps_its_function() {
    // Read along the head dimension, the fused `[.., 3, H, D]` split is
    // one fold: every part and head keeps the same dimensions.
    use graft_onnx::{import_reading, Reading};
    let x = read_tensor("timmattn.input.bin");
    for exporter in ["legacy", "dynamo"] {
        let what = format!("timmattn.{exporter}");
        let imp = import_reading(&fixture(&format!("{what}.onnx")), Reading::HeadDims).unwrap();
        let (iface, m) = (imp.interface, imp.model);
        let before = run(&m, &x);
        let g = m.graph();
        let fold = g
            .ids()
            .find(|&v| g.vertex(v).is_ok_and(|x| x.fold() == Some(6)))
            .unwrap_or_else(|| panic!("{what}: no fold of 3 parts of 2 heads"));
        assert_eq!(g.nout(fold).unwrap(), 4, "{what}: head size 4");
        let mut wide = m.clone();
        wide.change_sizes(&Request::new().nout(fold, 2)).unwrap();
        assert_eq!(wide.graph().nout(weighted(&wide, 1)).unwrap(), 3 * 2 * 6);
        assert_close_to(
            &run(&wide, &x),
            &before,
            1e-5,
            &format!("{what} wider heads"),
        );
        let mut narrow = m.clone();
        narrow.change_sizes(&Request::new().nout(fold, -1)).unwrap();
        let got = run(&narrow, &x);
        let back = import_bytes(&export_bytes(&narrow, &iface).unwrap()).unwrap();
        assert_close_to(
            &run(&back.model, &x),
            &got,
            1e-6,
            &format!("{what} narrower heads"),
        );
    }
}

#[test]
fn onnxruntime_agrees_with_graft_on_vision_attention_with_heads_changed() {
    // Written by examples/transformer_mutations.rs (a head more, one
    // fewer) and run by onnxruntime in scripts/transformer_fixtures.py.
    for stem in ["vitattn.legacy", "timmattn.dynamo"] {
        let name = stem.split('.').next().unwrap();
        let x = read_tensor(&format!("{name}.input.bin"));
        let original = want(&format!("{stem}.out.bin"));
        for kind in ["heads", "fewerheads"] {
            let what = format!("{stem}.{kind}.graft");
            let m = import(&fixture(&format!("{what}.onnx")))
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .model;
            let ort = want(&format!("{what}.out.bin"));
            assert_close(&run(&m, &x), &ort, &what);
            if kind == "heads" {
                // The new head kept the function in onnxruntime too.
                assert_close_to(&ort, &original, 1e-5, &what);
            }
        }
    }
}

/// torch's group norm below opset 18 (a reshape to `[N, G, -1]`, an
/// instance norm, a reshape back) is one group norm: the convolution
/// before it prunes, and each of the 4 groups loses the same number of
/// channels, so every kept channel stays in its group. Written back below
/// opset 21, it reads as a group norm again.
#[test]
fn a_decomposed_group_norm_prunes_whole_rows_of_its_groups() {
    for exporter in ["legacy", "dynamo"] {
        let what = format!("groupnorm.{exporter}");
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        let m0 = imp.model;
        let gn = m0
            .graph()
            .ids()
            .find(|&v| {
                matches!(
                    m0.layer(v).map(|l| &l.op),
                    Some(Op::GroupNorm { groups: 4, .. })
                )
            })
            .unwrap_or_else(|| panic!("{what}: no group norm of 4 groups"));
        let conv = weighted(&m0, 0);
        assert_eq!(m0.graph().nout(conv).unwrap(), 16);
        let mut m = m0.clone();
        let (_, edits) = m.change_sizes(&Request::new().nout(conv, -4)).unwrap();
        assert_eq!(m.graph().nout(gn).unwrap(), 12, "{what}");
        let rows = edits
            .iter()
            .find(|e| e.vertex == conv && e.param == "weight")
            .and_then(|e| e.selections.iter().find(|s| s.0 == 0))
            .map(|s| s.1.clone())
            .expect("the convolution's rows are selected");
        let mut per_group = [0; 4];
        for n in rows {
            if let graft_core::Neuron::Old(i) = n {
                per_group[i / 4] += 1;
            }
        }
        assert_eq!(per_group, [3, 3, 3, 3], "{what}");
        // Growth adds a channel to every group too.
        let mut wide = m0.clone();
        wide.change_sizes(&Request::new().nout(conv, 4)).unwrap();
        assert_eq!(wide.graph().nout(gn).unwrap(), 20);
        // Below opset 21 the group norm is written decomposed, and read
        // back as one.
        let bytes = export_bytes(&m, &imp.interface).unwrap();
        let back = import_bytes(&bytes).unwrap();
        let groups = back
            .model
            .graph()
            .ids()
            .filter(|&v| {
                matches!(
                    back.model.layer(v).map(|l| &l.op),
                    Some(Op::GroupNorm { .. })
                )
            })
            .count();
        assert_eq!(groups, 1, "{what}");
        let x = read_tensor("groupnorm.input.bin");
        assert_close_to(&run(&back.model, &x), &run(&m, &x), 1e-6, &what);
    }
}

/// Every value shape a written file declares holds at batch size 3 for the
/// fixtures read with a symbolic batch whose graphs move it (the heads and
/// tokens of torch's multi-head attention, Swin's windows): a symbolic
/// `batch` only where the batch is that axis alone, fixed sizes only where
/// they do not change with the batch (onnxruntime trusts them).
#[test]
fn written_value_shapes_hold_at_batch_three_where_the_batch_moves() {
    use graft_onnx::proto::tensor_shape_proto::dimension::Value as D;
    use graft_onnx::proto::type_proto::Value as T;
    use prost::Message;
    for name in ["vitbatch", "timmbatch", "qkvbatch"] {
        let x = read_tensor(&format!("{name}.input.bin"));
        assert_eq!(x.dims()[0], 3);
        for exporter in ["legacy", "dynamo"] {
            let what = format!("{name}.{exporter}");
            let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
            let x = graft_input(&imp, &x);
            let bytes = export_bytes(&imp.model, &imp.interface).unwrap();
            let file = graft_onnx::proto::ModelProto::decode(bytes.as_slice()).unwrap();
            let ex = graft_nn::Executor::new(&imp.model).unwrap();
            let opts = graft_nn::Run {
                keep: true,
                ..graft_nn::Run::eval()
            };
            let acts = ex.run(&imp.model, &[x], &opts).unwrap().activations;
            let g = imp.model.graph();
            let mut checked = 0;
            for vi in &file.graph.as_ref().unwrap().value_info {
                let name = vi.name.clone().unwrap_or_default();
                let Some(v) = g.ids().find(|&v| g.name(v) == name) else {
                    continue;
                };
                let Some(T::TensorType(t)) = vi.r#type.as_ref().and_then(|t| t.value.as_ref())
                else {
                    continue;
                };
                let got = acts[&v].dims().to_vec();
                let dims = &t.shape.as_ref().unwrap().dim;
                assert_eq!(dims.len(), got.len(), "{what}: `{name}` rank");
                for (d, &n) in dims.iter().zip(&got) {
                    match &d.value {
                        Some(D::DimValue(k)) => {
                            assert_eq!(*k as usize, n, "{what}: `{name}` {got:?}")
                        }
                        Some(D::DimParam(p)) if p == "batch" => {
                            assert_eq!(n, 3, "{what}: `{name}` {got:?}")
                        }
                        _ => {}
                    }
                }
                checked += 1;
            }
            assert!(checked >= 4, "{what}: {checked} value shapes");
        }
    }
}

/// A file exported at a fixed batch size of 1 whose graph folds the batch
/// into the heads (`vitattn`) is evaluated one sample at a time at any
/// batch: on `vitbatch`'s three samples (the same model, seeded alike) it
/// gives onnxruntime's output for them. A training pass, which needs the
/// whole batch at once, is refused naming the vertex that holds the size.
#[test]
fn a_file_fixed_at_batch_one_that_folds_the_batch_runs_sample_by_sample() {
    let x = read_tensor("vitbatch.input.bin");
    assert_eq!(x.dims()[0], 3);
    for exporter in ["legacy", "dynamo"] {
        let what = format!("vitattn.{exporter}");
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        assert_eq!(imp.model.read_batch(), 1, "{what}");
        let fixed_two = import(&fixture(&format!("normhead.{exporter}.onnx"))).unwrap();
        assert_eq!(fixed_two.model.read_batch(), 2, "normhead.{exporter}");
        let x = graft_input(&imp, &x);
        assert_close(
            &run(&imp.model, &x),
            &want(&format!("vitbatch.{exporter}.out.bin")),
            &what,
        );
        let ex = graft_nn::Executor::new(&imp.model).unwrap();
        let train = graft_nn::Run {
            mode: graft_nn::Mode::Train { seed: 0 },
            ..graft_nn::Run::eval()
        };
        match ex.run(&imp.model, std::slice::from_ref(&x), &train) {
            Err(graft_nn::NnError::Invalid { reason, .. }) => {
                assert!(reason.contains("one sample at a time"), "{what}: {reason}")
            }
            other => panic!("{what}: {:?}", other.map(|f| f.outputs.len())),
        }
        // Read with a symbolic batch, the same model runs whole batches.
        let sym = import(&fixture(&format!("vitbatch.{exporter}.onnx"))).unwrap();
        let ex = graft_nn::Executor::new(&sym.model).unwrap();
        let x = graft_input(&sym, &read_tensor("vitbatch.input.bin"));
        assert!(ex.run(&sym.model, &[x], &train).is_ok(), "{what}");
    }
}
