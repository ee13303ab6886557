//! Running the `graft` binary in the integration tests.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

pub fn graft() -> Command {
    Command::cargo_bin("graft").unwrap()
}

/// Run `graft ARGS`, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = graft().args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Exit 2, the message contains `names`, and `output` was not written.
pub fn refused(args: &[&str], output: &Path, names: &str) {
    let o = graft().args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(names), "{args:?}: {err}");
    assert!(!output.exists(), "{args:?} wrote {}", output.display());
}
