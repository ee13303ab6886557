//! Regenerate the ONNX protobuf bindings (see Cargo.toml).

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let proto_dir = root.join("crates/graft-onnx/proto");
    let out = root.join("crates/graft-onnx/src/generated");
    let fds = protox::compile([proto_dir.join("onnx.proto")], [&proto_dir])
        .expect("onnx.proto compiles");
    let mut cfg = prost_build::Config::new();
    cfg.out_dir(&out);
    // Tensor bytes as `bytes::Bytes`: decoded from a mapped file they are
    // slices of it, not copies (issue 19).
    cfg.bytes([".onnx.TensorProto.raw_data"]);
    cfg.compile_fds(fds).expect("prost generates the bindings");
    println!("wrote {}", out.join("onnx.rs").display());
}
