//! Data sets for `graft train`, `graft eval` and `graft prune --utility
//! taylor`: the shipped digits, or a file of features and class labels,
//! read by `graft::nn::files` (which checks every header before it
//! allocates), then shaped for a model's input.

use anyhow::Result;
use graft::nn::data::Dataset;

use crate::Usage;

/// Read a data set named on the command line; errors name the file, and
/// the line or array at fault (`graft::nn::files`).
pub fn load(spec: &str) -> Result<Dataset> {
    Ok(graft::nn::files::load_dataset(spec)?)
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
