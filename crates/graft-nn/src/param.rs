//! A layer's parameter: a candle variable, or values that stay where they
//! lie (a model file) until something needs them (issue 19).
//!
//! An imported model's weights need not all be in memory for most
//! commands: `inspect` reads none of them, pruning reads each once to
//! score it and once to gather what it keeps, and writing copies each to
//! the output. A [`Param`] built on a [`Backing`] answers its shape at
//! once, lends its values one parameter at a time ([`Param::with_f32`],
//! into a reused per-thread buffer) and becomes a variable only when
//! something asks for one ([`Param::var`]: the forward pass, training,
//! `set_param`), once, shared by every shallow copy of the layer.
//! So a pruning run holds the output's weights and one parameter of the
//! input, not the whole input model.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Result, Tensor, Var};

/// Where a parameter's f32 values lie until they are read.
///
/// Reading is infallible by contract: a backing checks at creation that
/// its values exist (an importer checks a tensor's bytes against its
/// shape), and one whose storage fails later (a file truncated by another
/// process under a mapping) fails as any memory-mapped reader does.
pub trait Backing: Send + Sync + std::fmt::Debug {
    /// Write values `start..start + out.len()` (row-major) into `out`.
    fn read(&self, start: usize, out: &mut [f32]);
}

/// How many values a backed parameter lends at a time when it is read in
/// chunks (256 KiB): scoring, pruning and writing hold this much of a
/// parameter that is not loaded (per thread), not the parameter.
pub const CHUNK: usize = 1 << 16;

struct Inner {
    dims: Vec<usize>,
    var: OnceLock<Var>,
    backing: Option<Arc<dyn Backing>>,
}

/// One parameter of a layer (see the module's documentation). Cloning
/// shares it: the clones see one variable.
#[derive(Clone)]
pub struct Param(Arc<Inner>);

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("dims", &self.0.dims)
            .field("loaded", &self.is_loaded())
            .finish()
    }
}

impl From<Var> for Param {
    fn from(var: Var) -> Param {
        Param(Arc::new(Inner {
            dims: var.dims().to_vec(),
            var: OnceLock::from(var),
            backing: None,
        }))
    }
}

impl Param {
    /// A parameter of shape `dims` (f32, on the CPU) whose values `backing`
    /// gives when they are first needed.
    pub fn backed(dims: &[usize], backing: Arc<dyn Backing>) -> Param {
        Param(Arc::new(Inner {
            dims: dims.to_vec(),
            var: OnceLock::new(),
            backing: Some(backing),
        }))
    }

    /// Its shape, without reading its values.
    pub fn dims(&self) -> &[usize] {
        &self.0.dims
    }

    /// How many values it holds.
    pub fn elem_count(&self) -> usize {
        self.0.dims.iter().product()
    }

    /// Whether its values are in memory as a variable.
    pub fn is_loaded(&self) -> bool {
        self.0.var.get().is_some()
    }

    /// Its variable, read from its backing the first time (f32 on the CPU).
    pub fn var(&self) -> &Var {
        self.0.var.get_or_init(|| {
            Var::from_vec(self.read_all(), self.0.dims.clone(), &Device::Cpu)
                .expect("a buffer of exactly the parameter's shape")
        })
    }

    /// Every value, read from the backing into a buffer of their own
    /// (zeros without one).
    fn read_all(&self) -> Vec<f32> {
        let mut vals = vec![0f32; self.elem_count()];
        if let Some(b) = &self.0.backing {
            b.read(0, &mut vals);
        }
        vals
    }

    /// Its values as a tensor (see [`Param::var`]).
    pub fn tensor(&self) -> &Tensor {
        self.var().as_tensor()
    }

    /// Its values for inference (no gradient reaches them): the loaded
    /// variable's, shared; a backed parameter's read for this use alone
    /// and not kept, so a forward pass over a model left in its file holds
    /// one layer's weights at a time (each pass reads them again, from
    /// the page cache).
    pub fn detached(&self) -> Tensor {
        if let (None, Some(_)) = (self.0.var.get(), &self.0.backing) {
            return Tensor::from_vec(self.read_all(), self.0.dims.clone(), &Device::Cpu)
                .expect("a buffer of exactly the parameter's shape");
        }
        self.var().as_detached_tensor()
    }

    /// Call `f` with its values as f32, row-major: the variable's in place
    /// when it is loaded (converted when it is not f32), else read from
    /// the backing into a buffer of their own, without loading it. Prefer
    /// [`Param::for_chunks`] where the values can be taken in parts.
    ///
    /// # Errors
    /// A loaded variable that cannot be read as f32.
    pub fn with_f32<R>(&self, f: impl FnOnce(&[f32]) -> R) -> crate::Result<R> {
        if let (None, Some(_)) = (self.0.var.get(), &self.0.backing) {
            return Ok(f(&self.read_all()));
        }
        crate::files::with_f32(self.var().as_tensor(), f)
    }

    /// Call `f` on its values in order, in chunks: `f(start, values)` with
    /// `values` the entries from `start` on. A loaded variable is one chunk
    /// (in place); a backed parameter is read [`CHUNK`] values at a time
    /// into this thread's reused buffer, each chunk a whole number of
    /// `align` values (one unit of `align` when that is larger), so a
    /// caller that sums rows of `align` sees each row whole. Stops at the
    /// first error `f` returns.
    ///
    /// # Errors
    /// A loaded variable that cannot be read as f32 (outer), or `f`'s
    /// error (inner).
    pub fn for_chunks<E>(
        &self,
        align: usize,
        mut f: impl FnMut(usize, &[f32]) -> std::result::Result<(), E>,
    ) -> crate::Result<std::result::Result<(), E>> {
        let Some(b) = self.0.backing.as_ref().filter(|_| !self.is_loaded()) else {
            return self.with_f32(|vals| f(0, vals));
        };
        let n = self.elem_count();
        let align = align.max(1);
        let step = (CHUNK / align).max(1) * align;
        Ok(with_scratch(step.min(n), |buf| {
            let mut start = 0;
            while start < n {
                let len = step.min(n - start);
                b.read(start, &mut buf[..len]);
                f(start, &buf[..len])?;
                start += len;
            }
            Ok(())
        }))
    }

    /// Its values' little-endian bytes, in chunks as
    /// [`Param::for_chunks`] lends them.
    ///
    /// # Errors
    /// As [`Param::for_chunks`].
    pub fn for_byte_chunks<E>(
        &self,
        mut f: impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> crate::Result<std::result::Result<(), E>> {
        self.for_chunks(1, |_, vals| crate::files::le_bytes(vals, &mut f))
    }

    /// Its entries kept along several axes at once (`picks`: per axis, the
    /// entries kept in order, or `None` for all) as a fresh variable on
    /// the CPU: in place when it is loaded, else read in chunks of whole
    /// rows (of the first axis) and only those the first axis keeps, so a
    /// parameter that is not loaded never is.
    ///
    /// # Errors
    /// A loaded variable that cannot be read as f32, or picks that do not
    /// fit its shape.
    pub(crate) fn keep_axes(&self, picks: &[Option<Vec<u32>>]) -> crate::Result<Var> {
        let dims = self.dims();
        let ascending = picks
            .first()
            .and_then(Option::as_ref)
            .is_none_or(|p| p.windows(2).all(|w| w[0] < w[1]));
        if self.is_loaded() || self.0.backing.is_none() || dims.len() < 2 || !ascending {
            return Ok(self.with_f32(|src| crate::surgery::keep_axes(src, dims, picks))??);
        }
        let row: usize = dims[1..].iter().product();
        let mut rows = crate::surgery::RowGather::new(dims, picks);
        self.for_chunks(row, |start, vals| {
            rows.take(start / row.max(1), vals);
            Ok::<(), std::convert::Infallible>(())
        })?
        .unwrap_or_else(|e| match e {});
        Ok(rows.finish()?)
    }

    /// A copy that shares nothing with it: a loaded variable is copied, a
    /// backing (immutable) is shared and read again when needed.
    pub(crate) fn deep_copy(&self) -> Result<Param> {
        match (self.0.var.get(), &self.0.backing) {
            (None, Some(b)) => Ok(Param::backed(&self.0.dims, b.clone())),
            _ => Ok(Var::from_tensor(&self.var().as_tensor().copy()?)?.into()),
        }
    }

    /// Whether it is f32 on the CPU (a backed parameter always is).
    pub(crate) fn is_cpu_f32(&self) -> bool {
        match self.0.var.get() {
            Some(v) => v.dtype() == DType::F32 && v.device().is_cpu(),
            None => true,
        }
    }
}

thread_local! {
    /// Each thread's buffer for backed values lent by [`Param::with_f32`]:
    /// reused, so reading a model's parameters one after another does not
    /// ask the system for fresh (cleared) pages each time.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Call `f` with a buffer of `n` values (at most about [`CHUNK`]: callers
/// read in chunks), this thread's scratch when it is free (a nested call
/// gets a fresh one).
fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = SCRATCH
        .with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)))
        .unwrap_or_default();
    if buf.len() < n {
        buf.resize(n, 0.0);
    }
    let r = f(&mut buf[..n]);
    SCRATCH.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            // One row larger than the chunks is not kept for later.
            if s.capacity() < buf.capacity() && buf.capacity() <= 2 * CHUNK {
                *s = buf;
            }
        }
    });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        reads: AtomicUsize,
    }
    impl Backing for Counting {
        fn read(&self, start: usize, out: &mut [f32]) {
            self.reads.fetch_add(1, Ordering::SeqCst);
            for (i, x) in out.iter_mut().enumerate() {
                *x = (start + i) as f32;
            }
        }
    }

    #[test]
    fn a_backed_parameter_lends_its_values_without_loading_and_loads_once() {
        let b = Arc::new(Counting {
            reads: AtomicUsize::new(0),
        });
        let p = Param::backed(&[2, 3], b.clone());
        assert_eq!(p.dims(), &[2, 3]);
        assert!(!p.is_loaded());
        let sum = p.with_f32(|v| v.iter().sum::<f32>()).unwrap();
        assert_eq!(sum, 15.0);
        assert!(!p.is_loaded(), "lending does not load");
        let shared = p.clone();
        let t = p.tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(t, vec![0., 1., 2., 3., 4., 5.]);
        assert!(shared.is_loaded(), "clones share the variable");
        let _ = shared.tensor();
        assert_eq!(b.reads.load(Ordering::SeqCst), 2, "one lend, one load");
        // A deep copy of a loaded parameter is its own variable.
        let copy = p.deep_copy().unwrap();
        copy.var()
            .set(&Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        assert_eq!(p.with_f32(|v| v[5]).unwrap(), 5.0);
    }

    #[test]
    fn nested_lends_each_get_their_own_buffer() {
        let a = Param::backed(&[4], Arc::new(Counting { reads: 0.into() }));
        let b = Param::backed(&[3], Arc::new(Counting { reads: 0.into() }));
        let got = a
            .with_f32(|x| b.with_f32(|y| (x.to_vec(), y.to_vec())).unwrap())
            .unwrap();
        assert_eq!(got, (vec![0., 1., 2., 3.], vec![0., 1., 2.]));
    }

    /// Values `start..` of an arange, as a file would give them.
    #[derive(Debug)]
    struct Arange;
    impl Backing for Arange {
        fn read(&self, start: usize, out: &mut [f32]) {
            for (i, x) in out.iter_mut().enumerate() {
                *x = (start + i) as f32;
            }
        }
    }

    #[test]
    fn pruning_a_backed_parameter_in_chunks_equals_pruning_it_whole() {
        // Many rows to a chunk, and rows longer than a chunk.
        for dims in [
            vec![300usize, 700],
            vec![3, CHUNK + 5],
            vec![40, 6, 9, 9],
            vec![CHUNK * 3],
        ] {
            let p = Param::backed(&dims, Arc::new(Arange));
            let all: Vec<f32> = (0..p.elem_count()).map(|i| i as f32).collect();
            let mut picks: Vec<Option<Vec<u32>>> = vec![None; dims.len()];
            picks[0] = Some((0..dims[0] as u32).filter(|i| i % 3 != 1).collect());
            if dims.len() > 1 {
                picks[1] = Some((0..dims[1] as u32).rev().step_by(2).collect());
            }
            let chunked = p.keep_axes(&picks).unwrap();
            assert!(!p.is_loaded(), "{dims:?}: gathered without loading");
            let whole = crate::surgery::keep_axes(&all, &dims, &picks).unwrap();
            assert_eq!(chunked.dims(), whole.dims());
            let (a, b): (Vec<f32>, Vec<f32>) = (
                chunked.flatten_all().unwrap().to_vec1().unwrap(),
                whole.flatten_all().unwrap().to_vec1().unwrap(),
            );
            assert_eq!(a, b, "{dims:?}");
        }
    }

    #[test]
    fn chunks_hold_whole_rows_and_cover_every_value_once() {
        let p = Param::backed(&[500, 333], Arc::new(Arange));
        let mut next = 0usize;
        p.for_chunks(333, |start, vals| {
            assert_eq!(start, next);
            assert_eq!(start % 333, 0);
            assert_eq!(vals.len() % 333, 0);
            assert!(vals.len() <= CHUNK);
            assert_eq!(vals[0], start as f32);
            next += vals.len();
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(next, 500 * 333);
        // An error from the callee stops the walk and comes back.
        let mut calls = 0;
        let r = p
            .for_chunks(1, |_, _| {
                calls += 1;
                Err("stop")
            })
            .unwrap();
        assert_eq!((r, calls), (Err("stop"), 1));
    }
}
