//! `graft`: the command-line tool of graft.
//!
//! Exit codes: 0 success, 2 bad input (unreadable or malformed file, unknown
//! vertex, impossible request: any error of graft-core), 1 internal failure.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use graft::json::{GraphSpec, PlanReport, RequestSpec};
use graft::{
    plan, plan_or_relax, CheckError, Graph, GraphError, PlanError, Planned, Request, Step,
    TargetMode,
};

/// Change a trained network's structure without breaking it.
#[derive(Debug, Parser)]
#[command(
    name = "graft",
    version,
    after_help = "Examples:\n  graft demo\n  graft plan examples/plan/graph.json examples/plan/request.json\n\n\
                  Exit codes: 0 success, 2 bad input, 1 internal failure."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a small residual + concat graph, shrink one branch, show the plan.
    #[command(after_help = "Example:\n  graft demo")]
    Demo,
    /// Plan a size change on a graph given as JSON and print the plan as JSON.
    ///
    /// The formats are described in docs/plan-json.md. Without
    /// `--no-fallback`, an infeasible exact request is retried with every
    /// target relaxed (the report's `step` says which one succeeded).
    #[command(after_help = "Example:\n  \
                  graft plan examples/plan/graph.json examples/plan/request.json\n  \
                  graft plan --no-fallback examples/plan/graph.json examples/plan/request.json")]
    Plan {
        /// Graph file (a GraphSpec).
        graph: PathBuf,
        /// Request file (a RequestSpec).
        request: PathBuf,
        /// Plan the request exactly as given; never relax its targets.
        #[arg(long)]
        no_fallback: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Plan {
            graph,
            request,
            no_fallback,
        } => plan_files(&graph, &request, no_fallback),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 when the error comes from the input (files, names, requests), else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    let bad_input = e.chain().any(|c| {
        c.is::<PlanError>()
            || c.is::<GraphError>()
            || c.is::<CheckError>()
            || c.is::<serde_json::Error>()
            || c.is::<io::Error>()
    });
    if bad_input {
        2
    } else {
        1
    }
}

/// Write to stdout; a closed pipe ends the output quietly. Other write
/// failures are internal (they carry no `io::Error`, so they exit with 1).
fn emit(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow!("writing to stdout: {e}")),
    }
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Exact => "exact",
        Step::Relaxed => "relaxed",
    }
}

/// The demo graph: x(3) -> stem(8) -> {b1(4), b2(4)} -> cat = b1 ++ b2 (8);
/// add = stem + cat (8) -> head(10).
fn demo_graph() -> Result<(Graph, graft::VertexId), GraphError> {
    let mut g = Graph::new();
    let x = g.add_input("x", 3)?;
    let stem = g.add_absorb("stem", &[x], 8)?;
    let b1 = g.add_absorb("b1", &[stem], 4)?;
    let b2 = g.add_absorb("b2", &[stem], 4)?;
    let cat = g.add_stack("cat", &[b1, b2])?;
    let add = g.add_invariant("add", &[stem, cat])?;
    g.add_absorb("head", &[add], 10)?;
    Ok((g, b2))
}

fn demo() -> Result<()> {
    // The demo's input is fixed, so any error here is internal (exit 1):
    // errors are turned into text, which `exit_code` does not count as input.
    let internal = |what: &str, e: &dyn std::fmt::Display| anyhow!("{what}: {e}");
    let (mut g, b2) = demo_graph().map_err(|e| internal("building the demo graph", &e))?;
    let mut text = String::new();
    text.push_str("graft demo: a residual block around a concatenation\n\n");
    text.push_str("## Graph before\n\n");
    text.push_str(&g.summary());
    text.push_str(
        "\n## Request\n\n\
         nout(b2) -2, exact, default utility (1 per neuron of an absorbing vertex).\n\
         `add` ties `stem` to `cat` = b1 ++ b2 neuron by neuron, so stem, cat and add\n\
         shrink with b2 unless b1 grows to fill the gap. The planner weighs the utility\n\
         kept against the relative size changes and picks the best plan: here the\n\
         residual shrinks with b2.\n",
    );
    let Planned { plan, step } = g
        .change_sizes(&Request::new().nout(b2, -2))
        .map_err(|e| internal("changing the size of b2", &e))?;
    g.check()
        .map_err(|e| internal("checking the graph after the change", &e))?;
    text.push_str(&format!(
        "\n## Plan\n\nstep of the chain that succeeded: {}\n\
         lists give the old neurons kept (0-based) and where new ones go (new×k)\n\n",
        step_name(step)
    ));
    text.push_str(&plan.to_string());
    text.push_str("\n## Graph after\n\n");
    text.push_str(&g.summary());
    text.push_str("\ncheck: ok\n");
    emit(&text)
}

fn read(path: &Path, what: &str) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {what} file `{}`", path.display()))
}

fn plan_files(graph_path: &Path, request_path: &Path, no_fallback: bool) -> Result<()> {
    let gspec: GraphSpec = serde_json::from_str(&read(graph_path, "graph")?)
        .with_context(|| format!("parsing graph file `{}`", graph_path.display()))?;
    let rspec: RequestSpec = serde_json::from_str(&read(request_path, "request")?)
        .with_context(|| format!("parsing request file `{}`", request_path.display()))?;
    let graph = gspec
        .to_graph()
        .with_context(|| format!("building the graph of `{}`", graph_path.display()))?;
    let req = rspec.to_request(&graph).with_context(|| {
        format!(
            "resolving request file `{}` against the graph",
            request_path.display()
        )
    })?;
    let planning = || format!("planning the request of `{}`", request_path.display());
    let report = if no_fallback || !rspec.fallback {
        let plan = plan(&graph, &req).with_context(planning)?;
        let all_relaxed =
            !req.targets.is_empty() && req.targets.iter().all(|t| t.mode == TargetMode::Relaxed);
        let step = if all_relaxed {
            Step::Relaxed
        } else {
            Step::Exact
        };
        PlanReport { step, plan }
    } else {
        let Planned { plan, step } = plan_or_relax(&graph, &req).with_context(planning)?;
        PlanReport { step, plan }
    };
    let mut json = serde_json::to_string_pretty(&report)
        .map_err(|e| anyhow!("serializing the plan report: {e}"))?;
    json.push('\n');
    emit(&json)
}
