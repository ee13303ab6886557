//! Tied weights written once. A language model's output projection is
//! often its token embedding read the other way round (GPT-2 ties them):
//! torch writes one initializer read by both the `Gather` and the output
//! `MatMul`. graft keeps a parameter per layer (both follow the same hidden
//! neurons, so pruning keeps them equal), and on export an initializer
//! equal to an earlier one, or to its transpose, is not written again: it
//! is read from the earlier one, through a `Transpose` node when
//! transposed. A model whose copies were made to differ (by training)
//! keeps both.

use std::collections::HashMap;

use crate::error::OnnxError;
use crate::export::Out;
use crate::tensor::Init;

/// Only matrices at least this large are compared: the tie is worth
/// finding for embeddings, and small constants are not worth the scan.
const MIN_ELEMENTS: usize = 4096;

/// How a later initializer is read from an earlier one.
enum Reuse {
    Same(usize),
    Transposed(usize),
}

/// Drop every large float matrix equal to an earlier one (or to its
/// transpose) and read it from that one.
pub(crate) fn share(out: &mut Out) -> Result<(), OnnxError> {
    let reuse = find(&out.inits)?;
    if reuse.is_empty() {
        return Ok(());
    }
    let name = |i: usize, inits: &[Init]| inits[i].name().to_string();
    let mut renamed: HashMap<String, String> = HashMap::new();
    let mut transposes = Vec::new();
    for (&later, r) in &reuse {
        let (from, to) = match *r {
            Reuse::Same(i) | Reuse::Transposed(i) => (name(i, &out.inits), name(later, &out.inits)),
        };
        match r {
            Reuse::Same(_) => {
                renamed.insert(to, from);
            }
            Reuse::Transposed(_) => transposes.push((from, to)),
        }
    }
    for n in &mut out.nodes {
        for i in &mut n.input {
            if let Some(to) = renamed.get(i) {
                *i = to.clone();
            }
        }
    }
    let mut k = 0;
    out.inits.retain(|_| {
        k += 1;
        !reuse.contains_key(&(k - 1))
    });
    // The transposes come first: every node may read them.
    let mut nodes = Vec::with_capacity(transposes.len() + out.nodes.len());
    let mut first = Out::new(out.opset);
    for (from, to) in transposes {
        first.node(
            "Transpose",
            &format!("{to}.tied"),
            &[&from],
            &to,
            vec![crate::export::attr_ints("perm", vec![1, 0])],
        );
    }
    nodes.append(&mut first.nodes);
    nodes.append(&mut out.nodes);
    out.nodes = nodes;
    Ok(())
}

/// For each initializer to drop, the earlier one it is read from.
fn find(inits: &[Init]) -> Result<HashMap<usize, Reuse>, OnnxError> {
    // Candidates by their two sizes, smaller first (a matrix and its
    // transpose share a key).
    let mut by_size: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    for (i, init) in inits.iter().enumerate() {
        let t = &init.proto;
        if let (Some(crate::tensor::FLOAT), [a, b]) = (t.data_type, t.dims.as_slice()) {
            let n = (*a as usize).saturating_mul(*b as usize);
            if n >= MIN_ELEMENTS && init.payload_len() == 4 * n {
                by_size
                    .entry(((*a).min(*b), (*a).max(*b)))
                    .or_default()
                    .push(i);
            }
        }
    }
    let mut reuse = HashMap::new();
    for group in by_size.values().filter(|g| g.len() > 1) {
        for (j, &later) in group.iter().enumerate() {
            for &earlier in &group[..j] {
                if reuse.contains_key(&earlier) {
                    continue;
                }
                let (a, b) = (&inits[earlier].proto, &inits[later].proto);
                let (rows, cols) = (a.dims[0] as usize, a.dims[1] as usize);
                let same_dims = a.dims == b.dims;
                let flipped = a.dims[0] == b.dims[1] && a.dims[1] == b.dims[0];
                // The values are compared where the model keeps them.
                let found = inits[earlier].with_bytes(|ra| {
                    inits[later].with_bytes(|rb| {
                        if same_dims && ra == rb {
                            Some(Reuse::Same(earlier))
                        } else if flipped && transposed(ra, rb, rows, cols) {
                            Some(Reuse::Transposed(earlier))
                        } else {
                            None
                        }
                    })
                })??;
                if let Some(r) = found {
                    reuse.insert(later, r);
                    break;
                }
            }
        }
    }
    Ok(reuse)
}

/// Whether `b` (`cols × rows`, 4-byte elements) is `a` (`rows × cols`)
/// transposed.
fn transposed(a: &[u8], b: &[u8], rows: usize, cols: usize) -> bool {
    (0..rows).all(|r| {
        (0..cols).all(|c| {
            let x = 4 * (r * cols + c);
            let y = 4 * (c * rows + r);
            a[x..x + 4] == b[y..y + 4]
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::encode_f32;

    #[test]
    fn equal_and_transposed_matrices_are_written_once() {
        let (r, c) = (64, 80);
        let a: Vec<f32> = (0..r * c).map(|i| i as f32).collect();
        let at: Vec<f32> = (0..c * r).map(|i| a[(i % r) * c + i / r]).collect();
        let other: Vec<f32> = a.iter().map(|x| x + 1.0).collect();
        let mut out = Out::new(17);
        out.inits = vec![
            encode_f32("emb", &[r, c], &a),
            encode_f32("head", &[c, r], &at),
            encode_f32("copy", &[r, c], &a),
            encode_f32("other", &[r, c], &other),
        ];
        out.node("MatMul", "mm", &["x", "head"], "y", Vec::new());
        out.node("Add", "add", &["y", "copy"], "z", Vec::new());
        share(&mut out).unwrap();
        let names: Vec<String> = out.inits.iter().map(|t| t.name().to_string()).collect();
        assert_eq!(names, ["emb", "other"]);
        assert_eq!(out.nodes[0].op_type.as_deref(), Some("Transpose"));
        assert_eq!(out.nodes[0].input, ["emb"]);
        assert_eq!(out.nodes[0].output, ["head"]);
        assert_eq!(out.nodes[2].input, ["y", "emb"]);
    }

    #[test]
    fn small_or_different_matrices_stay() {
        let mut out = Out::new(17);
        out.inits = vec![
            encode_f32("a", &[2, 2], &[1., 2., 3., 4.]),
            encode_f32("b", &[2, 2], &[1., 2., 3., 4.]),
        ];
        share(&mut out).unwrap();
        assert_eq!(out.inits.len(), 2);
    }
}
