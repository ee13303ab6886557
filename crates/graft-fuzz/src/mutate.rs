//! Mutations: of bytes (bit flips, interesting integers written over
//! them, insertions, deletions, repeats, splices with another seed), of
//! numbers in text (JSON, CSV, GraphML and NumPy headers), and of ONNX
//! models decoded and changed field by field (attributes, initializer
//! dimensions and data, graph input shapes, node names, inputs and op
//! types, opsets), which reach the importer's checks far more often than
//! bytes flipped in a protobuf.

use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, RngCore};

use graft_onnx::proto::{tensor_shape_proto::dimension::Value as Dim, type_proto, ModelProto};

use crate::Target;

/// Integers that break size arithmetic: zero, one, negatives, the edges
/// of 8, 16, 32 and 64 bits, and sizes that overflow when multiplied.
pub const INTERESTING: [i64; 18] = [
    0,
    1,
    -1,
    2,
    3,
    -2,
    7,
    255,
    256,
    65_535,
    (1 << 31) - 1,
    1 << 31,
    1 << 32,
    1 << 40,
    1 << 62,
    i64::MAX,
    i64::MIN,
    -(1 << 31),
];

/// Numbers written into text in place of others.
const TEXT_NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "1",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "4294967296",
    "18446744073709551615",
    "9223372036854775808",
    "2147483648",
    "1099511627776",
    "0.5",
    "",
];

/// ONNX op types swapped in for others.
const OPS: [&str; 16] = [
    "Conv",
    "Gemm",
    "MatMul",
    "Add",
    "Mul",
    "Relu",
    "Reshape",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "MaxPool",
    "BatchNormalization",
    "Softmax",
    "LSTM",
];

/// One mutation of `input` for `target`; `others` are the corpus to
/// splice from.
pub fn mutate(target: Target, input: &[u8], others: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let structured = matches!(target, Target::Onnx | Target::OnnxPrune);
    let text = matches!(target, Target::PlanJson | Target::Csv | Target::GraphMl);
    let mut out = input.to_vec();
    // One to four stacked mutations.
    for _ in 0..rng.random_range(1..=4) {
        let r = rng.random_range(0..10);
        out = if structured && r < 7 {
            onnx(&out, rng).unwrap_or_else(|| bytes(&out, others, rng))
        } else if (text || target == Target::Npy) && r < 6 {
            numbers(&out, rng)
        } else {
            bytes(&out, others, rng)
        };
    }
    out
}

fn pick<'a, T>(xs: &'a [T], rng: &mut StdRng) -> Option<&'a T> {
    if xs.is_empty() {
        None
    } else {
        Some(&xs[rng.random_range(0..xs.len())])
    }
}

fn interesting(rng: &mut StdRng) -> i64 {
    if rng.random_bool(0.8) {
        INTERESTING[rng.random_range(0..INTERESTING.len())]
    } else {
        rng.random_range(-4..70_000)
    }
}

/// Byte-level mutations.
pub fn bytes(input: &[u8], others: &[Vec<u8>], rng: &mut StdRng) -> Vec<u8> {
    let mut b = input.to_vec();
    if b.is_empty() {
        b.push(rng.random());
        return b;
    }
    let at = rng.random_range(0..b.len());
    match rng.random_range(0..7) {
        0 => b[at] ^= 1 << rng.random_range(0..8),
        1 => b[at] = rng.random(),
        2 => {
            let v = interesting(rng).to_le_bytes();
            let w = [1, 2, 4, 8][rng.random_range(0..4)];
            for (k, &x) in v.iter().take(w).enumerate() {
                if let Some(y) = b.get_mut(at + k) {
                    *y = x;
                }
            }
        }
        3 => {
            let n = rng.random_range(1..=16);
            let mut ins = vec![0u8; n];
            rng.fill_bytes(&mut ins);
            b.splice(at..at, ins);
        }
        4 => {
            let end = (at + rng.random_range(1..=64)).min(b.len());
            b.drain(at..end);
        }
        5 => {
            let end = (at + rng.random_range(1..=64)).min(b.len());
            let piece = b[at..end].to_vec();
            b.splice(at..at, piece);
        }
        _ => {
            if let Some(o) = pick(others, rng).filter(|o| !o.is_empty()) {
                let from = rng.random_range(0..o.len());
                let end = (from + rng.random_range(1..=256)).min(o.len());
                let to = (at + (end - from)).min(b.len());
                b.splice(at..to, o[from..end].iter().copied());
            }
        }
    }
    b
}

/// Replace one run of digits (with its sign, point and exponent) in the
/// text by another number.
pub fn numbers(input: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let spans: Vec<(usize, usize)> = {
        let mut v = Vec::new();
        let mut i = 0;
        while i < input.len() {
            if input[i].is_ascii_digit() {
                let start = if i > 0 && input[i - 1] == b'-' {
                    i - 1
                } else {
                    i
                };
                let mut j = i;
                while j < input.len() && (input[j].is_ascii_digit() || b".eE+-".contains(&input[j]))
                {
                    j += 1;
                }
                v.push((start, j));
                i = j;
            } else {
                i += 1;
            }
        }
        v
    };
    let Some(&(a, b)) = pick(&spans, rng) else {
        return input.to_vec();
    };
    let new = if rng.random_bool(0.7) {
        TEXT_NUMBERS[rng.random_range(0..TEXT_NUMBERS.len())].to_string()
    } else {
        interesting(rng).to_string()
    };
    let mut out = input[..a].to_vec();
    out.extend(new.as_bytes());
    out.extend(&input[b..]);
    out
}

/// One field-level change of an ONNX model; `None` when the input does not
/// decode (the caller mutates its bytes instead).
pub fn onnx(input: &[u8], rng: &mut StdRng) -> Option<Vec<u8>> {
    let mut m = ModelProto::decode(input).ok()?;
    let g = m.graph.as_mut()?;
    match rng.random_range(0..10) {
        // An integer attribute, or one entry of an integer list.
        0 | 1 => {
            let n = rng.random_range(0..g.node.len().max(1));
            let node = g.node.get_mut(n)?;
            let a = rng.random_range(0..node.attribute.len().max(1));
            let attr = node.attribute.get_mut(a)?;
            if !attr.ints.is_empty() && rng.random_bool(0.7) {
                let k = rng.random_range(0..attr.ints.len());
                match rng.random_range(0..3) {
                    0 => attr.ints[k] = interesting(rng),
                    1 => {
                        attr.ints.remove(k);
                    }
                    _ => attr.ints.push(interesting(rng)),
                }
            } else if attr.i.is_some() {
                attr.i = Some(interesting(rng));
            } else if attr.f.is_some() {
                attr.f = Some([0.0, -1.0, f32::NAN, f32::INFINITY, 1e30][rng.random_range(0..5)]);
            } else {
                attr.ints.push(interesting(rng));
            }
        }
        // An initializer's dimensions, data type or data.
        2 | 3 => {
            let n = rng.random_range(0..g.initializer.len().max(1));
            let t = g.initializer.get_mut(n)?;
            match rng.random_range(0..4) {
                0 if !t.dims.is_empty() => {
                    let k = rng.random_range(0..t.dims.len());
                    t.dims[k] = interesting(rng);
                }
                1 => {
                    if rng.random_bool(0.5) {
                        t.dims.push(interesting(rng));
                    } else {
                        t.dims.pop();
                    }
                }
                2 => t.data_type = Some(rng.random_range(0..17)),
                _ => {
                    if let Some(raw) = t.raw_data.as_mut() {
                        let keep = rng.random_range(0..=raw.len());
                        raw.truncate(keep);
                    } else {
                        let keep = rng.random_range(0..=t.float_data.len());
                        t.float_data.truncate(keep);
                    }
                }
            }
        }
        // A graph input's dimension.
        4 => {
            let at = rng.random_range(0..g.input.len().max(1));
            let i = g.input.get_mut(at)?;
            let Some(type_proto::Value::TensorType(tt)) =
                i.r#type.as_mut().and_then(|t| t.value.as_mut())
            else {
                return None;
            };
            let dims = &mut tt.shape.as_mut()?.dim;
            if dims.is_empty() {
                return None;
            }
            let k = rng.random_range(0..dims.len());
            dims[k].value = Some(Dim::DimValue(interesting(rng)));
        }
        // A node's inputs or outputs: dropped, repeated, or renamed after
        // another value.
        5 | 6 => {
            let names: Vec<String> = g
                .node
                .iter()
                .flat_map(|n| n.output.iter().cloned())
                .chain(g.initializer.iter().filter_map(|t| t.name.clone()))
                .collect();
            let n = rng.random_range(0..g.node.len().max(1));
            let node = g.node.get_mut(n)?;
            let list = if rng.random_bool(0.6) {
                &mut node.input
            } else {
                &mut node.output
            };
            match rng.random_range(0..3) {
                0 if !list.is_empty() => {
                    let k = rng.random_range(0..list.len());
                    list.remove(k);
                }
                1 => list.push(pick(&names, rng)?.clone()),
                _ if !list.is_empty() => {
                    let k = rng.random_range(0..list.len());
                    list[k] = pick(&names, rng)?.clone();
                }
                _ => return None,
            }
        }
        // A node's op type.
        7 => {
            let n = rng.random_range(0..g.node.len().max(1));
            g.node.get_mut(n)?.op_type = Some(OPS[rng.random_range(0..OPS.len())].into());
        }
        // A node removed or repeated, or the outputs dropped.
        8 => match rng.random_range(0..3) {
            0 if !g.node.is_empty() => {
                let k = rng.random_range(0..g.node.len());
                g.node.remove(k);
            }
            1 if !g.node.is_empty() => {
                let k = rng.random_range(0..g.node.len());
                let copy = g.node[k].clone();
                g.node.insert(k, copy);
            }
            _ => {
                if !g.output.is_empty() {
                    let k = rng.random_range(0..g.output.len());
                    g.output.remove(k);
                }
            }
        },
        // The opset.
        _ => {
            let o = m.opset_import.first_mut()?;
            o.version = Some([1, 7, 11, 12, 13, 17, 18, 21, 22, 99][rng.random_range(0..10)]);
        }
    }
    Some(m.encode_to_vec())
}
