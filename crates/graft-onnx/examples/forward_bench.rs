//! One inference forward of an ONNX model from Rust, timed: the
//! reference for the Python package's `Model.run` (BENCHMARKS.md, issue
//! 20). Usage:
//!
//! ```sh
//! cargo run --release -p graft-onnx --example forward_bench -- MODEL.onnx INPUT.bin [RUNS]
//! ```
//!
//! `INPUT.bin` is a tensor file of the fixture scripts (u32 rank, u32 dims,
//! f32 values). Prints the median and the worst of RUNS forwards (after 10
//! warm-up runs), the executor made once, as a Rust user holds it.

use std::time::Instant;

use graft_nn::{Device, Executor, Run, Tensor};

fn read_tensor(path: &str) -> Tensor {
    let b = std::fs::read(path).expect("the input file");
    let u = |i: usize| u32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    let rank = u(0);
    let dims: Vec<usize> = (1..=rank).map(u).collect();
    let vals: Vec<f32> = b[4 * (rank + 1)..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_vec(vals, dims, &Device::Cpu).unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model, input) = (&args[1], &args[2]);
    let runs: usize = args.get(3).map_or(200, |r| r.parse().unwrap());
    let m = graft_onnx::import(std::path::Path::new(model))
        .unwrap()
        .model;
    let x = read_tensor(input);
    let ex = Executor::new(&m).unwrap();
    let once = || {
        let f = ex
            .run(&m, std::slice::from_ref(&x), &Run::inference())
            .unwrap();
        let y: Vec<f32> = f.outputs[0].flatten_all().unwrap().to_vec1().unwrap();
        y
    };
    for _ in 0..10 {
        once();
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(once());
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "forward from Rust: median {:.1} us, worst {:.1} us over {runs} runs",
        times[runs / 2],
        times[runs - 1]
    );
}
