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
//! A float tensor is not even read at import: it becomes a [`FileSlice`],
//! the model's parameter is backed by it ([`graft_nn::Param`]), and its
//! values are read only when a command needs them (pruning scores and
//! gathers each parameter once, writing copies it, `inspect` reads none).
//!
//! External data files (see [`crate::external`]) are mapped the same way
//! and their tensors' bytes are slices of them.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::Mmap;

use crate::error::OnnxError;

/// One mapped file: its bytes (held, so the mapping lives as long as the
/// source: an address range is never reused by another file while a
/// region names it), where they lie in memory, and the file to read them
/// from.
struct Region {
    map: Arc<Mmap>,
    bytes: Bytes,
    start: usize,
    len: usize,
    file: File,
}

/// The mapped files a decoded model's tensor bytes may be slices of.
#[derive(Default)]
pub(crate) struct Source {
    regions: Vec<Arc<Region>>,
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
        let map = Arc::new(map);
        let bytes = Bytes::from_owner(Mapped(map.clone()));
        self.regions.push(Arc::new(Region {
            map,
            bytes: bytes.clone(),
            start: bytes.as_ptr() as usize,
            len: bytes.len(),
            file,
        }));
        Ok(bytes)
    }

    /// Give back the pages of the mapped files that decoding touched (the
    /// structure, and the payloads of small tensors that share its pages):
    /// they stay in the page cache, not in the process. Values read later
    /// come with `pread`, or fault the few pages needed back in.
    pub fn release_pages(&self) {
        #[cfg(unix)]
        for r in &self.regions {
            // SAFETY: a private, read-only file mapping: dropped pages are
            // read again from the file when touched, with the same bytes
            // (the contract of `map` above). No reference into the
            // mapping is invalidated, only its residency.
            let _ = unsafe { r.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// `raw`'s bytes as little-endian f32 values left where they lie: the
    /// slice of the mapped file they are, to be read when needed; `None`
    /// when they lie in no mapped file or this machine is big-endian (then
    /// the caller converts the slice itself).
    pub fn f32_slice(&self, raw: &[u8]) -> Option<FileSlice> {
        if !cfg!(all(unix, target_endian = "little")) || !raw.len().is_multiple_of(4) {
            return None;
        }
        let at = raw.as_ptr() as usize;
        let region = self
            .regions
            .iter()
            .find(|r| at >= r.start && at + raw.len() <= r.start + r.len)?;
        Some(FileSlice {
            region: region.clone(),
            offset: at - region.start,
            len: raw.len() / 4,
        })
    }
}

/// Little-endian f32 values in a mapped file, read when needed: with
/// `pread` straight into the caller's buffer (the file's pages are never
/// mapped into the process), or, should that fail, copied from the
/// mapping (which then fails as any mapped reader does). The mapping and
/// the file stay open while a slice names them; graft never writes a file
/// it reads (a model is written through a new file renamed into place).
#[derive(Clone)]
pub(crate) struct FileSlice {
    region: Arc<Region>,
    offset: usize,
    len: usize,
}

impl std::fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSlice({} values at byte {})", self.len, self.offset)
    }
}

impl FileSlice {
    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl graft_nn::Backing for FileSlice {
    fn read(&self, start: usize, out: &mut [f32]) {
        let len = out.len().min(self.len.saturating_sub(start));
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[..len]);
        let at = self.offset + 4 * start;
        if read_at(&self.region.file, bytes, at as u64).is_err() {
            bytes.copy_from_slice(&self.region.bytes[at..at + bytes.len()]);
        }
    }
}

/// A shared mapping as the owner of [`Bytes`].
struct Mapped(Arc<Mmap>);

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.0[..]
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_at(_: &File, _: &mut [u8], _: u64) -> std::io::Result<()> {
    unreachable!("f32_slice answers None off unix")
}
