//! graft's typed errors as Python exceptions: `GraftError` and one
//! subclass per error family of the library. None shadows a builtin
//! (`ImportError`, `ValueError`): they are graft's own names. The message
//! is the error and its causes, outermost first, so the culprit (a
//! vertex, a node, a tensor, a file) is always named.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    graft,
    GraftError,
    PyException,
    "Every error graft raises derives from this."
);
create_exception!(
    graft,
    PlanError,
    GraftError,
    "The planner found no sizes meeting the request (or the request is malformed)."
);
create_exception!(
    graft,
    GraphError,
    GraftError,
    "A structural edit or a name the graph refuses: unknown vertex, invalid edge, a check that fails."
);
create_exception!(
    graft,
    ModelError,
    GraftError,
    "A layer, a parameter or a tensor graft cannot take (shapes, sizes, types)."
);
create_exception!(
    graft,
    OnnxError,
    GraftError,
    "An ONNX file graft cannot read or a model it cannot write."
);
create_exception!(
    graft,
    DataError,
    GraftError,
    "Arguments or arrays from Python that do not fit the model."
);

/// Add the exception classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GraftError", py.get_type::<GraftError>())?;
    m.add("PlanError", py.get_type::<PlanError>())?;
    m.add("GraphError", py.get_type::<GraphError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("OnnxError", py.get_type::<OnnxError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    Ok(())
}

/// The first name a message quotes (graft quotes every vertex, node,
/// tensor and file it names in backticks): the culprit.
fn culprit(text: &str) -> Option<&str> {
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(&text[start..start + len])
}

/// An exception of class `E` with `text`, its `culprit` attribute set to
/// the first name the text quotes (None when it quotes none).
fn raised<E: pyo3::PyTypeInfo>(text: String) -> PyErr {
    let err = PyErr::new::<E, _>(text.clone());
    Python::attach(|py| {
        let name = culprit(&text).map(str::to_string);
        // Setting an attribute on a fresh exception cannot fail short of
        // memory exhaustion; the exception is raised either way.
        let _ = err.value(py).setattr("culprit", name);
    });
    err
}

/// The error and its causes, outermost first.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cur = s.source();
    }
    text
}

/// A library error as the exception of its family: the layer errors of
/// an ONNX file are the model's, planner errors inside a mutation are
/// planner errors.
pub fn nn(e: graft::nn::NnError) -> PyErr {
    use graft::nn::NnError;
    let text = chain(&e);
    match e {
        NnError::Plan(_) => raised::<PlanError>(text),
        NnError::Graph(_) | NnError::Check(_) | NnError::Mutation(_) => raised::<GraphError>(text),
        NnError::Data { .. } | NnError::InputCount { .. } => raised::<DataError>(text),
        NnError::Tensor(_)
        | NnError::StaleExecutor { .. }
        | NnError::Layer { .. }
        | NnError::Invalid { .. }
        | NnError::Io { .. } => raised::<ModelError>(text),
    }
}

/// An ONNX import or export error.
pub fn onnx(e: graft::onnx::OnnxError) -> PyErr {
    match e {
        graft::onnx::OnnxError::Model(inner) => nn(inner),
        other => raised::<OnnxError>(chain(&other)),
    }
}

/// A sparse-structure error: a model's own errors as theirs, the rest
/// (graphs with cycles, sizes above the limits) as graph errors.
pub fn sparse(e: graft::sparse::SparseError) -> PyErr {
    use graft::sparse::SparseError;
    match e {
        SparseError::Model(inner) => nn(inner),
        other @ (SparseError::Cycle { .. }
        | SparseError::UnknownNode(_)
        | SparseError::Boundary { .. }
        | SparseError::TooLarge { .. }
        | SparseError::Unsupported { .. }) => raised::<GraphError>(chain(&other)),
    }
}

/// A planner error.
pub fn plan(e: graft::PlanError) -> PyErr {
    raised::<PlanError>(chain(&e))
}

/// A graph error.
pub fn graph(e: impl std::error::Error) -> PyErr {
    raised::<GraphError>(chain(&e))
}

/// A candle error (a tensor operation failed).
pub fn tensor(e: graft::nn::CandleError) -> PyErr {
    raised::<ModelError>(chain(&e))
}

/// Arguments that do not fit.
pub fn data(reason: impl Into<String>) -> PyErr {
    raised::<DataError>(reason.into())
}

/// A time limit in seconds, checked.
pub fn seconds(s: f64) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(s)
        .map_err(|_| data(format!("time_limit {s}: a non-negative number of seconds")))
}
