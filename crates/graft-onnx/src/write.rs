//! Streamed writing (issue 19): a model goes to its file as it is
//! produced, its weights straight from the model's memory, with no second
//! copy of them in a protobuf message or an encoded buffer.
//!
//! Protobuf prefixes each nested message with its length, so the lengths
//! are worked out first ([`Prepared::new`]: the graph's structure is
//! encoded, each initializer's header is encoded, and each payload's size
//! is known from its shape); then [`Prepared::write_model`] writes the
//! bytes in order. Fields are written in tag order, as prost writes them,
//! so a streamed file is byte for byte the one `encode_to_vec` gives
//! (tested). With external data, the large payloads go to a second stream
//! ([`Prepared::write_data`]), each at a 64-byte boundary, and their
//! tensors say where. Written by hand because prost encodes only whole
//! messages in memory.

use std::io::Write;

use prost::encoding::{encode_varint, encoded_len_varint};
use prost::Message;

use crate::error::OnnxError;
use crate::proto::{GraphProto, ModelProto, StringStringEntryProto, TensorProto};
use crate::tensor::Init;

/// `TensorProto.data_location` of data stored outside the model.
pub(crate) const EXTERNAL: i32 = 1;

/// Initializers of at least this many bytes go to the data file when a
/// model is written with external data (ONNX's own default threshold).
pub const EXTERNAL_THRESHOLD: usize = 1024;

/// Protobuf's limit on one message (2 GiB), less a margin: a model larger
/// than this is written with external data.
pub(crate) const PROTOBUF_LIMIT: usize = (1 << 31) - (1 << 24);

/// Field keys (tag << 3 | length-delimited).
const MODEL_GRAPH: u64 = 7 << 3 | 2;
const GRAPH_INITIALIZER: u64 = 5 << 3 | 2;
const TENSOR_RAW_DATA: u64 = 9 << 3 | 2;

/// Where one initializer's payload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the initializer's `raw_data` (or typed fields) already encoded
    /// in its header.
    Encoded,
    /// Written after the header as `raw_data`, from the tensor.
    Inline,
    /// In the data file at this offset.
    External(u64),
}

/// One initializer: its encoded fields before and after `raw_data`.
struct Part {
    init: Init,
    before: Vec<u8>,
    after: Vec<u8>,
    place: Place,
}

impl Part {
    /// The initializer message's length.
    fn len(&self) -> usize {
        let payload = match self.place {
            Place::Inline => {
                let n = self.init.payload_len();
                encoded_len_varint(TENSOR_RAW_DATA) + encoded_len_varint(n as u64) + n
            }
            Place::Encoded | Place::External(_) => 0,
        };
        self.before.len() + payload + self.after.len()
    }
}

/// A model whose bytes are ready to be written: the structure encoded,
/// the weights still where the model keeps them.
pub struct Prepared {
    /// The model's fields before `graph`, and after it.
    model: (Vec<u8>, Vec<u8>),
    /// The graph's fields before `initializer`, and after it.
    graph: (Vec<u8>, Vec<u8>),
    parts: Vec<Part>,
    /// The data file's length (0: no data file).
    data_len: u64,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("model_len", &self.model_len())
            .field("data_len", &self.data_len)
            .finish()
    }
}

impl Prepared {
    /// Lay out `m` (whose graph has no initializers) with `inits`; with
    /// `external` (the data file's name, relative to the model), every
    /// payload of at least [`EXTERNAL_THRESHOLD`] bytes goes to it.
    pub(crate) fn new(mut m: ModelProto, inits: Vec<Init>, external: Option<&str>) -> Prepared {
        let mut g = m.graph.take().unwrap_or_default();
        let graph = split_graph(&mut g);
        let model = split_model(m);
        let mut data_len = 0u64;
        let parts = inits
            .into_iter()
            .map(|init| {
                let n = init.payload_len();
                let place = match external {
                    Some(_) if n >= EXTERNAL_THRESHOLD => {
                        // Each tensor starts on a 64-byte boundary
                        // (memory-mappable).
                        let offset = data_len.next_multiple_of(64);
                        data_len = offset + n as u64;
                        Place::External(offset)
                    }
                    _ if init.tensor.is_some() => Place::Inline,
                    _ => Place::Encoded,
                };
                part(init, place, external.unwrap_or(""))
            })
            .collect();
        Prepared {
            model,
            graph,
            parts,
            data_len,
        }
    }

    /// The graph message's length.
    fn graph_len(&self) -> usize {
        let inits: usize = self
            .parts
            .iter()
            .map(|p| {
                let n = p.len();
                encoded_len_varint(GRAPH_INITIALIZER) + encoded_len_varint(n as u64) + n
            })
            .sum();
        self.graph.0.len() + inits + self.graph.1.len()
    }

    /// The model file's length in bytes.
    pub fn model_len(&self) -> usize {
        let g = self.graph_len();
        self.model.0.len()
            + encoded_len_varint(MODEL_GRAPH)
            + encoded_len_varint(g as u64)
            + g
            + self.model.1.len()
    }

    /// Whether the model has a data file (written with external data and
    /// some initializer large enough to move there).
    pub fn has_data(&self) -> bool {
        self.data_len > 0
    }

    /// Write the model file.
    ///
    /// # Errors
    /// The writer's, and a tensor that cannot be read as f32.
    pub fn write_model(&self, w: &mut impl Write) -> Result<(), OnnxError> {
        let io = |e: std::io::Error| write_err("the model", e);
        w.write_all(&self.model.0).map_err(io)?;
        put_len(w, MODEL_GRAPH, self.graph_len()).map_err(io)?;
        w.write_all(&self.graph.0).map_err(io)?;
        for p in &self.parts {
            put_len(w, GRAPH_INITIALIZER, p.len()).map_err(io)?;
            w.write_all(&p.before).map_err(io)?;
            if p.place == Place::Inline {
                put_len(w, TENSOR_RAW_DATA, p.init.payload_len()).map_err(io)?;
                p.init.write_bytes(w)?.map_err(io)?;
            }
            w.write_all(&p.after).map_err(io)?;
        }
        w.write_all(&self.graph.1).map_err(io)?;
        w.write_all(&self.model.1).map_err(io)?;
        Ok(())
    }

    /// Write the data file (nothing when [`Prepared::has_data`] is false).
    ///
    /// # Errors
    /// As [`Prepared::write_model`].
    pub fn write_data(&self, w: &mut impl Write) -> Result<(), OnnxError> {
        let io = |e: std::io::Error| write_err("the data file", e);
        let mut at = 0u64;
        for p in &self.parts {
            if let Place::External(offset) = p.place {
                let pad = (offset - at) as usize;
                w.write_all(&[0u8; 64][..pad]).map_err(io)?;
                p.init.write_bytes(w)?.map_err(io)?;
                at = offset + p.init.payload_len() as u64;
            }
        }
        Ok(())
    }

    /// The model file's bytes.
    pub fn model_bytes(&self) -> Result<Vec<u8>, OnnxError> {
        let mut v = Vec::with_capacity(self.model_len());
        self.write_model(&mut v)?;
        Ok(v)
    }

    /// The data file's bytes (`None` without one).
    pub fn data_bytes(&self) -> Result<Option<Vec<u8>>, OnnxError> {
        if !self.has_data() {
            return Ok(None);
        }
        let mut v = Vec::with_capacity(self.data_len as usize);
        self.write_data(&mut v)?;
        Ok(Some(v))
    }
}

fn write_err(what: &str, e: std::io::Error) -> OnnxError {
    OnnxError::Io {
        path: what.to_string(),
        reason: e.to_string(),
    }
}

/// A length-delimited field's key and length.
fn put_len(w: &mut impl Write, key: u64, len: usize) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(20);
    encode_varint(key, &mut b);
    encode_varint(len as u64, &mut b);
    w.write_all(&b)
}

/// The model's fields before `graph` (tags 1 to 6) and after it (8 on).
fn split_model(m: ModelProto) -> (Vec<u8>, Vec<u8>) {
    let before = ModelProto {
        ir_version: m.ir_version,
        producer_name: m.producer_name,
        producer_version: m.producer_version,
        domain: m.domain,
        model_version: m.model_version,
        doc_string: m.doc_string,
        ..Default::default()
    };
    let after = ModelProto {
        opset_import: m.opset_import,
        metadata_props: m.metadata_props,
        training_info: m.training_info,
        functions: m.functions,
        configuration: m.configuration,
        ..Default::default()
    };
    (before.encode_to_vec(), after.encode_to_vec())
}

/// The graph's fields before `initializer` (tags 1, 2) and after it (10
/// on); its initializers are the parts.
fn split_graph(g: &mut GraphProto) -> (Vec<u8>, Vec<u8>) {
    let before = GraphProto {
        node: std::mem::take(&mut g.node),
        name: g.name.take(),
        ..Default::default()
    };
    let before = before.encode_to_vec();
    g.initializer.clear();
    (before, g.encode_to_vec())
}

/// An initializer's fields before `raw_data` (tags 1 to 8) and after it
/// (10 on), with the external-data entries when it goes to the data file.
fn part(init: Init, place: Place, location: &str) -> Part {
    let mut t = init.proto.clone();
    if let Place::External(offset) = place {
        let kv = |k: &str, v: String| StringStringEntryProto {
            key: Some(k.into()),
            value: Some(v),
        };
        t.external_data = vec![
            kv("location", location.to_string()),
            kv("offset", offset.to_string()),
            kv("length", init.payload_len().to_string()),
        ];
        t.data_location = Some(EXTERNAL);
        t.raw_data = None;
    }
    if place == Place::Encoded {
        // Small constants: the whole message, payload included.
        return Part {
            init,
            before: t.encode_to_vec(),
            after: Vec::new(),
            place,
        };
    }
    t.raw_data = None;
    let before = TensorProto {
        dims: std::mem::take(&mut t.dims),
        data_type: t.data_type.take(),
        segment: t.segment.take(),
        float_data: std::mem::take(&mut t.float_data),
        int32_data: std::mem::take(&mut t.int32_data),
        string_data: std::mem::take(&mut t.string_data),
        int64_data: std::mem::take(&mut t.int64_data),
        name: t.name.take(),
        ..Default::default()
    };
    Part {
        init,
        before: before.encode_to_vec(),
        after: t.encode_to_vec(),
        place,
    }
}

/// What `path` is when it exists and is not a regular file.
pub fn not_a_regular_file(path: &std::path::Path) -> Option<&'static str> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link")
    } else if t.is_dir() {
        Some("a directory")
    } else {
        Some("a device, pipe or socket")
    }
}

/// Write `out` through a fresh `OUT.partial` beside it, renamed over `out`
/// once `fill` has written everything: a failed write leaves no partial
/// file and `out` as it was, nothing is written through a link planted at
/// either name, and a model whose weights are still read from `out` (an
/// imported model's file-backed parameters) keeps reading the old file
/// until the new one replaces it. Only a regular file (or nothing) is
/// replaced.
///
/// # Errors
/// `out` is not a regular file, or the system's or `fill`'s error.
pub fn write_replacing(
    out: &std::path::Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    if let Some(kind) = not_a_regular_file(out) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is {kind}: graft writes models only to regular files"),
        ));
    }
    let tmp = {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        out.with_file_name(name)
    };
    // A leftover `.partial` (or a link planted there) is removed first, and
    // the new one is created fresh.
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(&tmp);
    }
    let write = || -> std::io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        fill(&mut w)?;
        w.into_inner().map_err(Error::other)?;
        std::fs::rename(&tmp, out)
    };
    write().inspect_err(|_| {
        if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
            let _ = std::fs::remove_file(&tmp);
        }
    })
}

impl Prepared {
    /// Write the prepared model to `path`, and its data file beside it
    /// first when it has one, each through [`write_replacing`].
    ///
    /// # Errors
    /// A path that is not a regular file, and the system's errors.
    pub fn save(&self, path: &std::path::Path, location: &str) -> Result<(), OnnxError> {
        let io = |p: &std::path::Path, e: std::io::Error| OnnxError::Io {
            path: p.display().to_string(),
            reason: e.to_string(),
        };
        if self.has_data() {
            let data = path.with_file_name(location);
            write_replacing(&data, |w| self.write_data(w).map_err(std::io::Error::other))
                .map_err(|e| io(&data, e))?;
        }
        write_replacing(path, |w| self.write_model(w).map_err(std::io::Error::other))
            .map_err(|e| io(path, e))
    }
}
