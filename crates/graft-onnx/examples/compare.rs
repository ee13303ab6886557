//! Import an ONNX model, run it on an input tensor file and compare with a
//! reference output file (the tensor files of `scripts/onnx_fixtures.py`:
//! u32 rank, u32 dims, f32 values). Prints the largest difference relative
//! to the reference's largest magnitude.
//!
//! `cargo run --release -p graft-onnx --example compare -- MODEL.onnx INPUT.bin OUTPUT.bin`

use graft_nn::{Device, Executor, Mode, Tensor};

fn read(path: &str) -> Tensor {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let u =
        |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().expect("4 bytes")) as usize;
    let rank = u(0);
    let dims: Vec<usize> = (1..=rank).map(u).collect();
    let vals: Vec<f32> = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Tensor::from_vec(vals, dims, &Device::Cpu).expect("tensor")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output] = &args[..] else {
        eprintln!("usage: compare MODEL.onnx INPUT.bin OUTPUT.bin");
        std::process::exit(2);
    };
    let t = std::time::Instant::now();
    let imp = match graft_onnx::import(std::path::Path::new(model)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{model}: {e}");
            std::process::exit(1);
        }
    };
    let import_time = t.elapsed();
    let x = read(input);
    let want: Vec<f32> = read(output).flatten_all().unwrap().to_vec1().unwrap();
    let ex = Executor::new(&imp.model).unwrap();
    let got: Vec<f32> = ex
        .forward(&imp.model, &[x], Mode::Eval, false)
        .unwrap()
        .outputs[0]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let scale = want.iter().fold(0f32, |a, &b| a.max(b.abs()));
    let diff = got
        .iter()
        .zip(&want)
        .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
    println!(
        "{model}: {} vertices, imported in {:.1} ms; max |diff| {diff:e}, relative {:e}",
        imp.model.graph().len(),
        import_time.as_secs_f64() * 1e3,
        diff / scale.max(f32::MIN_POSITIVE)
    );
}
