//! Maximum flow (Dinic's algorithm) on a small directed graph with integer
//! capacities: the engine of partition assignment.

use std::collections::VecDeque;

/// A flow network. Edges are added in pairs (edge, reverse edge), so the
/// reverse of edge `e` is `e ^ 1`.
pub(crate) struct FlowGraph {
    adjacency: Vec<Vec<usize>>,
    to: Vec<usize>,
    /// Remaining capacity of each edge.
    residual: Vec<u64>,
    /// Capacity each edge was created with.
    capacity: Vec<u64>,
}

impl FlowGraph {
    /// A graph of `vertices` vertices and no edge.
    pub(crate) fn new(vertices: usize) -> Self {
        FlowGraph {
            adjacency: vec![Vec::new(); vertices],
            to: Vec::new(),
            residual: Vec::new(),
            capacity: Vec::new(),
        }
    }

    /// Adds an edge `from -> to` of capacity `cap`; returns its index.
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, cap: u64) -> usize {
        let e = self.to.len();
        self.adjacency[from].push(e);
        self.to.push(to);
        self.residual.push(cap);
        self.capacity.push(cap);
        self.adjacency[to].push(e + 1);
        self.to.push(from);
        self.residual.push(0);
        self.capacity.push(0);
        e
    }

    /// The flow through edge `e` after [`FlowGraph::max_flow`].
    pub(crate) fn flow(&self, e: usize) -> u64 {
        self.capacity[e] - self.residual[e]
    }

    /// The head of edge `e`.
    pub(crate) fn head(&self, e: usize) -> usize {
        self.to[e]
    }

    /// Pushes as much flow as possible from `source` to `sink`; returns it.
    /// Deterministic: edges are tried in the order they were added.
    pub(crate) fn max_flow(&mut self, source: usize, sink: usize) -> u64 {
        let n = self.adjacency.len();
        let mut total = 0;
        loop {
            // Levels by breadth-first search on edges with capacity left.
            let mut level = vec![usize::MAX; n];
            level[source] = 0;
            let mut queue = VecDeque::from([source]);
            while let Some(u) = queue.pop_front() {
                for &e in &self.adjacency[u] {
                    let v = self.to[e];
                    if self.residual[e] > 0 && level[v] == usize::MAX {
                        level[v] = level[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            if level[sink] == usize::MAX {
                return total;
            }
            // Blocking flow by depth-first search, each vertex resuming at the
            // first edge it has not exhausted yet.
            let mut next_edge = vec![0usize; n];
            loop {
                let pushed = self.push(source, sink, u64::MAX, &level, &mut next_edge);
                if pushed == 0 {
                    break;
                }
                total += pushed;
            }
        }
    }

    fn push(
        &mut self,
        u: usize,
        sink: usize,
        limit: u64,
        level: &[usize],
        next_edge: &mut [usize],
    ) -> u64 {
        if u == sink {
            return limit;
        }
        while next_edge[u] < self.adjacency[u].len() {
            let e = self.adjacency[u][next_edge[u]];
            let v = self.to[e];
            if self.residual[e] > 0 && level[v] == level[u] + 1 {
                let pushed = self.push(v, sink, limit.min(self.residual[e]), level, next_edge);
                if pushed > 0 {
                    self.residual[e] -= pushed;
                    self.residual[e ^ 1] += pushed;
                    return pushed;
                }
            }
            next_edge[u] += 1;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_textbook_network_has_its_known_maximum_flow() {
        // CLRS figure 26.1: maximum flow 23.
        let mut g = FlowGraph::new(6);
        for (u, v, c) in [
            (0, 1, 16),
            (0, 2, 13),
            (2, 1, 4),
            (1, 3, 12),
            (3, 2, 9),
            (2, 4, 14),
            (4, 3, 7),
            (3, 5, 20),
            (4, 5, 4),
        ] {
            g.add_edge(u, v, c);
        }
        assert_eq!(g.max_flow(0, 5), 23);
    }

    #[test]
    fn flows_respect_capacities_and_conservation() {
        let mut g = FlowGraph::new(4);
        let a = g.add_edge(0, 1, 3);
        let b = g.add_edge(0, 2, 2);
        let c = g.add_edge(1, 3, 2);
        let d = g.add_edge(2, 3, 5);
        let e = g.add_edge(1, 2, 1);
        assert_eq!(g.max_flow(0, 3), 5);
        assert_eq!(g.flow(a), g.flow(c) + g.flow(e));
        assert_eq!(g.flow(b) + g.flow(e), g.flow(d));
        assert!(g.flow(c) <= 2 && g.flow(e) <= 1);
    }
}
