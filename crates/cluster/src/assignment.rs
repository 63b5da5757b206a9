//! Assignment of partitions to nodes: for every partition, `replication_factor`
//! distinct nodes spread over at least as many zones as the zone redundancy asks,
//! with the largest usable capacity the nodes' capacities allow, spreading
//! the replicas over the nodes in proportion to their capacity as evenly as
//! the constraints allow, and among those assignments moving as few replicas
//! as possible from a previous one.
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
//! **Balance, then fewest moves.** At the optimal `S`, the assignment is a
//! *minimum-cost* maximum flow (primal-dual: Dijkstra on reduced costs, then
//! flow pushed along the paths of reduced cost 0) whose costs rank the
//! assignments lexicographically: first by balance, then by moves.
//!
//! - *Moves.* A placement edge costs 0 if the previous assignment given to
//!   [`reassign`] had that replica on that node, and 1 otherwise: the moves
//!   of a flow are the replicas placed on a node that did not hold them
//!   before, each a partition copy of at most `S` bytes. Costs on placement
//!   edges only depend on the assignment, not on the route through the
//!   `zr` / `rf − zr` split, since the maximum flows are exactly the valid
//!   assignments.
//! - *Balance.* A node `n` of capacity `c_n` holding `l_n` replicas costs
//!   about `q S l_n² / c_n`, that is `q × l_n ×` the fraction of its capacity
//!   in use: its edge to the sink is split into one edge of capacity 1 per
//!   replica it has room for, the `k`-th costing `⌈q S (2k − 1) / c_n⌉`,
//!   with `q = 2 ⌈c_max / S⌉` for the largest capacity `c_max`. A node's
//!   marginal costs thus increase by steps of `2q S / c_n ≥ 4`, so a cheapest
//!   flow fills its edges in order and pays the convex cost of its load, and
//!   rounding up shifts each by less than a quarter of a step. Minimising
//!   `Σ l_n² / c_n` over all nodes spreads the replicas in proportion to
//!   capacity (every node at the same fraction of its capacity), as far as
//!   the zone constraints and the rooms `⌊c_n / S⌋` (at most one replica of a
//!   partition per node) let it. Within a zone it always can: if node `x`
//!   holds a partition that node `y` of its zone does not, and `y` has room
//!   left, that replica could go to `y` instead, so (when that moves no more
//!   replicas, e.g. in a fresh assignment) the optimum has
//!   `(2 l_x − 1) / c_x ≤ (2 l_y + 1) / c_y`, give or take the rounding
//!   (at most `1 / (2 c_max)`, a quarter of the smallest step). Equal nodes
//!   of a zone have equal marginal costs and hold within one replica of
//!   each other: none idles next to an equal one.
//!
//! A flow moves at most `PARTITION_COUNT × rf` replicas, so with every
//! balance cost multiplied by `W = PARTITION_COUNT × rf + 1`, one unit of
//! balance outweighs any difference in moves. A flow's cost is
//! `W × balance + moves`: the cheapest flow has the smallest balance cost of
//! any valid assignment of the largest usable capacity, and among those
//! moves the fewest replicas. Usable capacity comes first: no smaller `S` is
//! considered to balance or to save moves. Balance comes before moves, so a
//! node that holds nothing while it has room (one removed from the layout
//! and assigned again, say, or a node added to a zone that does not limit the
//! usable capacity) gets its share even though leaving it idle would move
//! nothing; and a reassignment from a lopsided assignment evens it out. Since
//! the balance optimum depends on the nodes alone, an assignment this
//! function made stays optimal until the nodes change: reassigning from it
//! moves nothing, and a change moves what evening out the new set of nodes
//! needs, no more.
//!
//! **Cost of the balance.** The split sink edges add
//! `Σ min(⌊c_n / S⌋, PARTITION_COUNT) ≤ nodes × PARTITION_COUNT` edges, at
//! most as many as the placement edges. The primal-dual method runs one
//! phase per distinct cost of a cheapest augmenting path (and rarely a few
//! more), each a Dijkstra search stopped once the sink is settled and one
//! depth-first pass. Without a previous assignment such a path costs one
//! marginal cost times `W`, plus 1, so there are at most `2q` distinct costs: the
//! scale `q` is as small as the precision above allows (for 200 nodes of 1 to
//! 20 TB and rf 3, `q` = 16) rather than a fixed large one, which would give
//! every replica its own phase. Costs are `i64`, computed in `u128`; `q` is
//! capped at 2^20, and lowered if needed so that a simple path, which costs
//! at most `vertices × (W × B + 1)` with `B = max(2q, PARTITION_COUNT)` the
//! largest marginal cost, stays under 2^60 (at rf 3, only past 7 × 10^8
//! vertices); capacities above `2q S` (some two million partitions' worth,
//! for a node that can hold at most [`PARTITION_COUNT`] replicas) then count
//! as `2q S`, which keeps the marginal costs increasing and at most `B`.
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

/// The assignment with the largest usable capacity, its replicas spread over
/// the nodes in proportion to their capacity as evenly as the constraints allow
/// (see the module documentation).
pub fn assign(
    nodes: &[StorageNode],
    replication_factor: usize,
    zone_redundancy: ZoneRedundancy,
) -> Result<Assignment, AssignError> {
    reassign(nodes, replication_factor, zone_redundancy, None)
}

/// Like [`assign`], moving as few replicas as possible away from where
/// `previous` had them (see the module documentation): among the assignments
/// with the largest usable capacity, one that spreads the replicas most evenly
/// relative to the nodes' capacities and, among those, places the fewest
/// replicas on a node that did not hold them in `previous`.
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
        .best(size)
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

/// What the costs of a [`Network`] measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Objective {
    /// Replicas moved: a placement costs 0 if the previous assignment had it,
    /// else 1; nothing else costs anything.
    Moves,
    /// Balance, then replicas moved: one unit of balance cost weighs more
    /// than every replica moved together (see [`Balance`]).
    BalanceThenMoves,
}

/// The largest scale `q` of the balance costs (see [`Balance::new`]).
const MAX_BALANCE_SCALE: u128 = 1 << 20;

/// Integer costs of the balance objective for partitions of `S` bytes: a
/// node of capacity `c` holding `l` replicas costs about `q S l² / c`
/// (`q × l ×` the fraction of its capacity in use), its `k`-th replica
/// `⌈q S (2k − 1) / c⌉` more than its `k − 1`-th.
#[derive(Clone, Copy, Debug)]
struct Balance {
    /// The scale `q`.
    scale: u128,
    /// The partition size `S`.
    size: u128,
    /// What one unit of balance cost weighs in the network: more than every
    /// replica moved together.
    weight: i64,
}

impl Balance {
    /// The costs for `replicas` units of flow in a network of `vertices`
    /// vertices, with partitions of `size` bytes and nodes of at most
    /// `max_capacity` bytes.
    ///
    /// `q = 2 ⌈max_capacity / S⌉`: a node's consecutive marginal costs then
    /// differ by `2q S / c ≥ 4`, and rounding one up moves it by less than a
    /// quarter of that step; and each marginal cost is at most `2q`, so the
    /// costs of the augmenting paths of a fresh assignment (one marginal cost
    /// times the weight, plus 1) take at most `2q` values, which bounds the
    /// phases of the primal-dual method. `q` is at most 2^20
    /// ([`MAX_BALANCE_SCALE`]), lowered if needed so that no path cost (at
    /// most `vertices` edges of `(replicas + 1) × 2q + 1`) comes near
    /// `i64::MAX`; capacities above `2q S` then count as `2q S`.
    fn new(
        replicas: usize,
        vertices: usize,
        partition_count: usize,
        size: u64,
        max_capacity: u64,
    ) -> Self {
        let replicas = replicas as u128;
        let size = u128::from(size);
        let most = partition_count as u128;
        // 2q × replicas × vertices < 2^60, which leaves room for potentials.
        let limit = (1u128 << 60) / (vertices.max(1) as u128 * (2 * replicas + 1));
        let scale = (2 * u128::from(max_capacity).div_ceil(size))
            .min(MAX_BALANCE_SCALE)
            .min(limit)
            .max(1);
        // A flow moves at most `replicas` replicas: a weight of one more
        // puts balance first. With the largest marginal cost
        // max(2q, partition_count) (see `marginal`), an edge costs at most
        // that times the weight.
        let weight = replicas + 1;
        debug_assert!(weight * (2 * scale).max(most) < 1 << 60);
        Balance {
            scale,
            size,
            weight: i64::try_from(weight).expect("the scale keeps costs small"),
        }
    }

    /// What the `k`-th replica adds to the cost of a node of `capacity`
    /// bytes, for `1 ≤ k ≤ min(⌊capacity / S⌋, partition_count)`.
    ///
    /// With `w = min(capacity, 2q S)` (`w = capacity` unless `q` was
    /// lowered), `⌈q S (2k − 1) / w⌉`: at most `2q` if `w = capacity`, since
    /// `(2k − 1) S < 2 capacity`, else `⌈(2k − 1) / 2⌉ = k ≤ partition_count`.
    /// Strictly increasing in `k`: consecutive costs differ by at least
    /// `⌊2q S / w⌋ ≥ 1`.
    fn marginal(&self, k: u64, capacity: u64) -> i64 {
        let weight = u128::from(capacity).min(2 * self.scale * self.size);
        let cost = (self.scale * self.size * (2 * u128::from(k) - 1)).div_ceil(weight);
        i64::try_from(cost).expect("at most max(2q, partition_count)")
    }
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

    /// The balance costs for partitions of `size` bytes.
    fn balance(&self, size: u64) -> Balance {
        let vertices = 2
            + 2 * self.partition_count
            + self.partition_count * self.zones.len()
            + self.nodes.len();
        let max_capacity = self.nodes.iter().map(|n| n.capacity).max().unwrap_or(0);
        Balance::new(
            self.partition_count * self.rf,
            vertices,
            self.partition_count,
            size,
            max_capacity,
        )
    }

    /// Whether an assignment with partition size `size` exists.
    fn feasible(&self, size: u64) -> bool {
        let mut net = self.network(size, Objective::Moves);
        net.graph.max_flow(net.source, net.sink) == (self.partition_count * self.rf) as u64
    }

    /// Among the assignments with partition size `size`, if any, one with the
    /// smallest balance cost and, among those, the fewest placements the
    /// previous assignment did not have.
    fn best(&self, size: u64) -> Option<Vec<Vec<NodeId>>> {
        let mut net = self.network(size, Objective::BalanceThenMoves);
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
    /// bytes, with the costs of `objective`.
    fn network(&self, size: u64, objective: Objective) -> Network {
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
        let vertices = 2 + 2 * p_count + p_count * z_count + self.nodes.len();
        let mut graph = FlowGraph::new(vertices);
        let balance = (objective == Objective::BalanceThenMoves).then(|| self.balance(size));
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
                let cost = i64::from(!kept);
                let e = graph.add_edge_with_cost(pz(p, z), node_v(n), 1, cost);
                placements.push((p, n, e));
            }
        }
        for n in 0..self.nodes.len() {
            let room = self.replicas(n, size);
            let capacity = self.nodes[n].capacity;
            match balance {
                None => {
                    graph.add_edge(node_v(n), sink, room);
                }
                // One edge per replica the node can hold, of increasing cost:
                // a cheapest flow fills them in order.
                Some(balance) => {
                    for k in 1..=room {
                        let cost = balance.marginal(k, capacity) * balance.weight;
                        graph.add_edge_with_cost(node_v(n), sink, 1, cost);
                    }
                }
            }
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
