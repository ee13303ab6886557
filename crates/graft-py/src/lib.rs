//! graft for Python: the extension module `graft._graft`, wrapped by the
//! pure-Python package `graft` (`python/graft/`, with type stubs).
//!
//! A thin layer over the Rust library: a [`model::Model`] holds an
//! imported graft model and its ONNX interface; tensors cross as NumPy
//! arrays of float32 (the Python side converts what it is given);
//! graft's typed errors become Python exceptions deriving from
//! `graft.GraftError`, one class per library error family, each message
//! naming the culprit and carrying the error's causes.

use pyo3::prelude::*;

mod edit;
mod errors;
mod learn;
mod model;

/// Read an ONNX model from a path or from its bytes.
///
/// A path is read beside its external data files, if it has any; bytes
/// must hold the weights inside.
#[pyfunction]
fn load(source: &Bound<'_, PyAny>) -> PyResult<model::Model> {
    let imported = if let Ok(bytes) = source.cast::<pyo3::types::PyBytes>() {
        graft::onnx::import_bytes(bytes.as_bytes())
    } else {
        let path: std::path::PathBuf = source.extract()?;
        graft::onnx::import(&path)
    };
    Ok(model::Model::from_imported(imported.map_err(errors::onnx)?))
}

/// Plan a size request on a size-only graph: both JSON documents as the
/// `graft plan` command takes them (a GraphSpec and a RequestSpec);
/// returns the plan report as JSON.
#[pyfunction]
#[pyo3(signature = (graph_json, request_json, time_limit = 5.0))]
fn plan(graph_json: &str, request_json: &str, time_limit: f64) -> PyResult<String> {
    use graft::json::{GraphSpec, PlanReport, RequestSpec};
    let gspec: GraphSpec = serde_json::from_str(graph_json)
        .map_err(|e| errors::data(format!("the graph document: {e}")))?;
    let rspec: RequestSpec = serde_json::from_str(request_json)
        .map_err(|e| errors::data(format!("the request document: {e}")))?;
    let graph = gspec.to_graph().map_err(errors::graph)?;
    let req = rspec
        .to_request(&graph)
        .map_err(errors::graph)?
        .within(errors::seconds(time_limit)?);
    let planned = graft::plan_or_relax(&graph, &req).map_err(errors::plan)?;
    let report = PlanReport {
        step: planned.step,
        plan: planned.plan,
    };
    serde_json::to_string_pretty(&report).map_err(|e| errors::data(e.to_string()))
}

/// The extension module.
#[pymodule]
fn _graft(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(plan, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<model::Plan>()?;
    m.add_class::<edit::Patch>()?;
    errors::register(m)?;
    Ok(())
}
