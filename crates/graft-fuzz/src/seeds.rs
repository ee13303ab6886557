//! The seed corpus of each target, from what the repository ships: the
//! ONNX fixtures under 40 KB (every op family graft imports, both torch
//! exporters), the plan JSON examples, and small valid NumPy, CSV and
//! GraphML files made here.

use std::io::Write;
use std::path::{Path, PathBuf};

use graft_nn::files::npy_bytes as npy;

use crate::Target;

/// The repository's root (this crate lives in `crates/graft-fuzz`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// ONNX fixtures below this size seed the ONNX targets: small models run
/// fast, so the fuzzer tries more of them.
const SMALL_MODEL: u64 = 40_000;

/// The seeds of `target`, each with a name (its file, or what it is).
pub fn seeds(target: Target) -> Vec<(String, Vec<u8>)> {
    match target {
        Target::Onnx | Target::OnnxPrune => onnx_models(),
        Target::PlanJson => plans(),
        Target::Npy => vec![
            ("f32 2x3".into(), npy("<f4", &[2, 3], &[0u8; 24])),
            ("f64 4".into(), npy("<f8", &[4], &[0u8; 32])),
            ("i64 2x2".into(), npy("<i8", &[2, 2], &[1u8; 32])),
            ("f32 scalar".into(), npy("<f4", &[], &[0u8; 4])),
        ],
        Target::Npz => vec![("x and y".into(), npz())],
        Target::Csv => vec![
            ("header".into(), b"a,b,label\n1,2,0\n3.5,4,1\n".to_vec()),
            ("bom".into(), b"\xef\xbb\xbf0.1,0.2,2\n1e3,-4,0\n".to_vec()),
        ],
        Target::GraphMl => graphml(),
    }
}

fn onnx_models() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("crates/graft-onnx/tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
                .filter(|p| p.metadata().is_ok_and(|m| m.len() < SMALL_MODEL))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, std::fs::read(&p).ok()?))
        })
        .collect()
}

fn plans() -> Vec<(String, Vec<u8>)> {
    let join = |g: &str, r: &str| {
        let mut b = g.as_bytes().to_vec();
        b.push(0);
        b.extend(r.as_bytes());
        b
    };
    let mut out = Vec::new();
    let ex = repo_root().join("examples/plan");
    if let (Ok(g), Ok(r)) = (
        std::fs::read_to_string(ex.join("graph.json")),
        std::fs::read_to_string(ex.join("request.json")),
    ) {
        out.push(("examples/plan".into(), join(&g, &r)));
    }
    // Attention heads with a grouped-query merge, and a concatenation of
    // branches with steps (the planner's hard cases).
    let heads = r#"{"vertices": [
      {"name": "x", "kind": "input", "nout": 16},
      {"name": "q", "kind": "absorb", "nout": 16, "inputs": ["x"]},
      {"name": "qh", "kind": "absorb", "nout": 4, "inputs": ["q"], "constraints": [{"heads": {"width": 4}}]},
      {"name": "k", "kind": "absorb", "nout": 8, "inputs": ["x"]},
      {"name": "kh", "kind": "absorb", "nout": 2, "inputs": ["k"], "constraints": [{"heads": {"width": 4}}]},
      {"name": "rep", "kind": "absorb", "nout": 4, "inputs": ["kh"], "constraints": [{"depthwise": {"multiplier": 2}}]},
      {"name": "s", "kind": "invariant", "inputs": ["qh", "rep"]},
      {"name": "o", "kind": "absorb", "nout": 16, "inputs": ["s"]}
    ]}"#;
    out.push((
        "heads".into(),
        join(
            heads,
            r#"{"targets": [{"vertex": "kh", "delta": -1}], "fallback": true}"#,
        ),
    ));
    let cat = r#"{"vertices": [
      {"name": "x", "kind": "input", "nout": 3},
      {"name": "a", "kind": "absorb", "nout": 6, "inputs": ["x"], "constraints": [{"nout_step": {"step": 3}}]},
      {"name": "b", "kind": "absorb", "nout": 4, "inputs": ["x"], "constraints": [{"nout_step": {"step": 2}}]},
      {"name": "c", "kind": "absorb", "nout": 5, "inputs": ["x"]},
      {"name": "cat", "kind": "stack", "inputs": ["a", "b", "c"]},
      {"name": "y", "kind": "absorb", "nout": 7, "inputs": ["cat"], "constraints": ["fixed"]}
    ]}"#;
    out.push((
        "steps".into(),
        join(cat, r#"{"targets": [{"vertex": "cat", "delta": 7}]}"#),
    ));
    out
}

fn npz() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let x = npy("<f4", &[2, 2], &[0u8; 16]);
        let y = npy("<i8", &[2], &[0u8; 16]);
        for (name, body) in [("x.npy", x), ("y.npy", y)] {
            if z.start_file(name, opts).is_ok() {
                let _ = z.write_all(&body);
            }
        }
        let _ = z.finish();
    }
    buf.into_inner()
}

fn graphml() -> Vec<(String, Vec<u8>)> {
    use graft_sparse::generators::{balanced_tree, grid_2d, watts_strogatz};
    [
        ("tree", balanced_tree(2, 3)),
        ("grid", grid_2d(3, 3)),
        ("small world", watts_strogatz(12, 4, 0.3, 1)),
    ]
    .into_iter()
    .map(|(n, g)| {
        (
            n.to_string(),
            graft_sparse::graphml::to_graphml(&g).into_bytes(),
        )
    })
    .collect()
}
