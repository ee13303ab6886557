//! The command-line tour in README.md, run as written (the build line and
//! the choice of binary and output directory are the test's own).

use std::path::Path;
use std::process::Command;

#[test]
fn readme_cli_tour_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("```sh\ncargo build -p graft-cli --release\n")
        .expect("README has the CLI tour");
    let body = &readme[start + "```sh\n".len()..];
    let block = &body[..body.find("```").expect("the tour block ends")];
    let script: Vec<&str> = block
        .lines()
        .filter(|l| !(l.starts_with("cargo ") || l.starts_with("G=") || l.starts_with("O=")))
        .collect();
    assert!(script.len() >= 15, "{script:?}");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme_tour");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let o = Command::new("sh")
        .arg("-ec")
        .arg(script.join("\n"))
        .current_dir(&root)
        .env("G", env!("CARGO_BIN_EXE_graft"))
        .env("O", &out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the tour failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for f in [
        "wide.onnx",
        "plan.svg",
        "half.onnx",
        "thin.onnx",
        "back.onnx",
        "joined.onnx",
        "sparse.onnx",
        "neurons.graphml",
        "out.npz",
        "llama_wide.onnx",
        "llama_heads.onnx",
        "llama_pruned.onnx",
        "llama_short.onnx",
        "demo/digits_rescnn.onnx",
        "tuned.onnx",
        "small.onnx",
    ] {
        assert!(out.join(f).exists(), "{f} was not written");
    }
}
