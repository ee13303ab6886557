//! ONNX external data (issue 19): initializers whose bytes live in a file
//! beside the model (required above protobuf's 2 GB; torch writes them for
//! large models). Reading resolves each tensor's `location` inside the
//! model's directory and refuses any path that leaves it (absolute paths,
//! `..`, links pointing elsewhere), and checks `offset` and `length`
//! against the file before reading; writing moves the large initializers
//! of an exported model into one data file. Written here because no crate
//! of ours reads ONNX's external-data convention.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use crate::error::OnnxError;
use crate::proto::{ModelProto, StringStringEntryProto, TensorProto};

/// `TensorProto.data_location` of data stored outside the model.
const EXTERNAL: i32 = 1;

/// The most bytes one external tensor may hold (16 GiB), checked before
/// anything is allocated.
pub const MAX_EXTERNAL_BYTES: u64 = 1 << 34;

/// Initializers of at least this many bytes go to the data file when a
/// model is written with external data (ONNX's own default threshold).
pub const EXTERNAL_THRESHOLD: usize = 1024;

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

/// Read every external initializer of `m` from the files beside it in
/// `dir` into the tensor itself.
///
/// # Errors
/// A location outside `dir` (absolute, through `..`, or a link leaving
/// it), a missing file, an offset or length past the file's end or above
/// [`MAX_EXTERNAL_BYTES`], unreadable files: naming the tensor.
pub fn resolve(m: &mut ModelProto, dir: &Path) -> Result<(), OnnxError> {
    let Some(g) = m.graph.as_mut() else {
        return Ok(());
    };
    let root = dir.canonicalize().map_err(|e| OnnxError::Io {
        path: dir.display().to_string(),
        reason: e.to_string(),
    })?;
    for t in g.initializer.iter_mut() {
        if t.data_location != Some(EXTERNAL) {
            continue;
        }
        let bytes = read_one(t, &root)?;
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

fn read_one(t: &TensorProto, root: &Path) -> Result<Vec<u8>, OnnxError> {
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
    let io = |e: std::io::Error| OnnxError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut f = std::fs::File::open(&path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
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
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![0u8; length as usize];
    f.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// Move every initializer of at least [`EXTERNAL_THRESHOLD`] bytes of `m`
/// into one data blob named `location` (relative to the model's file):
/// the model then refers to it by offset and length. Returns the blob.
pub fn externalize(m: &mut ModelProto, location: &str) -> Vec<u8> {
    let mut blob = Vec::new();
    let Some(g) = m.graph.as_mut() else {
        return blob;
    };
    for t in g.initializer.iter_mut() {
        let Some(raw) = t
            .raw_data
            .as_ref()
            .filter(|r| r.len() >= EXTERNAL_THRESHOLD)
        else {
            continue;
        };
        // Each tensor starts on a 64-byte boundary (memory-mappable).
        while blob.len() % 64 != 0 {
            blob.push(0);
        }
        let offset = blob.len();
        blob.extend_from_slice(raw);
        let kv = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        t.external_data = vec![
            kv("location", location.to_string()),
            kv("offset", offset.to_string()),
            kv("length", raw.len().to_string()),
        ];
        t.data_location = Some(EXTERNAL);
        t.raw_data = None;
    }
    blob
}
