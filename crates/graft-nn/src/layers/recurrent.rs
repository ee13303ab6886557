//! Recurrent layers over channels-first sequences `[N, F, T]` (the neuron
//! axis is 1 everywhere in graft, as for `Conv1d`'s `[N, C, L]`): RNN
//! (tanh), LSTM and GRU with PyTorch's gate order and equations. The output
//! is `[N, H, T]` with `sequences`, else the last state `[N, H]`. Weights `[gates·H, F]` and
//! `[gates·H, H]`, biases `[gates·H]`.

use candle_core::{Result, Tensor};

use super::activation::sigmoid;
use super::{p, Params};
use crate::op::{spec, Cell, Fill, ParamSpec, Role};

pub(crate) fn forward(params: &Params, cell: Cell, sequences: bool, x: &Tensor) -> Result<Tensor> {
    let (n, _, t) = x.dims3()?;
    let wih = p(params, "weight_ih")?.t()?;
    let whh = p(params, "weight_hh")?.t()?;
    let bih = p(params, "bias_ih")?;
    let bhh = p(params, "bias_hh")?;
    let hsize = p(params, "weight_hh")?.dim(1)?;
    let mut h = Tensor::zeros((n, hsize), x.dtype(), x.device())?;
    let mut c = h.clone();
    let mut outs = Vec::with_capacity(t);
    for step in 0..t {
        let xt = x.narrow(2, step, 1)?.squeeze(2)?;
        let gi = xt.matmul(&wih)?.broadcast_add(bih)?;
        let gh = h.matmul(&whh)?.broadcast_add(bhh)?;
        h = match cell {
            Cell::Rnn => gi.add(&gh)?.tanh()?,
            Cell::Lstm => {
                let g = gi.add(&gh)?.chunk(4, 1)?;
                let (i, f, gg, o) = (
                    sigmoid(&g[0])?,
                    sigmoid(&g[1])?,
                    g[2].tanh()?,
                    sigmoid(&g[3])?,
                );
                c = f.mul(&c)?.add(&i.mul(&gg)?)?;
                o.mul(&c.tanh()?)?
            }
            Cell::Gru => {
                let a = gi.chunk(3, 1)?;
                let b = gh.chunk(3, 1)?;
                let r = sigmoid(&a[0].add(&b[0])?)?;
                let z = sigmoid(&a[1].add(&b[1])?)?;
                let nn = a[2].add(&r.mul(&b[2])?)?.tanh()?;
                // h' = (1 − z)·n + z·h
                nn.sub(&z.mul(&nn)?)?.add(&z.mul(&h)?)?
            }
        };
        if sequences {
            outs.push(h.clone());
        }
    }
    if sequences {
        Tensor::stack(&outs, 2)
    } else {
        Ok(h)
    }
}

/// Weights `[gates·H, F]` and `[gates·H, H]`, biases `[gates·H]`: each
/// hidden unit owns one row in every gate block; the recurrent weight's
/// columns follow the units too.
pub(crate) fn params(cell: Cell, nin: usize, nout: usize) -> Vec<ParamSpec> {
    use Role::{In, OutGates, Rec};
    let g = cell.gates();
    vec![
        spec(
            "weight_ih",
            vec![g * nout, nin],
            vec![OutGates(g), In(0)],
            Fill::Random,
        ),
        spec(
            "weight_hh",
            vec![g * nout, nout],
            vec![OutGates(g), Rec],
            Fill::Random,
        ),
        spec(
            "bias_ih",
            vec![g * nout],
            vec![OutGates(g)],
            Fill::Value(0.0),
        ),
        spec(
            "bias_hh",
            vec![g * nout],
            vec![OutGates(g)],
            Fill::Value(0.0),
        ),
    ]
}

/// Multiply-accumulates of one sequence of `steps` (the input's second
/// axis, 1 when it has none): every gate reads the input and the state.
pub(crate) fn macs(cell: Cell, input: Option<&[usize]>, nin: u64, nout: u64) -> Option<u64> {
    let steps = input.and_then(|s| s.get(1)).copied().unwrap_or(1) as u64;
    [steps, cell.gates() as u64, nout, nin.checked_add(nout)?]
        .iter()
        .try_fold(1u64, |a, &x| a.checked_mul(x))
}
