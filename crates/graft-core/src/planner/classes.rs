//! From a size-coupled component to a small integer problem.
//!
//! 1. Union-find over (vertex, neuron) pairs tied by stack slices,
//!    invariant inputs and depthwise blocks gives neuron *classes*: neurons
//!    that must be kept or dropped together. Vertices that only pass their
//!    tied inputs' neurons on (invariant, select) share those inputs'
//!    neurons instead of being tied to them one by one.
//! 2. A class's *coverage* says how many times it appears in each vertex.
//!    Classes with the same coverage form a *group*: they are interchangeable
//!    except for utility, so within a group the best are kept first, and a
//!    group is summarised by its sorted prefix sums.
//! 3. New neurons go into *gaps* (the place right after a neuron). A
//!    weighted union-find over gaps follows the same ties (a depthwise tie
//!    joins the gap after input `i` to the gap after output block `i`, with
//!    weight `m`). A group grows at the gap class reached from a member of
//!    its *anchor* class (the one nearest the end) whose weights per vertex
//!    are proportional to the group's coverage, so every tie stays aligned
//!    and depthwise blocks stay contiguous; without such a class the group
//!    cannot grow.
//! 4. Each vertex's size is then a linear function of the group counts: a
//!    *row*. Vertices with identical rows are merged (their penalty weights
//!    summed for the L1 term, maximised for the max term).

// FxHash: the maps here are keyed by small integers and slices of them,
// looked up once per neuron on million-neuron graphs; SipHash's DoS
// resistance buys nothing for a planner's own indices.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::graph::{Constraint, Graph, SizeKind, VertexId};
use crate::planner::request::Utility;

/// A depthwise vertex whose multiplier is tried at another value: its
/// outputs (and those of the unary invariant chain `tail` reading them) keep
/// the first `min(from, to)` outputs of each block and add `to − from` new
/// ones when growing.
pub(crate) struct Retarget {
    pub vertex: VertexId,
    pub from: usize,
    pub to: usize,
    pub tail: Vec<VertexId>,
}

/// A component prepared for solving.
pub(crate) struct Component {
    /// Vertices in topological order; local index = position.
    pub verts: Vec<VertexId>,
    /// First neuron index of each local vertex. Aliases (invariant and
    /// select vertices and the inputs they tie) share one range
    /// ([`alias_ranges`]), so ranges may repeat.
    pub base: Vec<usize>,
    /// The local vertex that owns each local vertex's range (itself, or
    /// the first alias laid out there).
    pub owner: Vec<usize>,
    /// Class of every neuron.
    pub class_of: Vec<u32>,
    /// Group of every class.
    pub group_of_class: Vec<u32>,
    /// The groups.
    pub groups: Vec<Group>,
    /// Merged rows.
    pub rows: Vec<Row>,
    /// Row of each local vertex.
    pub row_of_vertex: Vec<u32>,
    /// Local index of each vertex.
    pub local: HashMap<VertexId, u32>,
}

/// Interchangeable classes.
pub(crate) struct Group {
    /// Classes sorted by utility (descending), ties by class order.
    pub order: Vec<u32>,
    /// `prefix[k]`: utility of the best `k` classes.
    pub prefix: Vec<f64>,
    /// Number of classes with utility >= 0.
    pub nonneg: usize,
    /// Covers a vertex whose size may not change.
    pub frozen: bool,
    /// Class nearest the end (new neurons are inserted near it).
    pub anchor: u32,
    /// Where new neurons of this group go: `(gap, count)` pairs, meaning
    /// `count` new neurons right after neuron `gap` (component-wide index)
    /// per new neuron of the group. `None` when no consistent place exists,
    /// and the group cannot grow.
    pub insert_at: Option<Vec<(usize, u32)>>,
}

/// A vertex size as a linear function of the group counts.
pub(crate) struct Row {
    /// (group, count) pairs, by group.
    pub terms: Vec<(u32, u32)>,
    /// Current size.
    pub size: i64,
    /// Sum of the merged vertices' penalty weights (for the L1 term).
    pub l1_weight: f64,
    /// Largest of the merged vertices' penalty weights (for the max term).
    pub max_weight: f64,
    /// Sizes may change only in multiples of this.
    pub step: i64,
    /// The smallest size: 1, or more when a reader needs at least that
    /// many neurons (`Constraint::NinAtLeast`).
    pub floor: i64,
    /// Exact target size, if any.
    pub exact: Option<i64>,
    /// Relaxed target sizes (each must also differ from `size`).
    pub relaxed: Vec<i64>,
}

impl Row {
    /// The largest size this row may take: [`MAX_NOUT`](super::MAX_NOUT),
    /// or its current size if that is larger.
    pub(crate) fn ceiling(&self) -> i64 {
        (super::MAX_NOUT as i64).max(self.size)
    }

    /// The smallest and largest size this row takes over a box of counts.
    pub(crate) fn span(&self, lo: &[i64], hi: &[i64]) -> (i64, i64) {
        self.terms.iter().fold((0, 0), |(a, b), &(g, c)| {
            let c = c as i64;
            (a + c * lo[g as usize], b + c * hi[g as usize])
        })
    }
}

/// Minimal union-find with path halving and union by size.
struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let p = self.parent[x as usize];
            self.parent[x as usize] = self.parent[p as usize];
            x = self.parent[x as usize];
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] += self.size[small as usize];
    }
}

/// A positive rational, for the weights of the gap union-find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ratio(u64, u64);

impl Ratio {
    const ONE: Ratio = Ratio(1, 1);
    fn mul(self, o: Ratio) -> Ratio {
        // Most ties are one to one: skip the gcd.
        if self == Ratio::ONE {
            return o;
        }
        if o == Ratio::ONE {
            return self;
        }
        let (n, d) = (self.0 * o.0, self.1 * o.1);
        let g = gcd_u(n, d);
        Ratio(n / g, d / g)
    }
    fn inv(self) -> Ratio {
        Ratio(self.1, self.0)
    }
}

fn gcd_u(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd_u(b, a % b)
    }
}

/// Union-find over gaps ("right after neuron x") where each gap carries a
/// weight relative to its root: inserting one unit at the class puts
/// `weight` new neurons in that gap. Depthwise ties scale weights by the
/// multiplier. A class whose ties demand two different weights for one gap
/// is poisoned: nothing can be inserted there.
/// Tie the `n` neurons from `base` on, cut into `g` equal blocks, block to
/// block: neuron `k` of every block with neuron `k` of the first, kept and
/// grown at the same local place (a grouped convolution's sides, a
/// regrouped axis's blocks).
fn tie_aligned_blocks(
    uf: &mut UnionFind,
    mut gaps: Option<&mut GapUnion>,
    base: usize,
    n: usize,
    g: usize,
) {
    let b = n / g;
    for i in 1..g {
        for k in 0..b {
            let (x, y) = ((base + i * b + k) as u32, (base + k) as u32);
            uf.union(x, y);
            if let Some(gp) = gaps.as_deref_mut() {
                gp.union(x, y, Ratio::ONE);
            }
        }
    }
}

struct GapUnion {
    parent: Vec<u32>,
    ratio: Vec<Ratio>,
    poisoned: Vec<bool>,
    /// Scratch path for `find`, kept to avoid an allocation per call.
    path: Vec<u32>,
}

impl GapUnion {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n as u32).collect(),
            ratio: vec![Ratio::ONE; n],
            poisoned: vec![false; n],
            path: Vec::new(),
        }
    }
    /// Root of `x` and the weight of `x` relative to it.
    fn find(&mut self, x: u32) -> (u32, Ratio) {
        let mut cur = x;
        self.path.clear();
        while self.parent[cur as usize] != cur {
            self.path.push(cur);
            cur = self.parent[cur as usize];
        }
        let root = cur;
        if self.path.is_empty() {
            return (root, Ratio::ONE);
        }
        // Compress: every node on the path points at the root.
        let mut acc = Ratio::ONE;
        for i in (0..self.path.len()).rev() {
            let p = self.path[i] as usize;
            acc = self.ratio[p].mul(acc);
            self.ratio[p] = acc;
            self.parent[p] = root;
        }
        (root, self.ratio[x as usize])
    }
    /// Close the gap after neuron `x` (and every gap tied to it): nothing
    /// may be inserted there. Call after the last union.
    fn close(&mut self, x: u32) {
        let (r, _) = self.find(x);
        self.poisoned[r as usize] = true;
    }

    /// Tie `a` and `b` with weight(a) = r · weight(b).
    fn union(&mut self, a: u32, b: u32, r: Ratio) {
        let (ra, wa) = self.find(a);
        let (rb, wb) = self.find(b);
        if ra == rb {
            if wa != r.mul(wb) {
                self.poisoned[ra as usize] = true;
            }
            return;
        }
        // weight(ra) = r · wb / wa · weight(rb)
        self.parent[ra as usize] = rb;
        self.ratio[ra as usize] = r.mul(wb).mul(wa.inv());
        if self.poisoned[ra as usize] {
            self.poisoned[rb as usize] = true;
        }
    }
}

/// Groups of vertex ids whose output sizes are coupled, each in topological
/// order, listed by their first vertex in that order.
pub(crate) fn space_components(graph: &Graph, topo: &[VertexId]) -> Vec<Vec<VertexId>> {
    let mut uf = UnionFind::new(graph.id_bound());
    for &id in topo {
        let v = graph.v(id);
        for (_, u) in v.tied_inputs() {
            uf.union(id.0, u.0);
        }
    }
    let mut index: HashMap<u32, usize> = HashMap::default();
    let mut comps: Vec<Vec<VertexId>> = Vec::new();
    for &id in topo {
        let r = uf.find(id.0);
        let k = *index.entry(r).or_insert_with(|| {
            comps.push(Vec::new());
            comps.len() - 1
        });
        comps[k].push(id);
    }
    comps
}

/// Each vertex's first neuron index, the vertex that owns its range (the
/// first one laid out there), and the number of neurons. A vertex whose every neuron is one of its tied
/// inputs' (invariant, select: output `j` is input `j`) shares that input's
/// range: one range per alias set, laid out at its first vertex in
/// topological order, so classes are numbered as if every vertex had its
/// own copy. The ties of every other op then touch that range, and the
/// neuron-level work shrinks by the aliases (a SwiGLU MLP's gate, up, SiLU
/// and product are one range instead of four).
fn alias_ranges(
    graph: &Graph,
    verts: &[VertexId],
    local: &HashMap<VertexId, u32>,
) -> (Vec<usize>, Vec<usize>, usize) {
    let mut alias = UnionFind::new(verts.len());
    for (li, &v) in verts.iter().enumerate() {
        let vx = graph.v(v);
        if matches!(vx.kind, SizeKind::Invariant | SizeKind::Select) {
            for (_, u) in vx.tied_inputs() {
                alias.union(li as u32, local[&u]);
            }
        }
    }
    let mut root_owner = vec![usize::MAX; verts.len()];
    let mut base = Vec::with_capacity(verts.len());
    let mut owner = Vec::with_capacity(verts.len());
    let mut n = 0usize;
    for (li, &v) in verts.iter().enumerate() {
        let r = alias.find(li as u32) as usize;
        if root_owner[r] == usize::MAX {
            root_owner[r] = li;
            base.push(n);
            n += graph.v(v).nout;
        } else {
            base.push(base[root_owner[r]]);
        }
        owner.push(root_owner[r]);
    }
    (base, owner, n)
}

/// The gaps of one gap class, with per-unit counts, if its weights per
/// vertex are proportional to `want` (a class coverage: (vertex, count)).
fn insertion_places(
    gaps: &[u32],
    weight: &[Ratio],
    vertex_of: &[u32],
    want: &[(u32, u32)],
) -> Option<Vec<(usize, u32)>> {
    // Sum of weights per vertex, as exact rationals.
    let mut per_vertex: HashMap<u32, Ratio> = HashMap::default();
    for &x in gaps {
        let w = weight[x as usize];
        let e = per_vertex
            .entry(vertex_of[x as usize])
            .or_insert(Ratio(0, 1));
        let (n, d) = (e.0 * w.1 + w.0 * e.1, e.1 * w.1);
        let g = gcd_u(n, d);
        *e = Ratio(n / g, d / g);
    }
    if per_vertex.len() != want.len() {
        return None;
    }
    // λ with want_v = λ · sum_v for every vertex.
    let (v0, c0) = want[0];
    let s0 = *per_vertex.get(&v0)?;
    let lambda = Ratio(c0 as u64, 1).mul(s0.inv());
    for &(v, c) in want {
        let sv = *per_vertex.get(&v)?;
        if lambda.mul(sv) != Ratio(c as u64, 1) {
            return None;
        }
    }
    let mut places = Vec::with_capacity(gaps.len());
    for &x in gaps {
        let k = lambda.mul(weight[x as usize]);
        if k.1 != 1 {
            return None;
        }
        places.push((x as usize, k.0 as u32));
    }
    Some(places)
}

/// A key whose ascending order is `f64::total_cmp`'s descending order.
fn descending_key(x: f64) -> u64 {
    let b = x.to_bits() as i64;
    // total_cmp's trick: flip the magnitude bits of negatives, then the
    // sign bit moves the whole range into unsigned order.
    let t = b ^ ((((b >> 63) as u64) >> 1) as i64);
    !((t as u64) ^ (1 << 63))
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

/// The least common multiple, saturating: a step beyond any size means
/// no change is possible, which `i64::MAX` says as well.
pub(crate) fn lcm(a: i64, b: i64) -> i64 {
    (a / gcd(a, b).max(1)).saturating_mul(b)
}

impl Component {
    /// Build the classes, groups and rows of one component.
    /// `allow_growth` is false when no new neuron may be created.
    /// `place_new`: also work out where new neurons could go (skipped when
    /// the request allows none, e.g. re-selecting); without it no group can
    /// grow.
    pub(crate) fn build(
        graph: &Graph,
        verts: Vec<VertexId>,
        utility: &Utility,
        place_new: bool,
        retarget: Option<&Retarget>,
    ) -> Component {
        let mut local: HashMap<VertexId, u32> =
            HashMap::with_capacity_and_hasher(verts.len(), Default::default());
        for (i, &v) in verts.iter().enumerate() {
            local.insert(v, i as u32);
        }
        let (base, owner, n) = alias_ranges(graph, &verts, &local);
        let is_rep: Vec<bool> = owner.iter().enumerate().map(|(li, &o)| o == li).collect();
        let nout: Vec<usize> = verts.iter().map(|&v| graph.v(v).nout).collect();
        let range = |li: usize| base[li]..base[li] + nout[li];

        // 1. Neuron ties, and the matching ties of the gaps after neurons.
        let mut uf = UnionFind::new(n);
        let mut gaps = place_new.then(|| GapUnion::new(n));
        for (li, &v) in verts.iter().enumerate() {
            let vx = graph.v(v);
            match vx.kind {
                SizeKind::Stack => {
                    let mut off = base[li];
                    for u in &vx.inputs {
                        let bu = base[local[u] as usize];
                        let nu = graph.v(*u).nout;
                        for j in 0..nu {
                            uf.union((off + j) as u32, (bu + j) as u32);
                            if let Some(gp) = gaps.as_mut() {
                                gp.union((off + j) as u32, (bu + j) as u32, Ratio::ONE);
                            }
                        }
                        off += nu;
                    }
                }
                // Shares its tied inputs' neurons (`alias_ranges`).
                SizeKind::Invariant | SizeKind::Select => {}
                _ if vx.slice_start().is_some() => {
                    // Output j is input start + j; new neurons at the end
                    // of the part go right after its last input neuron.
                    let start = vx.slice_start().unwrap_or(0);
                    let bu = base[local[&vx.inputs[0]] as usize] + start;
                    for j in 0..vx.nout {
                        let (x, y) = ((base[li] + j) as u32, (bu + j) as u32);
                        uf.union(x, y);
                        if let Some(gp) = gaps.as_mut() {
                            gp.union(x, y, Ratio::ONE);
                        }
                    }
                }
                _ if vx.shuffle_groups().is_some() => {
                    // Output k·g + i is input i·w + k. Every group keeps
                    // the same local neurons (the ties of a whole row k),
                    // and a new row k goes after output row k (g neurons)
                    // and after input k of every group (one each).
                    let g = vx.shuffle_groups().unwrap_or(1);
                    let w = vx.nout / g;
                    let bu = base[local[&vx.inputs[0]] as usize];
                    for k in 0..w {
                        for i in 0..g {
                            let (x, y) = ((base[li] + k * g + i) as u32, (bu + i * w + k) as u32);
                            uf.union(x, y);
                            uf.union(y, bu as u32 + k as u32);
                        }
                        if let Some(gp) = gaps.as_mut() {
                            let row_end = (base[li] + k * g + g - 1) as u32;
                            for i in 0..g {
                                gp.union(row_end, (bu + i * w + k) as u32, Ratio(g as u64, 1));
                            }
                        }
                    }
                }
                _ if vx.heads().is_some() => {
                    // Output h is inputs h·w .. h·w + w − 1: a head is one
                    // class. A new head is one new output after output h
                    // and w new inputs after input h·w + w − 1 (the gaps
                    // inside a head are closed below).
                    let w = vx.heads().unwrap_or(1);
                    let bu = base[local[&vx.inputs[0]] as usize];
                    for h in 0..vx.nout {
                        for k in 0..w {
                            uf.union((base[li] + h) as u32, (bu + h * w + k) as u32);
                        }
                        if let Some(gp) = gaps.as_mut() {
                            let end = (bu + h * w + w - 1) as u32;
                            gp.union((base[li] + h) as u32, end, Ratio(1, w as u64));
                        }
                    }
                }
                _ if vx.fold().is_some() || vx.tile().is_some() => {
                    // Fold: output k is input k of every block. Tile:
                    // output k of every block is input k. Either way one
                    // class per k, and a new k is one new neuron at the
                    // same local place in every block.
                    let bu = base[local[&vx.inputs[0]] as usize];
                    let (blocks, w, folds) = match vx.fold() {
                        Some(b) => (b, vx.nout, true),
                        None => (vx.tile().unwrap_or(1), vx.nin[0], false),
                    };
                    for b in 0..blocks {
                        for k in 0..w {
                            let (single, blocked) = (k as u32, (b * w + k) as u32);
                            let (x, y) = if folds {
                                (base[li] as u32 + single, bu as u32 + blocked)
                            } else {
                                (base[li] as u32 + blocked, bu as u32 + single)
                            };
                            uf.union(x, y);
                            if let Some(gp) = gaps.as_mut() {
                                gp.union(x, y, Ratio::ONE);
                            }
                        }
                    }
                }
                _ => {
                    if let Some(m) = vx.depthwise() {
                        // Output j reads input j / m: a block per input.
                        let bu = base[local[&vx.inputs[0]] as usize];
                        for j in 0..vx.nout {
                            uf.union((base[li] + j) as u32, (bu + j / m) as u32);
                        }
                        // A unit inserted after input i is a block of m new
                        // outputs after output block i.
                        for i in 0..vx.nin[0] {
                            let end = (base[li] + i * m + m - 1) as u32;
                            if let Some(gp) = gaps.as_mut() {
                                gp.union(end, (bu + i) as u32, Ratio(m as u64, 1));
                            }
                        }
                    }
                }
            }
        }

        // Grouped convolutions: every block keeps the same local neurons, on
        // the output side (the vertex itself) and on the input side (its
        // producer), and grows at the same local place.
        for (li, &v) in verts.iter().enumerate() {
            let vx = graph.v(v);
            let mut gs: Vec<usize> = vx.grouped().into_iter().collect();
            let mut readers = vx.outputs.clone();
            readers.sort();
            readers.dedup();
            gs.extend(readers.iter().filter_map(|&c| graph.v(c).grouped()));
            for g in gs {
                tie_aligned_blocks(&mut uf, gaps.as_mut(), base[li], vx.nout, g);
            }
        }

        // Blocks keep the same local neurons and grow at the same local
        // place (as a grouped convolution's output side). Units are kept
        // whole: one class per unit, and new units go after a unit's last
        // neuron only (the gaps inside a unit are closed).
        for (li, &v) in verts.iter().enumerate() {
            let vx = graph.v(v);
            if let Some(g) = vx.blocks() {
                tie_aligned_blocks(&mut uf, gaps.as_mut(), base[li], vx.nout, g);
            }
            if let Some(w) = vx.units() {
                for u in 0..vx.nout / w {
                    for k in 1..w {
                        uf.union((base[li] + u * w + k) as u32, (base[li] + u * w) as u32);
                    }
                }
            }
        }
        if let Some(gp) = gaps.as_mut() {
            for (li, &v) in verts.iter().enumerate() {
                let vx = graph.v(v);
                if let Some(w) = vx.units() {
                    for x in (0..vx.nout).filter(|x| x % w != w - 1) {
                        gp.close((base[li] + x) as u32);
                    }
                }
                if let Some(w) = vx.heads() {
                    let bu = base[local[&vx.inputs[0]] as usize];
                    for x in (0..vx.nin[0]).filter(|x| x % w != w - 1) {
                        gp.close((bu + x) as u32);
                    }
                }
            }
        }

        // Classes numbered by first appearance (vertex order, then position):
        // independent of union-find internals, hence deterministic.
        let mut class_of = vec![u32::MAX; n];
        let mut root_class = vec![u32::MAX; n];
        let mut nclass = 0u32;
        for (x, slot) in class_of.iter_mut().enumerate() {
            let r = uf.find(x as u32) as usize;
            if root_class[r] == u32::MAX {
                root_class[r] = nclass;
                nclass += 1;
            }
            *slot = root_class[r];
        }
        drop(root_class);
        let nclass = nclass as usize;

        // Utilities of classes, and each vertex's penalty weight: its largest
        // |utility| (NaiveNASlib's scaling), or 1 everywhere when every
        // utility in the component is 0 (size mode).
        let mut cutil = vec![0.0f64; nclass];
        let mut weight = vec![0.0f64; verts.len()];
        let retargeted = |v: VertexId| retarget.filter(|r| r.vertex == v || r.tail.contains(&v));
        for (li, &v) in verts.iter().enumerate() {
            let nout = graph.v(v).nout;
            let explicit = utility.get(v);
            let dflt = utility.default_for(graph.v(v));
            if explicit.is_none() && dflt == 0.0 {
                continue;
            }
            let rt = retargeted(v);
            for i in 0..nout {
                let u = explicit.map_or(dflt, |e| e[i]);
                weight[li] = weight[li].max(u.abs());
                // Outputs beyond the new multiplier are dropped with it.
                if rt.is_some_and(|r| i % r.from >= r.to) {
                    continue;
                }
                cutil[class_of[base[li] + i] as usize] += u;
            }
        }
        if weight.iter().all(|&w| w == 0.0) {
            weight.iter_mut().for_each(|w| *w = 1.0);
        }

        // 2. Coverage of each class, as a CSR of (local vertex, count), over
        //    the vertices that own their range: an alias covers exactly
        //    what its range's owner covers.
        let mut count = vec![0u32; nclass + 1];
        let mut last = vec![u32::MAX; nclass];
        let owners: Vec<usize> = (0..verts.len()).filter(|&li| is_rep[li]).collect();
        for &li in &owners {
            for &k in &class_of[range(li)] {
                let k = k as usize;
                if last[k] != li as u32 {
                    last[k] = li as u32;
                    count[k + 1] += 1;
                }
            }
        }
        for k in 0..nclass {
            count[k + 1] += count[k];
        }
        let offs = count;
        let mut cursor: Vec<u32> = offs[..nclass].to_vec();
        let mut cov: Vec<(u32, u32)> = vec![(0, 0); offs[nclass] as usize];
        for &li in &owners {
            for &k in &class_of[range(li)] {
                let k = k as usize;
                let c = cursor[k] as usize;
                if c > offs[k] as usize && cov[c - 1].0 == li as u32 {
                    cov[c - 1].1 += 1;
                } else {
                    cov[c] = (li as u32, 1);
                    cursor[k] += 1;
                }
            }
        }
        let coverage = |k: usize| &cov[offs[k] as usize..offs[k + 1] as usize];

        // Frozen vertices: inputs, immutables, fixed, and producers read by an
        // immutable vertex.
        // A range is frozen when any vertex sharing it is.
        let owner_of = |li: usize| owner[li];
        let mut frozen_vertex = vec![false; verts.len()];
        for (li, &v) in verts.iter().enumerate() {
            let vx = graph.v(v);
            if vx.is_size_frozen()
                || vx
                    .outputs
                    .iter()
                    .any(|&o| graph.v(o).kind == SizeKind::Immutable)
            {
                frozen_vertex[owner_of(li)] = true;
            }
        }

        // 3. Groups by identical coverage.
        let mut group_index: HashMap<&[(u32, u32)], u32> = HashMap::default();
        let mut group_of_class = vec![0u32; nclass];
        let mut members: Vec<Vec<u32>> = Vec::new();
        for k in 0..nclass {
            // Neighbouring classes mostly share a coverage: skip the hash.
            let g = if k > 0 && coverage(k) == coverage(k - 1) {
                group_of_class[k - 1]
            } else {
                *group_index.entry(coverage(k)).or_insert_with(|| {
                    members.push(Vec::new());
                    (members.len() - 1) as u32
                })
            };
            members[g as usize].push(k as u32);
            group_of_class[k] = g;
        }
        drop(group_index);
        // The first member of a class in its first vertex gives its position;
        // classes are numbered in that order within a group, so the anchor
        // (nearest the end) is the highest-numbered class.
        let mut groups: Vec<Group> = members
            .into_iter()
            .map(|mut ks| {
                let anchor = *ks.last().expect("group has a class");
                let frozen = coverage(ks[0] as usize)
                    .iter()
                    .any(|&(li, _)| frozen_vertex[li as usize]);
                // Best first (f64::total_cmp, descending), ties by class:
                // sorting plain integer pairs beats a comparator that looks
                // the utilities up.
                let mut keyed: Vec<(u64, u32)> = ks
                    .iter()
                    .map(|&k| (descending_key(cutil[k as usize]), k))
                    .collect();
                keyed.sort_unstable();
                ks.clear();
                ks.extend(keyed.into_iter().map(|(_, k)| k));
                let mut prefix = Vec::with_capacity(ks.len() + 1);
                prefix.push(0.0);
                let mut acc = 0.0;
                for &k in &ks {
                    acc += cutil[k as usize];
                    prefix.push(acc);
                }
                let nonneg = ks.iter().filter(|&&k| cutil[k as usize] >= 0.0).count();
                Group {
                    order: ks,
                    prefix,
                    nonneg,
                    frozen,
                    anchor,
                    insert_at: None,
                }
            })
            .collect();

        // Where each group's new neurons go: a gap class reached from a member
        // of its anchor (latest member first) whose weights per vertex are
        // proportional to the group's coverage.
        if let Some(gaps) = gaps.as_mut() {
            let mut gap_root = vec![0u32; n];
            let mut gap_weight = vec![Ratio::ONE; n];
            for x in 0..n {
                let (r, w) = gaps.find(x as u32);
                gap_root[x] = r;
                gap_weight[x] = w;
            }
            let mut vertex_of = vec![0u32; n];
            for li in (0..verts.len()).filter(|&li| is_rep[li]) {
                vertex_of[range(li)].fill(li as u32);
            }
            let mut anchor_members: Vec<Vec<u32>> = vec![Vec::new(); groups.len()];
            let mut anchor_group = vec![usize::MAX; nclass];
            for (g, grp) in groups.iter().enumerate() {
                anchor_group[grp.anchor as usize] = g;
            }
            for (x, &k) in class_of.iter().enumerate() {
                let g = anchor_group[k as usize];
                if g != usize::MAX {
                    anchor_members[g].push(x as u32);
                }
            }
            let mut wanted = vec![false; n];
            for &x in anchor_members.iter().flatten() {
                wanted[gap_root[x as usize] as usize] = true;
            }
            // Members of each wanted gap class, in neuron order (a dense
            // slot per root: one pass, no hashing per neuron).
            let mut slot_of = vec![u32::MAX; n];
            let mut slots: Vec<Vec<u32>> = Vec::new();
            for (x, &r) in gap_root.iter().enumerate() {
                if wanted[r as usize] {
                    if slot_of[r as usize] == u32::MAX {
                        slot_of[r as usize] = slots.len() as u32;
                        slots.push(Vec::new());
                    }
                    slots[slot_of[r as usize] as usize].push(x as u32);
                }
            }
            drop(wanted);
            for (g, grp) in groups.iter_mut().enumerate() {
                // An alias covers what its range's first vertex covers:
                // the gaps are checked against the first vertices only.
                let want: Vec<(u32, u32)> = coverage(grp.anchor as usize)
                    .iter()
                    .copied()
                    .filter(|&(li, _)| is_rep[li as usize])
                    .collect();
                let mut tried = HashSet::default();
                for &x in anchor_members[g].iter().rev() {
                    let root = gap_root[x as usize];
                    if !tried.insert(root) || gaps.poisoned[root as usize] {
                        continue;
                    }
                    if let Some(places) = insertion_places(
                        &slots[slot_of[root as usize] as usize],
                        &gap_weight,
                        &vertex_of,
                        &want,
                    ) {
                        grp.insert_at = Some(places);
                        break;
                    }
                }
            }
        }

        // 4. Rows per vertex, then merged.
        let mut owner_rows: Vec<Vec<(u32, u32)>> = vec![Vec::new(); verts.len()];
        for (g, grp) in groups.iter().enumerate() {
            for &(li, c) in coverage(grp.anchor as usize) {
                owner_rows[li as usize].push((g as u32, c));
            }
        }
        let mut vrows: Vec<Vec<(u32, u32)>> = vec![Vec::new(); verts.len()];
        for li in 0..verts.len() {
            for &(g, c) in &owner_rows[owner_of(li)] {
                // Every block member counts `to / from` times under a new
                // multiplier (c is a whole number of blocks).
                let c = match retargeted(verts[li]) {
                    Some(r) => c / r.from as u32 * r.to as u32,
                    None => c,
                };
                vrows[li].push((g, c));
            }
        }
        let mut step_of = vec![1i64; verts.len()];
        let mut floor_of = vec![1i64; verts.len()];
        for (li, &v) in verts.iter().enumerate() {
            let vx = graph.v(v);
            for c in &vx.constraints {
                if let Constraint::NoutStep { step } = *c {
                    step_of[li] = lcm(step_of[li], step as i64);
                }
            }
            for &o in &vx.outputs {
                let ox = graph.v(o);
                for c in &ox.constraints {
                    if let Constraint::NinStep { input, step } = *c {
                        if ox.inputs.get(input) == Some(&v) {
                            step_of[li] = lcm(step_of[li], step as i64);
                        }
                    }
                    if let Constraint::NinAtLeast { input, min } = *c {
                        if ox.inputs.get(input) == Some(&v) {
                            floor_of[li] = floor_of[li].max(min as i64);
                        }
                    }
                }
            }
        }
        let mut row_index: HashMap<Vec<(u32, u32)>, u32> = HashMap::default();
        let mut rows: Vec<Row> = Vec::new();
        let mut row_of_vertex = Vec::with_capacity(verts.len());
        for (li, terms) in vrows.into_iter().enumerate() {
            let size = graph.v(verts[li]).nout as i64;
            let r = match row_index.get(&terms) {
                Some(&r) => {
                    let row = &mut rows[r as usize];
                    row.l1_weight += weight[li];
                    row.max_weight = row.max_weight.max(weight[li]);
                    row.step = lcm(row.step, step_of[li]);
                    row.floor = row.floor.max(floor_of[li]);
                    r
                }
                None => {
                    let r = rows.len() as u32;
                    row_index.insert(terms.clone(), r);
                    rows.push(Row {
                        terms,
                        size,
                        l1_weight: weight[li],
                        max_weight: weight[li],
                        step: step_of[li],
                        floor: floor_of[li],
                        exact: None,
                        relaxed: Vec::new(),
                    });
                    r
                }
            };
            row_of_vertex.push(r);
        }

        Component {
            verts,
            base,
            owner,
            class_of,
            group_of_class,
            groups,
            rows,
            row_of_vertex,
            local,
        }
    }

    /// Local index of a vertex of this component.
    pub(crate) fn local(&self, v: VertexId) -> Option<usize> {
        self.local.get(&v).map(|&l| l as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::descending_key;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn descending_key_is_total_cmp_reversed(a in any::<f64>(), b in any::<f64>()) {
            prop_assert_eq!(descending_key(a).cmp(&descending_key(b)), b.total_cmp(&a));
        }
    }

    #[test]
    fn descending_key_orders_the_edges() {
        let xs = [f64::INFINITY, 1.0, 0.0, -0.0, -1.0, f64::NEG_INFINITY];
        for w in xs.windows(2) {
            assert!(descending_key(w[0]) < descending_key(w[1]), "{w:?}");
        }
    }
}
