//! Data files, read with checks before anything is allocated: NumPy
//! arrays (`.npy`, `.npz`) and CSV tables, and data sets of features and
//! class labels from them (`graft train`, `graft eval`, Taylor utilities).
//!
//! candle's `.npy` and `.npz` readers allocate what an array's header
//! claims before reading any data, so a header claiming 2^40 elements
//! aborts the process. Here each header's shape and element type are read
//! first (a few hundred bytes), and the bytes they claim are checked
//! against what the file holds; only then does candle read the arrays.
//! Written by hand because the header is a short Python-literal dictionary
//! no crate of ours parses.
//!
//! Data sets:
//! - `digits`: the digits shipped with graft (`data/digits.bin`), or a path
//!   to a file in that format;
//! - `.csv`: one sample per line, features then the label last; a first
//!   line that is not numeric is taken as a header;
//! - `.npy`: one 2-D array, features then the label in the last column;
//! - `.npz`: arrays `x` (`[N, ...]`) and `y` (`[N]`, integer labels).

use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::data::{digits, shipped_digits, Dataset};
use crate::error::{NnError, Result};

/// The largest array read (16 GiB): larger claims are refused before
/// anything is allocated.
pub const MAX_BYTES: u64 = 1 << 34;

fn bad(path: &Path, why: impl Into<String>) -> NnError {
    NnError::Data {
        file: path.display().to_string(),
        reason: why.into(),
    }
}

fn io(path: &Path, e: std::io::Error) -> NnError {
    NnError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Read a `.npy` file whose header agrees with its size.
///
/// # Errors
/// Unreadable files, headers that are not NumPy's or claim more bytes than
/// the file holds (or than 16 GiB), arrays candle does not read.
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let len = f.metadata().map_err(|e| io(path, e))?.len();
    let (header_len, data) = header(&mut f).map_err(|why| bad(path, why))?;
    if header_len.checked_add(data) != Some(len) {
        return Err(bad(
            path,
            format!(
                "its header claims {data} bytes of data, the file holds {}",
                len.saturating_sub(header_len)
            ),
        ));
    }
    Tensor::read_npy(path).map_err(|e| bad(path, format!("not a NumPy array ({e})")))
}

/// Read a `.npz` archive whose arrays' headers agree with their sizes.
///
/// # Errors
/// As [`read_npy`], for every array; archives that are not zip files.
pub fn read_npz(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut zip =
        zip::ZipArchive::new(f).map_err(|e| bad(path, format!("not a NumPy archive ({e})")))?;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| bad(path, format!("not a NumPy archive ({e})")))?;
        let name = entry.name().map(|n| n.to_string()).unwrap_or_default();
        let size = entry.size();
        let (header_len, data) =
            header(&mut entry).map_err(|why| bad(path, format!("array `{name}`: {why}")))?;
        if header_len.checked_add(data) != Some(size) {
            return Err(bad(
                path,
                format!(
                    "array `{name}`: its header claims {data} bytes of data, the archive holds {}",
                    size.saturating_sub(header_len)
                ),
            ));
        }
    }
    Tensor::read_npz(path).map_err(|e| bad(path, format!("not a NumPy archive ({e})")))
}

/// A data set of features and class labels from a CSV table (one sample
/// per line, the label last; a first line that is not numeric is a
/// header; a byte-order mark is skipped).
///
/// # Errors
/// Unparsable cells, rows of different widths, labels that are not whole
/// numbers from 0, no samples: naming the line.
pub fn read_csv(text: &str) -> std::result::Result<Dataset, String> {
    csv_rows(text)
}

/// Read a data set named on the command line: `digits`, or a `.bin`,
/// `.csv`, `.npy` or `.npz` file (see the module's documentation).
///
/// # Errors
/// Unreadable or malformed files, naming the file and the line or array
/// at fault.
pub fn load_dataset(spec: &str) -> Result<Dataset> {
    if spec == "digits" {
        return shipped_digits();
    }
    let path = Path::new(spec);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let fail = |reason: String| bad(path, reason);
    match ext.as_str() {
        "bin" => digits(path),
        "csv" => {
            let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
            csv_rows(&text).map_err(fail)
        }
        "npy" => {
            let t = read_npy(path)?.to_dtype(DType::F32)?;
            let (n, c) = t
                .dims2()
                .map_err(|_| fail(format!("an array of shape {:?}, not 2-D", t.dims())))?;
            if c < 2 || n == 0 {
                return Err(fail(format!(
                    "shape [{n}, {c}]: needs samples with features and a label"
                )));
            }
            let x = t.narrow(1, 0, c - 1)?.contiguous()?;
            let y: Vec<f32> = t.narrow(1, c - 1, 1)?.flatten_all()?.to_vec1()?;
            let y = labels(&y).map_err(|(i, v)| fail(format!("row {i}: label {v}")))?;
            Ok(Dataset {
                x,
                y: Tensor::from_vec(y, n, &Device::Cpu)?,
            })
        }
        "npz" => {
            let arrays = read_npz(path)?;
            let get = |name: &str| {
                arrays
                    .iter()
                    .find(|(k, _)| k == name || k.as_str() == format!("{name}.npy"))
                    .map(|(_, t)| t.clone())
                    .ok_or_else(|| fail(format!("no array `{name}`")))
            };
            let x = get("x")?.to_dtype(DType::F32)?;
            let y = get("y")?;
            let n = x.dim(0).map_err(|_| fail("`x` is a scalar".into()))?;
            if y.dims() != [n] {
                return Err(fail(format!(
                    "`y` has shape {:?}, `x` has {n} samples",
                    y.dims()
                )));
            }
            let yv: Vec<f32> = y.to_dtype(DType::F32)?.to_vec1()?;
            let yv = labels(&yv).map_err(|(i, v)| fail(format!("y[{i}] = {v}")))?;
            Ok(Dataset {
                x,
                y: Tensor::from_vec(yv, n, &Device::Cpu)?,
            })
        }
        _ => Err(fail(
            "unknown format: give `digits`, or a .csv, .npy, .npz or digits .bin file".into(),
        )),
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

fn csv_rows(text: &str) -> std::result::Result<Dataset, String> {
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
    let t = |e: candle_core::Error| e.to_string();
    Ok(Dataset {
        x: Tensor::from_vec(x, (n, w - 1), &Device::Cpu).map_err(t)?,
        y: Tensor::from_vec(y, n, &Device::Cpu).map_err(t)?,
    })
}

/// The bytes of a NumPy array file (format 1.0) of element type `descr`
/// (e.g. `<f4`), shape `shape` and raw `data`, the header padded as NumPy
/// pads it: for tests, fixtures and fuzzing seeds.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((h.len() as u16).to_le_bytes());
    b.extend(h.as_bytes());
    b.extend(data);
    b
}

/// Call `f` with `t`'s values as 32-bit floats, in row-major order. A
/// contiguous f32 tensor on the CPU is read in place (no copy: a model's
/// weights are scored and written out without a second copy of them);
/// any other is converted first.
///
/// # Errors
/// A tensor candle cannot convert to f32.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = if t.dtype() == DType::F32 && t.is_contiguous() {
        t.clone()
    } else {
        t.to_dtype(DType::F32)?.contiguous()?
    };
    let (storage, layout) = t.storage_and_layout();
    if let candle_core::Storage::Cpu(cpu) = &*storage {
        let all: &[f32] = cpu.as_slice()?;
        let start = layout.start_offset();
        return Ok(f(&all[start..start + t.elem_count()]));
    }
    drop(storage);
    let vals: Vec<f32> = t.flatten_all()?.to_vec1()?;
    Ok(f(&vals))
}

/// `src` (`rows × cols`, row-major) transposed to `cols × rows`, in tiles
/// that stay in cache and in parallel over bands of output rows: a naive
/// transpose of a 2048 × 5632 matrix misses the cache on every write.
/// Weights are transposed this way when a file's `[in, out]` matrix
/// becomes a layer's `[out, in]` one and back.
pub fn transpose_f32(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    use rayon::prelude::*;
    const TILE: usize = 64;
    assert_eq!(src.len(), rows * cols, "a {rows} x {cols} matrix");
    let mut out = vec![0f32; src.len()];
    if src.is_empty() {
        return out;
    }
    out.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, dst)| {
            // Output rows `band * TILE ..`: input columns of that range.
            let c0 = band * TILE;
            let width = dst.len() / rows;
            for r0 in (0..rows).step_by(TILE) {
                let r1 = (r0 + TILE).min(rows);
                for c in 0..width {
                    let line = &mut dst[c * rows..(c + 1) * rows];
                    for r in r0..r1 {
                        line[r] = src[r * cols + c0 + c];
                    }
                }
            }
        });
    out
}

/// `f` of `vals`' little-endian bytes: in place on a little-endian
/// machine (how weights are written to files), converted on others.
pub fn le_bytes<R>(vals: &[f32], f: impl FnOnce(&[u8]) -> R) -> R {
    if cfg!(target_endian = "little") {
        f(bytemuck::cast_slice(vals))
    } else {
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        f(&bytes)
    }
}

/// The header's length in bytes and the data bytes it claims.
fn header(r: &mut impl Read) -> std::result::Result<(u64, u64), String> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)
        .map_err(|_| "too short for a NumPy header".to_string())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a NumPy array (no magic string)".into());
    }
    let (len, fixed) = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)
                .map_err(|_| "a truncated header".to_string())?;
            (u64::from(u16::from_le_bytes(b)), 10u64)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)
                .map_err(|_| "a truncated header".to_string())?;
            (u64::from(u32::from_le_bytes(b)), 12u64)
        }
        v => return Err(format!("NumPy format version {v}")),
    };
    if len > 1 << 20 {
        return Err(format!("a header of {len} bytes"));
    }
    let mut text = vec![0u8; len as usize];
    r.read_exact(&mut text)
        .map_err(|_| "a truncated header".to_string())?;
    let text = String::from_utf8_lossy(&text);
    let item = item_size(&text)?;
    let elems = shape(&text)?
        .into_iter()
        .try_fold(1u64, |a, d| a.checked_mul(d))
        .ok_or("a shape whose size overflows")?;
    let data = elems
        .checked_mul(item)
        .filter(|&b| b <= MAX_BYTES)
        .ok_or_else(|| {
            format!("a shape of {elems} elements of {item} bytes, more than graft reads (16 GiB)")
        })?;
    Ok((fixed + len, data))
}

/// The element size from the header's `descr` (e.g. `'<f4'`).
fn item_size(text: &str) -> std::result::Result<u64, String> {
    let at = text.find("descr").ok_or("no descr in the header")?;
    let rest = &text[at + 5..];
    let colon = rest.find(':').ok_or("an unreadable descr")?;
    let rest = &rest[colon + 1..];
    let q = rest.find(['\'', '"']).ok_or("an unreadable descr")?;
    let d: String = rest[q + 1..]
        .chars()
        .take_while(|&c| c != '\'' && c != '"')
        .collect();
    let digits: String = d.chars().skip_while(|c| !c.is_ascii_digit()).collect();
    digits
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("element type {d}"))
}

/// The shape from the header's `shape` tuple.
fn shape(text: &str) -> std::result::Result<Vec<u64>, String> {
    let at = text.find("shape").ok_or("no shape in the header")?;
    let rest = &text[at..];
    let open = rest.find('(').ok_or("an unreadable shape")?;
    let close = rest[open..].find(')').ok_or("an unreadable shape")? + open;
    rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().map_err(|_| format!("a shape entry `{s}`")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &[usize], data: usize) -> Vec<u8> {
        npy_bytes("<f4", shape, &vec![0u8; data])
    }

    #[test]
    fn tiled_transposes_match_the_definition() {
        // Shapes around the tile size and its multiples, and degenerate ones.
        for (rows, cols) in [
            (1, 1),
            (1, 7),
            (7, 1),
            (3, 5),
            (64, 64),
            (65, 130),
            (200, 63),
            (0, 4),
        ] {
            let src: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let t = transpose_f32(&src, rows, cols);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(
                        t[c * rows + r],
                        src[r * cols + c],
                        "{rows}x{cols} at {r},{c}"
                    );
                }
            }
            assert_eq!(t.len(), src.len());
        }
    }

    #[test]
    fn tensors_are_read_in_place_or_converted() {
        let t = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        assert_eq!(
            with_f32(&t, |s| s.to_vec()).unwrap(),
            [0., 1., 2., 3., 4., 5.]
        );
        // A transposed view is made contiguous first.
        let v = with_f32(&t.t().unwrap(), |s| s.to_vec()).unwrap();
        assert_eq!(v, [0., 3., 1., 4., 2., 5.]);
        let b = with_f32(&t.narrow(1, 1, 1).unwrap(), |v| le_bytes(v, <[u8]>::to_vec)).unwrap();
        assert_eq!(b, [1f32.to_le_bytes(), 4f32.to_le_bytes()].concat());
    }

    #[test]
    fn headers_give_their_sizes_and_huge_claims_are_refused() {
        let b = npy(&[2, 3], 24);
        let (h, d) = header(&mut b.as_slice()).unwrap();
        assert_eq!((h + d) as usize, b.len());
        assert_eq!(d, 24);
        let b = npy(&[5], 20);
        assert_eq!(header(&mut b.as_slice()).unwrap().1, 20);
        let b = npy(&[], 4);
        assert_eq!(header(&mut b.as_slice()).unwrap().1, 4);
        let huge = npy(&[1 << 40, 4], 8);
        assert!(header(&mut huge.as_slice()).unwrap_err().contains("16 GiB"));
        let over = npy(&[usize::MAX, 2], 8);
        assert!(header(&mut over.as_slice())
            .unwrap_err()
            .contains("overflows"));
        assert!(header(&mut &b"\x93NUMPX"[..]).is_err());
    }

    #[test]
    fn files_whose_headers_overclaim_are_refused_before_reading() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("graft-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // An .npy claiming 100 floats and holding 2.
        let short = dir.join("short.npy");
        std::fs::write(&short, npy(&[100], 8)).unwrap();
        let e = read_npy(&short).unwrap_err().to_string();
        assert!(
            e.contains("claims 400 bytes") && e.contains("short.npy"),
            "{e}"
        );
        let huge = dir.join("huge.npy");
        std::fs::write(&huge, npy(&[1 << 40, 4], 8)).unwrap();
        assert!(read_npy(&huge).unwrap_err().to_string().contains("16 GiB"));
        // An .npz whose array `x` claims more than the archive holds, and
        // a good one.
        let write_npz = |path: &Path, body: &[u8]| {
            let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
            z.start_file("x.npy", zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(body).unwrap();
            z.finish().unwrap();
        };
        let bad = dir.join("bad.npz");
        write_npz(&bad, &npy(&[1000, 1000], 16));
        let e = read_npz(&bad).unwrap_err().to_string();
        assert!(
            e.contains("array `x.npy`") && e.contains("claims 4000000 bytes"),
            "{e}"
        );
        let good = dir.join("good.npz");
        write_npz(&good, &npy(&[2, 2], 16));
        let arrays = read_npz(&good).unwrap();
        assert_eq!(arrays[0].1.dims(), &[2, 2]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
