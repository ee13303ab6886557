//! The workflow subcommands, run as a user would: `demo` (quick mode),
//! `train` on every data format, `prune --utility taylor`, `sparsify` and
//! `draw`. Models are built with the library and written as ONNX first.

use std::path::{Path, PathBuf};

mod common;

use common::{ok, refused};
use graft::nn::{Activation, Conv, DType, Device, Model, Op, Tensor};
use serde_json::Value;

fn dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("workflows")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok_json(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(&a)).unwrap()
}

/// pixels(64) → dense(32) → relu → dense(32) → relu → dense(classes).
fn mlp(inputs: usize, classes: usize, path: &Path) {
    let mut m = Model::with(Device::Cpu, DType::F32, 3);
    let x = m.input("pixels", inputs).unwrap();
    let h = m
        .add("fc1", Op::Dense { bias: true }, &[x], Some(32))
        .unwrap();
    let h = m
        .add("relu1", Op::Activation(Activation::Relu), &[h], None)
        .unwrap();
    let h = m
        .add("fc2", Op::Dense { bias: true }, &[h], Some(32))
        .unwrap();
    let h = m
        .add("relu2", Op::Activation(Activation::Relu), &[h], None)
        .unwrap();
    m.add("logits", Op::Dense { bias: true }, &[h], Some(classes))
        .unwrap();
    graft::onnx::export(
        &m,
        &graft::onnx::Interface::for_model(&m, &[vec![1, inputs]]).unwrap(),
        path,
    )
    .unwrap();
}

/// image(1×8×8) → conv(8) → relu → conv(8) → relu → pool → dense(10).
fn cnn(path: &Path) {
    let mut m = Model::with(Device::Cpu, DType::F32, 4);
    let x = m.input("image", 1).unwrap();
    let c = m
        .add("conv1", Op::Conv2d(Conv::same(3)), &[x], Some(8))
        .unwrap();
    let c = m
        .add("relu1", Op::Activation(Activation::Relu), &[c], None)
        .unwrap();
    let c = m
        .add("conv2", Op::Conv2d(Conv::same(3)), &[c], Some(8))
        .unwrap();
    let c = m
        .add("relu2", Op::Activation(Activation::Relu), &[c], None)
        .unwrap();
    let p = m.add("pool", Op::GlobalAvgPool, &[c], None).unwrap();
    m.add("logits", Op::Dense { bias: true }, &[p], Some(10))
        .unwrap();
    graft::onnx::export(
        &m,
        &graft::onnx::Interface::for_model(&m, &[vec![1, 1, 8, 8]]).unwrap(),
        path,
    )
    .unwrap();
}

fn accuracies(report: &Value) -> Vec<f64> {
    report["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["held_out_accuracy"].as_f64().unwrap())
        .collect()
}

#[test]
fn demo_quick_keeps_accuracy_after_pruning_and_fine_tuning() {
    let d = dir("demo");
    let r = ok_json(&["demo", "--quick", "-o", s(&d)]);
    let acc = |k: &str| r[k]["accuracy"].as_f64().unwrap();
    let macs = |k: &str| r[k]["macs"].as_u64().unwrap();
    let params = |k: &str| r[k]["params"].as_u64().unwrap();
    eprintln!("{r:#}");
    // A real classifier, not chance.
    assert!(acc("trained") > 0.9, "trained accuracy {}", acc("trained"));
    // Half the MACs, and within 2 points of the trained accuracy after
    // fine-tuning.
    assert!(macs("pruned") <= macs("trained") / 2);
    assert!(params("pruned") < params("trained"));
    // Re-estimating the batch norms changes no weight and, for this
    // network, recovers accuracy before any fine-tuning.
    assert_eq!(params("recalibrated"), params("pruned"));
    assert!(
        acc("recalibrated") > acc("pruned"),
        "{} after re-estimation, {} pruned",
        acc("recalibrated"),
        acc("pruned")
    );
    assert!(
        acc("fine_tuned") >= acc("trained") - 0.02,
        "fine-tuned {} against trained {}",
        acc("fine_tuned"),
        acc("trained")
    );
    // Widening grows the model and keeps its function; so does ONNX.
    assert!(params("widened") > params("fine_tuned"));
    assert!(macs("widened") > macs("fine_tuned"));
    assert_eq!(acc("widened"), acc("fine_tuned"));
    assert!(r["widen_max_diff"].as_f64().unwrap() < 1e-5);
    assert!(r["onnx_max_diff"].as_f64().unwrap() < 1e-5);
    let onnx = Path::new(r["onnx"].as_str().unwrap());
    let back = graft::onnx::import(onnx).unwrap();
    assert_eq!(back.model.parameter_count(), params("widened"));
    let svg = std::fs::read_to_string(r["svg"].as_str().unwrap()).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("s2_add") && svg.contains("changed by the plan"));
}

#[test]
fn train_on_the_shipped_digits_with_per_epoch_metrics() {
    let d = dir("train_digits");
    let model = d.join("mlp.onnx");
    mlp(64, 10, &model);
    let out = d.join("tuned.onnx");
    let r = ok_json(&[
        "train",
        s(&model),
        "--data",
        "digits",
        "--epochs",
        "3",
        "--lr",
        "0.01",
        "-o",
        s(&out),
    ]);
    let acc = accuracies(&r);
    assert_eq!(acc.len(), 4, "epoch 0 and three epochs");
    assert_eq!(r["held_out_samples"], 359);
    assert_eq!(r["train_samples"], 1438);
    assert!(acc[0] < 0.3, "untrained accuracy {}", acc[0]);
    assert!(acc[3] > 0.9, "accuracy after 3 epochs {}", acc[3]);
    // The written model is the trained one: its held-out accuracy is the
    // report's (same split, seed 0).
    let back = graft::onnx::import(&out).unwrap();
    let data = graft::nn::data::digits(&graft::nn::data::digits_path()).unwrap();
    let (_, held) = data.split(1438, 0).unwrap();
    let (_, a) = graft::nn::train::evaluate(
        &back.model,
        &held.x,
        &held.y,
        graft::nn::train::Loss::CrossEntropy,
    )
    .unwrap();
    assert!((a - acc[3]).abs() < 1e-9, "{a} against {}", acc[3]);
    // `graft eval` measures the whole data set.
    let e = ok_json(&["eval", s(&out), "--data", "digits"]);
    let (_, all) = graft::nn::train::evaluate(
        &back.model,
        &data.x,
        &data.y,
        graft::nn::train::Loss::CrossEntropy,
    )
    .unwrap();
    assert_eq!(e["samples"], 1797);
    assert!((e["accuracy"].as_f64().unwrap() - all).abs() < 1e-9);
    refused(
        &["eval", s(&model), "--data", s(&d.join("none.csv"))],
        &d.join("never-written"),
        "none.csv",
    );
    // A CNN gets the 64 pixels as 1×8×8 images; the text mode prints the
    // table.
    let cnn_path = d.join("cnn.onnx");
    cnn(&cnn_path);
    let text = ok(&[
        "train",
        s(&cnn_path),
        "--data",
        "digits",
        "--epochs",
        "1",
        "-o",
        s(&out),
    ]);
    assert!(text.contains("held-out accuracy"), "{text}");
    assert!(text.contains("trained on 1438 samples"), "{text}");
}

/// Two Gaussian blobs in 4-D, labels 0 and 1.
fn blobs() -> (Vec<[f32; 4]>, Vec<u32>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..200u32 {
        let c = (i % 2) as f32;
        let j = |k: u32| ((i * 7 + k * 13) % 17) as f32 / 17.0 - 0.5;
        x.push([2.0 * c - 1.0 + j(0), j(1), 1.0 - 2.0 * c + j(2), j(3)]);
        y.push(i % 2);
    }
    (x, y)
}

#[test]
fn train_on_csv_npy_and_npz_files() {
    let d = dir("train_files");
    let model = d.join("mlp.onnx");
    mlp(4, 2, &model);
    let (x, y) = blobs();
    // CSV with a header.
    let mut csv = String::from("a,b,c,d,label\n");
    for (r, l) in x.iter().zip(&y) {
        csv.push_str(&format!("{},{},{},{},{l}\n", r[0], r[1], r[2], r[3]));
    }
    let csv_path = d.join("blobs.csv");
    std::fs::write(&csv_path, csv).unwrap();
    // NPY: features and the label in the last column.
    let flat: Vec<f32> = x
        .iter()
        .zip(&y)
        .flat_map(|(r, &l)| r.iter().copied().chain([l as f32]))
        .collect();
    let npy_path = d.join("blobs.npy");
    Tensor::from_vec(flat, (200, 5), &Device::Cpu)
        .unwrap()
        .write_npy(&npy_path)
        .unwrap();
    // NPZ: `x` and integer `y`.
    let npz_path = d.join("blobs.npz");
    let xt = Tensor::from_vec(x.concat(), (200, 4), &Device::Cpu).unwrap();
    let yt = Tensor::from_vec(
        y.iter().map(|&l| l as i64).collect::<Vec<_>>(),
        200,
        &Device::Cpu,
    )
    .unwrap();
    Tensor::write_npz(&[("x", &xt), ("y", &yt)], &npz_path).unwrap();
    for data in [&csv_path, &npy_path, &npz_path] {
        let out = d.join("tuned.onnx");
        let r = ok_json(&[
            "train",
            s(&model),
            "--data",
            s(data),
            "--epochs",
            "5",
            "--lr",
            "0.01",
            "-o",
            s(&out),
        ]);
        assert_eq!(r["train_samples"], 160, "{data:?}");
        let acc = accuracies(&r);
        assert!(acc[5] > 0.95, "{data:?}: {acc:?}");
    }
    // Bad data: each names the file and what is wrong, and writes nothing.
    let out = d.join("never.onnx");
    let bad_csv = d.join("bad.csv");
    std::fs::write(&bad_csv, "1,2,3,4,0\n1,2,x,4,1\n").unwrap();
    let args = |data: &Path| {
        vec![
            "train".to_string(),
            s(&model).to_string(),
            "--data".into(),
            s(data).to_string(),
            "-o".into(),
            s(&out).to_string(),
        ]
    };
    let run = |data: &Path, names: &str| {
        let a = args(data);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        refused(&a, &out, names);
    };
    run(&bad_csv, "bad.csv`: line 2");
    let label = d.join("label.csv");
    std::fs::write(&label, "1,2,3,4,0\n1,2,3,4,7\n").unwrap();
    run(&label, "label 7, the model has 2 outputs");
    let wide = d.join("wide.csv");
    std::fs::write(&wide, "1,2,3,0\n1,2,3,1\n").unwrap();
    run(&wide, "3 features per sample");
    run(&d.join("missing.csv"), "missing.csv");
    run(&d.join("data.parquet"), "unknown format");
    refused(
        &["train", s(&model), "--data", "digits", "-o", s(&out)],
        &out,
        "64 features per sample",
    );
    refused(
        &[
            "train",
            s(&model),
            "--data",
            s(&csv_path),
            "--holdout",
            "1.5",
            "-o",
            s(&out),
        ],
        &out,
        "--holdout",
    );
    // A model with two outputs is not a classifier.
    let mut two = Model::new();
    let x = two.input("x", 4).unwrap();
    let h = two
        .add("h", Op::Dense { bias: true }, &[x], Some(8))
        .unwrap();
    for head in ["a", "b"] {
        two.add(head, Op::Dense { bias: true }, &[h], Some(2))
            .unwrap();
    }
    let two_path = d.join("two.onnx");
    graft::onnx::export(
        &two,
        &graft::onnx::Interface::for_model(&two, &[vec![1, 4]]).unwrap(),
        &two_path,
    )
    .unwrap();
    refused(
        &["train", s(&two_path), "--data", s(&csv_path), "-o", s(&out)],
        &out,
        "has 2 outputs",
    );
}

#[test]
fn prune_with_taylor_utility_on_data() {
    let d = dir("taylor");
    let model = d.join("mlp.onnx");
    mlp(64, 10, &model);
    let trained = d.join("trained.onnx");
    ok_json(&[
        "train",
        s(&model),
        "--data",
        "digits",
        "--epochs",
        "3",
        "--lr",
        "0.01",
        "-o",
        s(&trained),
    ]);
    let out = d.join("pruned.onnx");
    let r = ok_json(&[
        "prune",
        s(&trained),
        "--ratio",
        "0.5",
        "--utility",
        "taylor",
        "--data",
        "digits",
        "-o",
        s(&out),
    ]);
    assert_eq!(r["neurons"], serde_json::json!([64, 32]));
    let back = graft::onnx::import(&out).unwrap();
    assert_eq!(
        back.model.parameter_count(),
        r["params"][1].as_u64().unwrap()
    );
    // The pruned network still classifies the digits.
    let data = graft::nn::data::digits(&graft::nn::data::digits_path()).unwrap();
    let (_, a) = graft::nn::train::evaluate(
        &back.model,
        &data.x,
        &data.y,
        graft::nn::train::Loss::CrossEntropy,
    )
    .unwrap();
    assert!(a > 0.5, "accuracy after pruning half the neurons: {a}");
    refused(
        &[
            "prune",
            s(&trained),
            "--ratio",
            "0.5",
            "--utility",
            "taylor",
            "-o",
            s(&out),
        ],
        &out.with_file_name("none.onnx"),
        "--utility taylor needs --data",
    );
    let none = d.join("none.onnx");
    refused(
        &[
            "prune",
            s(&trained),
            "--ratio",
            "0.5",
            "--data",
            "digits",
            "-o",
            s(&none),
        ],
        &none,
        "--data is used by --utility taylor or activation and --recalibrate only",
    );
}

#[test]
fn sparsify_to_a_density_and_compact() {
    let d = dir("sparsify");
    let model = d.join("mlp.onnx");
    mlp(64, 10, &model);
    let out = d.join("sparse.onnx");
    let r = ok_json(&["sparsify", s(&model), "--density", "0.25", "-o", s(&out)]);
    let total = 64 * 32 + 32 * 32 + 32 * 10;
    assert_eq!(r["weights"], serde_json::json!([total, total / 4]));
    assert_eq!(r["neurons_removed"], 0);
    // An MLP's MACs are its weights: the nonzero ones are a quarter.
    assert_eq!(r["macs"][0], total);
    assert_eq!(r["nonzero_macs"], total / 4);
    // The written weights have exactly that many nonzeros.
    let back = graft::onnx::import(&out).unwrap();
    let mut nonzero = 0;
    for name in ["fc1", "fc2", "logits"] {
        let v = back.model.id(name).unwrap();
        let w: Vec<f32> = back
            .model
            .param(v, "weight")
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        nonzero += w.iter().filter(|&&x| x != 0.0).count();
    }
    assert_eq!(nonzero, total / 4);
    // Very sparse: dead neurons appear and --compact removes them.
    let small = d.join("small.onnx");
    let r = ok_json(&[
        "sparsify",
        s(&model),
        "--density",
        "0.02",
        "--compact",
        "-o",
        s(&small),
    ]);
    let removed = r["neurons_removed"].as_u64().unwrap();
    assert!(removed > 0, "{r}");
    let p = r["params"].as_array().unwrap();
    assert!(p[1].as_u64().unwrap() < p[0].as_u64().unwrap());
    let back = graft::onnx::import(&small).unwrap();
    assert_eq!(back.model.parameter_count(), p[1].as_u64().unwrap());
    // Per layer and random saliency run too.
    let r = ok_json(&[
        "sparsify",
        s(&model),
        "--density",
        "0.5",
        "--scope",
        "layer",
        "--saliency",
        "random",
        "-o",
        s(&out),
    ]);
    assert_eq!(r["weights"][1], total / 2);
    let none = d.join("none.onnx");
    refused(
        &["sparsify", s(&model), "--density", "0", "-o", s(&none)],
        &none,
        "--density 0",
    );
    refused(
        &[
            "sparsify",
            s(&d.join("nope.onnx")),
            "--density",
            "0.5",
            "-o",
            s(&none),
        ],
        &none,
        "nope.onnx",
    );
}

#[test]
fn draw_the_graph_and_a_plan() {
    let d = dir("draw");
    let model = d.join("cnn.onnx");
    cnn(&model);
    let out = d.join("cnn.svg");
    let text = ok(&["draw", s(&model), "-o", s(&out)]);
    assert!(text.contains("drew 7 vertices"), "{text}");
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in [
        "image", "conv1", "relu1", "conv2", "relu2", "pool", "logits",
    ] {
        assert!(svg.contains(&format!(">{name}</text>")), "{name}");
    }
    // One arrow per edge.
    assert_eq!(svg.matches("marker-end").count(), 6);
    let plan = d.join("plan.svg");
    let text = ok(&["draw", s(&model), "--plan", "conv1=+4", "-o", s(&plan)]);
    assert!(
        text.contains("the plan changes 2 vertices: conv1 8→12, relu1 8→12"),
        "{text}"
    );
    let svg = std::fs::read_to_string(&plan).unwrap();
    assert!(svg.contains("changed by the plan (2 vertices)"));
    assert!(svg.contains("8 → 12"));
    let none = d.join("none.svg");
    refused(
        &["draw", s(&model), "--plan", "conv1+4", "-o", s(&none)],
        &none,
        "--plan `conv1+4`",
    );
    refused(
        &["draw", s(&model), "--plan", "conv9=+4", "-o", s(&none)],
        &none,
        "conv9",
    );
    refused(
        &["draw", s(&model), "--plan", "image=+1", "-o", s(&none)],
        &none,
        "image",
    );
}

#[test]
fn prune_then_recalibrate_batch_norms() {
    let d = dir("recalibrate");
    let model = d.join("bn.onnx");
    let mut m = Model::with(Device::Cpu, DType::F32, 8);
    let x = m.input("image", 1).unwrap();
    let c = m
        .add("conv", Op::Conv2d(Conv::same(3)), &[x], Some(8))
        .unwrap();
    let bn = Op::BatchNorm {
        eps: 1e-5,
        momentum: 0.1,
    };
    let b = m.add("bn", bn, &[c], None).unwrap();
    let r = m
        .add("relu", Op::Activation(Activation::Relu), &[b], None)
        .unwrap();
    let p = m.add("pool", Op::GlobalAvgPool, &[r], None).unwrap();
    m.add("logits", Op::Dense { bias: true }, &[p], Some(10))
        .unwrap();
    graft::onnx::export(
        &m,
        &graft::onnx::Interface::for_model(&m, &[vec![1, 1, 8, 8]]).unwrap(),
        &model,
    )
    .unwrap();
    let plain = d.join("plain.onnx");
    let recal = d.join("recal.onnx");
    let run = |extra: &[&str], o: &Path| {
        let mut a = vec!["prune", s(&model), "--ratio", "0.5", "-o", s(o)];
        a.extend_from_slice(extra);
        ok_json(&a)
    };
    assert_eq!(run(&[], &plain)["recalibrated"], 0);
    assert_eq!(
        run(&["--recalibrate", "--data", "digits"], &recal)["recalibrated"],
        1
    );
    // The written statistics are the library's re-estimate on the digits.
    let mut want = graft::onnx::import(&plain).unwrap().model;
    let digits = graft::nn::data::shipped_digits().unwrap();
    let images = digits.x.reshape((1797, 1, 8, 8)).unwrap();
    graft::nn::train::recalibrate_batch_norm(&mut want, &images, 128).unwrap();
    let got = graft::onnx::import(&recal).unwrap().model;
    let stats = |m: &Model, name: &str| -> Vec<f32> {
        let v = m.id("bn").unwrap();
        m.param(v, name).unwrap().to_vec1().unwrap()
    };
    for name in ["running_mean", "running_var"] {
        for (a, b) in stats(&got, name).iter().zip(&stats(&want, name)) {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{name}: {a} vs {b}"
            );
        }
    }
    assert_ne!(
        stats(&got, "running_mean"),
        stats(&m, "running_mean")[..4].to_vec()
    );
    let none = d.join("none.onnx");
    refused(
        &[
            "prune",
            s(&model),
            "--ratio",
            "0.5",
            "--recalibrate",
            "-o",
            s(&none),
        ],
        &none,
        "--recalibrate needs --data",
    );
}

/// `resize --by -1` removes the neuron with the smallest weights, and
/// `draw --plan` shows the same plan.
#[test]
fn resize_removes_the_smallest_neurons() {
    let d = dir("resize_smallest");
    let mut m = Model::with(Device::Cpu, DType::F32, 21);
    let x = m.input("x", 4).unwrap();
    let h = m
        .add("fc1", Op::Dense { bias: true }, &[x], Some(6))
        .unwrap();
    let r = m
        .add("relu", Op::Activation(Activation::Relu), &[h], None)
        .unwrap();
    m.add("fc2", Op::Dense { bias: true }, &[r], Some(2))
        .unwrap();
    // Neuron 2 of fc1 gets tiny weights and bias.
    let rows = |m: &Model, name: &str| -> Vec<Vec<f32>> {
        m.param(m.id(name).unwrap(), "weight")
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let mut w = rows(&m, "fc1");
    w[2] = vec![1e-4; 4];
    m.set_param(
        h,
        "weight",
        &Tensor::from_vec(w.concat(), (6, 4), &Device::Cpu).unwrap(),
    )
    .unwrap();
    let mut b: Vec<f32> = m.param(h, "bias").unwrap().to_vec1().unwrap();
    b[2] = 0.0;
    m.set_param(h, "bias", &Tensor::from_vec(b, 6, &Device::Cpu).unwrap())
        .unwrap();
    let src = d.join("mlp.onnx");
    graft::onnx::export(
        &m,
        &graft::onnx::Interface::for_model(&m, &[vec![1, 4]]).unwrap(),
        &src,
    )
    .unwrap();
    let out = d.join("smaller.onnx");
    ok(&[
        "resize",
        s(&src),
        "--vertex",
        "fc1",
        "--by",
        "-1",
        "-o",
        s(&out),
    ]);
    let back = graft::onnx::import(&out).unwrap().model;
    let mut want = w.clone();
    want.remove(2);
    assert_eq!(rows(&back, "fc1"), want);
    let fc2: Vec<Vec<f32>> = rows(&m, "fc2")
        .into_iter()
        .map(|mut r| {
            r.remove(2);
            r
        })
        .collect();
    assert_eq!(rows(&back, "fc2"), fc2);
    let j = ok_json(&[
        "draw",
        s(&src),
        "--plan",
        "fc1=-1",
        "-o",
        s(&d.join("p.svg")),
    ]);
    assert_eq!(j["changed"][0]["vertex"], "fc1");
    assert_eq!(j["changed"][0]["after"], 5);
}

/// Joining a smaller input to a residual add shrinks the add's stream, and
/// the neurons with the smallest weights are the ones that go.
#[test]
fn connect_drops_the_smallest_neurons_when_it_must_shrink() {
    let d = dir("connect_smallest");
    let mut m = Model::with(Device::Cpu, DType::F32, 22);
    let x = m.input("x", 4).unwrap();
    let a = m.add("a", Op::Dense { bias: true }, &[x], Some(6)).unwrap();
    let c = m.add("c", Op::Dense { bias: true }, &[a], Some(6)).unwrap();
    let add = m.add("add", Op::Add, &[a, c], None).unwrap();
    m.add("out", Op::Dense { bias: true }, &[add], Some(2))
        .unwrap();
    // Neurons 1 and 4 of a and c (tied by the add) are small.
    for v in [a, c] {
        let n_in = m.graph().nin(v).unwrap()[0];
        let mut w: Vec<Vec<f32>> = m.param(v, "weight").unwrap().to_vec2().unwrap();
        let mut b: Vec<f32> = m.param(v, "bias").unwrap().to_vec1().unwrap();
        for i in [1, 4] {
            w[i] = vec![1e-4; n_in];
            b[i] = 0.0;
        }
        m.set_param(
            v,
            "weight",
            &Tensor::from_vec(w.concat(), (6, n_in), &Device::Cpu).unwrap(),
        )
        .unwrap();
        m.set_param(v, "bias", &Tensor::from_vec(b, 6, &Device::Cpu).unwrap())
            .unwrap();
    }
    let src = d.join("res.onnx");
    graft::onnx::export(
        &m,
        &graft::onnx::Interface::for_model(&m, &[vec![1, 4]]).unwrap(),
        &src,
    )
    .unwrap();
    let out = d.join("joined.onnx");
    ok(&[
        "connect",
        s(&src),
        "--from",
        "x",
        "--to",
        "add",
        "-o",
        s(&out),
    ]);
    let back = graft::onnx::import(&out).unwrap().model;
    assert_eq!(back.graph().nout(back.id("add").unwrap()).unwrap(), 4);
    let rows = |m: &Model| -> Vec<Vec<f32>> {
        m.param(m.id("a").unwrap(), "weight")
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    let kept: Vec<Vec<f32>> = rows(&m)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 4)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(rows(&back), kept);
}

/// Optimal Brain Damage on data keeps a trained classifier far better than
/// a random choice of the same number of weights.
#[test]
fn sparsify_with_obd_saliency_on_data() {
    let d = dir("obd");
    let model = d.join("mlp.onnx");
    mlp(64, 10, &model);
    let trained = d.join("trained.onnx");
    ok_json(&[
        "train",
        s(&model),
        "--data",
        "digits",
        "--epochs",
        "3",
        "--lr",
        "0.01",
        "-o",
        s(&trained),
    ]);
    let accuracy = |saliency: &str| -> f64 {
        let out = d.join(format!("{saliency}.onnx"));
        let mut args = vec!["sparsify", s(&trained), "--density", "0.1"];
        args.extend(["--saliency", saliency]);
        if saliency == "obd" {
            args.extend(["--data", "digits"]);
        }
        args.extend(["-o", s(&out)]);
        let r = ok_json(&args);
        assert_eq!(r["weights"][1], 339, "{saliency}: {r}");
        ok_json(&["eval", s(&out), "--data", "digits"])["accuracy"]
            .as_f64()
            .unwrap()
    };
    let (obd, random) = (accuracy("obd"), accuracy("random"));
    assert!(obd > random + 0.2, "OBD {obd}, random {random}");
    let none = d.join("none.onnx");
    refused(
        &[
            "sparsify",
            s(&trained),
            "--density",
            "0.1",
            "--saliency",
            "obd",
            "-o",
            s(&none),
        ],
        &none,
        "--saliency obd needs --data",
    );
    refused(
        &[
            "sparsify",
            s(&trained),
            "--density",
            "0.1",
            "--data",
            "digits",
            "-o",
            s(&none),
        ],
        &none,
        "--data is used by --saliency obd only",
    );
}

/// Inputs that used to give wrong results with exit 0 (issue 18): a
/// learning rate that is not a positive number, an empty data set to
/// evaluate on, a CSV file starting with a byte-order mark, a ratio of
/// `-inf`.
#[test]
fn bad_numbers_and_empty_data_are_refused_and_a_bom_is_not_a_header() {
    let d = dir("bad_numbers");
    let model = d.join("mlp.onnx");
    mlp(4, 3, &model);
    let out = d.join("out.onnx");
    let csv = d.join("data.csv");
    let rows: Vec<String> = (0..12)
        .map(|i| format!("{},{},{},{},{}", i, i + 1, i % 3, 1, i % 3))
        .collect();
    std::fs::write(&csv, rows.join("\n")).unwrap();
    for lr in ["NaN", "inf", "0", "-0.1"] {
        refused(
            &[
                "train",
                s(&model),
                "--data",
                s(&csv),
                "--lr",
                lr,
                "-o",
                s(&out),
            ],
            &out,
            "--lr",
        );
    }
    refused(
        &["prune", s(&model), "--ratio", "-inf", "-o", s(&out)],
        &out,
        "ratio",
    );
    let empty = d.join("empty.csv");
    std::fs::write(&empty, "a,b,c,d,label\n").unwrap();
    let o = common::graft()
        .args(["eval", s(&model), "--data", s(&empty)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("NaN") && err.contains("empty.csv"), "{err}");
    // With a byte-order mark the first row is data, not a header: 12
    // samples, not 11.
    let bom = d.join("bom.csv");
    std::fs::write(&bom, format!("\u{feff}{}", rows.join("\n"))).unwrap();
    let report = ok_json(&["eval", s(&model), "--data", s(&bom)]);
    assert_eq!(report["samples"], 12, "{report}");
}
