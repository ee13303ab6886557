//! Reading and writing models, and writing output, for every subcommand.

use std::io::{self, Write};
use std::path::Path;

use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use graft::nn::Model;
use graft::onnx::Interface;

/// The opset every written model uses when `--opset` is given (set once,
/// by `main`, before any command runs).
pub static WRITE_OPSET: OnceLock<i64> = OnceLock::new();

/// How long the planner may search per request (`--time-limit`, set once by
/// `main`).
pub static TIME_LIMIT: OnceLock<std::time::Duration> = OnceLock::new();

/// The `--time-limit` given, or its default of 5 s.
pub fn time_limit() -> std::time::Duration {
    TIME_LIMIT
        .get()
        .copied()
        .unwrap_or(std::time::Duration::from_secs(5))
}

/// Say on stderr when a plan is only the best found within the time limit.
pub fn warn_unproven(p: &graft::Plan) {
    if !p.optimal {
        eprintln!(
            "warning: the planner's time limit ran out; this plan is the best found, and the \
             optimum's objective is at most {:.4} higher (--time-limit gives it longer)",
            p.gap
        );
    }
}

/// A model read from an ONNX file, with the interface to write it back.
pub struct Loaded {
    pub model: Model,
    /// The file's interface: input and output names, types and symbolic
    /// dimensions, opset, producer, doc strings and metadata.
    pub interface: Interface,
    /// Each input's shape, batch first (graft's axis order).
    pub input_shapes: Vec<Vec<usize>>,
    /// Per-sample shapes given on the command line (`--shape`), for
    /// counting MACs at another input size; the file keeps its own.
    pub cost_shapes: Option<Vec<Vec<usize>>>,
}

impl Loaded {
    /// Per-sample input shapes (the batch axis dropped) for costing: those
    /// given with `--shape`, else the file's.
    pub fn sample_shapes(&self) -> Vec<Vec<usize>> {
        self.cost_shapes
            .clone()
            .unwrap_or_else(|| self.input_shapes.iter().map(|s| s[1..].to_vec()).collect())
    }

    /// Use per-sample shapes like `3x224x224`, one per input, for costing;
    /// each must keep its input's number of channels.
    pub fn with_shapes(mut self, given: &[String], path: &Path) -> Result<Self> {
        if given.is_empty() {
            return Ok(self);
        }
        let name = path.display();
        if given.len() != self.input_shapes.len() {
            return Err(crate::Usage(format!(
                "--shape given {} times; model `{name}` has {} inputs",
                given.len(),
                self.input_shapes.len()
            ))
            .into());
        }
        let mut shapes = Vec::new();
        for (text, file) in given.iter().zip(&self.input_shapes) {
            let dims: Option<Vec<usize>> = text
                .split(['x', ','])
                .map(|d| d.trim().parse().ok().filter(|&n| n > 0))
                .collect();
            let dims = dims.ok_or_else(|| {
                crate::Usage(format!("--shape `{text}`: give sizes like 3x224x224"))
            })?;
            if dims.len() != file.len() - 1 || dims[0] != file[1] {
                return Err(crate::Usage(format!(
                    "--shape `{text}`: model `{name}` takes samples shaped like {:?}",
                    &file[1..]
                ))
                .into());
            }
            shapes.push(dims);
        }
        self.cost_shapes = Some(shapes);
        Ok(self)
    }
}

/// Read an ONNX model; errors name the file.
pub fn load(path: &Path) -> Result<Loaded> {
    load_reading(path, graft::onnx::Reading::Heads)
}

/// [`load`], reading attention as `reading` says.
pub fn load_reading(path: &Path, reading: graft::onnx::Reading) -> Result<Loaded> {
    let imp = graft::onnx::import_reading(path, reading)
        .with_context(|| format!("reading model `{}`", path.display()))?;
    Ok(Loaded {
        model: imp.model,
        interface: imp.interface,
        input_shapes: imp.input_shapes,
        cost_shapes: None,
    })
}

/// Write `model` as ONNX to `out` with `interface` (at the `--opset`
/// given, else the interface's own): the model is laid out first, so a
/// failed export writes no file; then it is streamed, its weights straight
/// from the model's memory, and a failed write leaves no partial file.
pub fn save(model: &Model, interface: &Interface, out: &Path) -> Result<()> {
    // Above protobuf's 2 GiB (or with --external-data) the weights go to a
    // data file beside the model, `NAME.data`, written the same safe way
    // and before the model that refers to it.
    let location = graft::onnx::data_location(out);
    let external = EXTERNAL_DATA.get().copied().unwrap_or(false);
    let prepared =
        graft::onnx::prepare_sized(model, &with_write_opset(interface)?, &location, external)
            .with_context(|| format!("exporting to `{}`", out.display()))?;
    if prepared.has_data() {
        write_with(&out.with_file_name(&location), |w| {
            prepared.write_data(w).map_err(io::Error::other)
        })?;
    }
    write_with(out, |w| prepared.write_model(w).map_err(io::Error::other))
}

/// `--external-data`: write every model's weights to a data file beside
/// it (set once by `main`).
pub static EXTERNAL_DATA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// `interface` at the `--opset` given, if one was.
pub fn with_write_opset(interface: &Interface) -> Result<Interface> {
    match WRITE_OPSET.get() {
        Some(&n) => Ok(interface.clone().with_opset(n)?),
        None => Ok(interface.clone()),
    }
}

/// Write bytes through a temporary file beside `out`, renamed into place.
pub fn write_file(out: &Path, bytes: &[u8]) -> Result<()> {
    write_with(out, |w| w.write_all(bytes))
}

/// Write what `fill` writes through a temporary file beside `out`, renamed
/// into place once all of it is written.
pub fn write_with(
    out: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> Result<()> {
    // Only a regular file (or nothing) is replaced: renaming over a device,
    // a pipe, a directory or a symbolic link would put a file where the
    // user had something else.
    if let Some(kind) = graft::onnx::not_a_regular_file(out) {
        return Err(crate::Usage(format!(
            "`{}` is {kind}: graft writes models only to regular files (choose another path)",
            out.display()
        ))
        .into());
    }
    graft::onnx::write_replacing(out, fill).with_context(|| format!("writing `{}`", out.display()))
}

/// Write to stdout; a closed pipe ends the output quietly. Other write
/// failures are internal (they carry no `io::Error`, so they exit with 1).
pub fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow!("writing to stdout: {e}")),
    }
}

/// A table with a header, columns aligned (numbers to the right).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            rows.iter().all(|r| {
                r[i].chars()
                    .all(|c| c.is_ascii_digit() || ",.-+→ x%".contains(c))
            })
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            if i > 0 {
                s.push_str("  ");
            }
            if numeric[i] {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(width.iter().map(|&w| "-".repeat(w)).collect()));
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

/// 1234567 as "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress bar on stderr for a step of `len` units, or a hidden one when
/// `show` is false (quiet or JSON output). indicatif draws nothing when
/// stderr is not a terminal, so logs and pipes stay clean.
pub fn bar(len: u64, what: &str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    // Cleared when dropped too, so a step that fails leaves no bar behind
    // its error message.
    let b = indicatif::ProgressBar::new(len).with_finish(indicatif::ProgressFinish::AndClear);
    let style =
        indicatif::ProgressStyle::with_template("{msg:<24} [{bar:30}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> ");
    b.set_style(style);
    b.set_message(what.to_string());
    b
}

/// A spinner for a step whose length is not known in advance.
pub fn spinner(what: &str, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let s = indicatif::ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndClear);
    s.set_message(what.to_string());
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    s
}

/// The one output of a single-output model and its size (the classes of a
/// classifier); errors name the file.
pub fn classes(model: &Model, path: &str) -> Result<usize> {
    let ex = graft::nn::Executor::new(model)
        .with_context(|| format!("preparing model `{path}` to run"))?;
    match ex.outputs() {
        [v] => Ok(model.graph().nout(*v)?),
        outs => Err(crate::Usage(format!(
            "model `{path}` has {} outputs; a classifier needs exactly one",
            outs.len()
        ))
        .into()),
    }
}
