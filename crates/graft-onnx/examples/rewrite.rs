//! Write every ONNX file of a folder that graft imports again, with the
//! interface it was read with, at the file's own opset and at 13 and 21:
//! `<stem>.own.onnx`, `<stem>.13.onnx`, `<stem>.21.onnx` in the output
//! folder. One tab-separated line per file and opset says what happened
//! (`scripts/check_written.py` reads them and runs the ONNX checker and
//! onnxruntime on what was written).
//!
//! The dynamic-network fixtures graft writes but does not read back
//! (mask-and-merge forms of gates, exits, mixtures and switches) are built
//! again from the same seeded `graft_nn::zoo` calls as the
//! `dynamic_fixtures` example, and written the same three ways with
//! [`Interface::for_model`], under the fixture's stem.
//!
//! `cargo run -p graft-onnx --example rewrite -- <in_dir> <out_dir>`

use std::path::{Path, PathBuf};

use graft_nn::{zoo, Confidence, Model, Rule};
use graft_onnx::{export, import, Interface};

/// Write `model` with `iface` at its own opset, 13 and 21, one line each.
fn write_three(model: &Model, iface: &Interface, stem: &str, output: &Path) {
    let own = iface.opset;
    for (tag, opset) in [
        ("own".to_string(), own),
        ("13".into(), 13),
        ("21".into(), 21),
    ] {
        let written = iface
            .clone()
            .with_opset(opset)
            .and_then(|i| export(model, &i, &output.join(format!("{stem}.{tag}.onnx"))));
        match written {
            Ok(()) => println!("{stem}\t{tag}\t{opset}\twritten"),
            Err(e) => println!("{stem}\t{tag}\t{opset}\tnot written: {e}"),
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        return Err("usage: rewrite <in_dir> <out_dir>".into());
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    std::fs::create_dir_all(&output)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&input)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    files.sort();
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let imp = match import(&path) {
            Ok(imp) => imp,
            Err(e) => {
                println!("{stem}\t-\t-\tnot imported: {e}");
                continue;
            }
        };
        write_three(&imp.model, &imp.interface, &stem, &output);
    }
    // The dynamic fixtures graft does not read back, as dynamic_fixtures
    // builds them: (stem, model, input shapes).
    let built: Vec<(&str, Model, Vec<Vec<usize>>)> = vec![
        (
            "gated.graft",
            zoo::gated_mlp(8, 16, 2, 3, 5)?,
            vec![vec![32, 8]],
        ),
        (
            "exits.graft",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::MaxSoftmax, 0.4, 9)?,
            vec![vec![64, 8]],
        ),
        (
            "entropy_exits.graft",
            zoo::early_exit_mlp(8, 16, 3, 4, Confidence::NegEntropy, -1.35, 9)?,
            vec![vec![64, 8]],
        ),
        (
            "moe.graft",
            zoo::moe_mlp(8, 16, 4, 2, 3, 13)?,
            vec![vec![32, 8]],
        ),
        (
            "switch.graft",
            zoo::switch_mlp(8, 16, 3, 3, Rule::Switch, 22)?,
            vec![vec![24, 8], vec![24, 1]],
        ),
        (
            "argmax.graft",
            zoo::switch_mlp(8, 16, 3, 3, Rule::Argmax, 22)?,
            vec![vec![24, 8], vec![24, 3]],
        ),
    ];
    for (stem, model, shapes) in built {
        let iface = Interface::for_model(&model, &shapes)?;
        write_three(&model, &iface, stem, &output);
    }
    Ok(())
}
