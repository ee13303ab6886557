//! `graft`: the command-line tool of graft.
//!
//! Exit codes: 0 success, 2 bad input (unreadable or malformed file, unknown
//! vertex, impossible request or budget: any typed error of graft's crates
//! about the input), 1 internal failure. A command that fails writes no
//! output file.

mod commands;
mod data;
mod io;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use graft::json::{GraphSpec, PlanReport, RequestSpec};
use graft::nn::shrink::{Scope, Target};
use graft::{plan, plan_or_relax, CheckError, GraphError, PlanError, Planned, Step, TargetMode};

/// Change a trained network's structure without breaking it.
#[derive(Debug, Parser)]
#[command(
    name = "graft",
    version,
    after_help = "Examples:\n  graft demo\n  graft inspect model.onnx\n  \
                  graft draw model.onnx --plan conv3=+16 -o plan.svg\n  \
                  graft train model.onnx --data digits -o tuned.onnx\n  \
                  graft resize model.onnx --vertex conv3 --by 16 -o wider.onnx\n  \
                  graft prune model.onnx --macs 2000000 -o small.onnx\n  \
                  graft run model.onnx --input x.npy -o out.npz\n  \
                  graft plan examples/plan/graph.json examples/plan/request.json\n\n\
                  Exit codes: 0 success, 2 bad input, 1 internal failure."
)]
struct Cli {
    /// Print nothing on success.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Write models at this ONNX opset (13 to 21); by default at the opset
    /// the model was read at (21 for `demo`'s).
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(i64).range(13..=21))]
    opset: Option<i64>,
    /// Seconds the size planner may search per request (plan, resize,
    /// draw --plan). When they run out the best plan found so far is used
    /// and its proven gap is reported.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 5.0,
          value_parser = parse_seconds)]
    time_limit: f64,
    /// Write models with their weights in a data file beside them
    /// (`MODEL.onnx.data`, ONNX external data), as models above 2 GiB
    /// always are.
    #[arg(long, global = true)]
    external_data: bool,
    #[command(subcommand)]
    command: Command,
}

/// How pruned neurons compete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScopeArg {
    /// One ranking over the whole network (magnitudes normalised per layer).
    Global,
    /// The same share from every layer.
    Layer,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The end-to-end story on the shipped digits: train a small residual
    /// CNN, prune it to half its MACs with the planner, fine-tune, widen one
    /// stage function-preservingly, export to ONNX, and draw it as SVG.
    #[command(after_help = "Example:\n  graft demo\n  graft demo --quick -o /tmp/demo")]
    Demo {
        /// Fewer epochs (the same steps; used by the test suite).
        #[arg(long)]
        quick: bool,
        /// Directory for the ONNX file and the SVG.
        #[arg(short, long, default_value = "graft-demo")]
        output: PathBuf,
    },
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
    /// List the vertices of an ONNX model: op, size kind, sizes, parameters
    /// and multiply-accumulates per sample at the model's input shape.
    #[command(
        after_help = "Example:\n  graft inspect model.onnx\n  graft inspect --json model.onnx\n  \
                  graft inspect resnet.onnx --shape 3x224x224"
    )]
    Inspect {
        /// The ONNX model.
        model: PathBuf,
        /// Count MACs for samples of this shape (e.g. 3x224x224), one per
        /// input, instead of the file's.
        #[arg(long)]
        shape: Vec<String>,
    },
    /// Change one vertex's number of neurons; every coupled vertex follows
    /// and the plan is printed. Growth keeps the function (new inputs are 0).
    #[command(
        after_help = "Example:\n  graft resize model.onnx --vertex conv3 --by 16 -o wider.onnx\n  \
                  graft resize model.onnx --vertex fc1 --by -5 --relaxed -o narrower.onnx"
    )]
    Resize {
        /// The ONNX model.
        model: PathBuf,
        /// The vertex to resize (its name in the model).
        #[arg(long)]
        vertex: String,
        /// Neurons to add, or to remove when negative (those with the
        /// smallest weights go).
        #[arg(long, allow_hyphen_values = true)]
        by: i64,
        /// Accept the nearest size that works when the exact one cannot.
        #[arg(long)]
        relaxed: bool,
        /// Where to write the resized model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Structured pruning with the planner: remove whole neurons (channels)
    /// of least utility (weight magnitude, or a Taylor estimate on data),
    /// coupled neurons together, to a share of neurons or a parameter or
    /// MAC budget.
    #[command(
        after_help = "Example:\n  graft prune model.onnx --ratio 0.5 -o half.onnx\n  \
                  graft prune model.onnx --macs 2000000 --scope layer -o small.onnx\n  \
                  graft prune cnn.onnx --params 20000 --utility taylor --data digits -o small.onnx\n  \
                  graft prune cnn.onnx --macs 300000 --recalibrate --data digits -o small.onnx\n  \
                  graft prune llama.onnx --params 150000 --only heads,mlp -o small.onnx"
    )]
    Prune {
        /// The ONNX model.
        model: PathBuf,
        /// Remove this share (0 to 1) of the prunable neurons.
        #[arg(long, group = "target", allow_hyphen_values = true)]
        ratio: Option<f64>,
        /// At most this many parameters.
        #[arg(long, group = "target")]
        params: Option<u64>,
        /// At most this many multiply-accumulates per sample.
        #[arg(long, group = "target")]
        macs: Option<u64>,
        /// How neurons compete.
        #[arg(long, value_enum, default_value = "global")]
        scope: ScopeArg,
        /// Prune only these parts of a transformer (comma-separated):
        /// `heads` (whole attention heads, a KV head with its query heads),
        /// `head-dims` (the same dimensions of every head, rotary pairs
        /// together; not with `heads` in one pass),
        /// `experts` (whole experts of a mixture of experts, with their
        /// router rows),
        /// `hidden` (the residual stream: embedding, norms, projections),
        /// `mlp` (everything else: MLP widths, every layer of a CNN).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<commands::prune::PartArg>,
        /// How neurons are valued.
        #[arg(long, value_enum, default_value = "magnitude")]
        utility: commands::prune::UtilityArg,
        /// Data for `--utility taylor` and `--recalibrate`: `digits`, or a
        /// .csv, .npy or .npz file of features and labels (see `graft train
        /// --help`).
        #[arg(long)]
        data: Option<String>,
        /// After pruning, re-estimate every batch norm's running statistics
        /// on `--data` (no weight changes).
        #[arg(long)]
        recalibrate: bool,
        /// Count MACs (for `--macs`) for samples of this shape, e.g.
        /// 3x224x224, one per input, instead of the file's.
        #[arg(long)]
        shape: Vec<String>,
        /// Where to write the pruned model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Insert a vertex after another (identity-initialised, so the function
    /// is kept); it takes over all consumers or the ones named.
    #[command(
        after_help = "Example:\n  graft insert model.onnx --after relu2 --name extra --op conv3x3 -o deeper.onnx"
    )]
    Insert {
        /// The ONNX model.
        model: PathBuf,
        /// The vertex it follows.
        #[arg(long)]
        after: String,
        /// The new vertex's name.
        #[arg(long)]
        name: String,
        /// What it computes.
        #[arg(long, value_enum)]
        op: commands::edit::NewOp,
        /// Only these consumers read the new vertex (default: all).
        #[arg(long, value_delimiter = ',')]
        consumers: Vec<String>,
        /// Where to write the model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Remove a vertex, splicing its input into its consumers (sizes are
    /// aligned by the planner when they differ).
    #[command(after_help = "Example:\n  graft remove model.onnx --vertex extra -o smaller.onnx")]
    Remove {
        /// The ONNX model.
        model: PathBuf,
        /// The vertex to remove.
        #[arg(long, required_unless_present = "block", conflicts_with = "block")]
        vertex: Option<String>,
        /// Remove the residual block that ends in this add (`x + f(x)`):
        /// every vertex of `f` goes and the stream passes through (a
        /// transformer block's attention or MLP, a ResNet block).
        #[arg(long)]
        block: Option<String>,
        /// Where to write the model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Add an edge: `--from` becomes an input of `--to` (a concatenation
    /// grows, an add aligns sizes).
    #[command(
        after_help = "Example:\n  graft connect model.onnx --from relu1 --to cat -o joined.onnx"
    )]
    Connect {
        /// The ONNX model.
        model: PathBuf,
        /// The producer.
        #[arg(long)]
        from: String,
        /// The consumer.
        #[arg(long)]
        to: String,
        /// Input position at the consumer (default: last).
        #[arg(long)]
        position: Option<usize>,
        /// Where to write the model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a model on inputs from NumPy files (one `--input` per model
    /// input, in the model's order) and write its outputs, in the model's
    /// order, to a `.npz` archive keyed by the ONNX output names.
    #[command(
        after_help = "Example:\n  graft run model.onnx --input x.npy -o out.npz\n  \
                  graft run two_inputs.onnx --input x.npy --input control.npy -o out.npz --json\n\n\
                  Inputs are .npy files (any float or integer type; read as f32), or .npz \
                  archives with one array or an array named after the input. Sequences \
                  are given in the model's own axis order."
    )]
    Run {
        /// The ONNX model.
        model: PathBuf,
        /// A .npy file per model input, in the model's input order.
        #[arg(long, required = true)]
        input: Vec<PathBuf>,
        /// The .npz archive to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Loss and accuracy of a classifier on a data set (the same formats as
    /// `graft train`), e.g. to check a pruned model.
    #[command(
        after_help = "Example:\n  graft eval small.onnx --data digits\n  graft eval mlp.onnx --data samples.csv --json"
    )]
    Eval {
        /// The ONNX model (one input, one output of class scores).
        model: PathBuf,
        /// The data set.
        #[arg(long)]
        data: String,
    },
    /// Remove an edge `--from` -> `--to`.
    #[command(
        after_help = "Example:\n  graft disconnect model.onnx --from relu1 --to cat -o split.onnx"
    )]
    Disconnect {
        /// The ONNX model.
        model: PathBuf,
        /// The producer.
        #[arg(long)]
        from: String,
        /// The consumer.
        #[arg(long)]
        to: String,
        /// Which occurrence of the edge (0-based).
        #[arg(long, default_value_t = 0)]
        nth: usize,
        /// Where to write the model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the neuron-level graph (every neuron a node, every nonzero
    /// weight an edge; convolutions expanded over positions) as GraphML or
    /// Graphviz DOT, chosen by the output's extension.
    #[command(
        after_help = "Example:\n  graft structure model.onnx -o neurons.graphml\n  graft structure model.onnx -o neurons.dot"
    )]
    Structure {
        /// The ONNX model.
        model: PathBuf,
        /// `.graphml` or `.dot` file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Unstructured pruning: mask the weights of least saliency in every
    /// dense layer and 2-D convolution until `--density` of them remain
    /// (written as zeros); `--compact` then removes the neurons the masks
    /// left dead, through the planner.
    #[command(
        after_help = "Example:\n  graft sparsify model.onnx --density 0.2 -o sparse.onnx\n  \
                  graft sparsify mlp.onnx --density 0.05 --compact -o small.onnx\n  \
                  graft sparsify cnn.onnx --density 0.1 --saliency obd --data digits -o sparse.onnx"
    )]
    Sparsify {
        /// The ONNX model.
        model: PathBuf,
        /// Share of the weights to keep (0 to 1].
        #[arg(long)]
        density: f64,
        /// How weights are ranked.
        #[arg(long, value_enum, default_value = "magnitude")]
        saliency: commands::sparsify::SaliencyArg,
        /// Rank over the whole network or keep the density in every layer.
        #[arg(long, value_enum, default_value = "global")]
        scope: ScopeArg,
        /// Remove dead neurons: a structurally smaller model.
        #[arg(long)]
        compact: bool,
        /// Seed of `--saliency random`.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Data for `--saliency obd` (the formats of `graft train`).
        #[arg(long)]
        data: Option<String>,
        /// Where to write the model.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Draw the vertex graph as SVG (no system tool needed); `--plan`
    /// highlights the vertices a size change would touch.
    #[command(after_help = "Example:\n  graft draw model.onnx -o model.svg\n  \
                  graft draw model.onnx --plan conv3=+16 -o plan.svg")]
    Draw {
        /// The ONNX model.
        model: PathBuf,
        /// A change to draw, VERTEX=N (N neurons more, or fewer when
        /// negative), e.g. conv3=+16.
        #[arg(long, allow_hyphen_values = true)]
        plan: Option<String>,
        /// With `--plan`: accept the nearest size that works.
        #[arg(long)]
        relaxed: bool,
        /// The .svg file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Train (fine-tune) a classifier with Adam and cross-entropy, with a
    /// progress bar per epoch and held-out loss and accuracy after each.
    ///
    /// Data: `digits` (shipped with graft), a .csv file (one sample per
    /// line, features then the label; a non-numeric first line is a
    /// header), a .npy file (2-D, the label in the last column) or a .npz
    /// file with arrays `x` and `y`. Features are reshaped to the model's
    /// input (64 pixels to 1×8×8 for a CNN).
    #[command(
        after_help = "Example:\n  graft train cnn.onnx --data digits --epochs 5 -o tuned.onnx\n  \
                  graft train mlp.onnx --data samples.csv --lr 0.01 -o tuned.onnx"
    )]
    Train {
        /// The ONNX model (one input, one output of class scores).
        model: PathBuf,
        /// The data set.
        #[arg(long)]
        data: String,
        /// Passes over the training data.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
        /// Samples per batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Adam's learning rate.
        #[arg(long, default_value_t = 1e-3, allow_hyphen_values = true)]
        lr: f64,
        /// Share of the samples held out for evaluation (0: evaluate on
        /// the training data).
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// Seed of the split and the shuffles.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write the trained model.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// A time limit in seconds: finite, not negative, at most a day.
fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("`{s}`: {e}"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err(format!("`{s}`: seconds from 0 to 86400"));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.opset {
        let _ = io::WRITE_OPSET.set(n);
    }
    let _ = io::TIME_LIMIT.set(std::time::Duration::from_secs_f64(cli.time_limit));
    let _ = io::EXTERNAL_DATA.set(cli.external_data);
    let json = cli.json;
    // Progress bars on stderr, unless the output is for scripts.
    let show = !cli.quiet && !json;
    let text = match cli.command {
        Command::Demo { quick, output } => {
            let len = if quick {
                commands::demo::Length::QUICK
            } else {
                commands::demo::Length::FULL
            };
            commands::demo::run(&output, len, json, show)
        }
        Command::Sparsify {
            model,
            density,
            saliency,
            scope,
            compact,
            seed,
            data,
            output,
        } => commands::sparsify::run(
            &model,
            &commands::sparsify::Options {
                density,
                saliency,
                per_layer: scope == ScopeArg::Layer,
                compact,
                seed,
                data,
            },
            &output,
            json,
            show,
        ),
        Command::Draw {
            model,
            plan,
            relaxed,
            output,
        } => commands::draw::run(&model, plan.as_deref(), relaxed, &output, json),
        Command::Train {
            model,
            data,
            epochs,
            batch,
            lr,
            holdout,
            seed,
            output,
        } => commands::train::run(
            &model,
            &data,
            commands::train::Schedule {
                epochs,
                batch,
                lr,
                seed,
            },
            holdout,
            &output,
            json,
            show,
        ),
        Command::Run {
            model,
            input,
            output,
        } => commands::run::run(&model, &input, &output, json),
        Command::Eval { model, data } => commands::train::eval(&model, &data, json),
        Command::Plan {
            graph,
            request,
            no_fallback,
        } => plan_files(&graph, &request, no_fallback),
        Command::Inspect { model, shape } => commands::inspect::run(&model, &shape, json),
        Command::Structure { model, output } => {
            commands::structure::run(&model, &output, json, show)
        }
        Command::Resize {
            model,
            vertex,
            by,
            relaxed,
            output,
        } => commands::resize::run(&model, &vertex, by, relaxed, &output, json),
        Command::Prune {
            model,
            ratio,
            params,
            macs,
            scope,
            only,
            utility,
            data,
            recalibrate,
            shape,
            output,
        } => (|| {
            let target = match (ratio, params, macs) {
                (Some(r), None, None) => Target::Ratio(r),
                (None, Some(p), None) => Target::Params(p),
                (None, None, Some(m)) => Target::Macs(m),
                _ => {
                    return Err(anyhow!(Usage(
                        "give one of --ratio, --params or --macs".into()
                    )))
                }
            };
            let scope = match scope {
                ScopeArg::Global => Scope::Global,
                ScopeArg::Layer => Scope::Layer,
            };
            commands::prune::run(
                &model,
                target,
                scope,
                &only,
                utility,
                data.as_deref(),
                recalibrate,
                &shape,
                &output,
                json,
                show,
            )
        })(),
        Command::Insert {
            model,
            after,
            name,
            op,
            consumers,
            output,
        } => commands::edit::run(
            &model,
            commands::edit::Change::Insert {
                after: &after,
                name: &name,
                op,
                consumers: &consumers,
            },
            &output,
            json,
        ),
        Command::Remove {
            model,
            vertex,
            block,
            output,
        } => (|| {
            let change = match (&vertex, &block) {
                (_, Some(b)) => commands::edit::Change::RemoveBlock(b),
                (Some(v), None) => commands::edit::Change::Remove(v),
                (None, None) => return Err(anyhow!(Usage("give --vertex or --block".into()))),
            };
            commands::edit::run(&model, change, &output, json)
        })(),
        Command::Connect {
            model,
            from,
            to,
            position,
            output,
        } => commands::edit::run(
            &model,
            commands::edit::Change::Connect {
                from: &from,
                to: &to,
                position,
            },
            &output,
            json,
        ),
        Command::Disconnect {
            model,
            from,
            to,
            nth,
            output,
        } => commands::edit::run(
            &model,
            commands::edit::Change::Disconnect {
                from: &from,
                to: &to,
                nth,
            },
            &output,
            json,
        ),
    };
    let result = text.and_then(|t| if cli.quiet { Ok(()) } else { io::emit(&t) });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// A command line that asks for something impossible.
#[derive(Debug)]
pub(crate) struct Usage(pub(crate) String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// 2 when the error comes from the input (files, names, requests, budgets),
/// else 1.
fn exit_code(e: &anyhow::Error) -> u8 {
    let bad_input = e.chain().any(|c| {
        c.is::<PlanError>()
            || c.is::<GraphError>()
            || c.is::<CheckError>()
            || c.is::<graft::MutationError>()
            || c.is::<graft::nn::NnError>()
            || c.is::<graft::onnx::OnnxError>()
            || c.is::<graft::sparse::SparseError>()
            || c.is::<Usage>()
            || c.is::<serde_json::Error>()
            || c.is::<std::io::Error>()
    });
    if bad_input {
        2
    } else {
        1
    }
}

fn read(path: &Path, what: &str) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {what} file `{}`", path.display()))
}

fn plan_files(graph_path: &Path, request_path: &Path, no_fallback: bool) -> Result<String> {
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
    let req = req.within(io::time_limit());
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
    io::warn_unproven(&report.plan);
    let mut json = serde_json::to_string_pretty(&report)
        .map_err(|e| anyhow!("serializing the plan report: {e}"))?;
    json.push('\n');
    Ok(json)
}
