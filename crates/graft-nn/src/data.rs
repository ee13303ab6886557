//! Data sets: scikit-learn's digits (shipped in `data/digits.bin`, exported
//! by `scripts/export_digits.py`) and generated XOR and two-spirals data.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::error::{NnError, Result};

/// Inputs and targets.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Inputs, `[N, ...]`, f32.
    pub x: Tensor,
    /// Targets: class indices (u32, `[N]`) or values (f32).
    pub y: Tensor,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.dim(0).unwrap_or(0)
    }
    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A seeded shuffle split into (first `n`, rest).
    ///
    /// # Errors
    /// More samples asked than there are, tensor errors.
    pub fn split(&self, n: usize, seed: u64) -> Result<(Dataset, Dataset)> {
        if n > self.len() {
            return Err(NnError::Invalid {
                what: "split".into(),
                reason: format!("{n} samples asked of {}", self.len()),
            });
        }
        let mut idx: Vec<u32> = (0..self.len() as u32).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        let take = |ids: &[u32]| -> Result<Dataset> {
            let t = Tensor::from_vec(ids.to_vec(), ids.len(), self.x.device())?;
            Ok(Dataset {
                x: self.x.index_select(&t, 0)?,
                y: self.y.index_select(&t, 0)?,
            })
        };
        Ok((take(&idx[..n])?, take(&idx[n..])?))
    }
}

/// Where the repository keeps `digits.bin`.
pub fn digits_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits.bin")
}

/// The digits: `x` is `[1797, 64]` with pixels scaled to 0..1, `y` the
/// labels.
///
/// # Errors
/// A missing or malformed file, named.
pub fn digits(path: &Path) -> Result<Dataset> {
    let bytes = std::fs::read(path).map_err(|e| NnError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    digits_from(&bytes, &path.display().to_string())
}

/// The digits built into the library (the same bytes as
/// `data/digits.bin`), so programs find them wherever they run.
///
/// # Errors
/// Tensor errors.
pub fn shipped_digits() -> Result<Dataset> {
    digits_from(
        include_bytes!("../../../data/digits.bin"),
        "data/digits.bin",
    )
}

/// Parse the digits format; errors name `origin`.
fn digits_from(bytes: &[u8], origin: &str) -> Result<Dataset> {
    let bad = |reason: String| NnError::Io {
        path: origin.to_string(),
        reason,
    };
    if bytes.len() < 12 || &bytes[..8] != b"DIGITS1\n" {
        return Err(bad("not a digits file (bad header)".into()));
    }
    let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let body = &bytes[12..];
    if body.len() != n * 65 {
        return Err(bad(format!(
            "{} bytes of records for {n} samples",
            body.len()
        )));
    }
    let mut x = Vec::with_capacity(n * 64);
    let mut y = Vec::with_capacity(n);
    for r in body.chunks(65) {
        if r[64] > 9 || r[..64].iter().any(|&p| p > 16) {
            return Err(bad("a pixel above 16 or a label above 9".into()));
        }
        x.extend(r[..64].iter().map(|&p| p as f32 / 16.0));
        y.push(r[64] as u32);
    }
    Ok(Dataset {
        x: Tensor::from_vec(x, (n, 64), &Device::Cpu)?,
        y: Tensor::from_vec(y, n, &Device::Cpu)?,
    })
}

/// XOR: `n` points near the four corners of the unit square (Gaussian noise
/// of standard deviation `noise`), target 1 where exactly one coordinate is
/// near 1 (`y` is `[n, 1]`, f32).
///
/// # Errors
/// Tensor errors.
pub fn xor(n: usize, noise: f64, seed: u64) -> Result<Dataset> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = rand_distr::Normal::new(0.0, noise.max(1e-12)).expect("valid normal");
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let (a, b) = (rng.random_range(0..2u8), rng.random_range(0..2u8));
        x.push(a as f32 + rng.sample(normal) as f32);
        x.push(b as f32 + rng.sample(normal) as f32);
        y.push((a ^ b) as f32);
    }
    Ok(Dataset {
        x: Tensor::from_vec(x, (n, 2), &Device::Cpu)?,
        y: Tensor::from_vec(y, (n, 1), &Device::Cpu)?,
    })
}

/// Two interleaved spirals, `n` points each, class 0 and 1.
///
/// # Errors
/// Tensor errors.
pub fn spirals(n: usize, noise: f64, seed: u64) -> Result<Dataset> {
    let mut rng = StdRng::seed_from_u64(seed);
    let normal = rand_distr::Normal::new(0.0, noise.max(1e-12)).expect("valid normal");
    let mut x = Vec::with_capacity(4 * n);
    let mut y = Vec::with_capacity(2 * n);
    for class in 0..2u32 {
        for i in 0..n {
            let t = 0.25 + 3.0 * std::f64::consts::PI * i as f64 / n as f64;
            let sign = if class == 0 { 1.0 } else { -1.0 };
            x.push((sign * t * t.cos() / 10.0 + rng.sample(normal)) as f32);
            x.push((sign * t * t.sin() / 10.0 + rng.sample(normal)) as f32);
            y.push(class);
        }
    }
    Ok(Dataset {
        x: Tensor::from_vec(x, (2 * n, 2), &Device::Cpu)?,
        y: Tensor::from_vec(y, 2 * n, &Device::Cpu)?,
    })
}
