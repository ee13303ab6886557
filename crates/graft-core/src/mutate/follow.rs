//! Following a forced change of one stack's neurons through everything tied
//! to them.
//!
//! When an edge into a stack is added or removed, the stack's output list is
//! fixed by the edit (old neurons in order, the new input's neurons as new
//! ones, or the removed input's slice dropped). There is no choice to make,
//! so no solver: the list is propagated through stack slices, invariant
//! inputs and depthwise blocks, downstream and upstream, and every vertex
//! reached must agree with every other path. Absorbing consumers take the
//! list as their input index list and stop the propagation. A vertex whose
//! size may not change, or two paths that disagree, refuse the edit.

use std::collections::{HashMap, VecDeque};

use crate::error::MutationError;
use crate::graph::{Constraint, Graph, SizeKind, VertexId};
use crate::planner::{Neuron, VertexChange};

fn identity(n: usize) -> Vec<Neuron> {
    (0..n).map(Neuron::Old).collect()
}

fn is_identity(l: &[Neuron], n: usize) -> bool {
    l.len() == n && l.iter().enumerate().all(|(i, x)| *x == Neuron::Old(i))
}

fn expand(l: &[Neuron], m: usize) -> Vec<Neuron> {
    let mut out = Vec::with_capacity(l.len() * m);
    for &x in l {
        match x {
            Neuron::Old(i) => out.extend((0..m).map(|k| Neuron::Old(i * m + k))),
            Neuron::New => out.extend(std::iter::repeat_n(Neuron::New, m)),
        }
    }
    out
}

fn collapse(l: &[Neuron], m: usize) -> Option<Vec<Neuron>> {
    if !l.len().is_multiple_of(m) {
        return None;
    }
    l.chunks(m)
        .map(|b| match b[0] {
            Neuron::New => b.iter().all(|x| *x == Neuron::New).then_some(Neuron::New),
            Neuron::Old(i) if i % m == 0 => b
                .iter()
                .enumerate()
                .all(|(k, x)| *x == Neuron::Old(i + k))
                .then_some(Neuron::Old(i / m)),
            Neuron::Old(_) => None,
        })
        .collect()
}

/// Split a stack's list into one list per input slice (old sizes `nin`).
/// New neurons go with the slice of the old neuron before them (the first
/// slice when they lead).
fn split(l: &[Neuron], nin: &[usize]) -> Vec<Vec<Neuron>> {
    let mut starts = Vec::with_capacity(nin.len());
    let mut off = 0;
    for &n in nin {
        starts.push(off);
        off += n;
    }
    let mut pieces = vec![Vec::new(); nin.len()];
    let mut cur = 0;
    for &x in l {
        if let Neuron::Old(i) = x {
            cur = starts.iter().rposition(|&s| s <= i).unwrap_or(0);
            // Skip empty slices that share the start (size 0 never happens).
            pieces[cur].push(Neuron::Old(i - starts[cur]));
        } else {
            pieces[cur].push(Neuron::New);
        }
    }
    pieces
}

/// Propagate `list` (the new output order of stack `source`, over its old
/// indices) on the edited graph `g`, where `source`'s own input list already
/// has the edit but every size is still the old one. `pinned` vertices may
/// not change. On success, sizes are set and the changed vertices returned.
pub(crate) fn follow(
    g: &mut Graph,
    source: VertexId,
    old_nout: usize,
    list: Vec<Neuron>,
    pinned: &[VertexId],
) -> Result<Vec<VertexChange>, MutationError> {
    let at = propagate(g, source, old_nout, list, pinned)?;
    let nout_of = |g: &Graph, v: VertexId| {
        if v == source {
            old_nout
        } else {
            g.v(v).nout()
        }
    };
    let mut changed: Vec<VertexId> = at
        .iter()
        .filter(|(v, l)| !is_identity(l, nout_of(g, **v)))
        .map(|(v, _)| *v)
        .collect();
    changed.sort();
    let before: HashMap<VertexId, usize> = changed.iter().map(|&v| (v, nout_of(g, v))).collect();
    for &v in &changed {
        let d = at[&v].len() as i64 - before[&v] as i64;
        for &c in g.v(v).outputs() {
            let cx = g.v(c);
            for k in cx.constraints() {
                if let Constraint::NinStep { input, step } = *k {
                    if cx.inputs()[input] == v && d % step as i64 != 0 {
                        return Err(MutationError::Misaligned {
                            source_vertex: g.name(source),
                            vertex: g.name(c),
                            why: format!("input {input} changes in steps of {step}, not by {d}"),
                        });
                    }
                }
            }
        }
    }
    let mut touched: Vec<VertexId> = changed.clone();
    for &v in &changed {
        let n = at[&v].len();
        let outs = g.v(v).outputs().to_vec();
        g.v_mut(v).nout = n;
        for c in outs {
            touched.push(c);
            let cx = g.v_mut(c);
            for k in 0..cx.inputs.len() {
                if cx.inputs[k] == v {
                    cx.nin[k] = n;
                }
            }
        }
    }
    touched.sort();
    touched.dedup();
    let order = g.topological_order()?;
    let mut report = Vec::new();
    for v in order
        .into_iter()
        .filter(|v| touched.binary_search(v).is_ok())
    {
        let vx = g.v(v);
        let outs = changed.binary_search(&v).ok().map(|_| at[&v].clone());
        let ins = vx
            .inputs()
            .iter()
            .map(|u| changed.binary_search(u).ok().map(|_| at[u].clone()))
            .collect();
        report.push(VertexChange {
            vertex: v,
            name: vx.name().to_string(),
            nout_before: before.get(&v).copied().unwrap_or(vx.nout()),
            nout_after: vx.nout(),
            nin_after: vx.nin().to_vec(),
            outs,
            ins,
            multiplier_after: None,
            slice_start_after: None,
        });
    }
    Ok(report)
}

/// The propagation itself: the list every reached vertex must take.
fn propagate(
    g: &Graph,
    source: VertexId,
    old_nout: usize,
    list: Vec<Neuron>,
    pinned: &[VertexId],
) -> Result<HashMap<VertexId, Vec<Neuron>>, MutationError> {
    let mut at: HashMap<VertexId, Vec<Neuron>> = HashMap::new();
    let mut queue: VecDeque<VertexId> = VecDeque::new();
    let src_name = g.name(source);
    let clash = |v: VertexId, why: String| MutationError::Misaligned {
        source_vertex: src_name.clone(),
        vertex: g.name(v),
        why,
    };
    let sx = g.v(source);
    if !is_identity(&list, old_nout) {
        if let Some(why) = sx.frozen_reason() {
            return Err(clash(
                source,
                format!("it cannot change size (it is {why})"),
            ));
        }
        let d = list.len() as i64 - old_nout as i64;
        for c in sx.constraints() {
            if let Constraint::NoutStep { step } = *c {
                if d % step as i64 != 0 {
                    return Err(clash(
                        source,
                        format!("its size changes in steps of {step}, not by {d}"),
                    ));
                }
            }
        }
    }
    at.insert(source, list);
    queue.push_back(source);
    let nout_of = |g: &Graph, v: VertexId| {
        if v == source {
            old_nout
        } else {
            g.v(v).nout()
        }
    };

    let assign = |at: &mut HashMap<VertexId, Vec<Neuron>>,
                  queue: &mut VecDeque<VertexId>,
                  v: VertexId,
                  l: Vec<Neuron>|
     -> Result<(), MutationError> {
        if let Some(prev) = at.get(&v) {
            return if *prev == l {
                Ok(())
            } else {
                Err(clash(v, "two paths ask for different neurons".into()))
            };
        }
        let vx = g.v(v);
        if !is_identity(&l, vx.nout()) {
            if let Some(why) = vx.frozen_reason() {
                return Err(clash(v, format!("it cannot change size (it is {why})")));
            }
            if vx.blocks().is_some() || vx.units().is_some() {
                return Err(clash(
                    v,
                    "its neurons are blocks or units, which change only through the planner".into(),
                ));
            }
            if pinned.contains(&v) {
                return Err(clash(v, "it feeds the edited edge".into()));
            }
            let d = l.len() as i64 - vx.nout() as i64;
            for c in vx.constraints() {
                if let Constraint::NoutStep { step } = *c {
                    if d % step as i64 != 0 {
                        return Err(clash(
                            v,
                            format!("its size changes in steps of {step}, not by {d}"),
                        ));
                    }
                }
            }
        }
        at.insert(v, l);
        queue.push_back(v);
        Ok(())
    };

    while let Some(v) = queue.pop_front() {
        let l = at[&v].clone();
        let vx = g.v(v).clone();
        // Downstream.
        let mut consumers = vx.outputs().to_vec();
        consumers.sort();
        consumers.dedup();
        for c in consumers {
            let cx = g.v(c);
            match (cx.kind(), cx.depthwise()) {
                (SizeKind::Stack, _) if c != source => {
                    let mut cat = Vec::with_capacity(cx.nout());
                    let mut off = 0;
                    for (&u, &n) in cx.inputs().iter().zip(cx.nin()) {
                        let part = at.get(&u).cloned().unwrap_or_else(|| identity(n));
                        cat.extend(part.into_iter().map(|x| match x {
                            Neuron::Old(i) => Neuron::Old(off + i),
                            Neuron::New => Neuron::New,
                        }));
                        off += n;
                    }
                    assign(&mut at, &mut queue, c, cat)?;
                }
                (SizeKind::Stack, _) => {}
                (SizeKind::Invariant | SizeKind::Select, _) if cx.couples_producer(v) => {
                    assign(&mut at, &mut queue, c, l.clone())?;
                }
                (SizeKind::Absorb, Some(m)) => {
                    assign(&mut at, &mut queue, c, expand(&l, m))?;
                }
                (SizeKind::Absorb, None) if cx.heads().is_some() => {
                    let w = cx.heads().unwrap_or(1);
                    let h = collapse(&l, w).ok_or_else(|| {
                        clash(c, format!("the change breaks its heads of {w} inputs"))
                    })?;
                    assign(&mut at, &mut queue, c, h)?;
                }
                (SizeKind::Immutable, _) if !is_identity(&l, nout_of(g, v)) => {
                    return Err(clash(c, "it is immutable and reads a changed size".into()));
                }
                (SizeKind::Absorb, None)
                    if cx.maps_neurons() && !is_identity(&l, nout_of(g, v)) =>
                {
                    return Err(clash(
                        c,
                        "a slice, shuffle, fold or tile of a changed size follows only through the planner"
                            .into(),
                    ));
                }
                (SizeKind::Absorb, None)
                    if cx.grouped().is_some() && !is_identity(&l, nout_of(g, v)) =>
                {
                    return Err(clash(
                        c,
                        "a grouped convolution's input changes only by whole rows of groups".into(),
                    ));
                }
                _ => {}
            }
        }
        // Upstream.
        if v == source {
            continue;
        }
        match (vx.kind(), vx.depthwise()) {
            (SizeKind::Invariant | SizeKind::Select, _) => {
                let tied: Vec<VertexId> = vx.tied_inputs().map(|(_, u)| u).collect();
                for u in tied {
                    assign(&mut at, &mut queue, u, l.clone())?;
                }
            }
            (SizeKind::Stack, _) => {
                let pieces = split(&l, vx.nin());
                for (&u, p) in vx.inputs().iter().zip(pieces) {
                    if u == source {
                        // The source's list is fixed; a stack reading it
                        // agrees only if it asks for the same.
                        if at[&source] != p {
                            return Err(clash(v, "two paths ask for different neurons".into()));
                        }
                    } else {
                        assign(&mut at, &mut queue, u, p)?;
                    }
                }
            }
            (SizeKind::Absorb, None) if vx.maps_neurons() && !is_identity(&l, nout_of(g, v)) => {
                return Err(clash(
                    v,
                    "a slice, shuffle, fold or tile of a changed size follows only through the planner".into(),
                ));
            }
            (SizeKind::Absorb, None) if vx.heads().is_some() => {
                let w = vx.heads().unwrap_or(1);
                assign(&mut at, &mut queue, vx.inputs()[0], expand(&l, w))?;
            }
            (SizeKind::Absorb, Some(m)) => {
                let c = collapse(&l, m).ok_or_else(|| {
                    clash(v, format!("the change breaks its blocks of {m} outputs"))
                })?;
                assign(&mut at, &mut queue, vx.inputs()[0], c)?;
            }
            _ => {}
        }
    }

    Ok(at)
}
