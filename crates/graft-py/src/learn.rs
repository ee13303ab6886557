//! Training, evaluation, sparsity and the neuron graph from Python: the
//! library calls behind `Model.train`, `evaluate`, `sparsify` and
//! `neuron_graph`, on tensors already converted from NumPy.

use graft::nn::train::{evaluate, Adam, Fit, Loss};
use graft::nn::Tensor;
use graft::sparse::prune::{kept, masked_layers, prune, to_structure, Amount, Saliency};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors;

/// Fine-tune a classifier with Adam and softmax cross-entropy: the mean
/// training loss of each epoch.
pub fn train(
    model: &mut graft::nn::Model,
    x: &Tensor,
    y: &Tensor,
    epochs: usize,
    batch: usize,
    lr: f64,
    seed: u64,
) -> PyResult<Vec<f64>> {
    let mut opt = Adam::new(lr);
    let fit = Fit {
        batch,
        epochs,
        loss: Loss::CrossEntropy,
        seed,
        probes: false,
        objective: Default::default(),
    };
    fit.run(model, &mut opt, x, y, |_, _, _| Ok(()))
        .map_err(errors::nn)
}

/// A classifier's mean cross-entropy and accuracy on `x`, `y`.
pub fn evaluated(model: &graft::nn::Model, x: &Tensor, y: &Tensor) -> PyResult<(f64, f64)> {
    evaluate(model, x, y, Loss::CrossEntropy).map_err(errors::nn)
}

/// Mask the dense and 2-D convolution layers and keep `density` of their
/// weights (over the whole network, or in every layer with `per_layer`),
/// by magnitude or at random; with `compact`, remove the neurons left
/// with no weight in or out, for real.
pub fn sparsify<'py>(
    py: Python<'py>,
    model: &mut graft::nn::Model,
    density: f64,
    compact: bool,
    per_layer: bool,
    saliency: &str,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    if !(density > 0.0 && density <= 1.0) {
        return Err(errors::data(format!(
            "density {density}: the share of weights kept must be above 0 and at most 1"
        )));
    }
    let saliency = match saliency {
        "magnitude" => Saliency::Magnitude,
        "random" => Saliency::Random { seed },
        other => {
            return Err(errors::data(format!(
                "saliency `{other}`: \"magnitude\" or \"random\""
            )))
        }
    };
    // Masks are added to a copy first: a refusal leaves the model as it was.
    let mut m = model.clone();
    m.mask_weights().map_err(errors::nn)?;
    let layers = masked_layers(&m);
    if layers.is_empty() {
        return Err(errors::data(
            "the model has no dense layer or 2-D convolution to sparsify",
        ));
    }
    let total = kept(&m).map_err(errors::sparse)?;
    let amount = if per_layer {
        Amount::Fraction(1.0 - density)
    } else {
        Amount::Keep((total as f64 * density).round() as usize)
    };
    prune(&mut m, &saliency, amount, per_layer).map_err(errors::sparse)?;
    let weights = kept(&m).map_err(errors::sparse)?;
    let removed = if compact {
        to_structure(&mut m).map_err(errors::sparse)?
    } else {
        0
    };
    *model = m;
    let d = PyDict::new(py);
    d.set_item("layers", layers.len())?;
    d.set_item("weights", (total, weights))?;
    d.set_item("neurons_removed", removed)?;
    Ok(d)
}

/// The neuron-level graph: a networkx `DiGraph` (nodes `vertex[index]`
/// with their vertex, index and layer; edges weighted) when networkx is
/// installed, else GraphML text.
pub fn neuron_graph<'py>(
    py: Python<'py>,
    model: &graft::nn::Model,
    shapes: &[Vec<usize>],
) -> PyResult<Bound<'py, PyAny>> {
    use graft::sparse::structure::{neuron_graph_for, Include};
    use petgraph::visit::EdgeRef;
    let g = neuron_graph_for(model, shapes, Include::ALL).map_err(errors::sparse)?;
    let Ok(nx) = py.import("networkx") else {
        let text = graft::sparse::graphml::neurons_to_graphml(&g);
        return Ok(pyo3::types::PyString::new(py, &text).into_any());
    };
    let out = nx.call_method0("DiGraph")?;
    let key = |i: petgraph::graph::NodeIndex| format!("{}[{}]", g[i].vertex, g[i].index);
    for n in g.node_indices() {
        let attrs = PyDict::new(py);
        attrs.set_item("vertex", &g[n].vertex)?;
        attrs.set_item("index", g[n].index)?;
        attrs.set_item("layer", g[n].layer)?;
        out.call_method("add_node", (key(n),), Some(&attrs))?;
    }
    for e in g.edge_references() {
        let attrs = PyDict::new(py);
        attrs.set_item("weight", *e.weight())?;
        out.call_method("add_edge", (key(e.source()), key(e.target())), Some(&attrs))?;
    }
    Ok(out)
}
