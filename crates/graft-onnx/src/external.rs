//! ONNX external data (issue 19): initializers whose bytes live in a file
//! beside the model (required above protobuf's 2 GB; torch writes them for
//! large models). Reading resolves each tensor's `location` inside the
//! model's directory and refuses any path that leaves it (absolute paths,
//! `..`, links pointing elsewhere), and checks `offset` and `length`
//! against the file before reading. Each data file is mapped once and a
//! tensor's bytes are a slice of it (see [`crate::mapped`]). Writing
//! (every large initializer of an exported model moved into one data
//! file) is part of the streamed writer, `write.rs`. Written here because
//! no crate of ours reads ONNX's external-data convention.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use crate::error::OnnxError;
use crate::mapped::Source;
use crate::proto::{ModelProto, TensorProto};
use crate::write::EXTERNAL;
pub use crate::write::EXTERNAL_THRESHOLD;

/// The most bytes one external tensor may hold (16 GiB), checked before
/// anything is allocated.
pub const MAX_EXTERNAL_BYTES: u64 = 1 << 34;

fn bad(t: &TensorProto, reason: String) -> OnnxError {
    OnnxError::Tensor {
        name: t.name.clone().unwrap_or_default(),
        reason,
    }
}

/// True when some initializer of `m` keeps its data outside the model.
pub fn has_external(m: &ModelProto) -> bool {
    m.graph.as_ref().is_some_and(|g| {
        g.initializer
            .iter()
            .any(|t| t.data_location == Some(EXTERNAL))
    })
}

/// Point every external initializer of `m` at its bytes in the files
/// beside it in `dir`, each file mapped once into `src`.
///
/// # Errors
/// A location outside `dir` (absolute, through `..`, or a link leaving
/// it), a missing file, an offset or length past the file's end or above
/// [`MAX_EXTERNAL_BYTES`], unreadable files: naming the tensor.
pub(crate) fn resolve(m: &mut ModelProto, dir: &Path, src: &mut Source) -> Result<(), OnnxError> {
    let Some(g) = m.graph.as_mut() else {
        return Ok(());
    };
    let root = dir.canonicalize().map_err(|e| OnnxError::Io {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut files: HashMap<PathBuf, Bytes> = HashMap::new();
    for t in g.initializer.iter_mut() {
        if t.data_location != Some(EXTERNAL) {
            continue;
        }
        let bytes = read_one(t, &root, &mut files, src)?;
        t.raw_data = Some(bytes);
        t.data_location = None;
        t.external_data.clear();
    }
    Ok(())
}

fn entry<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key.as_deref() == Some(key))
        .and_then(|e| e.value.as_deref())
}

/// The file `location` names, inside `root` (canonical).
fn inside(t: &TensorProto, root: &Path, location: &str) -> Result<PathBuf, OnnxError> {
    let rel = Path::new(location);
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if location.is_empty() || !plain {
        return Err(bad(
            t,
            format!(
                "external data at `{location}`: only a path inside the model's directory is read"
            ),
        ));
    }
    let path = root.join(rel);
    let real = path.canonicalize().map_err(|e| OnnxError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if !real.starts_with(root) {
        return Err(bad(
            t,
            format!("external data at `{location}` leads outside the model's directory"),
        ));
    }
    Ok(real)
}

fn read_one(
    t: &TensorProto,
    root: &Path,
    files: &mut HashMap<PathBuf, Bytes>,
    src: &mut Source,
) -> Result<Bytes, OnnxError> {
    let location =
        entry(t, "location").ok_or_else(|| bad(t, "external data without a location".into()))?;
    let number = |key: &str| -> Result<Option<u64>, OnnxError> {
        entry(t, key)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| bad(t, format!("external data {key} `{v}`")))
            })
            .transpose()
    };
    let offset = number("offset")?.unwrap_or(0);
    let path = inside(t, root, location)?;
    let file = match files.get(&path) {
        Some(b) => b.clone(),
        None => {
            let b = src.map(&path)?;
            files.insert(path.clone(), b.clone());
            b
        }
    };
    let size = file.len() as u64;
    let length = match number("length")? {
        Some(n) => n,
        None => size.saturating_sub(offset),
    };
    let end = offset.checked_add(length);
    if end.is_none_or(|e| e > size) {
        return Err(bad(
            t,
            format!(
                "external data at `{location}`: bytes {offset} to {offset}+{length}, the file has {size}"
            ),
        ));
    }
    if length > MAX_EXTERNAL_BYTES {
        return Err(bad(
            t,
            format!(
                "external data of {length} bytes, more than graft reads ({MAX_EXTERNAL_BYTES})"
            ),
        ));
    }
    Ok(file.slice(offset as usize..(offset + length) as usize))
}
