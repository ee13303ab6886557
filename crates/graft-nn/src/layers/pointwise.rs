//! The pointwise family: unary functions ([`Unary`]) and elementwise
//! functions of several values with numpy broadcasting ([`Elementwise`]),
//! whose operands are the vertex's inputs or constant parameters.
//!
//! Everything graft knows about these ops sits here: the size rule they
//! declare (inputs whose neuron axis lines up with the output's are tied,
//! inputs broadcast along it are free), the layout of constant operands
//! (the axis that follows the output neurons), the forward pass and the
//! shape rule. Their ONNX import and export live in graft-onnx's
//! `ops/pointwise.rs`.

use candle_core::{Result, Tensor};
use graft_core::{Constraint, SizeKind};
use serde::{Deserialize, Serialize};

use super::Params;
use crate::op::{Declared, Fill, ParamSpec, Role};

/// A pointwise function of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unary {
    /// The Gauss error function.
    Erf,
    /// √x.
    Sqrt,
    /// 1 / x.
    Reciprocal,
    /// −x.
    Neg,
    /// |x|.
    Abs,
    /// ln x.
    Log,
    /// eˣ.
    Exp,
    /// ⌊x⌋.
    Floor,
    /// ⌈x⌉.
    Ceil,
    /// Rounded half to even.
    Round,
    /// sin x.
    Sin,
    /// cos x.
    Cos,
    /// −1, 0 or 1.
    Sign,
    /// ln(1 + eˣ).
    Softplus,
    /// x / (1 + |x|).
    Softsign,
    /// x · sigmoid(x) (SiLU, swish).
    Silu,
    /// x · tanh(softplus(x)).
    Mish,
}

impl Unary {
    /// Every unary function, for tests and registries.
    pub const ALL: [Unary; 17] = [
        Unary::Erf,
        Unary::Sqrt,
        Unary::Reciprocal,
        Unary::Neg,
        Unary::Abs,
        Unary::Log,
        Unary::Exp,
        Unary::Floor,
        Unary::Ceil,
        Unary::Round,
        Unary::Sin,
        Unary::Cos,
        Unary::Sign,
        Unary::Softplus,
        Unary::Softsign,
        Unary::Silu,
        Unary::Mish,
    ];

    /// The ONNX operator of the same name (`Silu` and `Mish` have none
    /// before opset 18's Mish; Silu is written as `x * Sigmoid(x)`).
    pub fn onnx_name(self) -> &'static str {
        match self {
            Unary::Erf => "Erf",
            Unary::Sqrt => "Sqrt",
            Unary::Reciprocal => "Reciprocal",
            Unary::Neg => "Neg",
            Unary::Abs => "Abs",
            Unary::Log => "Log",
            Unary::Exp => "Exp",
            Unary::Floor => "Floor",
            Unary::Ceil => "Ceil",
            Unary::Round => "Round",
            Unary::Sin => "Sin",
            Unary::Cos => "Cos",
            Unary::Sign => "Sign",
            Unary::Softplus => "Softplus",
            Unary::Softsign => "Softsign",
            Unary::Silu => "Silu",
            Unary::Mish => "Mish",
        }
    }

    /// The forward pass.
    pub(crate) fn forward(self, x: &Tensor) -> Result<Tensor> {
        let softplus = |x: &Tensor| -> Result<Tensor> {
            // ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|), stable for large |x|.
            x.relu()?
                .add(&x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?)
        };
        match self {
            Unary::Erf => x.erf(),
            Unary::Sqrt => x.sqrt(),
            Unary::Reciprocal => x.recip(),
            Unary::Neg => x.neg(),
            Unary::Abs => x.abs(),
            Unary::Log => x.log(),
            Unary::Exp => x.exp(),
            Unary::Floor => x.floor(),
            Unary::Ceil => x.ceil(),
            Unary::Round => round_half_even(x),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Sign => x.sign(),
            Unary::Softplus => softplus(x),
            Unary::Softsign => x.div(&x.abs()?.affine(1.0, 1.0)?),
            Unary::Silu => x.silu(),
            Unary::Mish => x.mul(&softplus(x)?.tanh()?),
        }
    }
}

/// ONNX rounds halves to even; candle's `round` rounds them away from 0.
fn round_half_even(x: &Tensor) -> Result<Tensor> {
    let r = x.round()?;
    // Where |x − ⌊x⌋| = ½ and r is odd, step back towards x.
    let frac = x.sub(&x.floor()?)?;
    let half = frac.eq(0.5)?;
    let odd = r.affine(0.5, 0.0)?.floor()?.affine(2.0, 0.0)?.ne(&r)?;
    let back = r.sub(x)?.sign()?;
    let fixed = r.sub(&back)?;
    half.mul(&odd)?.where_cond(&fixed, &r)
}

/// A function of two values, folded left over more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binary {
    /// a + b.
    Add,
    /// a − b.
    Sub,
    /// a · b.
    Mul,
    /// a / b.
    Div,
    /// aᵇ (a scalar exponent is exact for negative bases too).
    Pow,
    /// min(a, b).
    Min,
    /// max(a, b).
    Max,
}

impl Binary {
    /// The ONNX operator.
    pub fn onnx_name(self) -> &'static str {
        match self {
            Binary::Add => "Add",
            Binary::Sub => "Sub",
            Binary::Mul => "Mul",
            Binary::Div => "Div",
            Binary::Pow => "Pow",
            Binary::Min => "Min",
            Binary::Max => "Max",
        }
    }

    /// The value a new neuron's entry of a constant operand takes: the
    /// identity of the function where it has one.
    fn neutral(self) -> f64 {
        match self {
            Binary::Add | Binary::Sub | Binary::Min | Binary::Max => 0.0,
            Binary::Mul | Binary::Div | Binary::Pow => 1.0,
        }
    }

    fn apply(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match self {
            Binary::Add => a.broadcast_add(b),
            Binary::Sub => a.broadcast_sub(b),
            Binary::Mul => a.broadcast_mul(b),
            Binary::Div => a.broadcast_div(b),
            Binary::Pow => {
                if b.elem_count() == 1 {
                    let e = b.flatten_all()?.to_dtype(candle_core::DType::F64)?;
                    let e = e.to_vec1::<f64>()?[0];
                    let y = a.powf(e)?;
                    // powf keeps the shape of `a`; broadcast to both ranks.
                    let shape = broadcast_shape(a.dims(), b.dims())
                        .ok_or_else(|| candle_core::Error::Msg("shapes do not broadcast".into()))?;
                    y.broadcast_as(shape)?.contiguous()
                } else {
                    a.broadcast_pow(b)
                }
            }
            Binary::Min => a.broadcast_minimum(b),
            Binary::Max => a.broadcast_maximum(b),
        }
    }
}

/// One operand of an elementwise op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// The vertex's input at this position.
    Input(usize),
    /// The constant parameter `c{k}`.
    Const(usize),
}

/// A constant operand: its shape as the file gave it (leading axes may be
/// missing, numpy-style) and the axis that follows the output neurons, if
/// any (that axis's size is the vertex's nout and changes with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstOperand {
    /// Shape (with the current nout on the axis `follows`).
    pub shape: Vec<usize>,
    /// The axis whose entries belong to the output neurons.
    pub follows: Option<usize>,
}

/// An elementwise function of several values with numpy broadcasting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elementwise {
    /// The function, folded left over the operands.
    pub f: Binary,
    /// The operands in order.
    pub operands: Vec<Operand>,
    /// The constant operands, `c0`, `c1`, ...
    pub consts: Vec<ConstOperand>,
    /// Input positions broadcast along the neuron axis (their sizes are
    /// free).
    #[serde(default)]
    pub free: Vec<usize>,
    /// The output's neuron axis (batch axis included), if it has one.
    pub axis: Option<usize>,
    /// An operand's neurons land on another axis than the output's: graft
    /// cannot keep them aligned, so the vertex is immutable (its size and
    /// its inputs' sizes are frozen).
    #[serde(default)]
    pub frozen: bool,
}

impl Elementwise {
    /// The parameter name of constant `k`.
    pub fn const_name(k: usize) -> String {
        format!("c{k}")
    }

    /// Follow the removal of input `pos` (an edge edit): its operands go,
    /// later inputs move down one place. The function folds over what is
    /// left (`x + y + z` without `y` is `x + z`), which keeps its meaning
    /// for sums, products, minima and maxima, and for a difference,
    /// quotient or power when the input removed is not the first operand.
    ///
    /// # Errors
    /// The first operand of a difference, quotient or power, or the last
    /// computed input.
    pub fn input_removed(&mut self, pos: usize) -> std::result::Result<(), String> {
        let first = self.operands.first() == Some(&Operand::Input(pos));
        let ordered = matches!(self.f, Binary::Sub | Binary::Div | Binary::Pow);
        if first && ordered {
            return Err(format!(
                "input {pos} is the first operand of a {}: removing it changes the function",
                self.f.onnx_name()
            ));
        }
        let operands: Vec<Operand> = self
            .operands
            .iter()
            .filter(|o| **o != Operand::Input(pos))
            .map(|o| match *o {
                Operand::Input(k) if k > pos => Operand::Input(k - 1),
                other => other,
            })
            .collect();
        if !operands.iter().any(|o| matches!(o, Operand::Input(_))) {
            return Err(format!("input {pos} is its last computed input"));
        }
        self.operands = operands;
        self.free = self
            .free
            .iter()
            .filter(|&&k| k != pos)
            .map(|&k| if k > pos { k - 1 } else { k })
            .collect();
        Ok(())
    }

    /// Follow an input added at `pos` (an edge edit): later inputs move up
    /// one place, and the new one joins the fold as a last operand (a sum
    /// gains a term).
    ///
    /// # Errors
    /// A difference, quotient or power (no order to add a term in).
    pub fn input_added(&mut self, pos: usize) -> std::result::Result<(), String> {
        if matches!(self.f, Binary::Sub | Binary::Div | Binary::Pow) {
            return Err(format!("a {} takes no further input", self.f.onnx_name()));
        }
        for o in &mut self.operands {
            if let Operand::Input(k) = o {
                if *k >= pos {
                    *k += 1;
                }
            }
        }
        for k in &mut self.free {
            if *k >= pos {
                *k += 1;
            }
        }
        self.operands.push(Operand::Input(pos));
        Ok(())
    }

    /// The size rule: an invariant vertex whose broadcast inputs are free;
    /// when every input is broadcast, the output's size comes from the
    /// constants alone (absorbing).
    pub(crate) fn declare(&self, inputs: usize) -> Declared {
        if self.frozen {
            return Declared {
                kind: SizeKind::Immutable,
                constraints: Vec::new(),
            };
        }
        if inputs > 0 && (0..inputs).all(|p| self.free.contains(&p)) {
            // Neurons from the constants alone; with no neuron axis at all
            // (a scalar per position) the one neuron never changes.
            return Declared {
                kind: SizeKind::Absorb,
                constraints: if self.axis.is_none() {
                    vec![Constraint::Fixed]
                } else {
                    Vec::new()
                },
            };
        }
        Declared {
            kind: SizeKind::Invariant,
            constraints: self
                .free
                .iter()
                .map(|&input| Constraint::Broadcast { input })
                .collect(),
        }
    }

    /// True when nout comes from the constants (every input broadcast).
    pub(crate) fn chooses_size(&self, inputs: usize) -> bool {
        self.frozen || inputs > 0 && (0..inputs).all(|p| self.free.contains(&p))
    }

    /// The constants as parameters at output size `nout`.
    pub(crate) fn params(&self, nout: usize) -> Vec<ParamSpec> {
        self.consts
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let mut shape = c.shape.clone();
                let mut roles = vec![Role::Fixed; shape.len()];
                if let Some(a) = c.follows.filter(|&a| a < shape.len()) {
                    shape[a] = nout;
                    roles[a] = Role::Out;
                }
                ParamSpec {
                    name: Self::const_name(k),
                    shape,
                    roles,
                    new_out: Fill::Value(self.f.neutral()),
                    trainable: true,
                }
            })
            .collect()
    }

    /// The forward pass.
    pub(crate) fn forward(&self, params: &Params, xs: &[Tensor]) -> Result<Tensor> {
        let mut acc: Option<Tensor> = None;
        for o in &self.operands {
            let t = match *o {
                Operand::Input(k) => xs
                    .get(k)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("no input {k}")))?,
                Operand::Const(k) => {
                    let t = super::p(params, &Self::const_name(k))?;
                    match xs.first() {
                        Some(x) if x.dtype() != t.dtype() => t.to_dtype(x.dtype())?,
                        _ => t.clone(),
                    }
                }
            };
            acc = Some(match acc {
                None => t,
                Some(a) => self.f.apply(&a, &t)?,
            });
        }
        acc.ok_or_else(|| candle_core::Error::Msg("no operands".into()))
    }

    /// The per-sample output shape: the broadcast of the inputs' shapes
    /// (batch axis added back) and the constants' shapes at `nout`.
    pub(crate) fn infer(
        &self,
        ins: &[&Vec<usize>],
        nout: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let mut full: Vec<usize> = Vec::new();
        let consts = self.params(nout);
        for o in &self.operands {
            let s: Vec<usize> = match *o {
                Operand::Input(k) => {
                    let s = ins.get(k).ok_or(format!("no input {k}"))?;
                    std::iter::once(1).chain(s.iter().copied()).collect()
                }
                Operand::Const(k) => consts
                    .get(k)
                    .ok_or(format!("no constant {k}"))?
                    .shape
                    .clone(),
            };
            full = broadcast_shape(&full, &s)
                .ok_or_else(|| format!("shapes {full:?} and {s:?} do not broadcast"))?;
        }
        if full.is_empty() {
            return Err("a scalar has no batch axis".into());
        }
        Ok(full[1..].to_vec())
    }
}

/// Numpy broadcasting of two shapes (right-aligned; 1 stretches).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        let off = n - s.len();
        if i < off {
            1
        } else {
            s[i - off]
        }
    };
    (0..n)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_edits_renumber_operands_or_refuse() {
        let e = |f: Binary| Elementwise {
            f,
            operands: vec![
                Operand::Input(0),
                Operand::Const(0),
                Operand::Input(1),
                Operand::Input(2),
            ],
            consts: Vec::new(),
            free: vec![2],
            axis: Some(1),
            frozen: false,
        };
        // x0 + c0 + x1 + x2 without x1: x0 + c0 + x2, x2 now input 1.
        let mut sum = e(Binary::Add);
        sum.input_removed(1).unwrap();
        assert_eq!(
            sum.operands,
            vec![Operand::Input(0), Operand::Const(0), Operand::Input(1)]
        );
        assert_eq!(sum.free, vec![1]);
        // An input added at 0 shifts the others and joins the sum.
        sum.input_added(0).unwrap();
        assert_eq!(
            sum.operands,
            vec![
                Operand::Input(1),
                Operand::Const(0),
                Operand::Input(2),
                Operand::Input(0)
            ]
        );
        assert_eq!(sum.free, vec![2]);
        // A difference loses neither its first operand nor gains a term;
        // a refusal leaves the op as it was.
        let mut diff = e(Binary::Sub);
        let before = diff.clone();
        assert!(diff.input_removed(0).unwrap_err().contains("first operand"));
        assert!(diff.input_added(3).is_err());
        assert_eq!(diff, before);
        diff.input_removed(2).unwrap();
        // The last computed input cannot go.
        let mut one = Elementwise {
            operands: vec![Operand::Input(0), Operand::Const(0)],
            free: Vec::new(),
            ..e(Binary::Mul)
        };
        assert!(one
            .input_removed(0)
            .unwrap_err()
            .contains("last computed input"));
    }
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[2, 3, 4], &[3, 1]), Some(vec![2, 3, 4]));
        assert_eq!(
            broadcast_shape(&[1, 8, 1, 1], &[1, 8, 5, 5]),
            Some(vec![1, 8, 5, 5])
        );
        assert_eq!(broadcast_shape(&[], &[4]), Some(vec![4]));
        assert_eq!(broadcast_shape(&[2, 3], &[4]), None);
    }

    #[test]
    fn a_constant_operand_broadcasts_and_follows_the_neurons() {
        // y = x · c with x [2, 3, 2] (neurons on axis 1) and c [3, 1]:
        // row j of every sample is scaled by c[j].
        let e = Elementwise {
            f: Binary::Mul,
            operands: vec![Operand::Input(0), Operand::Const(0)],
            consts: vec![ConstOperand {
                shape: vec![3, 1],
                follows: Some(0),
            }],
            free: vec![],
            axis: Some(1),
            frozen: false,
        };
        let spec = e.params(5);
        assert_eq!(spec[0].shape, vec![5, 1]);
        assert_eq!(spec[0].roles, vec![Role::Out, Role::Fixed]);
        let mut params = Params::new();
        params.insert("c0".into(), t(&[1., 2., 3.], &[3, 1]));
        let x = t(
            &[1., 1., 1., 1., 1., 1., 2., 2., 2., 2., 2., 2.],
            &[2, 3, 2],
        );
        let y = e.forward(&params, &[x]).unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        // sample 0: [1,1]·1, [1,1]·2, [1,1]·3; sample 1: twice that.
        assert_eq!(got, vec![1., 1., 2., 2., 3., 3., 2., 2., 4., 4., 6., 6.]);
        assert_eq!(e.infer(&[&vec![3, 2]], 3).unwrap(), vec![3, 2]);
    }

    #[test]
    fn a_scalar_power_is_exact_for_negative_bases() {
        // (−2)² = 4 and (−2)³ = −8; candle's exp(b·ln a) would give NaN.
        let sq = Binary::Pow
            .apply(&t(&[-2., 3.], &[2]), &t(&[2.], &[1]))
            .unwrap();
        assert_eq!(sq.to_vec1::<f32>().unwrap(), vec![4., 9.]);
        let cube = Binary::Pow.apply(&t(&[-2.], &[1]), &t(&[3.], &[])).unwrap();
        assert_eq!(cube.to_vec1::<f32>().unwrap(), vec![-8.]);
    }

    #[test]
    fn unary_functions_match_their_definitions() {
        let x = t(&[-1.5, -0.5, 0.5, 2.5], &[4]);
        let f = |u: Unary| u.forward(&x).unwrap().to_vec1::<f32>().unwrap();
        // Halves round to even: −2, −0, 0, 2.
        assert_eq!(f(Unary::Round), vec![-2., -0., 0., 2.]);
        assert_eq!(f(Unary::Sign), vec![-1., -1., 1., 1.]);
        // softsign(2.5) = 2.5 / 3.5.
        assert!((f(Unary::Softsign)[3] - 2.5 / 3.5).abs() < 1e-6);
        // softplus(2.5) = ln(1 + e^2.5) = 2.5789...
        assert!((f(Unary::Softplus)[3] - (1f32 + 2.5f32.exp()).ln()).abs() < 1e-6);
        // erf(0.5) = 0.5205 (tables).
        assert!((f(Unary::Erf)[2] - 0.520_499_9).abs() < 1e-5);
        // mish(x) = x · tanh(softplus(x)).
        let m = f(Unary::Mish)[0];
        let want = -1.5f32 * (1f32 + (-1.5f32).exp()).ln().tanh();
        assert!((m - want).abs() < 1e-6);
    }
}
