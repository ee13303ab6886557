//! `graft run`: run a model on inputs read from NumPy files and write its
//! outputs to a `.npz` archive keyed by the model's output names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use graft::nn::{DType, Executor, Tensor};
use serde_json::json;

use crate::io::table;
use crate::Usage;

/// One input array: a `.npy` file, or a `.npz` archive with one array (or
/// an array named after the model input it feeds).
fn read_input(path: &Path, input_name: &str) -> Result<Tensor> {
    let shown = path.display();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |reason: String| Usage(format!("input file `{shown}`: {reason}"));
    if !path.exists() {
        // An io::Error, so the exit code says bad input and the message
        // names the file.
        std::fs::metadata(path).with_context(|| format!("reading input file `{shown}`"))?;
    }
    let t = match ext.as_str() {
        "npy" => graft::nn::files::read_npy(path)?,
        "npz" => {
            let mut arrays = graft::nn::files::read_npz(path)?;
            if let Some(i) = arrays.iter().position(|(k, _)| k == input_name) {
                arrays.swap_remove(i).1
            } else if arrays.len() == 1 {
                arrays.pop().expect("one array").1
            } else {
                return Err(bad(format!(
                    "{} arrays and none named `{input_name}`",
                    arrays.len()
                ))
                .into());
            }
        }
        _ => return Err(bad("give a .npy file (or a .npz with one array)".into()).into()),
    };
    Ok(t.to_dtype(DType::F32)?)
}

pub fn run(path: &Path, inputs: &[PathBuf], out: &Path, json_out: bool) -> Result<String> {
    let imp =
        graft::onnx::import(path).with_context(|| format!("reading model `{}`", path.display()))?;
    let name = path.display();
    if inputs.len() != imp.inputs.len() {
        let names: Vec<&str> = imp.inputs.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Usage(format!(
            "--input given {} times; model `{name}` has {} inputs ({})",
            inputs.len(),
            imp.inputs.len(),
            names.join(", ")
        ))
        .into());
    }
    // Each array in graft's axis order, keyed by its input vertex.
    let mut fed: HashMap<graft::VertexId, Tensor> = HashMap::new();
    let mut in_rows = Vec::new();
    for (i, file) in inputs.iter().enumerate() {
        let (iname, v) = &imp.inputs[i];
        let x = read_input(file, iname)?;
        let want = &imp.input_shapes[i];
        let x = match &imp.input_perms[i] {
            Some(p) if x.rank() == p.len() => x.permute(p.clone())?.contiguous()?,
            _ => x,
        };
        if x.rank() != want.len() || x.dims()[1] != want[1] {
            // The shape the file should have, in the model's axis order.
            let mut like = want.clone();
            if let Some(p) = &imp.input_perms[i] {
                for (g, &o) in p.iter().enumerate() {
                    like[o] = want[g];
                }
            }
            let shown: Vec<usize> = match &imp.input_perms[i] {
                Some(p) if x.rank() == p.len() => {
                    let mut d = x.dims().to_vec();
                    for (g, &o) in p.iter().enumerate() {
                        d[o] = x.dims()[g];
                    }
                    d
                }
                _ => x.dims().to_vec(),
            };
            return Err(Usage(format!(
                "input file `{}`: shape {shown:?}; input `{iname}` of `{name}` takes arrays \
                 shaped like {like:?}",
                file.display(),
            ))
            .into());
        }
        in_rows.push((iname.clone(), x.dims().to_vec()));
        fed.insert(*v, x);
    }
    let m = &imp.model;
    let ex = Executor::new(m).with_context(|| format!("preparing model `{name}` to run"))?;
    let xs: Vec<Tensor> = ex
        .inputs()
        .iter()
        .map(|v| fed.remove(v).expect("every input vertex is fed"))
        .collect();
    // Outputs that feed other vertices too are kept from the activations.
    let wanted: Vec<graft::VertexId> = imp.outputs.iter().map(|(_, v)| *v).collect();
    let keep = ex.needs_keep(&wanted);
    let run = graft::nn::Run {
        keep,
        ..graft::nn::Run::inference()
    };
    let f = ex
        .run(m, &xs, &run)
        .with_context(|| format!("running `{name}`"))?;
    let mut results: Vec<(String, Tensor)> = Vec::new();
    for (oname, v) in &imp.outputs {
        let t = f
            .value_of(&ex, *v)
            .cloned()
            .with_context(|| format!("output `{oname}` of `{name}` was not computed"))?;
        results.push((oname.clone(), t));
    }
    write_npz(&results, out)?;
    if json_out {
        let doc = json!({
            "model": path.display().to_string(),
            "inputs": in_rows.iter().map(|(n, s)| json!({"name": n, "shape": s})).collect::<Vec<_>>(),
            "outputs": results.iter().map(|(n, t)| json!({"name": n, "shape": t.dims()})).collect::<Vec<_>>(),
            "output": out.display().to_string(),
        });
        return Ok(serde_json::to_string_pretty(&doc)? + "\n");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (n, s) in &in_rows {
        rows.push(vec!["input".into(), n.clone(), shape_text(s)]);
    }
    for (n, t) in &results {
        rows.push(vec!["output".into(), n.clone(), shape_text(t.dims())]);
    }
    let mut text = table(&["", "name", "shape"], &rows);
    text.push_str(&format!("\nwrote {}\n", out.display()));
    Ok(text)
}

fn shape_text(dims: &[usize]) -> String {
    dims.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

/// Write the arrays to `out` through a temporary file beside it, so a
/// failure leaves no partial archive.
fn write_npz(arrays: &[(String, Tensor)], out: &Path) -> Result<()> {
    let tmp: PathBuf = {
        let mut n = out.file_name().unwrap_or_default().to_os_string();
        n.push(".partial");
        out.with_file_name(n)
    };
    // Creating the file first makes an unwritable place an I/O error (bad
    // input, exit 2), as for the other commands' outputs.
    std::fs::File::create(&tmp).with_context(|| format!("writing `{}`", out.display()))?;
    let refs: Vec<(&str, &Tensor)> = arrays.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let written = Tensor::write_npz(&refs, &tmp)
        .map_err(anyhow::Error::from)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(anyhow::Error::from));
    written
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing `{}`", out.display()))
}
