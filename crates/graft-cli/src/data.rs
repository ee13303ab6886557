//! Data sets for `graft train` and `graft prune --utility taylor`: the
//! shipped digits, or a file of features and class labels.
//!
//! - `digits`: the digits shipped with graft (`data/digits.bin`), or a path
//!   to a file in that format;
//! - `.csv`: one sample per line, features then the label last; a first
//!   line that is not numeric is taken as a header;
//! - `.npy`: one 2-D array, features then the label in the last column;
//! - `.npz`: arrays `x` (`[N, ...]`) and `y` (`[N]`, integer labels).

use std::path::Path;

use anyhow::{Context, Result};
use graft::nn::data::{digits, shipped_digits, Dataset};
use graft::nn::{DType, Device, Tensor};

use crate::Usage;

/// Read a data set named on the command line; errors name the file, and
/// the line or array at fault.
pub fn load(spec: &str) -> Result<Dataset> {
    if spec == "digits" {
        return shipped_digits().context("reading the shipped digits");
    }
    let path = Path::new(spec);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |reason: String| Usage(format!("data file `{spec}`: {reason}"));
    match ext.as_str() {
        "bin" => digits(path).with_context(|| format!("reading data file `{spec}`")),
        "csv" => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading data file `{spec}`"))?;
            csv(&text).map_err(|r| bad(r).into())
        }
        "npy" => {
            let t = crate::npy::read_npy(path)?.to_dtype(DType::F32)?;
            let (n, c) = t
                .dims2()
                .map_err(|_| bad(format!("an array of shape {:?}, not 2-D", t.dims())))?;
            if c < 2 || n == 0 {
                return Err(bad(format!(
                    "shape [{n}, {c}]: needs samples with features and a label"
                ))
                .into());
            }
            let x = t.narrow(1, 0, c - 1)?.contiguous()?;
            let y: Vec<f32> = t.narrow(1, c - 1, 1)?.flatten_all()?.to_vec1()?;
            let y = labels(&y).map_err(|(i, v)| bad(format!("row {i}: label {v}")))?;
            Ok(Dataset {
                x,
                y: Tensor::from_vec(y, n, &Device::Cpu)?,
            })
        }
        "npz" => {
            let arrays = crate::npy::read_npz(path)?;
            let get = |name: &str| {
                arrays
                    .iter()
                    .find(|(k, _)| k == name || k.as_str() == format!("{name}.npy"))
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| bad(format!("no array `{name}`")))
            };
            let x = get("x")?.to_dtype(DType::F32)?;
            let y = get("y")?;
            let n = x.dim(0).map_err(|_| bad("`x` is a scalar".into()))?;
            if y.dims() != [n] {
                return Err(
                    bad(format!("`y` has shape {:?}, `x` has {n} samples", y.dims())).into(),
                );
            }
            let yv: Vec<f32> = y.to_dtype(DType::F32)?.to_vec1()?;
            let yv = labels(&yv).map_err(|(i, v)| bad(format!("y[{i}] = {v}")))?;
            Ok(Dataset {
                x,
                y: Tensor::from_vec(yv, n, &Device::Cpu)?,
            })
        }
        _ => Err(bad(
            "unknown format: give `digits`, or a .csv, .npy, .npz or digits .bin file".into(),
        )
        .into()),
    }
}

/// Class labels as integers; the position and value of the first that is
/// not a whole number from 0.
fn labels(v: &[f32]) -> std::result::Result<Vec<u32>, (usize, f32)> {
    v.iter()
        .enumerate()
        .map(|(i, &y)| {
            if y >= 0.0 && y.fract() == 0.0 && y < u32::MAX as f32 {
                Ok(y as u32)
            } else {
                Err((i, y))
            }
        })
        .collect()
}

fn csv(text: &str) -> std::result::Result<Dataset, String> {
    // A byte-order mark (spreadsheets write one) is not part of the first
    // cell.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut width = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cells: std::result::Result<Vec<f32>, _> =
            line.split(',').map(|c| c.trim().parse::<f32>()).collect();
        let cells = match cells {
            Ok(c) => c,
            // A header line.
            Err(_) if i == 0 => continue,
            Err(e) => return Err(format!("line {}: {e}", i + 1)),
        };
        if cells.len() < 2 {
            return Err(format!("line {}: needs features and a label", i + 1));
        }
        match width {
            None => width = Some(cells.len()),
            Some(w) if w != cells.len() => {
                return Err(format!(
                    "line {}: {} columns, the first row has {w}",
                    i + 1,
                    cells.len()
                ))
            }
            _ => {}
        }
        let (label, feats) = cells.split_last().expect("at least two cells");
        let l = labels(&[*label]).map_err(|(_, v)| format!("line {}: label {v}", i + 1))?;
        x.extend_from_slice(feats);
        y.push(l[0]);
    }
    let Some(w) = width else {
        return Err("no samples".into());
    };
    let n = y.len();
    let t = |e: graft::nn::CandleError| e.to_string();
    Ok(Dataset {
        x: Tensor::from_vec(x, (n, w - 1), &Device::Cpu).map_err(t)?,
        y: Tensor::from_vec(y, n, &Device::Cpu).map_err(t)?,
    })
}

/// `data` shaped for a model whose one input has per-sample shape `sample`
/// (features are reshaped, e.g. 64 pixels to `[1, 8, 8]`), with the labels
/// checked against the model's `classes` outputs.
pub fn shaped_for(data: Dataset, spec: &str, sample: &[usize], classes: usize) -> Result<Dataset> {
    let n = data.len();
    let per: usize = data.x.dims()[1..].iter().product();
    let want: usize = sample.iter().product();
    if per != want {
        return Err(Usage(format!(
            "data file `{spec}`: {per} features per sample, the model's input {sample:?} takes {want}"
        ))
        .into());
    }
    let ys: Vec<u32> = data.y.to_vec1()?;
    if let Some((i, &l)) = ys.iter().enumerate().find(|(_, &l)| l as usize >= classes) {
        return Err(Usage(format!(
            "data file `{spec}`: sample {i} has label {l}, the model has {classes} outputs"
        ))
        .into());
    }
    let mut dims = vec![n];
    dims.extend_from_slice(sample);
    Ok(Dataset {
        x: data.x.reshape(dims)?,
        y: data.y,
    })
}
