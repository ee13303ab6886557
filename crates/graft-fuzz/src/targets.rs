//! One fuzz target per input path: each takes the bytes of an input and
//! does what graft's commands do with such a file. A typed error is a
//! pass; only a panic, an abort or a hang is a finding.

use std::path::PathBuf;
use std::time::Duration;

use graft_core::{plan, Request};
use graft_nn::shrink::{shrink, Scope, Target as PruneTo};
use graft_nn::{Device, Executor, Run, Tensor};

/// An input path of graft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `graft inspect`: import an ONNX model, cost it, export it and
    /// import the export.
    Onnx,
    /// `graft prune` and `graft run`: import an ONNX model, prune 30% of
    /// its neurons by magnitude, run it on zeros, export it.
    OnnxPrune,
    /// `graft plan`: a graph and a request as JSON (the two documents
    /// joined by a NUL byte).
    PlanJson,
    /// A NumPy array (`graft run --input`, data sets).
    Npy,
    /// A NumPy archive.
    Npz,
    /// A CSV data set.
    Csv,
    /// A DAG as GraphML (`graft structure`'s format, deepstruct's graphs),
    /// built into a network when small.
    GraphMl,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 7] = [
        Target::Onnx,
        Target::OnnxPrune,
        Target::PlanJson,
        Target::Npy,
        Target::Npz,
        Target::Csv,
        Target::GraphMl,
    ];

    /// The target's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Onnx => "onnx",
            Target::OnnxPrune => "onnx-prune",
            Target::PlanJson => "plan-json",
            Target::Npy => "npy",
            Target::Npz => "npz",
            Target::Csv => "csv",
            Target::GraphMl => "graphml",
        }
    }

    /// The target named `s`.
    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Run the target on one input: `Ok` when graft accepted it, `Err`
    /// with graft's message when it refused it (both are passes).
    ///
    /// # Errors
    /// graft's error message for a refused input.
    pub fn run(self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Target::Onnx => onnx(bytes),
            Target::OnnxPrune => onnx_prune(bytes),
            Target::PlanJson => plan_json(bytes),
            Target::Npy => through_file(bytes, "npy", |p| {
                graft_nn::files::read_npy(p)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            Target::Npz => through_file(bytes, "npz", |p| {
                graft_nn::files::read_npz(p)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            Target::Csv => graft_nn::files::read_csv(&String::from_utf8_lossy(bytes)).map(drop),
            Target::GraphMl => graphml(bytes),
        }
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The largest value (elements per sample) of a model a target runs.
const RUN_ELEMENTS: usize = 1 << 18;

fn onnx(bytes: &[u8]) -> Result<(), String> {
    let imp = graft_onnx::import_bytes(bytes).map_err(err)?;
    let shapes: Vec<Vec<usize>> = imp.input_shapes.iter().map(|s| s[1..].to_vec()).collect();
    imp.model.cost(&shapes).map_err(err)?;
    let out = graft_onnx::export_bytes(&imp.model, &imp.interface).map_err(err)?;
    graft_onnx::import_bytes(&out).map_err(err)?;
    Ok(())
}

fn onnx_prune(bytes: &[u8]) -> Result<(), String> {
    let imp = graft_onnx::import_bytes(bytes).map_err(err)?;
    let mut m = imp.model;
    let shapes: Vec<Vec<usize>> = imp.input_shapes.iter().map(|s| s[1..].to_vec()).collect();
    let u = graft_nn::utility::magnitude(&m).map_err(err)?;
    shrink(&mut m, &u, PruneTo::Ratio(0.3), Scope::Global, &shapes).map_err(err)?;
    // Run it when every value is small (a model may declare any size;
    // running a huge one is slow, not a bug).
    let cost = m.cost(&shapes).map_err(err)?;
    let small = |s: &[usize]| {
        s.iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_some_and(|n| n <= RUN_ELEMENTS)
    };
    let lead_ok = cost.leads.values().all(|&l| l <= 64);
    if lead_ok
        && imp.input_shapes.iter().all(|s| small(s))
        && cost.shapes.values().all(|s| small(s))
    {
        let xs: Vec<Tensor> = imp
            .input_shapes
            .iter()
            .map(|s| Tensor::zeros(s.as_slice(), graft_nn::DType::F32, &Device::Cpu))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        let ex = Executor::new(&m).map_err(err)?;
        ex.run(&m, &xs, &Run::inference()).map_err(err)?;
    }
    graft_onnx::export_bytes(&m, &imp.interface).map_err(err)?;
    Ok(())
}

fn plan_json(bytes: &[u8]) -> Result<(), String> {
    let cut = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let (g, r) = (&bytes[..cut], bytes.get(cut + 1..).unwrap_or_default());
    let gspec: graft_core::json::GraphSpec = serde_json::from_slice(g).map_err(err)?;
    let rspec: graft_core::json::RequestSpec = serde_json::from_slice(r).map_err(err)?;
    let graph = gspec.to_graph().map_err(err)?;
    let req: Request = rspec.to_request(&graph).map_err(err)?;
    // The CLI's default time limit is 5 s; the fuzzer's per-input limit
    // is above this one.
    let req = req.within(Duration::from_millis(500));
    let p = plan(&graph, &req).map_err(err)?;
    let mut g2 = graph.clone();
    p.apply(&mut g2).map_err(err)?;
    g2.check().map_err(err)?;
    Ok(())
}

fn graphml(bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    let dag = graft_sparse::graphml::from_graphml(&text).map_err(err)?;
    let _ = graft_sparse::graphml::neurons_from_graphml(&text);
    if !dag.is_empty() && dag.len() <= 512 {
        let d = graft_sparse::dan::dan(3, 2, &dag, graft_sparse::dan::Aggregation::SumThenRelu, 0)
            .map_err(err)?;
        let x = Tensor::zeros((2, 3), graft_nn::DType::F32, &Device::Cpu).map_err(err)?;
        let ex = Executor::new(&d.model).map_err(err)?;
        ex.run(&d.model, &[x], &Run::inference()).map_err(err)?;
    }
    Ok(())
}

/// Run `f` on `bytes` written to a file of this thread's own (the readers
/// take paths, as graft's commands do).
fn through_file(
    bytes: &[u8],
    ext: &str,
    f: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> Result<(), String> {
    thread_local! {
        static DIR: PathBuf = {
            let d = std::env::temp_dir().join(format!(
                "graft-fuzz-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::create_dir_all(&d);
            d
        };
    }
    let path = DIR.with(|d| d.join(format!("input.{ext}")));
    std::fs::write(&path, bytes).map_err(err)?;
    f(&path)
}
