//! The model subcommands on the ONNX fixtures of graft-onnx, run as a user
//! would (assert_cmd), with the printed tables as snapshots. Every failing
//! command exits non-zero, names the culprit and writes no output file.

use std::path::{Path, PathBuf};

mod common;

use common::{ok, refused};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graft-onnx/tests/fixtures")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// A fresh output path (no file there yet).
fn out(test: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("models")
        .join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// The text without the line naming the output file (its directory
/// differs between machines).
fn without_paths(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("wrote "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn macs(path: &Path) -> u64 {
    let m = graft::onnx::import(path).unwrap();
    let shapes: Vec<Vec<usize>> = m.input_shapes.iter().map(|s| s[1..].to_vec()).collect();
    m.model.cost(&shapes).unwrap().total()
}

#[test]
fn inspect_tables_and_json() {
    insta::assert_snapshot!("inspect_mlp", ok(&["inspect", &fixture("mlp.legacy.onnx")]));
    insta::assert_snapshot!(
        "inspect_rescnn",
        ok(&["inspect", &fixture("rescnn.legacy.onnx")])
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&[
        "inspect",
        "--json",
        &fixture("resnet18w8.legacy.onnx"),
    ]))
    .unwrap();
    assert_eq!(json["macs"], 842_368);
    assert_eq!(json["params"], 176_762);
    assert_eq!(json["vertices"].as_array().unwrap().len(), 49);
}

#[test]
fn resize_prints_the_plan_and_keeps_the_function() {
    let o = out("resize", "wide.onnx");
    let text = ok(&[
        "resize",
        &fixture("rescnn.legacy.onnx"),
        "--vertex",
        "/a/Conv",
        "--by",
        "3",
        "-o",
        o.to_str().unwrap(),
    ]);
    insta::assert_snapshot!("resize_rescnn", text.replace(o.to_str().unwrap(), "OUT"));
    // The widened model computes what the original did.
    let run = |p: &str| {
        let m = graft::onnx::import(Path::new(p)).unwrap().model;
        let x =
            graft::nn::Tensor::ones((2, 3, 8, 8), graft::nn::DType::F32, &graft::nn::Device::Cpu)
                .unwrap();
        let ex = graft::nn::Executor::new(&m).unwrap();
        let y: Vec<f32> = ex.run(&m, &[x], &graft::nn::Run::eval()).unwrap().outputs[0]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        y
    };
    for (a, b) in run(&fixture("rescnn.legacy.onnx"))
        .iter()
        .zip(run(o.to_str().unwrap()))
    {
        assert!((a - b).abs() < 1e-5);
    }
    // Quiet mode prints nothing.
    let q = out("resize", "quiet.onnx");
    let s = ok(&[
        "resize",
        &fixture("rescnn.legacy.onnx"),
        "--vertex",
        "/a/Conv",
        "--by",
        "1",
        "-q",
        "-o",
        q.to_str().unwrap(),
    ]);
    assert!(s.is_empty() && q.exists());
}

#[test]
fn prune_to_half_the_macs() {
    let src = fixture("resnet18w8.legacy.onnx");
    let o = out("prune", "half.onnx");
    let before = macs(Path::new(&src));
    let text = ok(&[
        "prune",
        &src,
        "--macs",
        &(before / 2).to_string(),
        "-o",
        o.to_str().unwrap(),
    ]);
    insta::assert_snapshot!("prune_resnet18w8_half", without_paths(&text));
    let after = macs(&o);
    assert!(
        after <= before / 2 && after > before / 4,
        "{after} of {before}"
    );
    let o2 = out("prune", "ratio.onnx");
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "prune",
        &src,
        "--ratio",
        "0.3",
        "--scope",
        "layer",
        "--json",
        "-o",
        o2.to_str().unwrap(),
    ]))
    .unwrap();
    let (n0, n1) = (
        j["neurons"][0].as_u64().unwrap(),
        j["neurons"][1].as_u64().unwrap(),
    );
    assert!(n1 as f64 <= 0.7 * n0 as f64, "{j}");
}

#[test]
fn structural_edits_by_name() {
    let src = fixture("rescnn.legacy.onnx");
    let a = out("edits", "inserted.onnx");
    let text = ok(&[
        "insert",
        &src,
        "--after",
        "/Relu_1",
        "--name",
        "extra",
        "--op",
        "conv3x3",
        "-o",
        a.to_str().unwrap(),
    ]);
    assert!(text.contains("inserted `extra`"), "{text}");
    let b = out("edits", "removed.onnx");
    ok(&[
        "remove",
        a.to_str().unwrap(),
        "--vertex",
        "extra",
        "-o",
        b.to_str().unwrap(),
    ]);
    let c = out("edits", "disconnected.onnx");
    ok(&[
        "disconnect",
        &src,
        "--from",
        "/b/Conv",
        "--to",
        "/Concat",
        "-o",
        c.to_str().unwrap(),
    ]);
    let d = out("edits", "connected.onnx");
    let text = ok(&[
        "connect",
        c.to_str().unwrap(),
        "--from",
        "/b/Conv",
        "--to",
        "/Concat",
        "-o",
        d.to_str().unwrap(),
    ]);
    assert!(text.contains("connected"), "{text}");
    let m = graft::onnx::import(&d).unwrap().model;
    assert_eq!(m.graph().nout(m.id("/Concat").unwrap()).unwrap(), 8);
}

#[test]
fn bad_input_exits_2_names_the_culprit_and_writes_nothing() {
    let src = fixture("resnet18w8.legacy.onnx");
    let o = out("bad", "never.onnx");
    let os = o.to_str().unwrap();
    let bad = out("bad", "malformed.onnx");
    std::fs::write(&bad, b"definitely not protobuf").unwrap();
    let bads = bad.to_str().unwrap();
    refused(
        &["inspect", "/no/such/model.onnx"],
        &o,
        "/no/such/model.onnx",
    );
    refused(
        &[
            "resize",
            "/no/such/model.onnx",
            "--vertex",
            "a",
            "--by",
            "1",
            "-o",
            os,
        ],
        &o,
        "/no/such/model.onnx",
    );
    refused(
        &["resize", bads, "--vertex", "a", "--by", "1", "-o", os],
        &o,
        "malformed.onnx",
    );
    refused(
        &["resize", &src, "--vertex", "nope", "--by", "1", "-o", os],
        &o,
        "`nope`",
    );
    refused(
        &[
            "resize",
            &src,
            "--vertex",
            "/blocks/blocks.0/c1/Conv",
            "--by",
            "-9",
            "-o",
            os,
        ],
        &o,
        "/blocks/blocks.0/c1/Conv",
    );
    refused(
        &["prune", &src, "--params", "10", "-o", os],
        &o,
        "cannot be met",
    );
    refused(&["prune", &src, "--ratio", "1.5", "-o", os], &o, "ratio");
    refused(
        &["remove", &src, "--vertex", "ghost", "-o", os],
        &o,
        "`ghost`",
    );
    refused(
        &[
            "connect",
            &src,
            "--from",
            "/fc/Gemm",
            "--to",
            "/stem/stem.0/Conv",
            "-o",
            os,
        ],
        &o,
        "cycle",
    );
    // Two budgets at once is a usage error of clap (exit 2 too).
    refused(
        &["prune", &src, "--ratio", "0.5", "--macs", "10", "-o", os],
        &o,
        "--macs",
    );
}

#[test]
fn structure_writes_the_neuron_graph() {
    let g = out("structure", "mlp.graphml");
    let text = ok(&[
        "structure",
        &fixture("mlp.legacy.onnx"),
        "-o",
        g.to_str().unwrap(),
    ]);
    // 6 inputs + 16 + 12 + 4 neurons; 6·16 + 16·12 + 12·4 weights.
    assert!(text.starts_with("38 neurons, 336 connections"), "{text}");
    let xml = std::fs::read_to_string(&g).unwrap();
    assert_eq!(xml.matches("<node ").count(), 38);
    let d = out("structure", "mlp.dot");
    ok(&[
        "structure",
        &fixture("mlp.legacy.onnx"),
        "-o",
        d.to_str().unwrap(),
    ]);
    let dot = std::fs::read_to_string(&d).unwrap();
    assert_eq!(dot.matches(" -> ").count(), 336);
    // Unsupported layers and unknown formats are refused, naming them.
    let o = out("structure", "never.graphml");
    refused(
        &[
            "structure",
            &fixture("lstm.legacy.onnx"),
            "-o",
            o.to_str().unwrap(),
        ],
        &o,
        "`/rnn/LSTM`: recurrent has no neuron-level form",
    );
    // Pooling has one: the narrow ResNet-18 (max pool in the stem, global
    // average pool before the head).
    let r = out("structure", "resnet.graphml");
    let text = ok(&[
        "structure",
        &fixture("resnet18w8.legacy.onnx"),
        "-o",
        r.to_str().unwrap(),
    ]);
    assert!(text.starts_with("11,914 neurons"), "{text}");
    let t = out("structure", "never.txt");
    refused(
        &[
            "structure",
            &fixture("mlp.legacy.onnx"),
            "-o",
            t.to_str().unwrap(),
        ],
        &t,
        ".graphml or .dot",
    );
}

#[test]
fn sparsify_table() {
    let o = out("sparsify", "sparse.onnx");
    let text = ok(&[
        "sparsify",
        &fixture("mlp.legacy.onnx"),
        "--density",
        "0.1",
        "--compact",
        "-o",
        o.to_str().unwrap(),
    ]);
    insta::assert_snapshot!("sparsify_mlp", without_paths(&text));
    assert!(o.exists());
}

/// Scripts get JSON from the editing, structure and drawing commands too.
#[test]
fn json_from_edits_structure_and_draw() {
    let src = fixture("rescnn.legacy.onnx");
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&ok(&a)).unwrap()
    };
    let a = out("json", "inserted.onnx");
    let j = json(&[
        "insert",
        &src,
        "--after",
        "/Relu_1",
        "--name",
        "extra",
        "--op",
        "relu",
        "-o",
        a.to_str().unwrap(),
    ]);
    assert_eq!(j["created"], serde_json::json!(["extra"]));
    assert_eq!(j["change"], "inserted `extra` after `/Relu_1`");
    let b = out("json", "cut.onnx");
    let j = json(&[
        "disconnect",
        &src,
        "--from",
        "/b/Conv",
        "--to",
        "/Concat",
        "-o",
        b.to_str().unwrap(),
    ]);
    let resized = j["resized"].as_array().unwrap();
    assert!(
        resized
            .iter()
            .any(|r| r["vertex"] == "/Concat" && r["nout"] == 4),
        "{j}"
    );
    let g = out("json", "mlp.graphml");
    let j = json(&[
        "structure",
        &fixture("mlp.legacy.onnx"),
        "-o",
        g.to_str().unwrap(),
    ]);
    assert_eq!(j["neurons"], 6 + 16 + 12 + 4);
    let d = out("json", "plan.svg");
    let j = json(&[
        "draw",
        &src,
        "--plan",
        "/b/Conv=+2",
        "-o",
        d.to_str().unwrap(),
    ]);
    let changed = j["changed"].as_array().unwrap();
    assert!(
        changed
            .iter()
            .any(|c| c["vertex"] == "/b/Conv" && c["before"] == 4 && c["after"] == 6),
        "{j}"
    );
}

/// MACs at another input size: convolutions scale with the image, the head
/// does not; a MAC budget is met at the size given.
#[test]
fn inspect_and_prune_at_another_input_shape() {
    let src = fixture("resnet18w8.legacy.onnx");
    let inspect = |extra: &[&str]| -> serde_json::Value {
        let mut a = vec!["--json", "inspect", &src];
        a.extend_from_slice(extra);
        serde_json::from_str(&ok(&a)).unwrap()
    };
    let small = inspect(&[]);
    let large = inspect(&["--shape", "3x64x64"]);
    assert_eq!(large["sample_shapes"], serde_json::json!([[3, 64, 64]]));
    let head: u64 = small["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["op"] == "dense")
        .map(|v| v["macs"].as_u64().unwrap())
        .sum();
    assert!(head > 0);
    let m32 = small["macs"].as_u64().unwrap();
    assert_eq!(large["macs"].as_u64().unwrap(), 4 * (m32 - head) + head);
    assert_eq!(large["params"], small["params"]);
    // Prune to a budget counted at 64x64.
    let o = out("shape", "half64.onnx");
    let budget = 4 * m32 / 2;
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "--json",
        "prune",
        &src,
        "--macs",
        &budget.to_string(),
        "--shape",
        "3x64x64",
        "-o",
        o.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(j["macs"][1].as_u64().unwrap() <= budget, "{j}");
    assert_eq!(j["macs"][0], large["macs"]);
    // The written file keeps its own input shape.
    assert_eq!(
        graft::onnx::import(&o).unwrap().input_shapes,
        vec![vec![1, 3, 32, 32]]
    );
    for (bad, names) in [
        ("4x32x32", "takes samples shaped like [3, 32, 32]"),
        ("3x32", "takes samples shaped like [3, 32, 32]"),
        ("3xbig", "give sizes like 3x224x224"),
    ] {
        let o = out("shape", "never.onnx");
        refused(
            &[
                "prune",
                &src,
                "--ratio",
                "0.5",
                "--shape",
                bad,
                "-o",
                o.to_str().unwrap(),
            ],
            &o,
            names,
        );
    }
}

#[test]
fn written_models_keep_the_interface_and_take_an_opset() {
    let src = fixture("resnet18w8.legacy.onnx");
    let read = graft::onnx::import(Path::new(&src)).unwrap();
    let o = out("opset", "wide.onnx");
    ok(&[
        "resize",
        &src,
        "--vertex",
        "/blocks/blocks.3/c2/Conv",
        "--by",
        "1",
        "-q",
        "-o",
        o.to_str().unwrap(),
    ]);
    let back = graft::onnx::import(&o).unwrap();
    // The legacy exporter's names, dimensions and opset (17) are kept.
    assert_eq!(back.inputs[0].0, read.inputs[0].0);
    assert_eq!(back.outputs[0].0, read.outputs[0].0);
    assert_eq!(back.interface.inputs[0].dims, read.interface.inputs[0].dims);
    assert_eq!(
        back.interface.outputs[0].dims,
        read.interface.outputs[0].dims
    );
    assert_eq!(back.interface.opset, read.interface.opset);
    let o13 = out("opset", "wide13.onnx");
    ok(&[
        "resize",
        &src,
        "--vertex",
        "/blocks/blocks.3/c2/Conv",
        "--by",
        "1",
        "--opset",
        "13",
        "-q",
        "-o",
        o13.to_str().unwrap(),
    ]);
    assert_eq!(graft::onnx::import(&o13).unwrap().interface.opset, 13);
    let bad = out("opset", "bad.onnx");
    for n in ["12", "22"] {
        refused(
            &[
                "resize",
                &src,
                "--vertex",
                "/blocks/blocks.3/c2/Conv",
                "--by",
                "1",
                "--opset",
                n,
                "-o",
                bad.to_str().unwrap(),
            ],
            &bad,
            "--opset",
        );
    }
}

#[test]
fn inspect_shows_attention_heads_and_prune_refuses_a_missing_calibration() {
    let m = fixture("tf_llama.onnx");
    let text = ok(&["inspect", &m]);
    // Query heads (4), KV heads (2 each for k and v), the merges back.
    assert_eq!(text.matches("(heads of 16)").count(), 6, "{text}");
    assert!(
        text.contains("(each ×16)") && text.contains("(each ×2)"),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&ok(&["inspect", &m, "--json"])).unwrap();
    let widths: Vec<u64> = doc["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["head_width"].as_u64())
        .collect();
    assert_eq!(widths, vec![16; 6]);
    let o = out("heads", "x.onnx");
    refused(
        &[
            "prune",
            &m,
            "--ratio",
            "0.3",
            "--utility",
            "activation",
            "-o",
            o.to_str().unwrap(),
        ],
        &o,
        "--utility activation needs --data",
    );
}

#[test]
fn prune_head_dimensions_alone_or_refuse_them_with_whole_heads() {
    let m = fixture("tf_llama.onnx");
    let o = out("head_dims", "dims.onnx");
    let text = ok(&[
        "prune",
        &m,
        "--ratio",
        "0.25",
        "--only",
        "head-dims",
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(text.contains("prunable neurons"), "{text}");
    // Read back by whole heads: every head is still there, each narrower
    // (4 query heads and 2 KV heads of 16 dimensions before).
    let back = graft::onnx::import(&o).unwrap().model;
    let g = back.graph();
    let widths: Vec<usize> = g
        .ids()
        .filter_map(|v| g.vertex(v).unwrap().heads())
        .collect();
    let heads: Vec<usize> = g
        .ids()
        .filter(|&v| g.vertex(v).unwrap().heads().is_some())
        .map(|v| g.nout(v).unwrap())
        .collect();
    assert!(
        !widths.is_empty() && widths.iter().all(|&w| w < 16),
        "{widths:?}"
    );
    assert_eq!(heads.iter().filter(|&&h| h == 4).count(), 2, "{heads:?}");
    let both = out("head_dims", "both.onnx");
    refused(
        &[
            "prune",
            &m,
            "--ratio",
            "0.25",
            "--only",
            "heads,head-dims",
            "-o",
            both.to_str().unwrap(),
        ],
        &both,
        "by whole heads or by head dimensions",
    );
}

#[test]
fn a_language_model_is_pruned_by_taylor_on_its_next_token_loss() {
    let m = fixture("tf_llama.onnx");
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let run = |utility: &str, name: &str| {
        let o = out("lm_taylor", name);
        let mut args = vec![
            "prune",
            &m,
            "--ratio",
            "0.3",
            "--only",
            "heads,mlp",
            "--utility",
            utility,
        ];
        if utility != "magnitude" {
            args.extend(["--data", text.to_str().unwrap()]);
        }
        args.extend(["-o", o.to_str().unwrap()]);
        ok(&args);
        std::fs::read(&o).unwrap()
    };
    // The gradients of the next-token loss choose other neurons than the
    // weights' magnitudes do.
    assert_ne!(
        run("taylor", "taylor.onnx"),
        run("magnitude", "magnitude.onnx")
    );
    let empty = out("lm_taylor", "empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let o = out("lm_taylor", "none.onnx");
    refused(
        &[
            "prune",
            &m,
            "--ratio",
            "0.3",
            "--utility",
            "taylor",
            "--data",
            empty.to_str().unwrap(),
            "-o",
            o.to_str().unwrap(),
        ],
        &o,
        "at least one window of 16 tokens",
    );
}

#[test]
fn inspect_shows_a_mixture_of_experts_and_prune_drops_experts() {
    let m = fixture("tf_mixtral.onnx");
    let text = ok(&["inspect", &m]);
    // Two blocks, each with a top-2 router's values and indices.
    assert_eq!(text.matches("(2 of 4 experts)").count(), 4, "{text}");
    // Each block's experts: a gate-and-up and a down projection.
    assert_eq!(
        text.matches("routed_linear (4 experts)").count(),
        4,
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&ok(&["inspect", &m, "--json"])).unwrap();
    let experts: Vec<u64> = doc["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["experts"].as_u64())
        .collect();
    assert_eq!(experts, vec![4; 4]);
    let o = out("experts", "three.onnx");
    ok(&[
        "prune",
        &m,
        "--ratio",
        "0.25",
        "--only",
        "experts",
        "-o",
        o.to_str().unwrap(),
    ]);
    let text = ok(&["inspect", o.to_str().unwrap()]);
    assert_eq!(text.matches("(2 of 3 experts)").count(), 4, "{text}");
    assert_eq!(
        text.matches("routed_linear (3 experts)").count(),
        4,
        "{text}"
    );
    // At least 2 experts stay: half of them and more cannot go.
    let none = out("experts", "none.onnx");
    refused(
        &[
            "prune",
            &m,
            "--ratio",
            "0.9",
            "--only",
            "experts",
            "-o",
            none.to_str().unwrap(),
        ],
        &none,
        "cannot be met",
    );
}

/// An output path that is a symbolic link or a directory is refused and
/// left as it was (renaming over it would put a file where the user had
/// something else), and a link planted at the `.partial` name is not
/// written through.
#[cfg(unix)]
#[test]
fn outputs_that_are_not_regular_files_are_left_alone() {
    use std::os::unix::fs::symlink;
    let m = fixture("mlp.legacy.onnx");
    let dir = out("special", "x").parent().unwrap().to_path_buf();
    let target = dir.join("target.txt");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.join("link.onnx");
    let _ = std::fs::remove_file(&link);
    symlink(&target, &link).unwrap();
    let d = dir.join("dir.onnx");
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    for (path, kind) in [(&link, "a symbolic link"), (&d, "a directory")] {
        let o = common::graft()
            .args(["prune", &m, "--ratio", "0.5", "-o", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(kind), "{err}");
    }
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(d.is_dir());
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "safe").unwrap();
    let o2 = dir.join("ok.onnx");
    let _ = std::fs::remove_file(&o2);
    let planted = dir.join("ok.onnx.partial");
    let _ = std::fs::remove_file(&planted);
    symlink(&victim, &planted).unwrap();
    ok(&["prune", &m, "--ratio", "0.5", "-o", o2.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "safe");
    assert!(std::fs::symlink_metadata(&o2)
        .unwrap()
        .file_type()
        .is_file());
    assert!(std::fs::symlink_metadata(&planted).is_err());
}

/// A sample shape so large its multiply-accumulates overflow 64 bits is a
/// typed error naming the layer, not a panic or a wrapped count (issue 18).
#[test]
fn macs_that_do_not_fit_in_64_bits_are_an_error() {
    let m = fixture("resnet18w8.legacy.onnx");
    let o = common::graft()
        .args(["inspect", &m, "--shape", "3x4000000000x4000000000"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("do not fit in 64 bits") && err.contains("Conv"),
        "{err}"
    );
}

#[test]
fn external_data_is_written_beside_the_model_and_read_back() {
    // `--external-data` (issue 19): the weights go to `NAME.data` beside
    // the model; graft reads the pair back.
    let m = fixture("resnet18w8.legacy.onnx");
    let o = out("external", "r.onnx");
    let data = o.with_file_name("r.onnx.data");
    let _ = std::fs::remove_file(&data);
    ok(&[
        "--external-data",
        "prune",
        &m,
        "--ratio",
        "0.3",
        "-o",
        o.to_str().unwrap(),
    ]);
    let (model, weights) = (
        std::fs::metadata(&o).unwrap().len(),
        std::fs::metadata(&data).unwrap().len(),
    );
    assert!(weights > 10 * model, "{model} and {weights} bytes");
    let text = ok(&["inspect", o.to_str().unwrap()]);
    assert!(text.contains("84,733 parameters"), "{text}");
}

#[test]
fn inspect_says_when_a_model_holds_the_batch_size_it_was_read_at() {
    // torch's attention in a file fixed at batch 1: the reshape that holds
    // that size is named; with a symbolic batch nothing holds it.
    let fixed = fixture("vitattn.legacy.onnx");
    let text = ok(&["inspect", &fixed]);
    assert!(
        text.contains("read at batch size 1: vertex `/attn/Reshape_2`")
            && text.contains("one sample at a time"),
        "{text}"
    );
    let doc: serde_json::Value = serde_json::from_str(&ok(&["inspect", &fixed, "--json"])).unwrap();
    assert_eq!(doc["read_batch"], 1);
    assert_eq!(doc["batch_bound"], "/attn/Reshape_2");
    let symbolic = fixture("vitbatch.legacy.onnx");
    assert!(!ok(&["inspect", &symbolic]).contains("read at batch size"));
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", &symbolic, "--json"])).unwrap();
    assert!(doc["batch_bound"].is_null(), "{doc}");
}
