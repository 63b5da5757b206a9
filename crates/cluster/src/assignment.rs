//! Assignment of partitions to nodes: for every partition, `replication_factor`
//! distinct nodes spread over at least as many zones as the zone redundancy asks,
//! with the largest usable capacity the nodes' capacities allow.
//!
//! Every partition stores the same amount of data, the *partition size* `S`; a node
//! of capacity `c` can hold `⌊c / S⌋` partition replicas (and never two replicas of
//! one partition). The usable capacity of the cluster is `S ×` [`PARTITION_COUNT`].
//! [`assign`] finds the largest `S` for which an assignment exists, by binary search
//! over `S`, each step a maximum-flow problem:
//!
//! ```text
//! source ─► partition p ─(zr, 1 per zone)──► (p, zone z) ─(1)─► node n in z ─(⌊c_n/S⌋)─► sink
//!                       └(rf−zr, any zone)─┘
//! ```
//!
//! The first `zr` units of each partition go to `zr` different zones, the other
//! `rf − zr` anywhere; an edge of capacity 1 from `(p, z)` to each node of the zone
//! keeps replicas on distinct nodes. An assignment exists iff the maximum flow is
//! `PARTITION_COUNT × rf`. The result depends only on the set of nodes (their order
//! in the input does not matter), so applying the same change twice gives the same
//! assignment.
//!
//! [`reassign`] starts from a previous assignment: a first maximum flow uses only
//! the placements it had (as many replicas as possible stay), a second one adds
//! every other placement. A small change then moves little data; the movement is
//! not proven minimal.

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

/// Like [`assign`], keeping partitions where `previous` had them when it can
/// (see the module documentation). The usable capacity is still the largest
/// possible; the data moved is small but not proven minimal.
pub fn reassign(
    nodes: &[StorageNode],
    replication_factor: usize,
    zone_redundancy: ZoneRedundancy,
    previous: Option<&Assignment>,
) -> Result<Assignment, AssignError> {
    let rf = replication_factor;
    if rf == 0 {
        return Err(AssignError::NoReplication);
    }
    let mut nodes: Vec<&StorageNode> = nodes.iter().filter(|n| n.capacity > 0).collect();
    nodes.sort_by_key(|n| n.id);
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
        previous: previous.map(|a| a.partitions.as_slice()),
    };
    // The largest feasible size lies in [1, total / (partitions × rf)].
    let total: u64 = nodes.iter().map(|n| n.capacity).sum();
    let mut lo = 1u64;
    let mut hi = total / (PARTITION_COUNT * rf) as u64 + 1; // infeasible
    if problem.solve(lo).is_none() {
        return Err(AssignError::NoFeasibleAssignment);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if problem.solve(mid).is_some() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let partitions = problem.solve(lo).ok_or(AssignError::NoFeasibleAssignment)?;
    Ok(Assignment {
        partition_size: lo,
        partitions,
    })
}

struct Problem<'a> {
    nodes: &'a [&'a StorageNode],
    zones: &'a [&'a str],
    rf: usize,
    zr: usize,
    /// Holders of each partition in the previous assignment, tried first.
    previous: Option<&'a [Vec<NodeId>]>,
}

impl Problem<'_> {
    /// An assignment with partition size `size`, if one exists.
    fn solve(&self, size: u64) -> Option<Vec<Vec<NodeId>>> {
        let p_count = PARTITION_COUNT;
        let z_count = self.zones.len();
        // Vertices: source, sink, per partition an "up" (zr) and a "down"
        // (rf - zr) vertex, per (partition, zone) one vertex, per node one vertex.
        let source = 0;
        let sink = 1;
        let up = |p: usize| 2 + 2 * p;
        let down = |p: usize| 3 + 2 * p;
        let pz = |p: usize, z: usize| 2 + 2 * p_count + p * z_count + z;
        let node_v = |n: usize| 2 + 2 * p_count + p_count * z_count + n;
        let mut g = FlowGraph::new(2 + 2 * p_count + p_count * z_count + self.nodes.len());
        let zone_of: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| {
                self.zones
                    .binary_search(&n.zone.as_str())
                    .expect("every node's zone is listed")
            })
            .collect();
        let held = |p: usize, n: usize| {
            self.previous
                .and_then(|prev| prev.get(p))
                .is_some_and(|holders| holders.contains(&self.nodes[n].id))
        };
        for p in 0..p_count {
            g.add_edge(source, up(p), self.zr as u64);
            g.add_edge(source, down(p), (self.rf - self.zr) as u64);
            for z in 0..z_count {
                g.add_edge(up(p), pz(p, z), 1);
                g.add_edge(down(p), pz(p, z), (self.rf - self.zr) as u64);
            }
        }
        for (n, node) in self.nodes.iter().enumerate() {
            let replicas = (node.capacity / size).min(p_count as u64);
            g.add_edge(node_v(n), sink, replicas);
        }
        // First only the placements the previous assignment had: as many
        // replicas as possible stay where they are. Then every placement: the
        // shortest augmenting paths, tried first, put the rest where there is
        // room, and seldom displace a replica that could stay.
        let mut placement_edges = Vec::with_capacity(p_count * self.nodes.len());
        let mut flow = 0;
        for keep in [true, false] {
            for p in 0..p_count {
                for (n, &z) in zone_of.iter().enumerate() {
                    if held(p, n) == keep {
                        placement_edges.push((p, n, g.add_edge(pz(p, z), node_v(n), 1)));
                    }
                }
            }
            flow += g.max_flow(source, sink);
        }
        if flow < (p_count * self.rf) as u64 {
            return None;
        }
        let mut partitions: Vec<Vec<NodeId>> =
            (0..p_count).map(|_| Vec::with_capacity(self.rf)).collect();
        for (p, n, e) in placement_edges {
            if g.flow(e) > 0 {
                debug_assert_eq!(g.head(e), node_v(n));
                partitions[p].push(self.nodes[n].id);
            }
        }
        for p in &mut partitions {
            p.sort_unstable();
        }
        Some(partitions)
    }
}

#[cfg(test)]
mod tests;
