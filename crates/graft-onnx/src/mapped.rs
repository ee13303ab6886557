//! Model files read without copies (issue 19).
//!
//! A model file is mapped into memory and its protobuf decoded in place:
//! each tensor's `raw_data` is a [`Bytes`] slice of the mapping, not a
//! copy, so decoding reads only the graph's structure (the pages of a
//! tensor's payload are never touched by the decoder). A float tensor's
//! values are then read from the file straight into the buffer the model
//! keeps (`pread`, [`Source::read_f32`]), so the file's pages are never
//! mapped into the process either: a command's peak memory is the model's
//! weights once, plus the structure.
//!
//! External data files (see [`crate::external`]) are mapped the same way
//! and their tensors' bytes are slices of them.

use std::fs::File;
use std::path::Path;

use bytes::Bytes;
use memmap2::Mmap;

use crate::error::OnnxError;

/// One mapped file: its bytes (held, so the mapping lives as long as the
/// source: an address range is never reused by another file while a
/// region names it), where they lie in memory, and the file to read them
/// from.
struct Region {
    _bytes: Bytes,
    start: usize,
    len: usize,
    file: File,
}

/// The mapped files a decoded model's tensor bytes may be slices of.
#[derive(Default)]
pub(crate) struct Source {
    regions: Vec<Region>,
}

fn io(path: &Path, e: std::io::Error) -> OnnxError {
    OnnxError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

impl Source {
    /// Map `path` read-only and return its bytes (an empty file is read as
    /// no bytes: a zero-length mapping is refused by the system).
    pub fn map(&mut self, path: &Path) -> Result<Bytes, OnnxError> {
        let file = File::open(path).map_err(|e| io(path, e))?;
        let meta = file.metadata().map_err(|e| io(path, e))?;
        if !meta.is_file() {
            return Err(OnnxError::Io {
                path: path.display().to_string(),
                reason: "not a regular file (a model is read from a file)".into(),
            });
        }
        let len = meta.len();
        if len == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the mapping is read-only and private; what memmap2 cannot
        // rule out is another process truncating or rewriting the file
        // while graft reads it (then reads fault or see the new bytes).
        // That is the contract of every mapped model reader (safetensors,
        // candle, tract); graft never writes to a file it has mapped: a
        // model is written through a new file renamed into place.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io(path, e))?;
        // The decoder touches only the structure, scattered between the
        // payloads: without this the system maps 16 pages around each
        // touched one, and a model of many small tensors ends up resident
        // whole. A hint: failing to give it changes nothing else.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        let bytes = Bytes::from_owner(map);
        self.regions.push(Region {
            _bytes: bytes.clone(),
            start: bytes.as_ptr() as usize,
            len: bytes.len(),
            file,
        });
        Ok(bytes)
    }

    /// `raw`'s bytes as little-endian f32 values, read from the file it is
    /// a slice of into a fresh buffer (without touching the mapping), or
    /// `None` when it lies in no mapped file or this machine is big-endian
    /// (then the caller converts the slice itself).
    pub fn read_f32(&self, raw: &[u8]) -> Option<Result<Vec<f32>, std::io::Error>> {
        if !cfg!(all(unix, target_endian = "little")) || !raw.len().is_multiple_of(4) {
            return None;
        }
        let at = raw.as_ptr() as usize;
        let region = self
            .regions
            .iter()
            .find(|r| at >= r.start && at + raw.len() <= r.start + r.len)?;
        let mut vals = vec![0f32; raw.len() / 4];
        let offset = (at - region.start) as u64;
        Some(read_at(&region.file, bytemuck::cast_slice_mut(&mut vals), offset).map(|()| vals))
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_: &File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    unreachable!("read_f32 answers None off unix")
}
