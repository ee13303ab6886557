//! The bounded fuzz run CI executes (issue 18): every target, a fixed
//! seed, a fixed number of executions, so a run is reproducible; no
//! panic and no hang may come out. `GRAFT_FUZZ_EXECS` sets the
//! executions per target (default 10,000); longer runs: the `graft-fuzz`
//! binary (docs/fuzzing.md).

use std::time::Duration;

use graft_fuzz::{driver, fuzz, Options, Target};

#[test]
fn a_bounded_fuzz_run_finds_nothing() {
    driver::quiet_panics();
    let execs: u64 = std::env::var("GRAFT_FUZZ_EXECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut failures = Vec::new();
    for t in Target::ALL {
        let r = fuzz(
            t,
            &Options {
                seed: 1,
                execs: Some(execs),
                time: None,
                per_input: Duration::from_secs(20),
                save: None,
            },
        );
        eprintln!(
            "{}: {} executions, {} accepted, {:.1} s, {} findings",
            t.name(),
            r.execs,
            r.accepted,
            r.elapsed.as_secs_f64(),
            r.findings.len()
        );
        assert!(r.execs >= execs, "{}: {} executions", t.name(), r.execs);
        // The seeds themselves are valid inputs.
        assert!(r.accepted > 0, "{}: nothing accepted", t.name());
        for f in r.findings {
            failures.push(format!(
                "{}: {:?} (mutated from {})",
                t.name(),
                f.kind,
                f.from
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
