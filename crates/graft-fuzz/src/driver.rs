//! The fuzzing loop: seeds first, then mutations of seeds and of accepted
//! inputs, each run on a worker thread with panics caught and a time
//! limit. A panic or a hang is a finding; an abort (an allocation that
//! fails, a stack overflow) ends the process, and the input that caused
//! it is in the `current` file when one is asked for.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{mutate, seeds, Target};

/// How long and how to fuzz one target.
#[derive(Debug, Clone)]
pub struct Options {
    /// The random seed (the same seed and limits give the same inputs).
    pub seed: u64,
    /// Stop after this many executions.
    pub execs: Option<u64>,
    /// Stop after this long.
    pub time: Option<Duration>,
    /// An input running longer than this is a hang.
    pub per_input: Duration,
    /// Write each input to `DIR/current` before running it (so an abort
    /// leaves it there), and each finding to `DIR/TARGET-N.bin`.
    pub save: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            execs: Some(1000),
            time: None,
            per_input: Duration::from_secs(10),
            save: None,
        }
    }
}

/// What a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// A panic, with its message.
    Panic(String),
    /// The input ran past the per-input limit.
    Hang,
}

/// An input graft did not handle as promised.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What happened.
    pub kind: FindingKind,
    /// The input.
    pub input: Vec<u8>,
    /// The seed it was mutated from.
    pub from: String,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: Target,
    /// Inputs run.
    pub execs: u64,
    /// Of those, the ones graft accepted (the others it refused with an
    /// error, as it should a bad input).
    pub accepted: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Panics and hangs.
    pub findings: Vec<Finding>,
}

type Outcome = Result<Result<(), String>, String>;

/// A thread that runs the target on the inputs it is sent.
struct Worker {
    send: mpsc::Sender<Vec<u8>>,
    recv: mpsc::Receiver<Outcome>,
}

impl Worker {
    fn new(target: Target) -> Option<Worker> {
        let (send, inputs) = mpsc::channel::<Vec<u8>>();
        let (results, recv) = mpsc::channel::<Outcome>();
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name()))
            .stack_size(8 << 20)
            .spawn(move || {
                for input in inputs {
                    let r = catch_unwind(AssertUnwindSafe(|| target.run(&input)))
                        .map_err(|p| panic_message(p.as_ref()));
                    if results.send(r).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Worker { send, recv })
    }
}

thread_local! {
    /// Where the last panic on this thread happened (see [`quiet_panics`]).
    static WHERE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Replace the panic hook by one that prints nothing and records where
/// each panic happened, for findings to name the line. Call once, in a
/// process that only fuzzes.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let mut at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        // A panic inside the standard library (an overflowing sum) is
        // named by graft's frame that called it.
        if at.as_deref().is_some_and(|a| !a.starts_with("crates/")) {
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            if let Some(line) = bt
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("at ./crates/") && !l.contains("graft-fuzz"))
            {
                at = Some(line.trim_start_matches("at ./").to_string());
            }
        }
        WHERE.with(|w| *w.borrow_mut() = at);
    }));
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into());
    match WHERE.with(|w| w.borrow_mut().take()) {
        Some(at) => format!("{msg} at {at}"),
        None => msg,
    }
}

/// Fuzz `target`: its seeds as they are, then mutations, until the
/// options' limits (at least the seeds are run).
pub fn fuzz(target: Target, opts: &Options) -> Report {
    let start = Instant::now();
    let seeds = seeds::seeds(target);
    let corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let mut rng = StdRng::seed_from_u64(opts.seed ^ (target as u64).wrapping_mul(0x9e37_79b9));
    let mut report = Report {
        target,
        execs: 0,
        accepted: 0,
        elapsed: Duration::ZERO,
        findings: Vec::new(),
    };
    let Some(mut worker) = Worker::new(target) else {
        return report;
    };
    // Accepted mutants join the pool (a few): they are valid inputs that
    // differ from the seeds, good ground for further mutation.
    let mut pool: Vec<(String, Vec<u8>)> = Vec::new();
    let done = |r: &Report| {
        opts.execs.is_some_and(|n| r.execs >= n) || opts.time.is_some_and(|t| start.elapsed() >= t)
    };
    let mut k = 0usize;
    loop {
        let (from, input) = if k < seeds.len() {
            (seeds[k].0.clone(), seeds[k].1.clone())
        } else {
            if done(&report) || seeds.is_empty() {
                break;
            }
            let (name, base) = if !pool.is_empty() && rng.random_bool(0.3) {
                pool[rng.random_range(0..pool.len())].clone()
            } else {
                seeds[rng.random_range(0..seeds.len())].clone()
            };
            (name, mutate::mutate(target, &base, &corpus, &mut rng))
        };
        k += 1;
        if let Some(dir) = &opts.save {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join("current"), &input);
        }
        report.execs += 1;
        if worker.send.send(input.clone()).is_err() {
            break;
        }
        match worker.recv.recv_timeout(opts.per_input) {
            Ok(Ok(Ok(()))) => {
                report.accepted += 1;
                if k > seeds.len() && pool.len() < 64 && input.len() < 1 << 20 {
                    pool.push((from, input));
                }
            }
            Ok(Ok(Err(_refused))) => {}
            Ok(Err(msg)) => {
                save(opts, target, report.findings.len(), &input);
                report.findings.push(Finding {
                    kind: FindingKind::Panic(msg),
                    input,
                    from,
                });
                // The worker caught the panic and goes on.
            }
            Err(_) => {
                save(opts, target, report.findings.len(), &input);
                report.findings.push(Finding {
                    kind: FindingKind::Hang,
                    input,
                    from,
                });
                // The worker is stuck on it: leave it, start another.
                match Worker::new(target) {
                    Some(w) => worker = w,
                    None => break,
                }
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

fn save(opts: &Options, target: Target, n: usize, input: &[u8]) {
    if let Some(dir) = &opts.save {
        let _ = std::fs::write(dir.join(format!("{}-{n}.bin", target.name())), input);
    }
}

/// Run one input of `target` as the fuzzer does (a panic caught): for
/// replaying a saved finding.
pub fn replay(target: Target, input: &[u8]) -> Outcome {
    catch_unwind(AssertUnwindSafe(|| target.run(input))).map_err(|p| panic_message(p.as_ref()))
}
