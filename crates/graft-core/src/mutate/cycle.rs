//! Size cycles: wiring under which a size must equal itself plus something
//! positive, so that no assignment of sizes of at least 1 exists.
//!
//! The check looks at wiring alone (sizes may be inconsistent, as in a draft
//! right after an edit). Every vertex whose size is not tied to its inputs
//! (input, absorbing, immutable) is a variable; stacks sum their inputs,
//! depthwise vertices multiply theirs, and every invariant vertex states that
//! its inputs are equal. Equalities of the form `c·x = c·y` are merged
//! (union-find) until nothing changes; an equality whose remaining terms all
//! have the same sign can never hold, since every size is at least 1.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::graph::{Graph, SizeKind, VertexId};

type Expr = BTreeMap<u32, i64>;

fn add_into(acc: &mut Expr, e: &Expr, k: i64) {
    for (&v, &c) in e {
        let slot = acc.entry(v).or_insert(0);
        *slot += k * c;
        if *slot == 0 {
            acc.remove(&v);
        }
    }
}

fn find(p: &mut [u32], mut x: u32) -> u32 {
    while p[x as usize] != x {
        p[x as usize] = p[p[x as usize] as usize];
        x = p[x as usize];
    }
    x
}

/// The vertices of a size cycle in `g`, if there is one: the invariant
/// vertex whose inputs can never be equal, then a path between two of those
/// inputs through size-coupled vertices, back to the invariant vertex.
/// `g` must be acyclic.
pub(crate) fn size_cycle(g: &Graph) -> Option<Vec<String>> {
    let topo = g.topological_order().ok()?;
    let mut expr: HashMap<VertexId, Expr> = HashMap::new();
    let mut nvars = 0u32;
    // (invariant vertex, input position, input expression minus input 0's)
    let mut eqs: Vec<(VertexId, usize, Expr)> = Vec::new();
    for &v in &topo {
        let vx = g.v(v);
        let e = match (vx.kind(), vx.depthwise()) {
            (SizeKind::Stack, _) => {
                let mut e = Expr::new();
                for u in vx.inputs() {
                    add_into(&mut e, &expr[u], 1);
                }
                e
            }
            (SizeKind::Invariant | SizeKind::Select, _) => {
                // A select's control (input 0) and broadcast inputs are
                // free; the others are tied.
                let mut tied = vx.tied_inputs();
                let (_, u0) = tied.next().expect("a checked vertex has a tied input");
                let first = expr[&u0].clone();
                for (pos, u) in tied {
                    let mut d = expr[&u].clone();
                    add_into(&mut d, &first, -1);
                    eqs.push((v, pos, d));
                }
                first
            }
            (SizeKind::Absorb, Some(m)) => {
                let mut e = Expr::new();
                add_into(&mut e, &expr[&vx.inputs()[0]], m as i64);
                e
            }
            // A shuffle keeps its input's size; a slice's part is a size of
            // its own (bounded by the input's, not equal to it).
            (SizeKind::Absorb, None) if vx.shuffle_groups().is_some() => {
                expr[&vx.inputs()[0]].clone()
            }
            _ => {
                nvars += 1;
                Expr::from([(nvars - 1, 1)])
            }
        };
        expr.insert(v, e);
    }

    let mut parent: Vec<u32> = (0..nvars).collect();
    let mut open: Vec<bool> = vec![true; eqs.len()];
    loop {
        let mut merged = false;
        for (k, (at, pos, e)) in eqs.iter().enumerate() {
            if !open[k] {
                continue;
            }
            let mut n = Expr::new();
            for (&x, &c) in e {
                let r = find(&mut parent, x);
                add_into(&mut n, &Expr::from([(r, c)]), 1);
            }
            if n.is_empty() {
                open[k] = false;
                continue;
            }
            if n.values().all(|&c| c > 0) || n.values().all(|&c| c < 0) {
                return Some(name_cycle(g, *at, *pos));
            }
            if n.len() == 2 {
                let mut it = n.iter();
                let (&x, &cx) = it.next().expect("two terms");
                let (&y, &cy) = it.next().expect("two terms");
                if cx == -cy {
                    let (rx, ry) = (find(&mut parent, x), find(&mut parent, y));
                    parent[rx.max(ry) as usize] = rx.min(ry);
                    open[k] = false;
                    merged = true;
                }
            }
        }
        if !merged {
            return None;
        }
    }
}

/// `[at, input 0 of at, ..., input pos of at, at]`: a shortest path between
/// the two inputs through size-coupled edges that avoids `at` (or just the
/// two inputs when no such path exists).
fn name_cycle(g: &Graph, at: VertexId, pos: usize) -> Vec<String> {
    let ins = g.v(at).inputs();
    let base = g.v(at).tied_inputs().next().map_or(0, |(p, _)| p);
    let (a, b) = (ins[base], ins[pos]);
    let mut prev: HashMap<VertexId, VertexId> = HashMap::new();
    let mut queue = VecDeque::from([a]);
    prev.insert(a, a);
    let mut found = a == b;
    while let Some(x) = queue.pop_front() {
        if x == b {
            found = true;
            break;
        }
        let xv = g.v(x);
        let mut next: Vec<VertexId> = xv.tied_inputs().map(|(_, u)| u).collect();
        next.extend(
            xv.outputs()
                .iter()
                .filter(|&&o| g.v(o).couples_producer(x))
                .copied(),
        );
        for y in next {
            if y != at && !prev.contains_key(&y) {
                prev.insert(y, x);
                queue.push_back(y);
            }
        }
    }
    let mut path = vec![b];
    if found {
        let mut x = b;
        while x != a {
            x = prev[&x];
            path.push(x);
        }
    } else {
        path.push(a);
    }
    path.reverse();
    let mut names = vec![g.name(at)];
    names.extend(path.iter().map(|&v| g.name(v)));
    names.push(g.name(at));
    names.dedup();
    names
}
