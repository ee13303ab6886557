//! `graft demo`: the end-to-end story on the shipped digits.
//!
//! Build and train a small residual CNN; prune it to half its MACs with the
//! planner (Taylor utility on the training data); re-estimate its batch
//! norms' statistics; fine-tune; widen the
//! second stage function-preservingly; export to ONNX and read it back;
//! print a before/after table and write an SVG of the model. Every figure
//! printed is measured in the run.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use graft::nn::data::{shipped_digits, Dataset};
use graft::nn::shrink::{shrink, Scope, Target};
use graft::nn::train::{evaluate, Loss};
use graft::nn::{Activation, Conv, DType, Device, Executor, Mode, Model, Op, Tensor};
use graft::Request;
use serde_json::json;

use super::train::{epochs_table, fit, Schedule};
use crate::io::{spinner, table, thousands, write_file};

/// How long to train.
#[derive(Debug, Clone, Copy)]
pub struct Length {
    pub epochs: usize,
    pub fine_tune: usize,
}

impl Length {
    pub const FULL: Length = Length {
        epochs: 12,
        fine_tune: 6,
    };
    /// For the test suite: the same story, fewer epochs.
    pub const QUICK: Length = Length {
        epochs: 5,
        fine_tune: 3,
    };
}

/// image(1×8×8) → stem conv(16) → bn → relu → [conv(16) → bn → relu →
/// conv(16) → bn] + skip → relu → conv(32, stride 2) → bn → relu →
/// [conv(32) → bn → relu → conv(32) → bn] + skip → relu → global average
/// pool → dense(10).
fn residual_cnn(seed: u64) -> graft::nn::Result<Model> {
    let mut m = Model::with(Device::Cpu, DType::F32, seed);
    // A convolution followed by batch norm.
    let conv_bn = |m: &mut Model, name: &str, x, n, stride| -> graft::nn::Result<_> {
        let c = Conv {
            stride: graft::nn::Hw::square(stride),
            ..Conv::same(3)
        };
        let v = m.add(name, Op::Conv2d(c), &[x], Some(n))?;
        let bn = Op::BatchNorm {
            eps: 1e-5,
            momentum: 0.1,
        };
        m.add(&format!("{name}_bn"), bn, &[v], None)
    };
    let relu =
        |m: &mut Model, name: &str, x| m.add(name, Op::Activation(Activation::Relu), &[x], None);
    let x = m.input("image", 1)?;
    let v = conv_bn(&mut m, "stem", x, 16, 1)?;
    let r0 = relu(&mut m, "stem_relu", v)?;
    let v = conv_bn(&mut m, "s1_conv1", r0, 16, 1)?;
    let v = relu(&mut m, "s1_relu1", v)?;
    let v = conv_bn(&mut m, "s1_conv2", v, 16, 1)?;
    let v = m.add("s1_add", Op::Add, &[r0, v], None)?;
    let r1 = relu(&mut m, "s1_out", v)?;
    let v = conv_bn(&mut m, "down", r1, 32, 2)?;
    let r2 = relu(&mut m, "down_relu", v)?;
    let v = conv_bn(&mut m, "s2_conv1", r2, 32, 1)?;
    let v = relu(&mut m, "s2_relu1", v)?;
    let v = conv_bn(&mut m, "s2_conv2", v, 32, 1)?;
    let v = m.add("s2_add", Op::Add, &[r2, v], None)?;
    let v = relu(&mut m, "s2_out", v)?;
    let p = m.add("pool", Op::GlobalAvgPool, &[v], None)?;
    m.add("logits", Op::Dense { bias: true }, &[p], Some(10))?;
    Ok(m)
}

/// Figures of one state of the model.
#[derive(Debug, Clone, Copy)]
struct Row {
    accuracy: f64,
    params: u64,
    macs: u64,
}

fn measure(m: &Model, test: &Dataset, shapes: &[Vec<usize>]) -> Result<Row> {
    let (_, accuracy) = evaluate(m, &test.x, &test.y, Loss::CrossEntropy)?;
    Ok(Row {
        accuracy,
        params: m.parameter_count(),
        macs: m.cost(shapes)?.total(),
    })
}

/// The vertices a plan resized, before and after.
fn sizes(plan: &graft::Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .changes
        .iter()
        .filter(|c| c.nout_before != c.nout_after)
        .map(|c| {
            vec![
                c.name.clone(),
                c.nout_before.to_string(),
                c.nout_after.to_string(),
            ]
        })
        .collect();
    table(&["vertex", "nout before", "nout after"], &rows)
}

fn outputs(m: &Model, x: &Tensor) -> Result<Tensor> {
    let ex = Executor::new(m)?;
    Ok(ex
        .forward(m, std::slice::from_ref(x), Mode::Eval, false)?
        .outputs
        .remove(0))
}

fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    Ok(a.sub(b)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?)
}

pub fn run(out_dir: &Path, len: Length, json_out: bool, show: bool) -> Result<String> {
    // The demo's own model and data are fixed: a failure there is internal
    // (exit 1), so those errors are turned into text. Writing the output
    // directory is the user's input (exit 2).
    let internal = |what: &'static str| move |e: graft::nn::NnError| anyhow!("{what}: {e}");
    // The same for the steps that return any error.
    let failed = |what: &'static str| move |e: anyhow::Error| anyhow!("{what}: {e:#}");
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("creating the output directory `{}`", out_dir.display()))?;
    let data = shipped_digits().map_err(internal("reading the shipped digits"))?;
    let img = |d: Dataset| -> Result<Dataset> {
        let n = d.len();
        Ok(Dataset {
            x: d.x.reshape((n, 1, 8, 8))?,
            y: d.y,
        })
    };
    let (train, test) = data
        .split(1437, 42)
        .map_err(internal("splitting the digits"))?;
    let (train, test) = (
        img(train).map_err(failed("shaping the digits"))?,
        img(test).map_err(failed("shaping the digits"))?,
    );
    let shapes = vec![vec![1, 8, 8]];
    let mut text = String::from(
        "graft demo: a residual CNN on the digits (1,437 training and 360 held-out 8×8 images)\n\n",
    );

    // 1. Build and train.
    let mut m = residual_cnn(7).map_err(internal("building the model"))?;
    let s = Schedule {
        epochs: len.epochs,
        batch: 32,
        lr: 2e-3,
        seed: 11,
    };
    let log = fit(&mut m, &train, &test, s, "train", show).map_err(failed("training"))?;
    let trained = measure(&m, &test, &shapes).map_err(failed("measuring"))?;
    text.push_str(&format!("## 1. Train ({} epochs, Adam)\n\n", len.epochs));
    text.push_str(&epochs_table(&log));

    // 2. Prune to half the MACs.
    let sp = spinner("pruning to half the MACs", show);
    let u = graft::nn::utility::taylor_on(&m, &train.x, &train.y, Loss::CrossEntropy, 128, || {})
        .map_err(internal("Taylor utility"))?;
    let budget = trained.macs / 2;
    let r = shrink(&mut m, &u, Target::Macs(budget), Scope::Global, &shapes)
        .map_err(internal("pruning"))?;
    sp.finish_and_clear();
    let pruned = measure(&m, &test, &shapes).map_err(failed("measuring"))?;
    text.push_str(&format!(
        "\n## 2. Prune to half the MACs (budget {}; Taylor utility, planner re-select)\n\n",
        thousands(budget)
    ));
    text.push_str(&sizes(&r.plan));

    // 3. Re-estimate the batch norms' statistics: the pruned network's
    // activations have changed, their running estimates have not.
    let sp = spinner("re-estimating batch-norm statistics", show);
    graft::nn::train::recalibrate_batch_norm(&mut m, &train.x, 128)
        .map_err(internal("re-estimating batch-norm statistics"))?;
    sp.finish_and_clear();
    let recalibrated = measure(&m, &test, &shapes).map_err(failed("measuring"))?;
    text.push_str(&format!(
        "\n## 3. Re-estimate batch-norm statistics on the training images\n\n\
         no weight changes; held-out accuracy {:.1}% → {:.1}%\n",
        100.0 * pruned.accuracy,
        100.0 * recalibrated.accuracy
    ));

    // 4. Fine-tune.
    let s = Schedule {
        epochs: len.fine_tune,
        lr: 1e-3,
        seed: 23,
        ..s
    };
    let log = fit(&mut m, &train, &test, s, "fine-tune", show).map_err(failed("fine-tuning"))?;
    let tuned = measure(&m, &test, &shapes).map_err(failed("measuring"))?;
    text.push_str(&format!("\n## 4. Fine-tune ({} epochs)\n\n", len.fine_tune));
    text.push_str(&epochs_table(&log));

    // 5. Widen stage 2 by 8 channels: `down` feeds the residual add, so
    // every vertex of that stream follows. New neurons get zero weights out
    // of them, so the function is kept.
    let y_before = outputs(&m, &test.x).map_err(failed("running the model"))?;
    let down = m.id("down").map_err(internal("finding `down`"))?;
    let (planned, _) = m
        .change_sizes(&Request::new().nout(down, 8))
        .map_err(internal("widening stage 2"))?;
    let y_after = outputs(&m, &test.x).map_err(failed("running the model"))?;
    let widen_diff = max_diff(&y_before, &y_after).map_err(failed("comparing outputs"))?;
    let widened = measure(&m, &test, &shapes).map_err(failed("measuring"))?;
    text.push_str("\n## 5. Widen stage 2 (nout(down) +8, exact)\n\n");
    text.push_str(&sizes(&planned.plan));
    text.push_str(&format!(
        "largest change of any output on the held-out images: {widen_diff:.2e}\n"
    ));

    // 6. Export to ONNX and read it back.
    let onnx_path = out_dir.join("digits_rescnn.onnx");
    let iface = graft::onnx::Interface::for_model(&m, &[vec![1, 1, 8, 8]])
        .map_err(|e| anyhow!("exporting to ONNX: {e}"))?;
    let bytes = graft::onnx::export_bytes(&m, &crate::io::with_write_opset(&iface)?)
        .map_err(|e| anyhow!("exporting to ONNX: {e}"))?;
    write_file(&onnx_path, &bytes)?;
    let back = graft::onnx::import(&onnx_path)
        .map_err(|e| anyhow!("reading back `{}`: {e}", onnx_path.display()))?;
    let onnx_diff = outputs(&back.model, &test.x)
        .and_then(|y| max_diff(&y_after, &y))
        .map_err(failed("running the model read back"))?;
    text.push_str(&format!(
        "\n## 6. Export\n\nwrote {} ({} bytes); read back, its outputs differ by at most {onnx_diff:.2e}\n",
        onnx_path.display(),
        thousands(bytes.len() as u64)
    ));

    // 7. Picture.
    let svg_path = out_dir.join("model.svg");
    let d = super::draw::drawing(
        &m,
        "digits residual CNN, pruned; stage 2 widened",
        Some(&planned.plan),
    );
    let svg = graft::svg::to_svg(m.graph(), &d).map_err(|e| anyhow!("drawing: {e}"))?;
    write_file(&svg_path, svg.as_bytes())?;

    let rows: Vec<Vec<String>> = [
        ("trained", trained),
        ("pruned to half the MACs", pruned),
        ("batch norm re-estimated", recalibrated),
        ("fine-tuned", tuned),
        ("stage 2 widened", widened),
    ]
    .iter()
    .map(|(name, r)| {
        vec![
            name.to_string(),
            format!("{:.1}%", 100.0 * r.accuracy),
            thousands(r.params),
            thousands(r.macs),
        ]
    })
    .collect();
    if json_out {
        let row = |r: &Row| json!({"accuracy": r.accuracy, "params": r.params, "macs": r.macs});
        let doc = json!({
            "epochs": len.epochs,
            "fine_tune_epochs": len.fine_tune,
            "trained": row(&trained),
            "pruned": row(&pruned),
            "recalibrated": row(&recalibrated),
            "fine_tuned": row(&tuned),
            "widened": row(&widened),
            "mac_budget": budget,
            "widen_max_diff": widen_diff,
            "onnx_max_diff": onnx_diff,
            "onnx": onnx_path.display().to_string(),
            "svg": svg_path.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    text.push_str(&format!(
        "\n## Before and after (held-out accuracy; MACs per image)\n\n{}",
        table(&["model", "accuracy", "parameters", "MACs"], &rows)
    ));
    text.push_str(&format!("\nwrote {}\n", svg_path.display()));
    Ok(text)
}
