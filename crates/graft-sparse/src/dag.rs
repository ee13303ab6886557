//! Layered DAGs: nodes with automatic ids, edges checked for cycles (the
//! error names the cycle and the graph is left as it was), layers by
//! longest-path depth computed in O(V+E) (a node may also ask for a minimum
//! layer), and composition of layered graphs.

use std::collections::VecDeque;

use crate::error::SparseError;

/// A directed acyclic graph with layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayeredDag {
    succ: Vec<Vec<usize>>,
    pred: Vec<Vec<usize>>,
    min_layer: Vec<usize>,
    edges: usize,
}

impl LayeredDag {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// A graph with `n` nodes and these edges.
    ///
    /// # Errors
    /// An unknown node or a cycle.
    pub fn from_edges(n: usize, edges: &[(usize, usize)]) -> Result<Self, SparseError> {
        let mut g = Self::new();
        for _ in 0..n {
            g.add_node();
        }
        for &(a, b) in edges {
            g.add_edge(a, b)?;
        }
        Ok(g)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.succ.len()
    }
    /// True without nodes.
    pub fn is_empty(&self) -> bool {
        self.succ.is_empty()
    }
    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.edges
    }
    /// Successors of a node (none for an unknown id).
    pub fn successors(&self, v: usize) -> &[usize] {
        self.succ.get(v).map_or(&[], Vec::as_slice)
    }
    /// Predecessors of a node (none for an unknown id).
    pub fn predecessors(&self, v: usize) -> &[usize] {
        self.pred.get(v).map_or(&[], Vec::as_slice)
    }
    /// All edges, by source then insertion order.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        (0..self.len())
            .flat_map(|a| self.succ[a].iter().map(move |&b| (a, b)))
            .collect()
    }

    /// A new node; its id is the next free one (ids are never chosen by
    /// the caller, as in deepstruct's auto-id graph).
    pub fn add_node(&mut self) -> usize {
        self.succ.push(Vec::new());
        self.pred.push(Vec::new());
        self.min_layer.push(0);
        self.succ.len() - 1
    }

    /// A new node placed at least at `layer`.
    pub fn add_node_at(&mut self, layer: usize) -> usize {
        let v = self.add_node();
        self.min_layer[v] = layer;
        v
    }

    /// Add the edge `a -> b`.
    ///
    /// # Errors
    /// [`SparseError::UnknownNode`], or [`SparseError::Cycle`] with the
    /// cycle the edge would close; the graph is unchanged on error.
    pub fn add_edge(&mut self, a: usize, b: usize) -> Result<(), SparseError> {
        for v in [a, b] {
            if v >= self.len() {
                return Err(SparseError::UnknownNode(v));
            }
        }
        if let Some(path) = self.path(b, a) {
            let mut cycle = path;
            cycle.push(b);
            return Err(SparseError::Cycle {
                from: a,
                to: b,
                cycle,
            });
        }
        self.succ[a].push(b);
        self.pred[b].push(a);
        self.edges += 1;
        Ok(())
    }

    /// A path from `from` to `to` (breadth first), if there is one.
    fn path(&self, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut prev = vec![usize::MAX; self.len()];
        let mut q = VecDeque::from([from]);
        prev[from] = from;
        while let Some(x) = q.pop_front() {
            if x == to {
                let mut p = vec![to];
                let mut c = to;
                while c != from {
                    c = prev[c];
                    p.push(c);
                }
                p.reverse();
                return Some(p);
            }
            for &y in &self.succ[x] {
                if prev[y] == usize::MAX {
                    prev[y] = x;
                    q.push_back(y);
                }
            }
        }
        None
    }

    /// Layer of every node: the longest path from a source (sources are in
    /// layer 0), raised to a node's minimum layer if it asked for one.
    /// Kahn's algorithm: O(V+E).
    pub fn layers(&self) -> Vec<usize> {
        let n = self.len();
        let mut indeg: Vec<usize> = self.pred.iter().map(Vec::len).collect();
        let mut layer = self.min_layer.clone();
        let mut q: VecDeque<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
        while let Some(v) = q.pop_front() {
            for &w in &self.succ[v] {
                layer[w] = layer[w].max(layer[v] + 1);
                indeg[w] -= 1;
                if indeg[w] == 0 {
                    q.push_back(w);
                }
            }
        }
        layer
    }

    /// Number of nodes per layer.
    pub fn layer_sizes(&self) -> Vec<usize> {
        let l = self.layers();
        let mut sizes = vec![0; l.iter().max().map_or(0, |m| m + 1)];
        for x in l {
            sizes[x] += 1;
        }
        sizes
    }

    /// Nodes of one layer, ascending.
    pub fn layer(&self, k: usize) -> Vec<usize> {
        self.layers()
            .iter()
            .enumerate()
            .filter(|(_, &l)| l == k)
            .map(|(v, _)| v)
            .collect()
    }

    /// Append `other` after this graph: its first layer is identified, in
    /// node order, with this graph's last layer.
    ///
    /// # Errors
    /// [`SparseError::Boundary`] when the two layers differ in size.
    pub fn compose(&self, other: &LayeredDag) -> Result<LayeredDag, SparseError> {
        let last = self.layer(self.layer_sizes().len().saturating_sub(1));
        let first = other.layer(0);
        if last.len() != first.len() {
            return Err(SparseError::Boundary {
                first: last.len(),
                second: first.len(),
            });
        }
        let mut g = self.clone();
        let mut map = vec![usize::MAX; other.len()];
        for (k, &f) in first.iter().enumerate() {
            map[f] = last[k];
        }
        for slot in map.iter_mut() {
            if *slot == usize::MAX {
                *slot = g.add_node();
            }
        }
        for (a, b) in other.edges() {
            g.add_edge(map[a], map[b])?;
        }
        Ok(g)
    }
}
