//! Flows on a small directed graph with integer capacities and costs: the
//! engine of partition assignment.
//!
//! [`FlowGraph::max_flow`] is Dinic's algorithm. [`FlowGraph::min_cost_max_flow`]
//! is the primal-dual method: Dijkstra's algorithm on reduced costs finds the
//! cost of the cheapest augmenting path and updates the vertex potentials, then
//! a depth-first pass over the edges of reduced cost zero pushes flow along
//! paths of exactly that cost; repeat until no augmenting path is left.
//! Augmenting along cheapest paths only keeps the flow the cheapest of its
//! value, so the result is a maximum flow of least cost. Each Dijkstra search
//! stops once the sink is settled, and settles the vertices reached by arcs
//! of reduced cost 0 from a plain stack rather than the heap: after the first
//! phases, most arcs of the shortest paths have reduced cost 0.
//!
//! Edges are added one by one; the first algorithm run lays their arcs (each
//! edge and its reverse) out by tail vertex, contiguously, so that scanning a
//! vertex's arcs reads consecutive memory.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// An edge as added.
struct Edge {
    from: usize,
    to: usize,
    capacity: u64,
    cost: i64,
}

/// A flow network. Each edge has a reverse arc, of capacity 0 and minus its
/// cost, that carries flow back.
pub(crate) struct FlowGraph {
    vertices: usize,
    edges: Vec<Edge>,
    /// Arcs, built by [`Self::lay_out`] from `edges`: those leaving vertex
    /// `u` are `start[u]..start[u + 1]`, in the order their edges were added.
    start: Vec<usize>,
    /// Head vertex of each arc.
    head: Vec<usize>,
    /// The reverse of each arc.
    rev: Vec<usize>,
    /// Capacity left on each arc.
    residual: Vec<u64>,
    /// Cost of one unit of flow through each arc.
    cost: Vec<i64>,
    /// The forward arc of each edge.
    arc: Vec<usize>,
}

impl FlowGraph {
    /// A graph of `vertices` vertices and no edge.
    pub(crate) fn new(vertices: usize) -> Self {
        FlowGraph {
            vertices,
            edges: Vec::new(),
            start: Vec::new(),
            head: Vec::new(),
            rev: Vec::new(),
            residual: Vec::new(),
            cost: Vec::new(),
            arc: Vec::new(),
        }
    }

    /// Adds an edge `from -> to` of capacity `cap` and cost 0; returns its index.
    pub(crate) fn add_edge(&mut self, from: usize, to: usize, cap: u64) -> usize {
        self.add_edge_with_cost(from, to, cap, 0)
    }

    /// Adds an edge `from -> to` of capacity `cap` whose every unit of flow
    /// costs `cost` (at least 0); returns its index. Edges are added before
    /// any algorithm runs.
    pub(crate) fn add_edge_with_cost(
        &mut self,
        from: usize,
        to: usize,
        cap: u64,
        cost: i64,
    ) -> usize {
        debug_assert!(cost >= 0, "min_cost_max_flow needs costs of at least 0");
        debug_assert!(self.start.is_empty(), "edges are added before any flow");
        assert!(from < self.vertices && to < self.vertices, "no such vertex");
        self.edges.push(Edge {
            from,
            to,
            capacity: cap,
            cost,
        });
        self.edges.len() - 1
    }

    /// Lays the arcs out by tail vertex, once. Arc `2e` is edge `e`, arc
    /// `2e + 1` its reverse; each vertex keeps its arcs in that order.
    fn lay_out(&mut self) {
        if !self.start.is_empty() {
            return;
        }
        let n = self.vertices;
        let tail = |a: usize| {
            let e = &self.edges[a / 2];
            if a.is_multiple_of(2) {
                e.from
            } else {
                e.to
            }
        };
        let arcs = 2 * self.edges.len();
        let mut start = vec![0usize; n + 1];
        for a in 0..arcs {
            start[tail(a) + 1] += 1;
        }
        for u in 0..n {
            start[u + 1] += start[u];
        }
        let mut fill = start.clone();
        let mut position = vec![0usize; arcs];
        for (a, p) in position.iter_mut().enumerate() {
            let u = tail(a);
            *p = fill[u];
            fill[u] += 1;
        }
        let mut head = vec![0usize; arcs];
        let mut rev = vec![0usize; arcs];
        let mut residual = vec![0u64; arcs];
        let mut cost = vec![0i64; arcs];
        for (e, edge) in self.edges.iter().enumerate() {
            let (f, b) = (position[2 * e], position[2 * e + 1]);
            head[f] = edge.to;
            head[b] = edge.from;
            rev[f] = b;
            rev[b] = f;
            residual[f] = edge.capacity;
            cost[f] = edge.cost;
            cost[b] = -edge.cost;
        }
        self.arc = (0..self.edges.len()).map(|e| position[2 * e]).collect();
        self.start = start;
        self.head = head;
        self.rev = rev;
        self.residual = residual;
        self.cost = cost;
    }

    /// The arcs leaving `u`.
    fn arcs(&self, u: usize) -> std::ops::Range<usize> {
        self.start[u]..self.start[u + 1]
    }

    /// The flow through edge `e` (0 before any algorithm ran).
    pub(crate) fn flow(&self, e: usize) -> u64 {
        match self.arc.get(e) {
            Some(&a) => self.residual[self.rev[a]],
            None => 0,
        }
    }

    /// The cost of the current flow: the sum over edges of flow × cost.
    #[cfg(test)]
    pub(crate) fn total_cost(&self) -> i64 {
        (0..self.edges.len())
            .map(|e| self.flow(e) as i64 * self.edges[e].cost)
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
    pub(crate) fn cost_lower_bound(
        &mut self,
        source: usize,
        sink: usize,
        value: u64,
    ) -> Option<i64> {
        self.lay_out();
        let n = self.vertices;
        let mut potential = vec![0i64; n];
        let mut settled = false;
        for _ in 0..=n {
            let mut changed = false;
            for u in 0..n {
                for a in self.arcs(u) {
                    let v = self.head[a];
                    if self.residual[a] > 0 && potential[u] + self.cost[a] < potential[v] {
                        potential[v] = potential[u] + self.cost[a];
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
        for edge in &self.edges {
            let reduced = edge.cost + potential[edge.from] - potential[edge.to];
            bound += edge.capacity as i64 * reduced.min(0);
        }
        Some(bound)
    }

    /// Pushes as much flow as possible from `source` to `sink`, ignoring costs;
    /// returns it. Deterministic: edges are tried in the order they were added.
    pub(crate) fn max_flow(&mut self, source: usize, sink: usize) -> u64 {
        self.lay_out();
        self.dinic(source, sink)
    }

    /// Pushes as much flow as possible from `source` to `sink`, at the least
    /// cost among flows of that value; returns the flow. The graph must carry
    /// no flow yet. Deterministic: edges are tried in the order they were added.
    pub(crate) fn min_cost_max_flow(&mut self, source: usize, sink: usize) -> u64 {
        self.lay_out();
        let n = self.vertices;
        // Every arc with capacity left has a reduced cost
        // cost + potential[tail] - potential[head] of at least 0: true at the
        // start (costs ≥ 0, reverse arcs have no capacity left), kept by
        // adding Dijkstra's distances (capped at the sink's, so the search
        // stops once the sink is settled), and kept by augmenting only along
        // arcs of reduced cost 0 (their reverse arcs then have reduced cost
        // 0 too).
        let mut potential = vec![0i64; n];
        let mut total = 0;
        loop {
            let mut dist = vec![i64::MAX; n];
            dist[source] = 0;
            // Vertices at distance `d`, the smallest not settled: settled
            // straight from this stack, without the heap (most arcs have
            // reduced cost 0).
            let mut d = 0i64;
            let mut at_d = vec![source];
            let mut heap = BinaryHeap::new();
            loop {
                let u = match at_d.pop() {
                    Some(u) => u,
                    None => match heap.pop() {
                        Some(Reverse((du, u))) if du == dist[u] => {
                            d = du;
                            u
                        }
                        Some(_) => continue,
                        None => break,
                    },
                };
                if u == sink {
                    // Every vertex not settled yet is at least as far.
                    break;
                }
                for a in self.arcs(u) {
                    if self.residual[a] == 0 {
                        continue;
                    }
                    let v = self.head[a];
                    let reduced = self.cost[a] + potential[u] - potential[v];
                    debug_assert!(reduced >= 0, "reduced cost {reduced} < 0");
                    if d + reduced < dist[v] {
                        dist[v] = d + reduced;
                        if reduced == 0 {
                            at_d.push(v);
                        } else {
                            heap.push(Reverse((dist[v], v)));
                        }
                    }
                }
            }
            let to_sink = dist[sink];
            if to_sink == i64::MAX {
                return total;
            }
            // Adding min(distance, distance to the sink) keeps every reduced
            // cost at least 0: a vertex not settled when the search stopped is
            // at least as far as the sink, and for an arc u -> v of reduced
            // cost r, min(d_v, d_sink) ≤ min(d_u, d_sink) + r. The arcs of the
            // shortest paths to the sink get reduced cost 0.
            for (p, d) in potential.iter_mut().zip(&dist) {
                *p += (*d).min(to_sink);
            }
            total += self.push_shortest(source, sink, &potential);
        }
    }

    /// Pushes flow from `source` to `sink` along paths of arcs with capacity
    /// left and reduced cost 0 under `potential` (shortest paths), found by
    /// one depth-first pass: each vertex resumes at the first arc it has not
    /// tried, and a vertex all of whose arcs failed is not entered again.
    /// Pushes at least one unit if such a path exists (depth-first search
    /// reaches every vertex it can), not necessarily all it could: the next
    /// phase of [`Self::min_cost_max_flow`] finds the rest at the same cost.
    /// Returns the flow pushed.
    fn push_shortest(&mut self, source: usize, sink: usize, potential: &[i64]) -> u64 {
        const FREE: u8 = 0;
        const ON_PATH: u8 = 1;
        const DEAD: u8 = 2;
        let mut next_arc = self.start[..self.vertices].to_vec();
        let mut state = vec![FREE; self.vertices];
        // Arcs of the current path from the source.
        let mut path: Vec<usize> = Vec::new();
        let mut total = 0;
        let mut u = source;
        state[source] = ON_PATH;
        loop {
            if u == sink {
                let pushed = path
                    .iter()
                    .map(|&a| self.residual[a])
                    .min()
                    .expect("source ≠ sink");
                for &a in &path {
                    self.residual[a] -= pushed;
                    self.residual[self.rev[a]] += pushed;
                }
                total += pushed;
                // Back to the tail of the first saturated arc; the vertices
                // after it leave the path (not dead: they reached the sink).
                let first = path
                    .iter()
                    .position(|&a| self.residual[a] == 0)
                    .expect("the bottleneck is saturated");
                for &a in &path[first..] {
                    state[self.head[a]] = FREE;
                }
                path.truncate(first);
                u = path.last().map_or(source, |&a| self.head[a]);
                continue;
            }
            let end = self.start[u + 1];
            while next_arc[u] < end {
                let a = next_arc[u];
                let v = self.head[a];
                if state[v] == FREE
                    && self.residual[a] > 0
                    && self.cost[a] + potential[u] - potential[v] == 0
                {
                    break;
                }
                next_arc[u] += 1;
            }
            if next_arc[u] < end {
                let a = next_arc[u];
                path.push(a);
                u = self.head[a];
                state[u] = ON_PATH;
            } else {
                state[u] = DEAD;
                match path.pop() {
                    None => return total,
                    Some(a) => {
                        u = self.head[self.rev[a]];
                        next_arc[u] += 1;
                    }
                }
            }
        }
    }

    /// Dinic's algorithm on the arcs with capacity left; returns the flow
    /// pushed.
    fn dinic(&mut self, source: usize, sink: usize) -> u64 {
        let n = self.vertices;
        let mut total = 0;
        loop {
            // Levels by breadth-first search.
            let mut level = vec![usize::MAX; n];
            level[source] = 0;
            let mut queue = VecDeque::from([source]);
            while let Some(u) = queue.pop_front() {
                for a in self.arcs(u) {
                    let v = self.head[a];
                    if level[v] == usize::MAX && self.residual[a] > 0 {
                        level[v] = level[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            if level[sink] == usize::MAX {
                return total;
            }
            // Blocking flow by depth-first search, each vertex resuming at the
            // first arc it has not exhausted yet.
            let mut next_arc = self.start[..n].to_vec();
            loop {
                let pushed = self.push(source, sink, u64::MAX, &level, &mut next_arc);
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
        next_arc: &mut [usize],
    ) -> u64 {
        if u == sink {
            return limit;
        }
        while next_arc[u] < self.start[u + 1] {
            let a = next_arc[u];
            let v = self.head[a];
            if level[v] == level[u] + 1 && self.residual[a] > 0 {
                let pushed = self.push(v, sink, limit.min(self.residual[a]), level, next_arc);
                if pushed > 0 {
                    self.residual[a] -= pushed;
                    self.residual[self.rev[a]] += pushed;
                    return pushed;
                }
            }
            next_arc[u] += 1;
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
                let inflow: u64 = (0..cheapest.edges.len())
                    .filter(|&e| cheapest.edges[e].to == v).map(|e| cheapest.flow(e)).sum();
                let outflow: u64 = (0..cheapest.edges.len())
                    .filter(|&e| cheapest.edges[e].from == v).map(|e| cheapest.flow(e)).sum();
                prop_assert_eq!(inflow, outflow);
            }
        }
    }
}
