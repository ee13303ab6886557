//! Write every ONNX file of a folder that graft imports again, with the
//! interface it was read with, at the file's own opset and at 13 and 21:
//! `<stem>.own.onnx`, `<stem>.13.onnx`, `<stem>.21.onnx` in the output
//! folder. One tab-separated line per file and opset says what happened
//! (`scripts/check_written.py` reads them and runs the ONNX checker and
//! onnxruntime on what was written).
//!
//! `cargo run -p graft-onnx --example rewrite -- <in_dir> <out_dir>`

use std::path::PathBuf;

use graft_onnx::{export, import};

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
        let own = imp.interface.opset;
        for (tag, opset) in [
            ("own".to_string(), own),
            ("13".into(), 13),
            ("21".into(), 21),
        ] {
            let written =
                imp.interface.clone().with_opset(opset).and_then(|i| {
                    export(&imp.model, &i, &output.join(format!("{stem}.{tag}.onnx")))
                });
            match written {
                Ok(()) => println!("{stem}\t{tag}\t{opset}\twritten"),
                Err(e) => println!("{stem}\t{tag}\t{opset}\tnot written: {e}"),
            }
        }
    }
    Ok(())
}
