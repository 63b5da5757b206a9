//! Assignment of partitions to nodes: for every partition, `replication_factor`
//! distinct nodes spread over at least as many zones as the zone redundancy asks,
//! with the largest usable capacity the nodes' capacities allow, moving as few
//! replicas as possible from a previous assignment.
//!
//! Every partition stores the same amount of data, the *partition size* `S`; a node
//! of capacity `c` can hold `⌊c / S⌋` partition replicas (and never two replicas of
//! one partition). The usable capacity of the cluster is `S ×` [`PARTITION_COUNT`].
//! Whether an assignment exists for a size `S` is a maximum-flow problem:
//!
//! ```text
//! source ─► partition p ─(zr, 1 per zone)──► (p, zone z) ─(1)─► node n in z ─(⌊c_n/S⌋)─► sink
//!                       └(rf−zr, any zone)─┘
//! ```
//!
//! The first `zr` units of each partition go to `zr` different zones, the other
//! `rf − zr` anywhere; an edge of capacity 1 from `(p, z)` to each node of the zone
//! (a *placement* edge) keeps replicas on distinct nodes. The integer flows of
//! value `PARTITION_COUNT × rf` are exactly the valid assignments: each gives one
//! (its placement edges with flow), and each valid assignment can be routed as
//! one (one replica in each of `zr` of its zones through the `zr` branch, the
//! rest through the other).
//!
//! **Largest size.** Feasibility is monotone in `S` (a smaller size leaves every
//! node at least as much room). The optimum is of the form `⌊c_n / k⌋` for a node
//! `n` and `1 ≤ k ≤` [`PARTITION_COUNT`]: if `S` is feasible with node `n` holding
//! `k_n` replicas, the smallest `⌊c_n / k_n⌋` over the nodes that hold some is
//! at least `S` and still leaves each of them room for its `k_n`. [`assign`]
//! binary-searches these candidates (at most `nodes ×` [`PARTITION_COUNT`], and
//! none above `total capacity / (PARTITION_COUNT × rf)`), one maximum flow
//! (Dinic's algorithm) per step.
//!
//! **Fewest moves.** At the optimal `S`, the assignment is a *minimum-cost*
//! maximum flow (primal-dual: Dijkstra on reduced costs, then Dinic on the edges
//! of reduced cost 0) in which a placement edge costs 0 if the previous
//! assignment given to [`reassign`] had that replica on that node, and 1
//! otherwise; no other edge costs anything. The cost of a flow is therefore the
//! number of replicas placed on a node that did not hold them before, each a
//! partition copy of at most `S` bytes. Costs sit on placement edges only and
//! the maximum flows are exactly the valid assignments, so the `zr` / `rf − zr`
//! split changes which routes a flow may take but not what it costs: the result
//! is, exactly, a valid assignment of the largest usable capacity that moves the
//! fewest replicas. Usable capacity comes first: no smaller `S` is considered to
//! save moves. Without a previous assignment every placement costs 1 and every
//! assignment costs the same.
//!
//! The result depends only on the set of nodes and the previous assignment:
//! nodes are taken in ascending id order whatever the input order (a node listed
//! twice counts once), and both flow algorithms are deterministic. Reassigning
//! the same nodes (same replication factor and zone redundancy) from their own
//! assignment moves nothing and returns it unchanged, so applying a change a
//! second time changes nothing.

mod flow;

use crate::{NodeId, PARTITION_COUNT};
use flow::FlowGraph;

/// A node that stores data, as the assignment sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageNode {
    /// The node.
    pub id: NodeId,
    /// Its zone (site, datacenter...).
    pub zone: String,
    /// Bytes it offers.
    pub capacity: u64,
}

/// How many distinct zones each partition must span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneRedundancy {
    /// As many as the replication factor and the zones allow.
    Maximum,
    /// At least this many.
    AtLeast(usize),
}

/// Which nodes hold each partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// Bytes of data each partition can hold.
    pub partition_size: u64,
    /// For each partition, its nodes in ascending id order.
    pub partitions: Vec<Vec<NodeId>>,
}

impl Assignment {
    /// Bytes the cluster can store (each replicated `replication_factor` times).
    pub fn usable_capacity(&self) -> u64 {
        self.partition_size * PARTITION_COUNT as u64
    }

    /// Number of partitions `node` holds.
    pub fn load(&self, node: &NodeId) -> usize {
        self.partitions.iter().filter(|p| p.contains(node)).count()
    }
}

/// Why no assignment exists.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// The replication factor is zero.
    #[error("replication_factor must be at least 1")]
    NoReplication,
    /// Fewer storage nodes than replicas.
    #[error("{nodes} storage nodes cannot hold {replication_factor} replicas of each partition")]
    NotEnoughNodes {
        /// Storage nodes.
        nodes: usize,
        /// Replicas wanted.
        replication_factor: usize,
    },
    /// The zone redundancy asks for more zones than exist or than replicas.
    #[error("zone redundancy {wanted} is impossible with {zones} zones and replication factor {replication_factor}")]
    ImpossibleZoneRedundancy {
        /// Zones wanted per partition.
        wanted: usize,
        /// Zones with storage nodes.
        zones: usize,
        /// Replicas per partition.
        replication_factor: usize,
    },
    /// Capacities too small, or too unevenly spread over zones, for any assignment.
    #[error("the capacities cannot hold every partition under these constraints")]
    NoFeasibleAssignment,
}

/// The assignment with the largest usable capacity (see the module documentation).
pub fn assign(
    nodes: &[StorageNode],
    replication_factor: usize,
    zone_redundancy: ZoneRedundancy,
) -> Result<Assignment, AssignError> {
    reassign(nodes, replication_factor, zone_redundancy, None)
}

/// Like [`assign`], moving as few replicas as possible away from where
/// `previous` had them (see the module documentation): among the assignments
/// with the largest usable capacity, one that places the fewest replicas on a
/// node that did not hold them in `previous`.
pub fn reassign(
    nodes: &[StorageNode],
    replication_factor: usize,
    zone_redundancy: ZoneRedundancy,
    previous: Option<&Assignment>,
) -> Result<Assignment, AssignError> {
    reassign_partitions(
        nodes,
        replication_factor,
        zone_redundancy,
        previous,
        PARTITION_COUNT,
    )
}

/// [`reassign`] for `partition_count` partitions (tests use a handful, small
/// enough to check against an exhaustive search).
fn reassign_partitions(
    nodes: &[StorageNode],
    replication_factor: usize,
    zone_redundancy: ZoneRedundancy,
    previous: Option<&Assignment>,
    partition_count: usize,
) -> Result<Assignment, AssignError> {
    let rf = replication_factor;
    if rf == 0 {
        return Err(AssignError::NoReplication);
    }
    let mut nodes: Vec<&StorageNode> = nodes.iter().filter(|n| n.capacity > 0).collect();
    // A node listed twice counts once; which entry is kept does not depend on
    // the input order.
    nodes.sort_by(|a, b| (a.id, &a.zone, a.capacity).cmp(&(b.id, &b.zone, b.capacity)));
    nodes.dedup_by(|a, b| a.id == b.id);
    if nodes.len() < rf {
        return Err(AssignError::NotEnoughNodes {
            nodes: nodes.len(),
            replication_factor: rf,
        });
    }
    let mut zones: Vec<&str> = nodes.iter().map(|n| n.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    let zr = match zone_redundancy {
        ZoneRedundancy::Maximum => rf.min(zones.len()),
        ZoneRedundancy::AtLeast(k) => k,
    };
    if zr == 0 || zr > zones.len() || zr > rf {
        return Err(AssignError::ImpossibleZoneRedundancy {
            wanted: zr,
            zones: zones.len(),
            replication_factor: rf,
        });
    }
    let problem = Problem {
        nodes: &nodes,
        zones: &zones,
        rf,
        zr,
        partition_count,
        previous: previous.map(|a| a.partitions.as_slice()),
    };
    let candidates = problem.candidate_sizes();
    // Feasibility is monotone in the size: true up to the optimum, then false.
    let feasible = candidates.partition_point(|&size| problem.feasible(size));
    let size = match feasible.checked_sub(1) {
        Some(i) => candidates[i],
        None => return Err(AssignError::NoFeasibleAssignment),
    };
    let partitions = problem
        .cheapest(size)
        .ok_or(AssignError::NoFeasibleAssignment)?;
    Ok(Assignment {
        partition_size: size,
        partitions,
    })
}

struct Problem<'a> {
    /// Storage nodes, in ascending id order.
    nodes: &'a [&'a StorageNode],
    /// Their zones, sorted.
    zones: &'a [&'a str],
    rf: usize,
    zr: usize,
    partition_count: usize,
    /// Holders of each partition in the previous assignment.
    previous: Option<&'a [Vec<NodeId>]>,
}

/// The flow network of a [`Problem`] for one partition size.
struct Network {
    graph: FlowGraph,
    source: usize,
    sink: usize,
    /// `(partition, node, edge)` for every placement edge.
    placements: Vec<(usize, usize, usize)>,
}

impl Problem<'_> {
    /// Replicas node `n` can hold with partitions of `size` bytes.
    fn replicas(&self, n: usize, size: u64) -> u64 {
        (self.nodes[n].capacity / size).min(self.partition_count as u64)
    }

    /// Sizes, ascending, among which the optimum lies if there is one: the
    /// optimum is `⌊c_n / k⌋` for a node `n` and `1 ≤ k ≤ partition_count` (the
    /// largest size leaving every node the replica count it has at the
    /// optimum), and at most `total capacity / (partitions × rf)`.
    fn candidate_sizes(&self) -> Vec<u64> {
        let total: u128 = self.nodes.iter().map(|n| u128::from(n.capacity)).sum();
        let bound = total / (self.partition_count as u128 * self.rf as u128);
        let mut sizes: Vec<u64> = self
            .nodes
            .iter()
            .flat_map(|n| (1..=self.partition_count as u64).map(move |k| n.capacity / k))
            .filter(|&s| s >= 1 && u128::from(s) <= bound)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// Whether an assignment with partition size `size` exists.
    fn feasible(&self, size: u64) -> bool {
        let mut net = self.network(size);
        net.graph.max_flow(net.source, net.sink) == (self.partition_count * self.rf) as u64
    }

    /// Among the assignments with partition size `size`, if any, one with the
    /// fewest placements the previous assignment did not have.
    fn cheapest(&self, size: u64) -> Option<Vec<Vec<NodeId>>> {
        let mut net = self.network(size);
        let flow = net.graph.min_cost_max_flow(net.source, net.sink);
        if flow < (self.partition_count * self.rf) as u64 {
            return None;
        }
        let mut partitions: Vec<Vec<NodeId>> = (0..self.partition_count)
            .map(|_| Vec::with_capacity(self.rf))
            .collect();
        for (p, n, e) in net.placements {
            if net.graph.flow(e) > 0 {
                partitions[p].push(self.nodes[n].id);
            }
        }
        for p in &mut partitions {
            p.sort_unstable();
        }
        Some(partitions)
    }

    /// The network of the module documentation for partitions of `size`
    /// bytes; a placement costs 0 if the previous assignment had it, else 1.
    fn network(&self, size: u64) -> Network {
        let p_count = self.partition_count;
        let z_count = self.zones.len();
        // Vertices: source, sink, per partition an "up" (zr) and a "down"
        // (rf - zr) vertex, per (partition, zone) one vertex, per node one vertex.
        let source = 0;
        let sink = 1;
        let up = |p: usize| 2 + 2 * p;
        let down = |p: usize| 3 + 2 * p;
        let pz = |p: usize, z: usize| 2 + 2 * p_count + p * z_count + z;
        let node_v = |n: usize| 2 + 2 * p_count + p_count * z_count + n;
        let mut graph = FlowGraph::new(2 + 2 * p_count + p_count * z_count + self.nodes.len());
        let zone_of: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| {
                self.zones
                    .binary_search(&n.zone.as_str())
                    .expect("every node's zone is listed")
            })
            .collect();
        for p in 0..p_count {
            graph.add_edge(source, up(p), self.zr as u64);
            graph.add_edge(source, down(p), (self.rf - self.zr) as u64);
            for z in 0..z_count {
                graph.add_edge(up(p), pz(p, z), 1);
                graph.add_edge(down(p), pz(p, z), (self.rf - self.zr) as u64);
            }
        }
        let mut placements = Vec::with_capacity(p_count * self.nodes.len());
        for p in 0..p_count {
            let holders = self.previous.and_then(|prev| prev.get(p));
            for (n, &z) in zone_of.iter().enumerate() {
                let kept = holders.is_some_and(|h| h.contains(&self.nodes[n].id));
                let e = graph.add_edge_with_cost(pz(p, z), node_v(n), 1, i64::from(!kept));
                placements.push((p, n, e));
            }
        }
        for n in 0..self.nodes.len() {
            graph.add_edge(node_v(n), sink, self.replicas(n, size));
        }
        Network {
            graph,
            source,
            sink,
            placements,
        }
    }
}

#[cfg(test)]
mod tests;
