//! Reading and writing `TensorProto`s.

use crate::error::OnnxError;
use crate::mapped::{FileSlice, Source};
use crate::proto::TensorProto;

/// ONNX data type codes used here.
pub(crate) const FLOAT: i32 = 1;
pub(crate) const INT32: i32 = 6;
pub(crate) const INT64: i32 = 7;
pub(crate) const DOUBLE: i32 = 11;
pub(crate) const BOOL: i32 = 9;
pub(crate) const INT8: i32 = 3;
pub(crate) const UINT8: i32 = 2;

/// True for ONNX element types other than floating point (1 float, 10
/// float16, 11 double, 16 bfloat16): integers and booleans.
pub(crate) fn is_int_type(to: i64) -> bool {
    !matches!(to, 1 | 10 | 11 | 16)
}

/// Float values shared without copies: a weight decoded once is read by
/// every importer that needs it and moved into the model at the end
/// ([`crate::import`]'s pending parameters). A file's float tensor is
/// read only when an importer looks at its values (folding, a scale);
/// one that goes into the model untouched stays a [`FileSlice`] and
/// backs its parameter there.
#[derive(Clone, Default)]
pub(crate) struct Floats(std::sync::Arc<FloatsInner>);

#[derive(Default)]
struct FloatsInner {
    len: usize,
    vals: std::sync::OnceLock<Vec<f32>>,
    file: Option<FileSlice>,
}

impl Floats {
    pub fn new(vals: Vec<f32>) -> Floats {
        Floats(std::sync::Arc::new(FloatsInner {
            len: vals.len(),
            vals: std::sync::OnceLock::from(vals),
            file: None,
        }))
    }
    fn in_file(slice: FileSlice) -> Floats {
        Floats(std::sync::Arc::new(FloatsInner {
            len: slice.len(),
            vals: std::sync::OnceLock::new(),
            file: Some(slice),
        }))
    }
    /// How many values, without reading them.
    pub fn len(&self) -> usize {
        self.0.len
    }
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }
    /// The file slice the values still lie in, when nothing has read them.
    pub fn unread(&self) -> Option<&FileSlice> {
        match self.0.vals.get() {
            Some(_) => None,
            None => self.0.file.as_ref(),
        }
    }
    /// The values, moved out when nothing else shares them.
    pub fn into_vec(self) -> Vec<f32> {
        match std::sync::Arc::try_unwrap(self.0) {
            Ok(inner) if inner.vals.get().is_some() => inner.vals.into_inner().unwrap_or_default(),
            Ok(inner) => Floats(std::sync::Arc::new(inner)).to_vec(),
            Err(shared) => Floats(shared).to_vec(),
        }
    }
}

impl From<Vec<f32>> for Floats {
    fn from(vals: Vec<f32>) -> Floats {
        Floats::new(vals)
    }
}

impl std::ops::Deref for Floats {
    type Target = Vec<f32>;
    fn deref(&self) -> &Vec<f32> {
        self.0.vals.get_or_init(|| {
            let mut vals = vec![0f32; self.0.len];
            if let Some(file) = &self.0.file {
                graft_nn::Backing::read(file, 0, &mut vals);
            }
            vals
        })
    }
}

impl std::fmt::Debug for Floats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unread() {
            Some(file) => file.fmt(f),
            None => (**self).fmt(f),
        }
    }
}

impl PartialEq for Floats {
    fn eq(&self, other: &Floats) -> bool {
        **self == **other
    }
}

/// A constant tensor: its shape and its values as f32 (floats) or i64
/// (integers).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Const {
    pub dims: Vec<usize>,
    pub f: Floats,
    pub i: Vec<i64>,
}

impl Const {
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }
    /// The values as integers (integer tensors as they are, floats rounded).
    pub fn ints(&self) -> Vec<i64> {
        if self.i.is_empty() {
            self.f.iter().map(|&x| x as i64).collect()
        } else {
            self.i.clone()
        }
    }
    /// The values as floats (shared, not copied, for a float tensor).
    pub fn floats(&self) -> Floats {
        if self.f.is_empty() {
            Floats::new(self.i.iter().map(|&x| x as f32).collect())
        } else {
            self.f.clone()
        }
    }
}

fn bad(t: &TensorProto, reason: String) -> OnnxError {
    OnnxError::Tensor {
        name: t.name.clone().unwrap_or_default(),
        reason,
    }
}

/// Decode a tensor.
pub(crate) fn decode(t: &TensorProto) -> Result<Const, OnnxError> {
    decode_from(t, &Source::default())
}

/// Decode a tensor whose bytes may lie in one of `src`'s mapped files: a
/// float tensor's values are then read from the file into their buffer
/// (see [`crate::mapped`]).
pub(crate) fn decode_from(t: &TensorProto, src: &Source) -> Result<Const, OnnxError> {
    if t.data_location == Some(1) {
        return Err(bad(
            t,
            "external data is not supported; save the model with its weights inside".into(),
        ));
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| bad(t, format!("negative dimension {d}"))))
        .collect::<Result<_, _>>()?;
    let n = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(t, format!("shape {:?} is too large", t.dims)))?;
    let raw = t.raw_data.as_deref().unwrap_or(&[]);
    let dtype = t.data_type.unwrap_or(0);
    let mut c = Const {
        dims,
        f: Floats::default(),
        i: Vec::new(),
    };
    let check = |len: usize| -> Result<(), OnnxError> {
        if len != n {
            return Err(bad(t, format!("{len} values for shape {:?}", t.dims)));
        }
        Ok(())
    };
    match dtype {
        FLOAT => {
            c.f = if raw.is_empty() {
                Floats::new(t.float_data.clone())
            } else if let Some(slice) = src.f32_slice(raw) {
                Floats::in_file(slice)
            } else {
                Floats::new(
                    raw.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                )
            };
            check(c.f.len())?;
        }
        DOUBLE => {
            c.f = Floats::new(if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect()
            } else {
                t.double_data.iter().map(|&x| x as f32).collect()
            });
            check(c.f.len())?;
        }
        INT64 => {
            c.i = if !raw.is_empty() {
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect()
            } else {
                t.int64_data.clone()
            };
            check(c.i.len())?;
        }
        INT32 => {
            c.i = if !raw.is_empty() {
                raw.chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
                    .collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            check(c.i.len())?;
        }
        BOOL | INT8 | UINT8 => {
            c.i = if !raw.is_empty() {
                raw.iter()
                    .map(|&b| {
                        if dtype == INT8 {
                            b as i8 as i64
                        } else {
                            b as i64
                        }
                    })
                    .collect()
            } else {
                t.int32_data.iter().map(|&x| x as i64).collect()
            };
            check(c.i.len())?;
        }
        other => return Err(bad(t, format!("data type {other} is not supported"))),
    }
    Ok(c)
}

/// An initializer to write: its `TensorProto` and, for a model's
/// parameter, the tensor itself, whose values are written straight from
/// the model's memory when the file is (see [`crate::write`]), never
/// copied into the protobuf first.
#[derive(Debug, Clone)]
pub(crate) struct Init {
    /// Everything but the tensor's values when `tensor` is given.
    pub proto: TensorProto,
    pub tensor: Option<Values>,
}

/// Where an initializer's float values come from when it is written.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    /// A tensor computed for the file (a masked weight).
    Tensor(graft_nn::Tensor),
    /// A model's parameter, read where it lies (a file-backed one is not
    /// loaded to be written).
    Param(graft_nn::Param),
}

impl Init {
    fn float(name: &str, dims: &[usize], values: Values) -> Init {
        Init {
            proto: TensorProto {
                name: Some(name.to_string()),
                dims: dims.iter().map(|&d| d as i64).collect(),
                data_type: Some(FLOAT),
                ..Default::default()
            },
            tensor: Some(values),
        }
    }
    /// A computed tensor, written as float32.
    pub fn tensor(name: &str, t: &graft_nn::Tensor) -> Init {
        Init::float(name, t.dims(), Values::Tensor(t.clone()))
    }
    /// A model's parameter, written as float32.
    pub fn param(name: &str, p: &graft_nn::Param) -> Init {
        Init::float(name, p.dims(), Values::Param(p.clone()))
    }
    pub fn name(&self) -> &str {
        self.proto.name.as_deref().unwrap_or("")
    }
    /// The bytes of its values in the file: the tensor's, or `raw_data`.
    pub fn payload_len(&self) -> usize {
        match &self.tensor {
            Some(Values::Tensor(t)) => 4 * t.elem_count(),
            Some(Values::Param(p)) => 4 * p.elem_count(),
            None => self.proto.raw_data.as_ref().map_or(0, |r| r.len()),
        }
    }
    /// Call `f` with its values' bytes (the tensor's, in place, or
    /// `raw_data`; empty when the values are in typed fields).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, OnnxError> {
        match &self.tensor {
            Some(Values::Tensor(t)) => Ok(graft_nn::files::with_f32(t, |vals| {
                graft_nn::files::le_bytes(vals, f)
            })?),
            Some(Values::Param(p)) => Ok(p.with_f32(|vals| graft_nn::files::le_bytes(vals, f))?),
            None => Ok(f(self.proto.raw_data.as_deref().unwrap_or_default())),
        }
    }
}

impl Init {
    /// Write its values' bytes to `w`: a parameter in chunks as it lends
    /// them (a file-backed one is never loaded to be written).
    pub fn write_bytes(
        &self,
        w: &mut impl std::io::Write,
    ) -> Result<std::io::Result<()>, OnnxError> {
        match &self.tensor {
            Some(Values::Param(p)) => Ok(p.for_byte_chunks(|b| w.write_all(b))?),
            _ => self.with_bytes(|b| w.write_all(b)),
        }
    }
}

impl From<TensorProto> for Init {
    fn from(proto: TensorProto) -> Init {
        Init {
            proto,
            tensor: None,
        }
    }
}

/// A float tensor, values in `raw_data`.
pub(crate) fn encode_f32(name: &str, dims: &[usize], vals: &[f32]) -> Init {
    let bytes: Vec<u8> = if cfg!(target_endian = "little") {
        bytemuck::cast_slice(vals).to_vec()
    } else {
        vals.iter().flat_map(|v| v.to_le_bytes()).collect()
    };
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(FLOAT),
        raw_data: Some(bytes.into()),
        ..Default::default()
    }
    .into()
}

/// An int64 tensor.
pub(crate) fn encode_i64(name: &str, dims: &[usize], vals: &[i64]) -> Init {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(INT64),
        raw_data: Some(
            vals.iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        ),
        ..Default::default()
    }
    .into()
}
