//! `graft.Model` and `graft.Plan`: an imported model with its ONNX
//! interface, and a plan of the size planner that can be looked at before
//! it is applied.

use std::collections::HashMap;
use std::path::PathBuf;

use graft::nn::{Device, Executor, Tensor};
use graft::onnx::{Imported, Interface};
use graft::{Neuron, Request, Utility, VertexId};
use numpy::{
    PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors;

/// A network graft can change: read from ONNX (`graft.load`), run, sized,
/// pruned and grown, written back with the same input and output names,
/// shapes and opset.
#[pyclass(module = "graft", unsendable)]
pub struct Model {
    model: graft::nn::Model,
    interface: Interface,
    inputs: Vec<(String, VertexId)>,
    outputs: Vec<(String, VertexId)>,
    input_perms: Vec<Option<Vec<usize>>>,
    input_shapes: Vec<Vec<usize>>,
    /// The executor of the graph revision it was made for, kept between
    /// runs (a mutation changes the revision, and the next run makes a
    /// new one).
    executor: std::cell::RefCell<Option<(u64, std::rc::Rc<Executor>)>>,
}

/// A plan of the size planner: for each vertex it changes, the old
/// neurons kept (in order) and the new ones, not yet applied.
#[pyclass(module = "graft", unsendable)]
pub struct Plan {
    plan: graft::Plan,
    /// The graph revision it was made for (a plan applies to that model
    /// only, unchanged since).
    revision: u64,
}

impl Model {
    pub fn from_imported(imp: Imported) -> Model {
        Model {
            model: imp.model,
            interface: imp.interface,
            inputs: imp.inputs,
            outputs: imp.outputs,
            input_perms: imp.input_perms,
            input_shapes: imp.input_shapes,
            executor: Default::default(),
        }
    }

    /// The executor of the model as it is now.
    fn executor(&self) -> PyResult<std::rc::Rc<Executor>> {
        let revision = self.model.graph().revision();
        let mut cached = self.executor.borrow_mut();
        if let Some((r, ex)) = cached.as_ref() {
            if *r == revision {
                return Ok(ex.clone());
            }
        }
        let ex = std::rc::Rc::new(Executor::new(&self.model).map_err(errors::nn)?);
        *cached = Some((revision, ex.clone()));
        Ok(ex)
    }

    fn vertex(&self, name: &str) -> PyResult<VertexId> {
        self.model.id(name).map_err(errors::nn)
    }

    /// Per-vertex utilities: magnitudes, or the user's arrays by vertex
    /// name (one score per neuron) over magnitudes for the rest.
    fn utility(
        &self,
        given: Option<&Bound<'_, PyAny>>,
        data: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<Utility> {
        let mut u = graft::nn::utility::magnitude(&self.model).map_err(errors::nn)?;
        let Some(given) = given else {
            return Ok(u);
        };
        if let Ok(name) = given.extract::<String>() {
            return match (name.as_str(), data) {
                ("magnitude", _) => Ok(u),
                ("taylor", Some((x, y))) => {
                    let (x, y) = self.classifier_data(&x, &y)?;
                    graft::nn::utility::taylor_on(
                        &self.model,
                        &x,
                        &y,
                        graft::nn::train::Loss::CrossEntropy,
                        64,
                        || {},
                    )
                    .map_err(errors::nn)
                }
                ("taylor", None) => Err(errors::data(
                    "utility \"taylor\" needs data=(x, y): inputs and class labels",
                )),
                (other, _) => Err(errors::data(format!(
                    "utility `{other}`: \"magnitude\", \"taylor\" (with data) or a dict of arrays by vertex name"
                ))),
            };
        }
        let dict = given.cast::<PyDict>().map_err(|_| {
            errors::data("utility: a name (\"magnitude\") or a dict {vertex name: array}")
        })?;
        for (k, v) in dict.iter() {
            let name: String = k.extract()?;
            let id = self.vertex(&name)?;
            let arr: PyReadonlyArray1<'_, f64> = v.extract().map_err(|_| {
                errors::data(format!("utility of `{name}`: a 1-D array of float64"))
            })?;
            let vals = arr.as_slice()?.to_vec();
            let n = self.model.graph().nout(id).map_err(errors::graph)?;
            if vals.len() != n {
                return Err(errors::data(format!(
                    "utility of `{name}`: {} scores for its {n} neurons",
                    vals.len()
                )));
            }
            if vals.iter().any(|x| !x.is_finite()) {
                return Err(errors::data(format!(
                    "utility of `{name}`: every score must be finite"
                )));
            }
            u.set(id, vals);
        }
        Ok(u)
    }

    /// A classifier's data: inputs `x` as float32 and labels `y`, one per
    /// row of `x`, each below the number of classes (the first output's
    /// size). Checked here so that a mismatch is a `DataError` naming it,
    /// not an indexing error deep in a batch.
    fn classifier_data(
        &self,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<(Tensor, Tensor)> {
        let (x, y) = (f32_tensor(x, "x")?, labels(y)?);
        let rows = x.dims().first().copied().unwrap_or(0);
        if rows != y.elem_count() {
            return Err(errors::data(format!(
                "x has {rows} rows and y {} labels: one label per row",
                y.elem_count()
            )));
        }
        let classes = match self.outputs.first() {
            Some((_, v)) => self.model.graph().nout(*v).map_err(errors::graph)?,
            None => 0,
        };
        let top = values(&y.to_dtype(graft::nn::DType::F32).map_err(errors::tensor)?)?
            .into_iter()
            .fold(0f32, f32::max);
        if rows > 0 && top as usize >= classes {
            return Err(errors::data(format!(
                "y: label {top} for a classifier of {classes} classes (labels 0 to {})",
                classes.saturating_sub(1)
            )));
        }
        Ok((x, y))
    }

    /// Per-sample input shapes (the batch axis dropped) for costing:
    /// `input_shape` when given (one input), else the file's.
    fn shapes(&self, input_shape: Option<Vec<usize>>) -> PyResult<Vec<Vec<usize>>> {
        match input_shape {
            None => Ok(self
                .input_shapes
                .iter()
                .map(|s| s.get(1..).unwrap_or_default().to_vec())
                .collect()),
            Some(s) if self.input_shapes.len() == 1 => Ok(vec![s]),
            Some(_) => Err(errors::data(format!(
                "input_shape: the model has {} inputs; give their shapes when it has one",
                self.input_shapes.len()
            ))),
        }
    }
}

impl Model {
    /// The outputs of an inference pass, in the model's order.
    fn forward<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        Ok(self.forward_traced(py, inputs, false)?.0)
    }

    /// [`Model::forward`], and the trace when asked.
    fn forward_traced<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        trace: bool,
    ) -> PyResult<Traced<'py>> {
        let items: Vec<Bound<'py, PyAny>> = if let Ok(d) = inputs.cast::<PyDict>() {
            self.inputs
                .iter()
                .map(|(name, _)| {
                    d.get_item(name)?
                        .ok_or_else(|| errors::data(format!("no array for input `{name}`")))
                })
                .collect::<PyResult<_>>()?
        } else if inputs.is_instance_of::<pyo3::types::PyList>()
            || inputs.is_instance_of::<pyo3::types::PyTuple>()
        {
            inputs.try_iter()?.collect::<PyResult<_>>()?
        } else {
            vec![inputs.clone()]
        };
        let xs = items
            .into_iter()
            .zip(&self.inputs)
            .map(|(x, (name, _))| f32_array(&x, &format!("input `{name}`")))
            .collect::<PyResult<Vec<_>>>()?;
        self.run_arrays(py, xs, trace)
    }

    /// Run on float32 arrays, one per input in the model's order.
    fn run_arrays<'py>(
        &self,
        py: Python<'py>,
        xs: Vec<PyReadonlyArrayDyn<'py, f32>>,
        trace: bool,
    ) -> PyResult<Traced<'py>> {
        if xs.len() != self.inputs.len() {
            return Err(errors::data(format!(
                "{} arrays for the model's {} inputs ({})",
                xs.len(),
                self.inputs.len(),
                self.inputs().join(", ")
            )));
        }
        let mut fed: HashMap<VertexId, Tensor> = HashMap::new();
        for (k, x) in xs.iter().enumerate() {
            let (name, v) = &self.inputs[k];
            let vals = x.as_slice()?.to_vec();
            let t = Tensor::from_vec(vals, x.shape(), &Device::Cpu).map_err(errors::tensor)?;
            let t = match &self.input_perms[k] {
                Some(p) if t.rank() == p.len() => t
                    .permute(p.clone())
                    .and_then(|t| t.contiguous())
                    .map_err(errors::tensor)?,
                _ => t,
            };
            let want = &self.input_shapes[k];
            if t.rank() != want.len() || t.dims().get(1) != want.get(1) {
                return Err(errors::data(format!(
                    "input `{name}`: an array of shape {:?}; the model takes arrays shaped like {want:?}",
                    x.shape()
                )));
            }
            fed.insert(*v, t);
        }
        let ex = self.executor()?;
        let ordered: Vec<Tensor> = ex
            .inputs()
            .iter()
            .map(|v| {
                fed.remove(v)
                    .ok_or_else(|| errors::data("an input is not fed"))
            })
            .collect::<PyResult<_>>()?;
        let wanted: Vec<VertexId> = self.outputs.iter().map(|(_, v)| *v).collect();
        let keep = ex.needs_keep(&wanted);
        let run = graft::nn::Run {
            keep,
            trace,
            ..graft::nn::Run::inference()
        };
        let f = ex.run(&self.model, &ordered, &run).map_err(errors::nn)?;
        let mut out = Vec::new();
        for (name, v) in &self.outputs {
            let t = f
                .value_of(&ex, *v)
                .ok_or_else(|| errors::data(format!("output `{name}` was not computed")))?;
            let vals = values(t)?;
            out.push(PyArray1::from_vec(py, vals).reshape(t.dims().to_vec())?);
        }
        Ok((out, f.trace))
    }
}

/// A run's outputs, and its trace when one was asked for.
type Traced<'py> = (Vec<Bound<'py, PyArrayDyn<f32>>>, Option<graft::nn::Trace>);

/// An array-like as a contiguous float32 NumPy array (NumPy converts
/// it); what it cannot convert is a `DataError` naming `what`.
fn f32_array<'py>(x: &Bound<'py, PyAny>, what: &str) -> PyResult<PyReadonlyArrayDyn<'py, f32>> {
    let py = x.py();
    let kw = PyDict::new(py);
    kw.set_item("dtype", "float32")?;
    py.import("numpy")?
        .call_method("ascontiguousarray", (x,), Some(&kw))
        .and_then(|a| a.extract())
        .map_err(|e| errors::data(format!("{what}: not an array of numbers ({e})")))
}

/// An array-like as a float32 tensor.
fn f32_tensor(x: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let arr = f32_array(x, what)?;
    Tensor::from_vec(arr.as_slice()?.to_vec(), arr.shape(), &Device::Cpu).map_err(errors::tensor)
}

/// A tensor's values as f32, row-major (read in place where it can be).
fn values(t: &Tensor) -> PyResult<Vec<f32>> {
    graft::nn::files::with_f32(t, |s| s.to_vec()).map_err(errors::nn)
}

/// Class labels (non-negative integers, one per sample) as a u32 tensor.
fn labels(y: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let py = y.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (y,))?;
    let ok: bool = np
        .call_method1(
            "issubdtype",
            (arr.getattr("dtype")?, np.getattr("integer")?),
        )?
        .extract()?;
    let bad = || errors::data("y: class labels, a 1-D array of non-negative integers");
    if !ok || arr.getattr("ndim")?.extract::<usize>()? != 1 {
        return Err(bad());
    }
    let min: i64 = if arr.getattr("size")?.extract::<usize>()? > 0 {
        arr.call_method0("min")?.extract()?
    } else {
        0
    };
    if min < 0 {
        return Err(bad());
    }
    let kw = PyDict::new(py);
    kw.set_item("dtype", "uint32")?;
    let arr: PyReadonlyArrayDyn<'_, u32> = np
        .call_method("ascontiguousarray", (arr,), Some(&kw))?
        .extract()?;
    let n = arr.len();
    Tensor::from_vec(arr.as_slice()?.to_vec(), n, &Device::Cpu).map_err(errors::tensor)
}

/// A trace of a dynamic model's run: per dynamic vertex, each sample's
/// choice (a branch index, a gate or exit flag, the experts with their
/// weights; None where the sample never reached it), and the MACs spent.
fn trace_dict<'py>(py: Python<'py>, t: &graft::nn::Trace) -> PyResult<Bound<'py, PyDict>> {
    use graft::nn::Choice;
    let d = PyDict::new(py);
    d.set_item("samples", t.samples)?;
    d.set_item("macs_spent", t.macs_spent)?;
    d.set_item("macs_full", t.macs_full)?;
    let decisions = PyDict::new(py);
    for dec in &t.decisions {
        let per: Vec<Bound<'py, PyAny>> = dec
            .per_sample
            .iter()
            .map(|c| -> PyResult<Bound<'py, PyAny>> {
                Ok(match c {
                    None => py.None().into_bound(py),
                    Some(Choice::Branch(b)) => b.into_pyobject(py)?.into_any(),
                    Some(Choice::Gate(on)) | Some(Choice::Exit(on)) => {
                        on.into_pyobject(py)?.to_owned().into_any()
                    }
                    Some(Choice::Experts(es)) => es.clone().into_pyobject(py)?.into_any(),
                })
            })
            .collect::<PyResult<_>>()?;
        decisions.set_item(&dec.name, per)?;
    }
    d.set_item("decisions", decisions)?;
    Ok(d)
}

fn changes<'py>(py: Python<'py>, plan: &graft::Plan) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let mut out = Vec::new();
    for c in &plan.changes {
        let d = PyDict::new(py);
        d.set_item("vertex", &c.name)?;
        d.set_item("before", c.nout_before)?;
        d.set_item("after", c.nout_after)?;
        if let Some(outs) = &c.outs {
            let kept: Vec<i64> = outs
                .iter()
                .filter_map(|n| match n {
                    Neuron::Old(i) => Some(*i as i64),
                    Neuron::New => None,
                })
                .collect();
            let new = outs.iter().filter(|n| **n == Neuron::New).count();
            let order: Vec<i64> = outs
                .iter()
                .map(|n| match n {
                    Neuron::Old(i) => *i as i64,
                    Neuron::New => -1,
                })
                .collect();
            d.set_item("kept", PyArray1::from_vec(py, kept))?;
            d.set_item("new", new)?;
            d.set_item("order", PyArray1::from_vec(py, order))?;
        } else {
            let all: Vec<i64> = (0..c.nout_before as i64).collect();
            d.set_item("kept", PyArray1::from_vec(py, all.clone()))?;
            d.set_item("new", 0)?;
            d.set_item("order", PyArray1::from_vec(py, all))?;
        }
        out.push(d);
    }
    Ok(out)
}

#[pymethods]
impl Model {
    /// The graph inputs' names, in the model's order.
    #[getter]
    fn inputs(&self) -> Vec<String> {
        self.inputs.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The graph outputs' names, in the model's order.
    #[getter]
    fn outputs(&self) -> Vec<String> {
        self.outputs.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Each input's shape as the file gives it (symbolic sizes as 1).
    #[getter]
    fn input_shapes(&self) -> Vec<Vec<usize>> {
        self.input_shapes.clone()
    }

    /// The ONNX opset the model is written at.
    #[getter]
    fn opset(&self) -> i64 {
        self.interface.opset
    }

    /// Write the model as ONNX to `path` (with its weights in
    /// `path.data` beside it above protobuf's 2 GiB, or with
    /// `external_data=True`).
    #[pyo3(signature = (path, external_data = false))]
    fn save(&self, path: PathBuf, external_data: bool) -> PyResult<()> {
        let location = graft::onnx::data_location(&path);
        let p = graft::onnx::prepare_sized(&self.model, &self.interface, &location, external_data)
            .map_err(errors::onnx)?;
        p.save(&path, &location).map_err(errors::onnx)
    }

    /// The model as ONNX bytes (weights inside).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = graft::onnx::export_bytes(&self.model, &self.interface).map_err(errors::onnx)?;
        Ok(PyBytes::new(py, &b))
    }

    /// Every vertex in topological order: name, op, kind, input sizes,
    /// output size (`nout`), trainable parameters and multiply-accumulates
    /// per sample (at the model's input shapes).
    #[getter]
    fn vertices<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let cost = self.model.cost(&self.shapes(None)?).map_err(errors::nn)?;
        let mut params: HashMap<VertexId, u64> = HashMap::new();
        for (v, _, var) in self.model.trainable() {
            *params.entry(v).or_default() += var.as_tensor().elem_count() as u64;
        }
        let g = self.model.graph();
        let mut out = Vec::new();
        for v in g.topological_order().map_err(errors::graph)? {
            let vx = g.vertex(v).map_err(errors::graph)?;
            let d = PyDict::new(py);
            d.set_item("name", vx.name())?;
            d.set_item("op", self.model.layer(v).map_or("input", |l| l.op.name()))?;
            d.set_item("kind", vx.kind().as_str())?;
            d.set_item("nin", vx.nin().to_vec())?;
            d.set_item("nout", vx.nout())?;
            d.set_item("params", params.get(&v).copied().unwrap_or(0))?;
            d.set_item("macs", cost.macs.get(&v).copied().unwrap_or(0))?;
            let inputs: Vec<String> = vx
                .inputs()
                .iter()
                .filter_map(|&u| g.vertex(u).ok().map(|x| x.name().to_string()))
                .collect();
            d.set_item("inputs", inputs)?;
            out.push(d);
        }
        Ok(out)
    }

    /// Trainable parameters and multiply-accumulates per sample, at
    /// `input_shape` (one sample's shape, without the batch axis; the
    /// model's own by default).
    #[pyo3(signature = (input_shape = None))]
    fn cost<'py>(
        &self,
        py: Python<'py>,
        input_shape: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let shapes = self.shapes(input_shape)?;
        let c = self.model.cost(&shapes).map_err(errors::nn)?;
        let d = PyDict::new(py);
        d.set_item("params", self.model.parameter_count())?;
        d.set_item("macs", c.total())?;
        Ok(d)
    }

    /// Run the model (inference): `inputs` is one array, a list of arrays
    /// in the model's input order, or a dict by input name; anything NumPy
    /// can convert is taken, as float32. Returns a dict of the outputs by
    /// name, in the model's order; with `trace=True`, also the path each
    /// sample took through the model's dynamic vertices (conditionals,
    /// gates, exits, experts) and the MACs spent: `(outputs, trace)`.
    #[pyo3(signature = (inputs, trace = false))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
        trace: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (ys, t) = self.forward_traced(py, inputs, trace)?;
        let d = PyDict::new(py);
        for ((name, _), y) in self.outputs.iter().zip(ys) {
            d.set_item(name, y)?;
        }
        match t {
            Some(t) => {
                let pair = [d.into_any(), trace_dict(py, &t)?.into_any()];
                Ok(pyo3::types::PyTuple::new(py, pair)?.into_any())
            }
            None => Ok(d.into_any()),
        }
    }

    /// `model(x, ...)`: the first output of `run` on the arrays given (all
    /// outputs, as a tuple, when the model has several).
    #[pyo3(signature = (*xs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        xs: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let list = xs.to_list();
        let mut ys = self.forward(py, list.as_any())?;
        if ys.len() == 1 {
            Ok(ys.remove(0).into_any())
        } else {
            Ok(pyo3::types::PyTuple::new(py, ys)?.into_any())
        }
    }

    /// A table of the vertices and the model's totals.
    fn summary(&self, py: Python<'_>) -> PyResult<String> {
        let rows = self.vertices(py)?;
        let head = ["vertex", "op", "kind", "nin", "nout", "params", "MACs"];
        let mut cells: Vec<Vec<String>> = Vec::new();
        for r in &rows {
            let get = |k: &str| -> PyResult<String> {
                let v = r.get_item(k)?.ok_or_else(|| errors::data(k.to_string()))?;
                Ok(v.str()?.to_string())
            };
            cells.push(vec![
                get("name")?,
                get("op")?,
                get("kind")?,
                get("nin")?,
                get("nout")?,
                get("params")?,
                get("macs")?,
            ]);
        }
        let widths: Vec<usize> = (0..head.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .chain([head[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |c: &[String]| -> String {
            c.iter()
                .zip(&widths)
                .map(|(x, w)| format!("{x:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        let mut text = line(&head.map(String::from));
        text.push('\n');
        for c in &cells {
            text.push_str(&line(c));
            text.push('\n');
        }
        let cost = self.model.cost(&self.shapes(None)?).map_err(errors::nn)?;
        text.push_str(&format!(
            "{} vertices, {} parameters, {} multiply-accumulates per sample of shape {:?}\n",
            cells.len(),
            self.model.parameter_count(),
            cost.total(),
            self.shapes(None)?
        ));
        Ok(text)
    }

    /// Plan a change of `vertex`'s size by `by` neurons (negative to
    /// prune), every coupled vertex following, the neurons kept chosen by
    /// `utility`: "magnitude" (the default), "taylor" with `data=(x, y)`
    /// (inputs and class labels), or a dict of arrays by vertex name, one
    /// score per neuron. `relaxed` accepts the nearest size that works.
    /// Nothing changes until `apply`.
    #[pyo3(signature = (vertex, by, relaxed = false, utility = None, data = None, time_limit = 5.0))]
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        vertex: &str,
        by: i64,
        relaxed: bool,
        utility: Option<&Bound<'_, PyAny>>,
        data: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
        time_limit: f64,
    ) -> PyResult<Plan> {
        let v = self.vertex(vertex)?;
        let u = self.utility(utility, data)?;
        let req = if relaxed {
            Request::new().nout_relaxed(v, by)
        } else {
            Request::new().nout(v, by)
        }
        .with_utility(u)
        .within(errors::seconds(time_limit)?);
        let plan = graft::plan(self.model.graph(), &req).map_err(errors::plan)?;
        Ok(Plan {
            revision: plan.revision,
            plan,
        })
    }

    /// Apply a plan made for this model (unchanged since): every vertex
    /// takes its new size and its parameters the kept and new neurons.
    /// All or nothing.
    fn apply<'py>(&mut self, py: Python<'py>, plan: &Plan) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.model.apply_plan(&plan.plan).map_err(errors::nn)?;
        changes(py, &plan.plan)
    }

    /// `plan` then `apply`: returns the changes.
    #[pyo3(signature = (vertex, by, relaxed = false, utility = None, data = None))]
    fn resize<'py>(
        &mut self,
        py: Python<'py>,
        vertex: &str,
        by: i64,
        relaxed: bool,
        utility: Option<&Bound<'_, PyAny>>,
        data: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let p = self.plan(vertex, by, relaxed, utility, data, 5.0)?;
        self.apply(py, &p)
    }

    /// Structured pruning: remove a share of the prunable neurons
    /// (`ratio`), or prune to at most `params` parameters or `macs`
    /// multiply-accumulates per sample. `scope` "global" ranks all
    /// neurons together, "layer" takes the same share everywhere.
    /// `utility` is "magnitude", "taylor" with `data=(x, y)`, or a dict of
    /// arrays by vertex name.
    /// `only` limits a transformer's pruning to parts ("heads",
    /// "experts", "hidden", "mlp", "head-dims"). Returns neurons,
    /// parameters and MACs before and after.
    #[pyo3(signature = (ratio = None, params = None, macs = None, scope = "global", utility = None, only = None, data = None))]
    #[allow(clippy::too_many_arguments)]
    fn prune<'py>(
        &mut self,
        py: Python<'py>,
        ratio: Option<f64>,
        params: Option<u64>,
        macs: Option<u64>,
        scope: &str,
        utility: Option<&Bound<'_, PyAny>>,
        only: Option<Vec<String>>,
        data: Option<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        use graft::nn::shrink::{shrink_parts, Part, Scope, Target};
        let target = match (ratio, params, macs) {
            (Some(r), None, None) => Target::Ratio(r),
            (None, Some(p), None) => Target::Params(p),
            (None, None, Some(m)) => Target::Macs(m),
            _ => return Err(errors::data("give exactly one of ratio, params or macs")),
        };
        let scope = match scope {
            "global" => Scope::Global,
            "layer" => Scope::Layer,
            other => {
                return Err(errors::data(format!(
                    "scope `{other}`: \"global\" or \"layer\""
                )))
            }
        };
        let only = only.unwrap_or_else(|| {
            ["heads", "experts", "hidden", "mlp"]
                .map(String::from)
                .to_vec()
        });
        let parts = only
            .iter()
            .map(|p| match p.as_str() {
                "heads" => Ok(Part::Heads),
                "head-dims" => Ok(Part::HeadDims),
                "experts" => Ok(Part::Experts),
                "hidden" => Ok(Part::Hidden),
                "mlp" => Ok(Part::Mlp),
                other => Err(errors::data(format!(
                    "part `{other}`: heads, head-dims, experts, hidden or mlp"
                ))),
            })
            .collect::<PyResult<Vec<Part>>>()?;
        let u = self.utility(utility, data)?;
        let shapes = self.shapes(None)?;
        let r = shrink_parts(&mut self.model, &u, target, scope, &shapes, &parts)
            .map_err(errors::nn)?;
        let d = PyDict::new(py);
        d.set_item("neurons", r.neurons)?;
        d.set_item("params", r.params)?;
        d.set_item("macs", r.macs)?;
        d.set_item("changes", changes(py, &r.plan)?)?;
        Ok(d)
    }

    /// Fine-tune a classifier (Adam, softmax cross-entropy) on inputs `x`
    /// and class labels `y` (integers); returns each epoch's mean loss.
    #[pyo3(signature = (x, y, epochs = 1, batch = 32, lr = 1e-3, seed = 0))]
    #[allow(clippy::too_many_arguments)]
    fn train(
        &mut self,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        epochs: usize,
        batch: usize,
        lr: f64,
        seed: u64,
    ) -> PyResult<Vec<f64>> {
        let (x, y) = self.classifier_data(x, y)?;
        crate::learn::train(&mut self.model, &x, &y, epochs, batch, lr, seed)
    }

    /// A classifier's mean cross-entropy and accuracy on `x`, `y`:
    /// `{"loss": ..., "accuracy": ...}`.
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (x, y) = self.classifier_data(x, y)?;
        let (loss, accuracy) = crate::learn::evaluated(&self.model, &x, &y)?;
        let d = PyDict::new(py);
        d.set_item("loss", loss)?;
        d.set_item("accuracy", accuracy)?;
        Ok(d)
    }

    /// Mask the dense and 2-D convolution layers and keep `density` of
    /// their weights (over the network, or `per_layer`), by "magnitude" or
    /// "random" saliency; with `compact`, remove the neurons left with no
    /// weight, for real. Returns the layers masked, the weights before and
    /// after, and the neurons removed.
    #[pyo3(signature = (density, compact = false, per_layer = false, saliency = "magnitude", seed = 0))]
    fn sparsify<'py>(
        &mut self,
        py: Python<'py>,
        density: f64,
        compact: bool,
        per_layer: bool,
        saliency: &str,
        seed: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        crate::learn::sparsify(
            py,
            &mut self.model,
            density,
            compact,
            per_layer,
            saliency,
            seed,
        )
    }

    /// The neuron-level graph (every neuron a node, every nonzero weight
    /// an edge): a networkx `DiGraph` when networkx is installed, else
    /// GraphML text.
    fn neuron_graph<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::learn::neuron_graph(py, &self.model, &self.shapes(None)?)
    }

    /// Commit a `graft.Patch`: its edits planned one after the other and
    /// applied together, or refused with the model unchanged.
    fn commit(&mut self, patch: &crate::edit::Patch) -> PyResult<()> {
        crate::edit::commit(&mut self.model, &patch.edits)
    }

    /// Insert a vertex `name` after `after` (see `Patch.insert`).
    #[pyo3(signature = (after, name, op = "identity", consumers = None))]
    fn insert(
        &mut self,
        after: String,
        name: String,
        op: &str,
        consumers: Option<Vec<String>>,
    ) -> PyResult<()> {
        use crate::edit::PyEdit;
        let e = PyEdit::Insert {
            after,
            name,
            op: op.to_string(),
            consumers,
        };
        crate::edit::commit(&mut self.model, &[e])
    }

    /// Remove a vertex, its consumers reading its inputs.
    fn remove(&mut self, vertex: String) -> PyResult<()> {
        crate::edit::commit(&mut self.model, &[crate::edit::PyEdit::Remove(vertex)])
    }

    /// Remove the residual block ending in the add `vertex`.
    fn remove_block(&mut self, vertex: String) -> PyResult<()> {
        crate::edit::commit(&mut self.model, &[crate::edit::PyEdit::RemoveBlock(vertex)])
    }

    /// Add an edge from `src` into `dst`; sizes follow, new input columns
    /// start at zero.
    #[pyo3(signature = (src, dst, position = None))]
    fn connect(&mut self, src: String, dst: String, position: Option<usize>) -> PyResult<()> {
        let e = crate::edit::PyEdit::Connect {
            from: src,
            to: dst,
            position,
        };
        crate::edit::commit(&mut self.model, &[e])
    }

    /// Remove the `nth` edge from `src` into `dst`.
    #[pyo3(signature = (src, dst, nth = 0))]
    fn disconnect(&mut self, src: String, dst: String, nth: usize) -> PyResult<()> {
        let e = crate::edit::PyEdit::Disconnect {
            from: src,
            to: dst,
            nth,
        };
        crate::edit::commit(&mut self.model, &[e])
    }

    /// A vertex's parameters (weights, biases, norm statistics) as float32
    /// arrays by name: copies, for computing scores in NumPy.
    fn weights<'py>(&self, py: Python<'py>, vertex: &str) -> PyResult<Bound<'py, PyDict>> {
        let id = self.vertex(vertex)?;
        let d = PyDict::new(py);
        for (v, name, var) in self.model.all_params() {
            if v != id {
                continue;
            }
            let t = var.as_tensor();
            let vals = values(t)?;
            d.set_item(
                name,
                PyArray1::from_vec(py, vals).reshape(t.dims().to_vec())?,
            )?;
        }
        Ok(d)
    }

    /// An independent copy (its own weights): for search loops that try
    /// many mutations of one model.
    fn copy(&self) -> PyResult<Model> {
        let mut m = self.model.clone();
        for (v, name, var) in self.model.all_params() {
            let t = var.as_tensor();
            let vals = values(t)?;
            m.put_param(v, &name, t.dims(), vals).map_err(errors::nn)?;
        }
        Ok(Model {
            model: m,
            interface: self.interface.clone(),
            inputs: self.inputs.clone(),
            outputs: self.outputs.clone(),
            input_perms: self.input_perms.clone(),
            input_shapes: self.input_shapes.clone(),
            executor: Default::default(),
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "<graft.Model: {} vertices, {} parameters, inputs {:?}, outputs {:?}>",
            self.model.graph().len(),
            self.model.parameter_count(),
            self.inputs(),
            self.outputs()
        )
    }
}

#[pymethods]
impl Plan {
    /// The vertices the plan changes, each with `vertex`, `before`,
    /// `after`, `kept` (the old neurons kept, in their new order, as an
    /// int64 array), `new` (how many new neurons there are) and `order`
    /// (the new output order: old indices, -1 for a new neuron).
    #[getter]
    fn changes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        changes(py, &self.plan)
    }

    /// Whether the planner proved the plan optimal.
    #[getter]
    fn optimal(&self) -> bool {
        self.plan.optimal
    }

    /// The plan as the JSON report `graft plan` prints.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.plan).map_err(|e| errors::data(e.to_string()))
    }

    fn __repr__(&self) -> String {
        let changed = self
            .plan
            .changes
            .iter()
            .filter(|c| c.nout_before != c.nout_after)
            .count();
        format!(
            "<graft.Plan: {} vertices change size, optimal {} (graph revision {})>",
            changed, self.plan.optimal, self.revision
        )
    }
}
