//! Every input the fuzzer found a panic, an abort or an overflow with
//! (`regressions/TARGET/*.bin`, issue 18) is now a typed error or an
//! accepted input, never a panic. Add a file there for each new finding.

use graft_fuzz::{driver, Target};

#[test]
fn every_past_finding_is_handled() {
    driver::quiet_panics();
    let root = graft_fuzz::seeds::repo_root().join("crates/graft-fuzz/regressions");
    let mut seen = 0;
    for t in Target::ALL {
        let Ok(dir) = std::fs::read_dir(root.join(t.name())) else {
            continue;
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            if let Err(p) = driver::replay(t, &bytes) {
                panic!("{} panics: {p}", f.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} regression inputs found");
}
