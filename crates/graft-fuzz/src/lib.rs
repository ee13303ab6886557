//! Fuzzing graft's input paths on the stable toolchain (issue 18).
//!
//! graft promises a typed error, never a panic, an abort or a hang, for
//! any input. This crate holds one fuzz target per input path
//! ([`Target`]: ONNX import, import then prune and run, plan JSON, NumPy
//! arrays and archives, CSV tables, GraphML), a seed corpus built from the
//! repository's fixtures ([`seeds`]), mutations that know the formats
//! ([`mutate`]: bytes, numbers in text, and ONNX models decoded and
//! changed field by field), and a driver ([`driver`]) that runs mutated
//! inputs with panics caught and a time limit per input.
//!
//! cargo-fuzz needs a nightly toolchain and libFuzzer; this harness needs
//! neither, so CI runs it (`tests/bounded.rs`, a fixed seed and a fixed
//! number of executions per target) and a developer runs it longer with
//! the `graft-fuzz` binary. Written here rather than taken from a crate
//! because the stable-toolchain fuzzers (bolero's engine on stable,
//! proptest) do not mutate a corpus of real files, and the mutations that
//! find bugs in graft are the format-aware ones.

pub mod driver;
pub mod mutate;
pub mod seeds;
pub mod targets;

pub use driver::{fuzz, Finding, FindingKind, Options, Report};
pub use targets::Target;
