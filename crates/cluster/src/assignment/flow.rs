//! Flows on a small directed graph with integer capacities and costs: the
//! engine of partition assignment.
//!
//! [`FlowGraph::max_flow`] is Dinic's algorithm. [`FlowGraph::min_cost_max_flow`]
//! is the primal-dual method: Dijkstra's algorithm on reduced costs finds the
//! cost of the cheapest augmenting path and updates the vertex potentials, then
//! Dinic's algorithm, restricted to the edges of reduced cost zero, pushes as
//! much flow as possible along paths of exactly that cost; repeat until no
//! augmenting path is left. Augmenting along cheapest paths only keeps the flow
//! the cheapest of its value, so the result is a maximum flow of least cost.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A flow network. Edges are added in pairs (edge, reverse edge), so the
/// reverse of edge `e` is `e ^ 1`; a reverse edge costs minus its edge.
pub(crate) struct FlowGraph {
    adjacency: Vec<Vec<usize>>,
    to: Vec<usize>,
    /// Remaining capacity of each edge.
    residual: Vec<u64>,
    /// Capacity each edge was created with.
    capacity: Vec<u64>,
    /// Cost of one unit of flow through each edge.
    cost: Vec<i64>,
}

impl FlowGraph {
    /// A graph of `vertices` vertices and no edge.
    pub(crate) fn new(vertices: usize) -> Self {
        FlowGraph {
            adjacency: vec![Vec::new(); vertices],
            to: Vec::new(),
            residual: Vec::new(),
            capacity: Vec::new(),
            cost: Vec::new(),
        }
    }

    /// Adds an edge `from -> to` of capacity `cap` and cost 0; returns its index.
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, cap: u64) -> usize {
        self.add_edge_with_cost(from, to, cap, 0)
    }

    /// Adds an edge `from -> to` of capacity `cap` whose every unit of flow
    /// costs `cost` (at least 0); returns its index.
    pub(crate) fn add_edge_with_cost(
        &mut self,
        from: usize,
        to: usize,
        cap: u64,
        cost: i64,
    ) -> usize {
        debug_assert!(cost >= 0, "min_cost_max_flow needs costs of at least 0");
        let e = self.to.len();
        self.adjacency[from].push(e);
        self.to.push(to);
        self.residual.push(cap);
        self.capacity.push(cap);
        self.cost.push(cost);
        self.adjacency[to].push(e + 1);
        self.to.push(from);
        self.residual.push(0);
        self.capacity.push(0);
        self.cost.push(-cost);
        e
    }

    /// The flow through edge `e`.
    pub(crate) fn flow(&self, e: usize) -> u64 {
        self.capacity[e] - self.residual[e]
    }

    /// The cost of the current flow: the sum over edges of flow × cost.
    #[cfg(test)]
    pub(crate) fn total_cost(&self) -> i64 {
        (0..self.to.len())
            .step_by(2)
            .map(|e| self.flow(e) as i64 * self.cost[e])
            .sum()
    }

    /// A lower bound on the cost of every flow of value `value` from `source`
    /// to `sink` in this network, whatever flow it carries now; `None` if the
    /// residual graph has a cycle of negative cost.
    ///
    /// By weak duality, for any vertex potentials `π` and any such flow `f`,
    /// `cost(f) = value × (π[sink] − π[source]) + Σ f_e × reduced_e`, with
    /// `reduced_e = cost_e + π[tail] − π[head]`, is at least
    /// `value × (π[sink] − π[source]) + Σ capacity_e × min(0, reduced_e)`.
    /// Taking for `π` shortest distances in the residual graph (Bellman-Ford),
    /// the bound equals the current flow's cost iff that flow is the cheapest:
    /// a certificate of optimality independent of how the flow was found.
    #[cfg(test)]
    pub(crate) fn cost_lower_bound(&self, source: usize, sink: usize, value: u64) -> Option<i64> {
        let n = self.adjacency.len();
        let mut potential = vec![0i64; n];
        let mut settled = false;
        for _ in 0..=n {
            let mut changed = false;
            for u in 0..n {
                for &e in &self.adjacency[u] {
                    let v = self.to[e];
                    if self.residual[e] > 0 && potential[u] + self.cost[e] < potential[v] {
                        potential[v] = potential[u] + self.cost[e];
                        changed = true;
                    }
                }
            }
            if !changed {
                settled = true;
                break;
            }
        }
        if !settled {
            return None;
        }
        let mut bound = value as i64 * (potential[sink] - potential[source]);
        for e in (0..self.to.len()).step_by(2) {
            let reduced = self.cost[e] + potential[self.to[e ^ 1]] - potential[self.to[e]];
            bound += self.capacity[e] as i64 * reduced.min(0);
        }
        Some(bound)
    }

    /// Pushes as much flow as possible from `source` to `sink`, ignoring costs;
    /// returns it. Deterministic: edges are tried in the order they were added.
    pub(crate) fn max_flow(&mut self, source: usize, sink: usize) -> u64 {
        self.augment(source, sink, None)
    }

    /// Pushes as much flow as possible from `source` to `sink`, at the least
    /// cost among flows of that value; returns the flow. The graph must carry
    /// no flow yet. Deterministic: edges are tried in the order they were added.
    pub(crate) fn min_cost_max_flow(&mut self, source: usize, sink: usize) -> u64 {
        let n = self.adjacency.len();
        // Every edge with capacity left has a reduced cost
        // cost + potential[tail] - potential[head] of at least 0: true at the
        // start (costs ≥ 0, residual reverse edges have none left), kept by
        // adding Dijkstra's distances, and kept by augmenting only along edges
        // of reduced cost 0 (their reverse edges then have reduced cost 0 too).
        let mut potential = vec![0i64; n];
        let mut total = 0;
        loop {
            let mut dist = vec![i64::MAX; n];
            dist[source] = 0;
            let mut heap = BinaryHeap::from([Reverse((0i64, source))]);
            while let Some(Reverse((d, u))) = heap.pop() {
                if d > dist[u] {
                    continue;
                }
                for &e in &self.adjacency[u] {
                    if self.residual[e] == 0 {
                        continue;
                    }
                    let v = self.to[e];
                    let reduced = self.cost[e] + potential[u] - potential[v];
                    debug_assert!(reduced >= 0, "reduced cost {reduced} < 0");
                    if d + reduced < dist[v] {
                        dist[v] = d + reduced;
                        heap.push(Reverse((dist[v], v)));
                    }
                }
            }
            if dist[sink] == i64::MAX {
                return total;
            }
            // Vertices left unreachable stay so (augmenting only adds reverse
            // edges between reachable vertices): their potentials never matter.
            for (p, d) in potential.iter_mut().zip(&dist) {
                if *d != i64::MAX {
                    *p += d;
                }
            }
            total += self.augment(source, sink, Some(&potential));
        }
    }

    /// Dinic's algorithm on the edges with capacity left and, given
    /// `potential`, a reduced cost of 0; returns the flow pushed.
    fn augment(&mut self, source: usize, sink: usize, potential: Option<&[i64]>) -> u64 {
        let n = self.adjacency.len();
        let mut total = 0;
        loop {
            // Levels by breadth-first search on admissible edges.
            let mut level = vec![usize::MAX; n];
            level[source] = 0;
            let mut queue = VecDeque::from([source]);
            while let Some(u) = queue.pop_front() {
                for &e in &self.adjacency[u] {
                    let v = self.to[e];
                    if level[v] == usize::MAX && self.admissible(e, u, potential) {
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
                let pushed = self.push(source, sink, u64::MAX, &level, &mut next_edge, potential);
                if pushed == 0 {
                    break;
                }
                total += pushed;
            }
        }
    }

    /// Whether edge `e`, leaving `u`, may carry more flow in this phase.
    fn admissible(&self, e: usize, u: usize, potential: Option<&[i64]>) -> bool {
        self.residual[e] > 0 && potential.is_none_or(|h| self.cost[e] + h[u] - h[self.to[e]] == 0)
    }

    fn push(
        &mut self,
        u: usize,
        sink: usize,
        limit: u64,
        level: &[usize],
        next_edge: &mut [usize],
        potential: Option<&[i64]>,
    ) -> u64 {
        if u == sink {
            return limit;
        }
        while next_edge[u] < self.adjacency[u].len() {
            let e = self.adjacency[u][next_edge[u]];
            let v = self.to[e];
            if level[v] == level[u] + 1 && self.admissible(e, u, potential) {
                let pushed = self.push(
                    v,
                    sink,
                    limit.min(self.residual[e]),
                    level,
                    next_edge,
                    potential,
                );
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
    use proptest::prelude::*;

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

    #[test]
    fn the_cheapest_matching_undoes_a_greedy_first_choice() {
        // Workers a, b; jobs x, y. Taking the cheapest pair (a, x) first forces
        // (b, y) at 100; the best is (a, y) + (b, x) = 4.
        let (s, a, b, x, y, t) = (0, 1, 2, 3, 4, 5);
        let mut g = FlowGraph::new(6);
        for (u, v, cost) in [
            (s, a, 0),
            (s, b, 0),
            (a, x, 1),
            (a, y, 2),
            (b, x, 2),
            (b, y, 100),
            (x, t, 0),
            (y, t, 0),
        ] {
            g.add_edge_with_cost(u, v, 1, cost);
        }
        assert_eq!(g.min_cost_max_flow(s, t), 2);
        assert_eq!(g.total_cost(), 4);
        assert_eq!(g.cost_lower_bound(s, t, 2), Some(4));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn min_cost_flows_are_maximum_and_provably_cheapest(
            vertices in 2usize..8,
            edges in proptest::collection::vec((0usize..8, 0usize..8, 0u64..4, 0i64..6), 0..24),
        ) {
            let build = || {
                let mut g = FlowGraph::new(vertices);
                for &(u, v, cap, cost) in &edges {
                    g.add_edge_with_cost(u % vertices, v % vertices, cap, cost);
                }
                g
            };
            let mut cheapest = build();
            let flow = cheapest.min_cost_max_flow(0, vertices - 1);
            prop_assert_eq!(flow, build().max_flow(0, vertices - 1));
            // Proven the cheapest: the dual bound meets its cost.
            prop_assert_eq!(
                cheapest.cost_lower_bound(0, vertices - 1, flow),
                Some(cheapest.total_cost())
            );
            // Conservation at every inner vertex.
            for v in 1..vertices - 1 {
                let inflow: u64 = (0..cheapest.to.len()).step_by(2)
                    .filter(|&e| cheapest.to[e] == v).map(|e| cheapest.flow(e)).sum();
                let outflow: u64 = (0..cheapest.to.len()).step_by(2)
                    .filter(|&e| cheapest.to[e ^ 1] == v).map(|e| cheapest.flow(e)).sum();
                prop_assert_eq!(inflow, outflow);
            }
        }
    }
}
