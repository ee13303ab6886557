//! Small Hugging Face transformers from the dynamo exporter
//! (`scripts/transformer_fixtures.py`; issue 17): GPT-2 (tied LM head,
//! fused QKV), LLaMA and Qwen2 with grouped-query attention, rotary
//! embeddings, RMSNorm and SwiGLU, and BERT. Token ids come in as an int64
//! input and pick rows of an embedding. Each imports, matches onnxruntime,
//! widens its MLP and adds attention heads without changing its function,
//! shrinks its MLP, its heads (a KV head with its query heads) and its
//! hidden size (the residual stream, every norm and projection with it),
//! and survives export and import with its int64 input.

mod common;

use common::{assert_close, assert_close_to, fixture, read_tensor, run};
use graft_core::{Request, VertexId};
use graft_nn::{DimProduct, HeadSplit, Model, Op};
use graft_onnx::{export_bytes, import, import_bytes, import_reading, Reading};

const MODELS: [&str; 4] = ["gpt2", "llama", "qwen2", "bert"];

/// Every config has hidden size 64 and MLP width 128.
const HIDDEN: usize = 64;
const MLP: usize = 128;

fn want(name: &str) -> Vec<f32> {
    read_tensor(name).flatten_all().unwrap().to_vec1().unwrap()
}

/// The vertices of `m` whose op matches, in topological order.
fn vertices(m: &Model, f: impl Fn(&Op) -> bool) -> Vec<VertexId> {
    m.graph()
        .topological_order()
        .unwrap()
        .into_iter()
        .filter(|&v| m.layer(v).is_some_and(|l| f(&l.op)))
        .collect()
}

/// The first MLP projection (the up projection, or SwiGLU's gate): the
/// first weighted layer of width 128.
fn mlp_in(m: &Model) -> VertexId {
    vertices(m, |op| matches!(op, Op::LinearLast(_) | Op::Dense { .. }))
        .into_iter()
        .find(|&v| m.graph().nout(v).unwrap() == MLP)
        .expect("an MLP projection")
}

/// The token embedding: the first embedding, of the vocabulary.
fn token_embedding(m: &Model) -> VertexId {
    let e = vertices(m, |op| matches!(op, Op::Embedding(e) if e.vocab == 1000));
    assert!(!e.is_empty(), "no token embedding");
    e[0]
}

#[test]
fn every_transformer_imports_and_matches_onnxruntime() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let imp =
            import(&fixture(&format!("{what}.onnx"))).unwrap_or_else(|e| panic!("{what}: {e}"));
        imp.model.graph().check().unwrap();
        assert_eq!(imp.inputs[0].0, "input_ids", "{what}");
        let x = read_tensor(&format!("{what}.input.bin"));
        assert_close(
            &run(&imp.model, &x),
            &want(&format!("{what}.out.bin")),
            &what,
        );
        // The token ids pick rows of an embedding whose neurons are the
        // hidden size.
        let e = token_embedding(&imp.model);
        assert_eq!(imp.model.graph().nout(e).unwrap(), HIDDEN, "{what}");
    }
}

#[test]
fn every_transformer_widens_its_mlp_without_changing_its_function() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let mut m = import(&fixture(&format!("{what}.onnx"))).unwrap().model;
        let before = run(&m, &x);
        let v = mlp_in(&m);
        m.change_sizes(&Request::new().nout(v, 8))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        m.graph().check().unwrap();
        assert_eq!(m.graph().nout(v).unwrap(), MLP + 8, "{what}");
        assert_close_to(&run(&m, &x), &before, 1e-5, &format!("{what} widened"));
    }
}

#[test]
fn every_transformer_shrinks_its_mlp_and_hidden_size_and_round_trips() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        let iface = imp.interface;
        let m = imp.model;
        let out_len = want(&format!("{what}.out.bin")).len();

        // Unchanged, export then import gives the same outputs, with the
        // file's int64 input.
        let bytes = export_bytes(&m, &iface).unwrap();
        let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close_to(&run(&back.model, &x), &run(&m, &x), 1e-6, &what);
        assert_eq!(back.inputs[0].0, "input_ids", "{what}");
        assert_eq!(back.interface.inputs[0].elem_type, 7, "{what}: int64 ids");

        for (label, v, delta) in [
            ("mlp", mlp_in(&m), -32i64),
            ("hidden", token_embedding(&m), -16),
        ] {
            let mut p = m.clone();
            let params = p.parameter_count();
            p.change_sizes(&Request::new().nout(v, delta))
                .unwrap_or_else(|e| panic!("{what} {label}: {e}"));
            p.graph().check().unwrap();
            assert!(p.parameter_count() < params, "{what} {label}");
            let got = run(&p, &x);
            // BERT's output is the hidden state itself.
            let expect = if name == "bert" && label == "hidden" {
                out_len / HIDDEN * (HIDDEN - 16)
            } else {
                out_len
            };
            assert_eq!(got.len(), expect, "{what} {label}");
            assert!(got.iter().all(|y| y.is_finite()), "{what} {label}");
            let bytes = export_bytes(&p, &iface).unwrap();
            let back =
                import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} {label} exported: {e}"));
            assert_close_to(
                &run(&back.model, &x),
                &got,
                1e-6,
                &format!("{what} {label}"),
            );
        }

        // The hidden size moves through the whole residual stream: every
        // layer norm (or RMSNorm scale) and every projection reading it.
        let mut p = m.clone();
        let e = token_embedding(&p);
        p.change_sizes(&Request::new().nout(e, -16)).unwrap();
        let norms = vertices(&p, |op| matches!(op, Op::LayerNormLast(_)));
        for n in norms {
            assert_eq!(p.graph().nout(n).unwrap(), HIDDEN - 16, "{what}");
        }
    }
}

/// The head splits of the first attention block, and the one whose heads
/// are fewest (the KV heads under grouped-query attention).
fn head_splits(m: &Model) -> (Vec<VertexId>, VertexId) {
    let splits = vertices(
        m,
        |op| matches!(op, Op::Regroup(r) if matches!(r.heads, HeadSplit::Split(_))),
    );
    assert!(splits.len() >= 3, "{} head splits", splits.len());
    let first: Vec<VertexId> = splits[..3].to_vec();
    let fewest = *first
        .iter()
        .min_by_key(|&&v| m.graph().nout(v).unwrap())
        .unwrap();
    (first, fewest)
}

#[test]
fn every_transformer_adds_heads_without_changing_its_function() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let mut m = import(&fixture(&format!("{what}.onnx"))).unwrap().model;
        let before = run(&m, &x);
        let (splits, kv) = head_splits(&m);
        let heads: Vec<usize> = splits.iter().map(|&v| m.graph().nout(v).unwrap()).collect();
        m.change_sizes(&Request::new().nout(kv, 1))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        m.graph().check().unwrap();
        // Every projection of the block gains whole heads, a query head per
        // query head reading the new KV head.
        let group = heads.iter().max().unwrap() / heads.iter().min().unwrap();
        for (&v, &h) in splits.iter().zip(&heads) {
            let grown = m.graph().nout(v).unwrap();
            assert_eq!(grown, h + h / heads.iter().min().unwrap(), "{what}");
            assert!(grown == h + 1 || grown == h + group, "{what}");
        }
        assert_close_to(
            &run(&m, &x),
            &before,
            1e-5,
            &format!("{what} with a new head"),
        );
    }
}

#[test]
fn every_transformer_drops_whole_heads_and_round_trips() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        let iface = imp.interface;
        let mut m = imp.model;
        let params = m.parameter_count();
        let (splits, kv) = head_splits(&m);
        let heads: Vec<usize> = splits.iter().map(|&v| m.graph().nout(v).unwrap()).collect();
        m.change_sizes(&Request::new().nout(kv, -1))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        m.graph().check().unwrap();
        let min = heads.iter().min().unwrap();
        for (&v, &h) in splits.iter().zip(&heads) {
            assert_eq!(m.graph().nout(v).unwrap(), h - h / min, "{what}");
        }
        assert!(m.parameter_count() < params, "{what}");
        let got = run(&m, &x);
        assert_eq!(got.len(), want(&format!("{what}.out.bin")).len(), "{what}");
        let bytes = export_bytes(&m, &iface).unwrap();
        let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} exported: {e}"));
        assert_close_to(
            &run(&back.model, &x),
            &got,
            1e-6,
            &format!("{what} fewer heads"),
        );
    }
}

#[test]
fn bad_token_ids_are_errors_not_panics() {
    let m = import(&fixture("tf_llama.onnx")).unwrap().model;
    let ex = graft_nn::Executor::new(&m).unwrap();
    for bad in [1000f32, -1001., 2.5] {
        let x = graft_nn::Tensor::from_vec(vec![bad; 16], (1, 16), &graft_nn::Device::Cpu).unwrap();
        let err = ex
            .run(&m, &[x], &graft_nn::Run::eval())
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the table"), "{bad}: {err}");
    }
}

#[test]
fn pruning_one_part_leaves_the_others() {
    use graft_nn::shrink::{shrink_parts, Part, Scope, Target};
    for name in MODELS {
        let what = format!("tf_{name}");
        let m0 = import(&fixture(&format!("{what}.onnx"))).unwrap().model;
        let shapes = vec![vec![16]];
        let u = graft_nn::utility::magnitude(&m0).unwrap();
        // Vertex ids stay valid through plans.
        let ids = (head_splits(&m0).0[0], mlp_in(&m0), token_embedding(&m0));
        let sizes = |m: &Model| {
            (
                m.graph().nout(ids.0).unwrap(),
                m.graph().nout(ids.1).unwrap(),
                m.graph().nout(ids.2).unwrap(),
            )
        };
        let before = sizes(&m0);
        for part in [Part::Heads, Part::Mlp, Part::Hidden] {
            let mut m = m0.clone();
            let r = shrink_parts(
                &mut m,
                &u,
                Target::Ratio(0.3),
                Scope::Global,
                &shapes,
                &[part],
            );
            if name == "bert" && part == Part::Hidden {
                // BERT's output is the hidden state: its size stays.
                let e = r.unwrap_err().to_string();
                assert!(e.contains("no vertex of [Hidden]"), "{e}");
                assert_eq!(m.graph(), m0.graph());
                continue;
            }
            r.unwrap_or_else(|e| panic!("{what} {part:?}: {e}"));
            m.graph().check().unwrap();
            let after = sizes(&m);
            let changed = (after.0 < before.0, after.1 < before.1, after.2 < before.2);
            let want = match part {
                Part::Heads => (true, false, false),
                Part::Mlp => (false, true, false),
                Part::Hidden => (false, false, true),
                Part::HeadDims | Part::Experts => unreachable!("not in these models"),
            };
            assert_eq!(changed, want, "{what} {part:?}: {before:?} -> {after:?}");
        }
    }
}

#[test]
fn onnxruntime_agrees_with_graft_on_mutated_transformers() {
    // Written by examples/transformer_mutations.rs (import, mutate, export)
    // and run by onnxruntime in scripts/transformer_fixtures.py.
    let dense = ["heads", "pruned", "widedims", "dims"].as_slice();
    let moe = ["heads", "fewerheads", "experts", "widemlp", "pruned"].as_slice();
    for (name, kinds) in [("llama", dense), ("gpt2", dense), ("mixtral", moe)] {
        let x = read_tensor(&format!("tf_{name}.input.bin"));
        let original = want(&format!("tf_{name}.out.bin"));
        for &kind in kinds {
            let what = format!("tf_{name}.{kind}.graft");
            let m = import(&fixture(&format!("{what}.onnx")))
                .unwrap_or_else(|e| panic!("{what}: {e}"))
                .model;
            let ort = want(&format!("{what}.out.bin"));
            assert_close(&run(&m, &x), &ort, &what);
            if kind == "heads" || kind == "widedims" || kind == "widemlp" {
                // A new KV head, new head dimensions and new expert MLP
                // neurons kept the function, in onnxruntime too.
                assert_close_to(&ort, &original, 1e-5, &what);
            }
        }
    }
}

#[test]
fn a_block_half_is_removed_and_an_add_loses_an_input_without_panic() {
    use graft_core::Patch;
    for name in ["llama", "gpt2"] {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
        let (iface, m0) = (imp.interface, imp.model);
        // The first residual add that ends a block half.
        let add = m0
            .graph()
            .topological_order()
            .unwrap()
            .into_iter()
            .find(|&v| graft_core::residual_block(m0.graph(), v).is_ok())
            .expect("a residual block");
        let mut m = m0.clone();
        let patch = Patch::new().remove_residual_block(m.graph(), add).unwrap();
        m.commit(&patch, &[]).unwrap();
        m.graph().check().unwrap();
        assert!(m.parameter_count() < m0.parameter_count(), "{what}");
        let got = run(&m, &x);
        assert_eq!(got.len(), want(&format!("{what}.out.bin")).len(), "{what}");
        let back = import_bytes(&export_bytes(&m, &iface).unwrap()).unwrap();
        assert_eq!(back.outputs.len(), 1, "{what}: no dangling outputs");
        assert_close_to(&run(&back.model, &x), &got, 1e-6, &what);

        // An elementwise add losing its branch input follows (a one-term
        // sum, written as an identity), where it used to panic at export.
        let mut m = m0.clone();
        let ins = m.graph().vertex(add).unwrap().inputs().to_vec();
        let block = graft_core::residual_block(m.graph(), add).unwrap();
        let branch = *block.last().unwrap();
        assert!(ins.contains(&branch));
        m.commit(&Patch::new().remove_edge(branch, add), &[])
            .unwrap();
        let got = run(&m, &x);
        let back = import_bytes(&export_bytes(&m, &iface).unwrap())
            .unwrap_or_else(|e| panic!("{what} disconnected: {e}"));
        assert_close_to(
            &run(&back.model, &x),
            &got,
            1e-6,
            &format!("{what} disconnected"),
        );
    }
}

#[test]
fn a_refused_edge_edit_leaves_the_model_as_it_was() {
    use graft_core::Patch;
    let mut m = import(&fixture("tf_llama.onnx")).unwrap().model;
    let before = m.clone();
    let x = read_tensor("tf_llama.input.bin");
    let out = run(&m, &x);
    // The product of queries by keys keeps its two inputs.
    let qk = vertices(&m, |op| matches!(op, Op::MatMul(p) if p.heads))[0];
    let k = m.graph().vertex(qk).unwrap().inputs()[1];
    let e = m
        .commit(&Patch::new().remove_edge(k, qk), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("keeps its two inputs"), "{e}");
    assert_eq!(m.graph(), before.graph());
    for v in m.graph().ids() {
        assert_eq!(
            m.layer(v).map(|l| &l.op),
            before.layer(v).map(|l| &l.op),
            "{}",
            m.graph().name(v)
        );
    }
    assert_eq!(run(&m, &x), out);
}

/// The head splits read along the head dimension (folds) of the first
/// attention block: the query's and the value's, found walking back from
/// the products of queries by keys and of weights by values along their
/// first computed operands.
fn dim_folds(m: &Model) -> (VertexId, VertexId) {
    let g = m.graph();
    let fold_behind = |mut v: VertexId| loop {
        if g.vertex(v).unwrap().fold().is_some() {
            return v;
        }
        v = g.vertex(v).unwrap().inputs()[0];
    };
    let product = |want: DimProduct| {
        vertices(m, |op| matches!(op, Op::MatMul(p) if p.dims == want))
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no {want:?} product"))
    };
    let scores = product(DimProduct::Scores);
    let values = product(DimProduct::Values);
    let q = fold_behind(g.vertex(scores).unwrap().inputs()[0]);
    let v = fold_behind(g.vertex(values).unwrap().inputs()[1]);
    (q, v)
}

#[test]
fn every_transformer_reads_head_dimensions_and_keeps_its_function_when_they_change() {
    for name in MODELS {
        let what = format!("tf_{name}");
        let x = read_tensor(&format!("{what}.input.bin"));
        let imp = import_reading(&fixture(&format!("{what}.onnx")), Reading::HeadDims)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let iface = imp.interface;
        let m = imp.model;
        m.graph().check().unwrap();
        let before = run(&m, &x);
        assert_close(&before, &want(&format!("{what}.out.bin")), &what);
        let (qf, vf) = dim_folds(&m);
        let d = m.graph().nout(qf).unwrap();
        let q = m.graph().vertex(qf).unwrap().inputs()[0];
        let heads = m.graph().nout(q).unwrap() / d;
        // Two new dimensions in every head (a rotary pair where there is
        // one): the function stays.
        let mut wide = m.clone();
        wide.change_sizes(&Request::new().nout(qf, 2))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        wide.graph().check().unwrap();
        assert_eq!(wide.graph().nout(q).unwrap(), heads * (d + 2), "{what}");
        let mut wv = m.clone();
        wv.change_sizes(&Request::new().nout(vf, 3))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        for (w, label) in [(&wide, "query and key"), (&wv, "value")] {
            assert_close_to(
                &run(w, &x),
                &before,
                1e-5,
                &format!("{what} wider {label} dimensions"),
            );
        }
        // Two fewer in every head of the query and key: smaller, runs,
        // and survives export and import.
        let mut narrow = m.clone();
        let params = narrow.parameter_count();
        narrow
            .change_sizes(&Request::new().nout(qf, -2))
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        narrow.graph().check().unwrap();
        assert_eq!(narrow.graph().nout(q).unwrap(), heads * (d - 2), "{what}");
        assert!(narrow.parameter_count() < params, "{what}");
        let got = run(&narrow, &x);
        let bytes = export_bytes(&narrow, &iface).unwrap();
        let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} exported: {e}"));
        assert_close_to(
            &run(&back.model, &x),
            &got,
            1e-6,
            &format!("{what} fewer dimensions"),
        );
    }
}

#[test]
fn a_tied_lm_head_is_written_once_and_stays_tied_when_the_hidden_size_shrinks() {
    use prost::Message;
    // GPT-2 reads one table for its token embedding and, transposed, its
    // output projection.
    let tables = |bytes: &[u8]| {
        let m = graft_onnx::proto::ModelProto::decode(bytes).unwrap();
        let g = m.graph.unwrap();
        let vocab: Vec<Vec<i64>> = g
            .initializer
            .iter()
            .filter(|t| t.dims.contains(&1000))
            .map(|t| t.dims.clone())
            .collect();
        let transposes = g
            .node
            .iter()
            .filter(|n| n.op_type.as_deref() == Some("Transpose"))
            .count();
        (vocab, transposes)
    };
    let what = "tf_gpt2";
    let x = read_tensor(&format!("{what}.input.bin"));
    let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
    let (iface, mut m) = (imp.interface, imp.model);
    let bytes = export_bytes(&m, &iface).unwrap();
    let (vocab, transposes) = tables(&bytes);
    assert_eq!(vocab, vec![vec![1000, 64]], "one table");
    assert!(transposes >= 1);
    let e = token_embedding(&m);
    m.change_sizes(&Request::new().nout(e, -8)).unwrap();
    let got = run(&m, &x);
    let bytes = export_bytes(&m, &iface).unwrap();
    assert_eq!(tables(&bytes).0, vec![vec![1000, 56]], "still one table");
    let back = import_bytes(&bytes).unwrap();
    assert_close_to(&run(&back.model, &x), &got, 1e-6, "tied after pruning");
    // LLaMA's head is its own: two tables.
    let imp = import(&fixture("tf_llama.onnx")).unwrap();
    let bytes = export_bytes(&imp.model, &imp.interface).unwrap();
    assert_eq!(tables(&bytes).0.len(), 2);
}

#[test]
fn mixtral_routes_tokens_to_experts_and_its_attention_heads_change() {
    // Mixtral with its experts as stacked tables (transformers'
    // batched_mm): the router's softmax, the top 2 of 4 experts per token
    // (TopK), their weights gathered (GatherND by the computed expert ids)
    // and multiplied by the tokens (batched MatMul): one routed linear.
    let what = "tf_mixtral";
    let x = read_tensor(&format!("{what}.input.bin"));
    let imp = import(&fixture(&format!("{what}.onnx"))).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (iface, m) = (imp.interface, imp.model);
    m.graph().check().unwrap();
    let before = run(&m, &x);
    assert_close(&before, &want(&format!("{what}.out.bin")), what);
    let routing = |m: &Model| {
        (
            vertices(m, |op| matches!(op, Op::TopK(_))).len(),
            vertices(m, |op| matches!(op, Op::RoutedLinear(_))).len(),
        )
    };
    // Two blocks: values and indices of a top-k, two expert tables each.
    assert_eq!(routing(&m), (4, 4));
    // The attention heads change: a new KV head keeps the function, one
    // fewer shrinks the model.
    let (_, kv) = head_splits(&m);
    let mut wide = m.clone();
    wide.change_sizes(&Request::new().nout(kv, 1)).unwrap();
    assert_close_to(&run(&wide, &x), &before, 1e-5, "mixtral with a new head");
    let mut narrow = m.clone();
    narrow.change_sizes(&Request::new().nout(kv, -1)).unwrap();
    assert!(narrow.parameter_count() < m.parameter_count());
    let got = run(&narrow, &x);
    let bytes = export_bytes(&narrow, &iface).unwrap();
    let back = import_bytes(&bytes).unwrap_or_else(|e| panic!("{what} exported: {e}"));
    assert_eq!(routing(&back.model), (4, 4));
    assert_close_to(&run(&back.model, &x), &got, 1e-6, "mixtral fewer heads");
}

#[test]
fn mixtral_drops_whole_experts_with_their_router_rows_and_keeps_top_k() {
    use graft_nn::shrink::{shrink_parts, Part, Scope, Target};
    let what = "tf_mixtral";
    let x = read_tensor(&format!("{what}.input.bin"));
    let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
    let (iface, m0) = (imp.interface, imp.model);
    let tables = |m: &Model| -> Vec<usize> {
        vertices(m, |op| matches!(op, Op::RoutedLinear(_)))
            .into_iter()
            .map(|v| m.param(v, "table").unwrap().dims()[0])
            .collect()
    };
    assert_eq!(tables(&m0), vec![4; 4]);
    let u = graft_nn::utility::magnitude(&m0).unwrap();
    let mut m = m0.clone();
    let r = shrink_parts(
        &mut m,
        &u,
        Target::Ratio(0.25),
        Scope::Global,
        &[vec![16]],
        &[Part::Experts],
    )
    .unwrap();
    assert_eq!(
        r.neurons,
        (8, 6),
        "two routers of 4 experts, one expert fewer each"
    );
    m.graph().check().unwrap();
    // Every expert table of a block lost the same expert as its router.
    assert_eq!(tables(&m), vec![3; 4]);
    let routers = vertices(&m, |op| matches!(op, Op::Dense { .. }))
        .into_iter()
        .filter(|&v| m.graph().nout(v).unwrap() == 3)
        .count();
    assert_eq!(routers, 2);
    let got = run(&m, &x);
    let back = import_bytes(&export_bytes(&m, &iface).unwrap()).unwrap();
    assert_eq!(tables(&back.model), vec![3; 4]);
    assert_close_to(&run(&back.model, &x), &got, 1e-6, "mixtral fewer experts");
    // Every part at once: heads, experts, the hidden size (through the
    // experts' projections too) and the experts' MLP width.
    let mut all = m0.clone();
    let r = shrink_parts(
        &mut all,
        &u,
        Target::Ratio(0.3),
        Scope::Global,
        &[vec![16]],
        &[Part::Heads, Part::Experts, Part::Hidden, Part::Mlp],
    )
    .unwrap();
    all.graph().check().unwrap();
    assert!(r.neurons.1 as f64 <= 0.7 * r.neurons.0 as f64, "{r:?}");
    let got = run(&all, &x);
    let back = import_bytes(&export_bytes(&all, &iface).unwrap()).unwrap();
    assert_close_to(&run(&back.model, &x), &got, 1e-6, "mixtral every part");
    // Top 2 of 4: at most 2 experts of each router can go.
    let mut m = m0.clone();
    let e = shrink_parts(
        &mut m,
        &u,
        Target::Ratio(0.9),
        Scope::Global,
        &[vec![16]],
        &[Part::Experts],
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot be met"), "{e}");
    assert_eq!(m.graph(), m0.graph());
}

#[test]
fn mixtral_experts_change_their_own_width_in_every_expert_together() {
    // An expert's projections are routed linears: the gate-and-up table
    // `[E, 2F, H]` (split into gate and up, multiplied: SwiGLU) and the
    // down table `[E, H, F]`. The MLP width F is their neurons, shared by
    // every expert, rows j and F + j of the gate-and-up table together.
    let what = "tf_mixtral";
    let x = read_tensor(&format!("{what}.input.bin"));
    let imp = import(&fixture(&format!("{what}.onnx"))).unwrap();
    let (iface, m) = (imp.interface, imp.model);
    let before = run(&m, &x);
    let routed = vertices(&m, |op| matches!(op, Op::RoutedLinear(_)));
    let dims = |m: &Model| -> Vec<Vec<usize>> {
        routed
            .iter()
            .map(|&v| m.param(v, "table").unwrap().dims().to_vec())
            .collect()
    };
    let (gate_up, down) = (routed[0], routed[1]);
    assert_eq!(dims(&m)[..2], [vec![4, 256, 64], vec![4, 64, 128]]);
    // Wider: 8 new neurons in the gate and 8 in the up part, 8 new
    // columns of the down table (zero): the function is kept.
    let mut wide = m.clone();
    wide.change_sizes(&Request::new().nout(gate_up, 16))
        .unwrap();
    wide.graph().check().unwrap();
    assert_eq!(dims(&wide)[..2], [vec![4, 272, 64], vec![4, 64, 136]]);
    assert_close_to(&run(&wide, &x), &before, 1e-5, "mixtral wider experts");
    // Narrower, by magnitude over the MLP part: both tables of every
    // block lose the same neurons.
    use graft_nn::shrink::{shrink_parts, Part, Scope, Target};
    let u = graft_nn::utility::magnitude(&m).unwrap();
    let mut narrow = m.clone();
    shrink_parts(
        &mut narrow,
        &u,
        Target::Ratio(0.25),
        Scope::Layer,
        &[vec![16]],
        &[Part::Mlp],
    )
    .unwrap();
    narrow.graph().check().unwrap();
    for d in dims(&narrow).chunks(2) {
        assert_eq!(d[0][1], 2 * d[1][2], "gate and up pair: {d:?}");
        assert!(d[1][2] < 128, "{d:?}");
        assert_eq!((d[0][0], d[0][2], d[1][1]), (4, 64, 64), "{d:?}");
    }
    let got = run(&narrow, &x);
    let back = import_bytes(&export_bytes(&narrow, &iface).unwrap()).unwrap();
    assert_eq!(
        vertices(&back.model, |op| matches!(op, Op::RoutedLinear(_))).len(),
        4
    );
    assert_close_to(
        &run(&back.model, &x),
        &got,
        1e-6,
        "mixtral narrower experts",
    );
    // Rows of the gate-and-up table pair up: the kept up rows are the kept
    // gate rows shifted by F, and the down table keeps those columns.
    let rows = |m: &Model, v: VertexId, transposed: bool| -> Vec<Vec<f32>> {
        let t = m.param(v, "table").unwrap().get(0).unwrap();
        let t = if transposed { t.t().unwrap() } else { t };
        t.to_vec2().unwrap()
    };
    let origin = |old: &[Vec<f32>], new: &[Vec<f32>]| -> Vec<usize> {
        new.iter()
            .map(|r| old.iter().position(|o| o == r).expect("a kept row"))
            .collect()
    };
    let up_rows = origin(&rows(&m, gate_up, false), &rows(&narrow, gate_up, false));
    let f = up_rows.len() / 2;
    let (gate, up) = up_rows.split_at(f);
    assert_eq!(up.iter().map(|&r| r - 128).collect::<Vec<_>>(), gate);
    let down_cols = origin(&rows(&m, down, true), &rows(&narrow, down, true));
    assert_eq!(down_cols, gate);
    // Activation-aware scores come from the reading side: the down
    // table's columns times the calibration activations, carried back
    // through the SwiGLU product and the split to both halves' rows.
    let act = graft_nn::utility::activation_aware(&m, std::slice::from_ref(&x)).unwrap();
    let s = act.get(gate_up).expect("scored");
    assert_eq!(s.len(), 256);
    assert_ne!(s, u.get(gate_up).unwrap(), "not the magnitude");
    assert!(s.iter().all(|v| v.is_finite() && *v >= 0.0));
}
