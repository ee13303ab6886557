#!/usr/bin/env bash
# Regenerate crates/graft-onnx/src/generated/onnx.rs from
# crates/graft-onnx/proto/onnx.proto (ONNX 1.23.2's, copied from the onnx
# Python package). Pure Rust: prost-build with protox, no protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --manifest-path tools/onnx-codegen/Cargo.toml
