//! `graft-fuzz`: fuzz graft's input paths for a while and print what ran
//! and what was found.
//!
//! ```text
//! cargo run --release -p graft-fuzz -- all --seconds 60
//! cargo run --release -p graft-fuzz -- onnx-prune --seconds 600 --seed 7 --save fuzz-out
//! cargo run --release -p graft-fuzz -- replay onnx fuzz-out/onnx-0.bin
//! ```
//!
//! Targets: onnx, onnx-prune, plan-json, npy, npz, csv, graphml, or all.
//! Exit code 0 when nothing was found, 1 when something was, 2 on usage
//! errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use graft_fuzz::{driver, fuzz, FindingKind, Options, Target};

fn usage(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    eprintln!(
        "usage: graft-fuzz TARGET|all [--seconds N] [--execs N] [--seed N] [--per-input SECONDS] [--save DIR]\n       graft-fuzz replay TARGET FILE"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(first) = args.first() else {
        return usage("no target");
    };
    if first == "replay" {
        driver::quiet_panics();
        let (Some(t), Some(f)) = (args.get(1).and_then(|t| Target::parse(t)), args.get(2)) else {
            return usage("replay needs a target and a file");
        };
        let Ok(bytes) = std::fs::read(f) else {
            return usage(&format!("cannot read `{f}`"));
        };
        return match driver::replay(t, &bytes) {
            Ok(Ok(())) => {
                println!("accepted");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                println!("refused: {e}");
                ExitCode::SUCCESS
            }
            Err(p) => {
                println!("PANIC: {p}");
                ExitCode::from(1)
            }
        };
    }
    let targets: Vec<Target> = if first == "all" {
        Target::ALL.to_vec()
    } else {
        match Target::parse(first) {
            Some(t) => vec![t],
            None => return usage(&format!("unknown target `{first}`")),
        }
    };
    let mut opts = Options {
        execs: None,
        time: Some(Duration::from_secs(60)),
        ..Options::default()
    };
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let Some(v) = it.next() else {
            return usage(&format!("{flag} needs a value"));
        };
        let num = |v: &str| v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0);
        match (flag.as_str(), num(v)) {
            ("--seconds", Some(s)) => opts.time = Some(Duration::from_secs_f64(s)),
            ("--execs", Some(n)) => {
                opts.execs = Some(n as u64);
                opts.time = None;
            }
            ("--seed", Some(n)) => opts.seed = n as u64,
            ("--per-input", Some(s)) => opts.per_input = Duration::from_secs_f64(s),
            ("--save", _) => opts.save = Some(PathBuf::from(v)),
            _ => return usage(&format!("bad option {flag} {v}")),
        }
    }
    driver::quiet_panics();
    println!("| target | executions | accepted | seconds | execs/s | panics | hangs |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut found = 0;
    for t in targets {
        let r = fuzz(t, &opts);
        let panics = r
            .findings
            .iter()
            .filter(|f| matches!(f.kind, FindingKind::Panic(_)))
            .count();
        let hangs = r.findings.len() - panics;
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {} | {:.1} | {:.0} | {} | {} |",
            t.name(),
            r.execs,
            r.accepted,
            secs,
            r.execs as f64 / secs.max(1e-9),
            panics,
            hangs
        );
        for f in &r.findings {
            eprintln!("{}: {:?} (from {})", t.name(), f.kind, f.from);
        }
        found += r.findings.len();
    }
    if found > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
