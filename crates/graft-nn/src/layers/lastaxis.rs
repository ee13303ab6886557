//! The last-axis family: layers whose neurons sit on the last axis of a
//! value of any rank (channels-last feature maps `[N, H, W, C]`, token
//! sequences `[N, T, C]`): a dense layer ([`LinearLast`], ONNX's `MatMul` by
//! a weight), a layer norm ([`LayerNormLast`]) and a lookup table
//! ([`Embedding`], ONNX's `Gather` of a weight by computed ids). Their ONNX
//! import and export live in graft-onnx's `ops/linear.rs` and
//! `ops/norm.rs`.

use candle_core::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};

use super::{p, Params};
use crate::op::{spec, Fill, ParamSpec, Role};

/// A dense layer on the last axis: `y[..., o] = Σ_i W[i, o] x[..., i] + b[o]`.
/// The weight is `[nin, nout]`, as ONNX's `MatMul` and safetensors'
/// checkpoints of it hold it, so a file's matrix becomes the layer's
/// without a transpose (and back on export).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearLast {
    /// With a bias.
    pub bias: bool,
    /// The last axis (batch axis included): rank − 1.
    pub axis: usize,
}

impl LinearLast {
    /// Weight `[nin, nout]` and bias `[nout]`.
    pub(crate) fn params(&self, nin: usize, nout: usize) -> Vec<ParamSpec> {
        let mut v = vec![spec(
            "weight",
            vec![nin, nout],
            vec![Role::In(0), Role::Out],
            Fill::Random,
        )];
        if self.bias {
            v.push(spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)));
        }
        v
    }

    /// The forward pass: the leading axes flattened into rows.
    pub(crate) fn forward(&self, params: &Params, x: &Tensor) -> Result<Tensor> {
        let w = p(params, "weight")?;
        let mut dims = x.dims().to_vec();
        let nin = *dims
            .last()
            .ok_or_else(|| candle_core::Error::Msg("a scalar".into()))?;
        let rows = x.elem_count() / nin.max(1);
        let y = x.reshape((rows, nin))?.matmul(w)?;
        let y = if self.bias {
            y.broadcast_add(p(params, "bias")?)?
        } else {
            y
        };
        *dims.last_mut().expect("rank checked") = w.dim(1)?;
        y.reshape(dims)
    }

    /// The per-sample output shape.
    pub(crate) fn infer(
        &self,
        s: &[usize],
        nout: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let mut out = s.to_vec();
        *out.last_mut()
            .ok_or("a dense layer on the last axis needs one")? = nout;
        Ok(out)
    }

    /// Multiply-accumulates per sample.
    pub(crate) fn macs(&self, s: &[usize], nout: usize) -> Option<u64> {
        s.iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d as u64))?
            .checked_mul(nout as u64)
    }
}

/// Layer normalisation over the last axis (the neurons), with a per-neuron
/// scale and shift. Not neuron-separable: a neuron added or removed changes
/// the mean and variance every output sees, so a shrink keeps the selected
/// scales exactly but changes the function, and growth does too unless the
/// new neurons' inputs are exactly the mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LayerNormLast {
    /// Added to the variance.
    pub eps: f64,
    /// The last axis (batch axis included): rank − 1.
    pub axis: usize,
}

impl LayerNormLast {
    /// Scale (new entries 1) and shift (new entries 0), `[nout]`.
    pub(crate) fn params(&self, nout: usize) -> Vec<ParamSpec> {
        vec![
            spec("weight", vec![nout], vec![Role::Out], Fill::Value(1.0)),
            spec("bias", vec![nout], vec![Role::Out], Fill::Value(0.0)),
        ]
    }

    /// The forward pass.
    pub(crate) fn forward(&self, params: &Params, x: &Tensor) -> Result<Tensor> {
        let a = x
            .rank()
            .checked_sub(1)
            .ok_or_else(|| candle_core::Error::Msg("a scalar".into()))?;
        let mean = x.mean_keepdim(a)?;
        let d = x.broadcast_sub(&mean)?;
        let var = d.sqr()?.mean_keepdim(a)?;
        let y = d.broadcast_div(&var.affine(1.0, self.eps)?.sqrt()?)?;
        y.broadcast_mul(p(params, "weight")?)?
            .broadcast_add(p(params, "bias")?)
    }
}

/// A lookup table (token embeddings): integer ids `[N, ...]`, held as
/// floats, pick rows of a weight `[vocab, nout]`, whose columns are the
/// neurons, on a new last axis: `y[n, t, o] = W[x[n, t], o]`. An absorbing
/// vertex: its input's size is free (an id is one value, whatever its
/// axis), its neurons are the weight's columns. Ids are checked (whole, in
/// `-vocab..vocab`, negative ones counting from the end as in ONNX's
/// `Gather`): a bad id is an error naming it, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embedding {
    /// Rows of the table: ids are `0..vocab`.
    pub vocab: usize,
    /// The output's neuron axis (batch axis included): the input's rank.
    pub axis: usize,
}

impl Embedding {
    /// Weight `[vocab, nout]`: new columns random, as a new table's.
    pub(crate) fn params(&self, nout: usize) -> Vec<ParamSpec> {
        vec![spec(
            "weight",
            vec![self.vocab, nout],
            vec![Role::Fixed, Role::Out],
            Fill::Random,
        )]
    }

    /// The rows of `ids`, checked.
    fn rows(&self, ids: &Tensor) -> Result<Tensor> {
        let v = self.vocab as i64;
        let vals = ids.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let mut idx = Vec::with_capacity(vals.len());
        for x in vals {
            let i = x as i64;
            if !x.is_finite() || x.fract() != 0.0 || i < -v || i >= v {
                candle_core::bail!("embedding: id {x} outside the table's {v} rows");
            }
            idx.push(u32::try_from(i.rem_euclid(v)).map_err(candle_core::Error::wrap)?);
        }
        let n = idx.len();
        Tensor::from_vec(idx, n, ids.device())
    }

    /// The forward pass: one row per id.
    pub(crate) fn forward(&self, params: &Params, x: &Tensor) -> Result<Tensor> {
        let w = p(params, "weight")?;
        let (vocab, nout) = w.dims2()?;
        if vocab != self.vocab {
            candle_core::bail!(
                "embedding: a table of {vocab} rows, {} expected",
                self.vocab
            );
        }
        let y = w.index_select(&self.rows(x)?, 0)?;
        let mut dims = x.dims().to_vec();
        dims.push(nout);
        y.reshape(dims)
    }

    /// The per-sample output shape: the ids' shape and the neurons.
    pub(crate) fn infer(&self, s: &[usize], nout: usize) -> Vec<usize> {
        let mut out = s.to_vec();
        out.push(nout);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn a_dense_layer_on_the_last_axis_of_a_map() {
        // y = W x + b on each position of [1, 2, 1, 2] (channels last):
        // W = [[1, 2], [0, 1], [1, 0]] (out x in, held in x out),
        // b = [0, 1, -1].
        let l = LinearLast {
            bias: true,
            axis: 3,
        };
        let mut ps = Params::new();
        ps.insert("weight".into(), var(&[1., 0., 1., 2., 1., 0.], &[2, 3]));
        ps.insert("bias".into(), var(&[0., 1., -1.], &[3]));
        let x = Tensor::from_vec(vec![1f32, 1., 2., 0.], (1, 2, 1, 2), &Device::Cpu).unwrap();
        let y = l.forward(&ps, &x).unwrap();
        assert_eq!(y.dims(), &[1, 2, 1, 3]);
        // (1, 1) -> (3, 2, 0); (2, 0) -> (2, 1, 1).
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![3., 2., 0., 2., 1., 1.]
        );
        assert_eq!(l.infer(&[2, 1, 2], 3).unwrap(), vec![2, 1, 3]);
        assert_eq!(l.macs(&[2, 1, 2], 3), Some(12));
        assert_eq!(l.params(2, 3)[0].roles, vec![Role::In(0), Role::Out]);
    }

    #[test]
    fn a_layer_norm_over_the_last_axis() {
        // [1, 3] normalised: mean 2, variance 2/3 -> (−1, 0, 1)/√(2/3).
        let n = LayerNormLast { eps: 0.0, axis: 2 };
        let mut ps = Params::new();
        ps.insert("weight".into(), var(&[1., 1., 2.], &[3]));
        ps.insert("bias".into(), var(&[0., 0., 1.], &[3]));
        let x = Tensor::from_vec(vec![1f32, 2., 3.], (1, 1, 3), &Device::Cpu).unwrap();
        let y: Vec<f32> = n
            .forward(&ps, &x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let s = (2f32 / 3.).sqrt();
        let want = [-1. / s, 0., 2. / s + 1.];
        for (a, b) in y.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
    }

    #[test]
    fn an_embedding_picks_rows_and_refuses_bad_ids() {
        // Table [[1, 2], [3, 4], [5, 6]]; ids [[2, 0], [-1, 1]]: rows 2, 0,
        // 2 (−1 counts from the end), 1.
        let e = Embedding { vocab: 3, axis: 2 };
        let mut ps = Params::new();
        ps.insert("weight".into(), var(&[1., 2., 3., 4., 5., 6.], &[3, 2]));
        let x = Tensor::from_vec(vec![2f32, 0., -1., 1.], (2, 2), &Device::Cpu).unwrap();
        let y = e.forward(&ps, &x).unwrap();
        assert_eq!(y.dims(), &[2, 2, 2]);
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5., 6., 1., 2., 5., 6., 3., 4.]
        );
        assert_eq!(e.infer(&[2], 2), vec![2, 2]);
        assert_eq!(e.params(2)[0].shape, vec![3, 2]);
        assert_eq!(e.params(2)[0].roles, vec![Role::Fixed, Role::Out]);
        for bad in [3f32, -4., 0.5, f32::NAN] {
            let x = Tensor::from_vec(vec![0f32, bad], (1, 2), &Device::Cpu).unwrap();
            let err = e.forward(&ps, &x).unwrap_err().to_string();
            assert!(err.contains("outside the table"), "{bad}: {err}");
        }
    }
}
