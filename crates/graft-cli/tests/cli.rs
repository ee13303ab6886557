//! The `graft` binary, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const GRAPH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/plan/graph.json"
);
const REQUEST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/plan/request.json"
);

fn graft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .args(args)
        .output()
        .expect("the graft binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// A file under a fresh directory in the target dir, unique per test.
fn scratch(test: &str, name: &str, contents: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_string()
}

/// The changes of a plan report, by vertex name: (nout_after, outs).
fn changes(report: &Value) -> Vec<(String, u64, Value)> {
    report["plan"]["changes"]
        .as_array()
        .expect("changes is a list")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["nout_after"].as_u64().unwrap(),
                c["outs"].clone(),
            )
        })
        .collect()
}

#[test]
fn plan_on_example_files() {
    let o = graft(&["plan", GRAPH, REQUEST]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    assert_eq!(report["step"], "exact");
    let got = changes(&report);
    let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["stem", "b1", "b2", "cat", "add", "head"]);
    let nout: Vec<u64> = got.iter().map(|&(_, n, _)| n).collect();
    assert_eq!(nout, [6, 4, 2, 6, 6, 10]);
    // b2 keeps its two most useful neurons (utility 0.9 and 0.8); stem, cat
    // and add drop the neurons tied to b2's other two (4 and 6).
    assert_eq!(got[2].2, serde_json::json!([1, 3]));
    assert_eq!(got[0].2, serde_json::json!([0, 1, 2, 3, 5, 7]));
    assert_eq!(got[1].2, Value::Null);
    assert_eq!(got[5].2, Value::Null);
    assert_eq!(report["plan"]["objective"]["relaxed_deviation"], 0.0);
}

#[test]
fn plan_with_no_fallback_refuses_an_infeasible_request() {
    // Three copies of one 2-neuron branch stacked, added to a 6-wide stem:
    // the stem can only change in multiples of 3, so +2 is infeasible.
    let graph = r#"{"vertices": [
        {"name": "x", "kind": "input", "nout": 6},
        {"name": "start", "kind": "absorb", "nout": 6, "inputs": ["x"]},
        {"name": "split", "kind": "absorb", "nout": 2, "inputs": ["start"]},
        {"name": "x2", "kind": "invariant", "inputs": ["split"]},
        {"name": "x3", "kind": "invariant", "inputs": ["split"]},
        {"name": "x5", "kind": "invariant", "inputs": ["split"]},
        {"name": "joined", "kind": "stack", "inputs": ["x2", "x3", "x5"]},
        {"name": "out", "kind": "invariant", "inputs": ["start", "joined"]}
    ]}"#;
    let graph = scratch("no_fallback", "graph.json", graph);
    let request = scratch(
        "no_fallback",
        "request.json",
        r#"{"targets": [{"vertex": "out", "delta": 2}]}"#,
    );

    let o = graft(&["plan", "--no-fallback", &graph, &request]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no size assignment"), "{}", stderr(&o));

    let o = graft(&["plan", &graph, &request]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["step"], "relaxed");
    let out = changes(&report).into_iter().find(|(n, _, _)| n == "out");
    assert_eq!(out.map(|(_, n, _)| n), Some(9));
}

#[test]
fn unknown_vertex_in_request_exits_2_and_names_it() {
    let request = scratch(
        "unknown_vertex",
        "request.json",
        r#"{"targets": [{"vertex": "b3", "delta": -2}]}"#,
    );
    let o = graft(&["plan", GRAPH, &request]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.contains("unknown vertex `b3`"), "{err}");
    assert!(err.contains("request.json"), "{err}");
}

#[test]
fn malformed_graph_file_exits_2_and_names_it() {
    let graph = scratch("malformed", "broken-graph.json", r#"{"vertices": ["#);
    let o = graft(&["plan", &graph, REQUEST]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("parsing graph file"), "{err}");
    assert!(err.contains("broken-graph.json"), "{err}");
}

#[test]
fn missing_file_exits_2_and_names_it() {
    let o = graft(&["plan", "no-such-graph.json", REQUEST]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("reading graph file `no-such-graph.json`"),
        "{err}"
    );
}

#[test]
fn every_subcommand_help_has_an_example() {
    for sub in [
        "demo",
        "plan",
        "inspect",
        "resize",
        "prune",
        "sparsify",
        "insert",
        "remove",
        "connect",
        "disconnect",
        "structure",
        "draw",
        "train",
        "eval",
    ] {
        let o = graft(&[sub, "--help"]);
        assert_eq!(o.status.code(), Some(0));
        let help = stdout(&o);
        assert!(help.contains("Example:"), "{sub}: {help}");
        assert!(help.contains(&format!("graft {sub}")), "{sub}: {help}");
    }
}

/// `--time-limit` (issue 16): a zero limit is a budget error (exit 2); a
/// short one on a hard request gives the best plan with its gap and a
/// warning; a negative one is a usage error.
#[test]
fn time_limit_bounds_the_planner() {
    // A concatenation of 100 branches and a second one of the first 50;
    // utilities on every vertex: the second concatenation's size weighs in
    // the penalty and may change, so the request is not separable and goes
    // to the branch and bound, which 0.5 s does not let finish (`hard_plans`
    // class concat-overlap).
    let mut g = graft::zoo::concat_fan(100, 2);
    let cat = g.id("cat").unwrap();
    let half: Vec<_> = g.vertex(cat).unwrap().inputs()[..50].to_vec();
    g.add_stack("half", &half).unwrap();
    let graph = serde_json::to_string(&graft::json::GraphSpec::from_graph(&g)).unwrap();
    let graph = scratch("time_limit", "graph.json", &graph);
    // Utilities by vertex name, spread over (0, 1) without ties.
    let mut utility = serde_json::Map::new();
    let mut k = 0u32;
    for v in g.ids() {
        let name = g.name(v);
        if name.starts_with("branch") || name == "cat" || name == "half" {
            let vals: Vec<f64> = (0..g.nout(v).unwrap())
                .map(|_| {
                    k += 1;
                    (f64::from(k) * 0.618_033_988_75).fract()
                })
                .collect();
            utility.insert(name, serde_json::json!(vals));
        }
    }
    let request = serde_json::json!({
        "targets": [{"vertex": "cat", "delta": -50}],
        "utility": utility,
        "fallback": false,
    });
    let request = scratch("time_limit", "request.json", &request.to_string());

    let o = graft(&["plan", "--time-limit", "0.5", &graph, &request]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["plan"]["optimal"], false);
    assert!(report["plan"]["gap"].as_f64().unwrap() > 0.0);
    assert!(stderr(&o).contains("time limit ran out"), "{}", stderr(&o));
    let after = changes(&report).into_iter().find(|(n, _, _)| n == "cat");
    let before = g.nout(cat).unwrap() as u64;
    assert_eq!(after.map(|(_, n, _)| n), Some(before - 50));

    let o = graft(&["plan", "--time-limit", "0", &graph, &request]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("budget exhausted after 0 nodes on cat"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());

    let o = graft(&["plan", "--time-limit=-1", &graph, &request]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--time-limit"), "{}", stderr(&o));
}
