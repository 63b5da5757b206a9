use std::cmp::Reverse;

use proptest::prelude::*;

use super::*;

const GB: u64 = 1_000_000_000;

fn node(i: u8, zone: &str, capacity: u64) -> StorageNode {
    StorageNode {
        id: NodeId::from_public_key(&[i]),
        zone: zone.to_string(),
        capacity,
    }
}

fn zone_count(nodes: &[StorageNode]) -> usize {
    let mut zones: Vec<&str> = nodes
        .iter()
        .filter(|n| n.capacity > 0)
        .map(|n| n.zone.as_str())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    zones.len()
}

/// The constraints every assignment of `partitions` partitions must meet.
fn check_valid_partitions(
    nodes: &[StorageNode],
    rf: usize,
    zr: usize,
    partitions: usize,
    a: &Assignment,
) {
    assert_eq!(a.partitions.len(), partitions);
    for p in &a.partitions {
        assert_eq!(p.len(), rf, "{p:?}");
        let mut distinct = p.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), rf, "replicas on distinct nodes");
        let mut zones: Vec<&str> = p
            .iter()
            .map(|id| {
                nodes
                    .iter()
                    .find(|n| n.id == *id)
                    .expect("known node")
                    .zone
                    .as_str()
            })
            .collect();
        zones.sort_unstable();
        zones.dedup();
        assert!(zones.len() >= zr, "{} zones < {zr}", zones.len());
    }
    for n in nodes {
        let share = n.capacity / a.partition_size;
        assert!(
            a.load(&n.id) as u64 <= share,
            "node over its capacity share"
        );
    }
}

fn check_valid(nodes: &[StorageNode], rf: usize, zr: usize, a: &Assignment) {
    check_valid_partitions(nodes, rf, zr, PARTITION_COUNT, a);
}

/// Replicas placed on a node that did not hold them before.
fn moved(before: &Assignment, after: &Assignment) -> usize {
    before
        .partitions
        .iter()
        .zip(&after.partitions)
        .map(|(b, a)| a.iter().filter(|n| !b.contains(n)).count())
        .sum()
}

/// A lower bound, independent of the algorithm, on the replicas any valid
/// assignment of `after`'s partition size must move from `before`: node `n`
/// keeps at most `min(its old load, ⌊c_n / S⌋)` replicas.
fn moves_lower_bound(nodes: &[StorageNode], before: &Assignment, after: &Assignment) -> usize {
    let replicas: usize = after.partitions.iter().map(Vec::len).sum();
    let can_stay: usize = nodes
        .iter()
        .map(|n| {
            let room = (n.capacity / after.partition_size).min(after.partitions.len() as u64);
            before.load(&n.id).min(room as usize)
        })
        .sum();
    replicas.saturating_sub(can_stay)
}

/// Runs `check` on the [`Problem`] of `nodes` (distinct ids, capacities > 0).
fn with_problem<T>(
    nodes: &[StorageNode],
    rf: usize,
    previous: Option<&Assignment>,
    check: impl FnOnce(&Problem<'_>) -> T,
) -> T {
    let mut sorted: Vec<&StorageNode> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.id);
    let mut zones: Vec<&str> = sorted.iter().map(|n| n.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    check(&Problem {
        nodes: &sorted,
        zones: &zones,
        rf,
        zr: rf.min(zones.len()),
        partition_count: PARTITION_COUNT,
        previous: previous.map(|a| a.partitions.as_slice()),
    })
}

/// The fewest replicas any valid assignment of partition size `size` must
/// place on a node that did not hold them in `previous`, proven by the dual
/// bound of the flow network (not by the algorithm that found the flow).
fn proven_fewest_moves(
    nodes: &[StorageNode],
    rf: usize,
    previous: &Assignment,
    size: u64,
) -> usize {
    with_problem(nodes, rf, Some(previous), |problem| {
        let mut net = problem.network(size, Objective::Moves);
        let value = net.graph.min_cost_max_flow(net.source, net.sink);
        assert_eq!(value, (PARTITION_COUNT * rf) as u64, "feasible");
        let bound = net
            .graph
            .cost_lower_bound(net.source, net.sink, value)
            .expect("no negative cycle");
        assert_eq!(bound, net.graph.total_cost(), "the bound is met");
        usize::try_from(bound).expect("at least 0")
    })
}

/// `nodes` in an order drawn from `seed` (Fisher-Yates, xorshift).
fn shuffled(nodes: &[StorageNode], mut seed: u64) -> Vec<StorageNode> {
    let mut out = nodes.to_vec();
    seed |= 1;
    for i in (1..out.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    out
}

#[test]
fn equal_nodes_in_one_zone_share_the_partitions_evenly() {
    // Independent of the algorithm: with N equal nodes of capacity C and rf
    // replicas, each node must hold ceil(256 rf / N) replicas, so the best
    // partition size is C / ceil(256 rf / N).
    for n in 1..=7u8 {
        for rf in 1..=usize::from(n).min(3) {
            let nodes: Vec<_> = (0..n).map(|i| node(i, "dc1", 100 * GB)).collect();
            let a = assign(&nodes, rf, ZoneRedundancy::Maximum).expect("assign");
            let per_node = (PARTITION_COUNT * rf).div_ceil(usize::from(n)) as u64;
            assert_eq!(a.partition_size, 100 * GB / per_node, "n {n} rf {rf}");
            check_valid(&nodes, rf, 1, &a);
        }
    }
}

#[test]
fn the_smallest_zone_limits_a_cluster_that_needs_every_zone() {
    // rf 2 over 2 zones: every partition has one replica in each zone, so the
    // small zone's 10 GB bound the usable capacity.
    let nodes = [
        node(1, "a", 10 * GB),
        node(2, "b", 50 * GB),
        node(3, "b", 50 * GB),
    ];
    let a = assign(&nodes, 2, ZoneRedundancy::Maximum).expect("assign");
    assert_eq!(a.partition_size, 10 * GB / PARTITION_COUNT as u64);
    check_valid(&nodes, 2, 2, &a);
    // With zone redundancy 1, replicas may share a zone: only the total count
    // bounds the size, the largest S with ⌊50G/S⌋ × 2 + ⌊10G/S⌋ ≥ 512.
    let a = assign(&nodes, 2, ZoneRedundancy::AtLeast(1)).expect("assign");
    let fits = |s: u64| 2 * (50 * GB / s) + 10 * GB / s >= 2 * PARTITION_COUNT as u64;
    assert!(fits(a.partition_size) && !fits(a.partition_size + 1));
    check_valid(&nodes, 2, 1, &a);
}

#[test]
fn impossible_requests_are_refused_with_the_reason() {
    let nodes = [node(1, "a", GB), node(2, "a", GB)];
    assert_eq!(
        assign(&nodes, 3, ZoneRedundancy::Maximum),
        Err(AssignError::NotEnoughNodes {
            nodes: 2,
            replication_factor: 3
        })
    );
    assert!(matches!(
        assign(&nodes, 2, ZoneRedundancy::AtLeast(2)),
        Err(AssignError::ImpossibleZoneRedundancy { .. })
    ));
    assert_eq!(
        assign(&nodes, 0, ZoneRedundancy::Maximum),
        Err(AssignError::NoReplication)
    );
    // Gateways (capacity 0) store nothing.
    let with_gateway = [node(1, "a", GB), node(2, "b", 0)];
    assert!(matches!(
        assign(&with_gateway, 2, ZoneRedundancy::Maximum),
        Err(AssignError::NotEnoughNodes { nodes: 1, .. })
    ));
    // Too little room: 4 bytes cannot hold 256 partitions of 1 byte.
    assert_eq!(
        assign(&[node(1, "a", 4)], 1, ZoneRedundancy::Maximum),
        Err(AssignError::NoFeasibleAssignment)
    );
}

#[test]
fn a_node_listed_twice_counts_once_whatever_the_order() {
    let nodes = [
        node(1, "a", 10 * GB),
        node(2, "b", 20 * GB),
        node(1, "a", 30 * GB),
    ];
    let a = assign(&nodes, 2, ZoneRedundancy::Maximum).expect("assign");
    let mut reversed = nodes.clone();
    reversed.reverse();
    assert_eq!(
        assign(&reversed, 2, ZoneRedundancy::Maximum).expect("assign"),
        a
    );
}

/// The balance cost the algorithm gives `loads` (one per node of `nodes`,
/// capacities > 0, distinct ids) with partitions of `size` bytes:
/// `Σ_n Σ_{k ≤ l_n}` of the marginal cost of the `k`-th replica on `n`.
fn balance_cost(
    nodes: &[StorageNode],
    rf: usize,
    zr: usize,
    partitions: usize,
    size: u64,
    loads: &[u64],
) -> i64 {
    let mut sorted: Vec<&StorageNode> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.id);
    let mut zones: Vec<&str> = sorted.iter().map(|n| n.zone.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    let problem = Problem {
        nodes: &sorted,
        zones: &zones,
        rf,
        zr,
        partition_count: partitions,
        previous: None,
    };
    let balance = problem.balance(size);
    nodes
        .iter()
        .zip(loads)
        .map(|(n, &l)| {
            (1..=l)
                .map(|k| balance.marginal(k, n.capacity))
                .sum::<i64>()
        })
        .sum()
}

/// Exhaustive search over every assignment of a tiny cluster: the largest
/// partition size; at that size the smallest [`balance_cost`]; among those,
/// the fewest replicas placed on a node that did not hold them in
/// `previous` (`None` if no assignment exists).
fn brute_force(
    nodes: &[StorageNode],
    rf: usize,
    zr: usize,
    partitions: usize,
    previous: &[Vec<NodeId>],
) -> Option<(u64, usize, i64)> {
    // Every set of rf distinct nodes over at least zr zones, as a bit mask.
    let sets: Vec<u32> = (0u32..1 << nodes.len())
        .filter(|&mask| {
            let mut zones: Vec<&str> = (0..nodes.len())
                .filter(|i| mask & 1 << i != 0)
                .map(|i| nodes[i].zone.as_str())
                .collect();
            zones.sort_unstable();
            zones.dedup();
            mask.count_ones() as usize == rf && zones.len() >= zr
        })
        .collect();
    // (largest size, smallest balance cost at that size, fewest moves among
    // those) over all `sets^partitions`.
    let mut best: Option<(u64, usize, i64)> = None;
    let mut choice = vec![0usize; partitions];
    loop {
        let mut load = vec![0u64; nodes.len()];
        let mut moves = 0;
        for (p, &c) in choice.iter().enumerate() {
            for (i, n) in nodes.iter().enumerate() {
                if sets[c] & 1 << i != 0 {
                    load[i] += 1;
                    moves += usize::from(!previous[p].contains(&n.id));
                }
            }
        }
        // The largest size this assignment allows.
        let size = nodes
            .iter()
            .zip(&load)
            .filter(|(_, &l)| l > 0)
            .map(|(n, &l)| n.capacity / l)
            .min()
            .expect("rf ≥ 1 replicas");
        if size > 0 {
            let balance = balance_cost(nodes, rf, zr, partitions, size, &load);
            // Lexicographic: larger size, then lower cost, then fewer moves.
            let key = (Reverse(size), balance, moves);
            if best.is_none_or(|(s, m, b)| key < (Reverse(s), b, m)) {
                best = Some((size, moves, balance));
            }
        }
        // Next choice, like an odometer.
        let mut p = 0;
        loop {
            if p == partitions {
                return best;
            }
            choice[p] += 1;
            if choice[p] < sets.len() {
                break;
            }
            choice[p] = 0;
            p += 1;
        }
    }
}

/// A tiny cluster, its rf and zr, a partition count and a previous assignment
/// (any holders, including a node no longer there).
#[allow(clippy::type_complexity)]
fn tiny_cluster() -> impl Strategy<Value = (Vec<StorageNode>, usize, usize, usize, Vec<Vec<NodeId>>)>
{
    (2usize..=5, 1usize..=3, 2usize..=4).prop_flat_map(|(n, zones, partitions)| {
        (
            proptest::collection::vec((0..zones, 0u64..=12), n),
            1..=n.min(3),
            any::<proptest::sample::Index>(),
            proptest::collection::vec(0u32..64, partitions),
        )
            .prop_map(move |(spec, rf, zr_pick, previous)| {
                let nodes: Vec<_> = spec
                    .iter()
                    .enumerate()
                    .map(|(i, &(z, c))| node(i as u8, &format!("z{z}"), c))
                    .collect();
                let zr = 1 + zr_pick.index(rf.min(zone_count(&nodes).max(1)));
                // Bit i of a mask: node i held the partition; bit 5: a node
                // that left.
                let previous = previous
                    .iter()
                    .map(|mask| {
                        (0..6u8)
                            .filter(|i| mask & 1 << i != 0)
                            .map(|i| NodeId::from_public_key(&[if i == 5 { 99 } else { i }]))
                            .collect()
                    })
                    .collect();
                (nodes, rf, zr, partitions, previous)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn capacity_and_moves_match_an_exhaustive_search(
        (nodes, rf, zr, partitions, previous) in tiny_cluster()
    ) {
        let previous = Assignment { partition_size: 1, partitions: previous };
        let got = reassign_partitions(
            &nodes,
            rf,
            ZoneRedundancy::AtLeast(zr),
            Some(&previous),
            partitions,
        );
        // Gateways (capacity 0) can hold nothing: leave them out of the search.
        let storage: Vec<StorageNode> = nodes.iter().filter(|n| n.capacity > 0).cloned().collect();
        let zones = zone_count(&storage);
        let expected = (storage.len() >= rf && zr <= zones)
            .then(|| brute_force(&storage, rf, zr, partitions, &previous.partitions))
            .flatten();
        match expected {
            None => prop_assert!(got.is_err(), "{got:?}"),
            Some((size, moves, balance)) => {
                let got = got.expect("an assignment exists");
                check_valid_partitions(&nodes, rf, zr, partitions, &got);
                prop_assert_eq!(got.partition_size, size, "usable capacity");
                prop_assert_eq!(moved(&previous, &got), moves, "replicas moved");
                let loads: Vec<u64> = storage.iter().map(|n| got.load(&n.id) as u64).collect();
                prop_assert_eq!(
                    balance_cost(&storage, rf, zr, partitions, got.partition_size, &loads),
                    balance,
                    "balance"
                );
            }
        }
    }
}

/// A random cluster of 1–50 nodes in 1–7 zones, its capacities and rf 1–5.
fn cluster() -> impl Strategy<Value = (Vec<StorageNode>, usize)> {
    cluster_with(1000, GB)
}

/// Like [`cluster`], each capacity `1..=units` times `unit` bytes.
fn cluster_with(units: u64, unit: u64) -> impl Strategy<Value = (Vec<StorageNode>, usize)> {
    (1usize..=50, 1usize..=7).prop_flat_map(move |(n, zones)| {
        (
            proptest::collection::vec((0..zones, 1u64..=units), n),
            1usize..=5,
        )
            .prop_map(move |(spec, rf)| {
                let nodes: Vec<_> = spec
                    .iter()
                    .enumerate()
                    .map(|(i, &(z, c))| node(i as u8, &format!("z{z}"), c * unit))
                    .collect();
                (nodes, rf)
            })
    })
}

/// Replicas node `n` can hold in `a`.
fn room(n: &StorageNode, a: &Assignment) -> u64 {
    (n.capacity / a.partition_size).min(a.partitions.len() as u64)
}

/// Within each zone, no single replica can go from one node to another to
/// even out their utilisation (by more than rounding) without moving more
/// replicas than `a` does.
///
/// For nodes `x`, `y` of one zone, with loads `l` and capacities `c`: if `x`
/// holds a partition `y` does not, and `y` has room left, putting that
/// replica on `y` instead keeps the assignment valid (same zone, distinct
/// nodes), and moves no more replicas from `previous` if `x` did not hold it
/// there. It changes `Σ load² / capacity` by
/// `(2 l_y + 1) / c_y − (2 l_x − 1) / c_x`, which the smallest balance cost
/// forbids to be negative, up to rounding: the algorithm's marginal costs
/// are `q S` times these terms rounded up, so
/// `(2 l_x − 1) c_y < (2 l_y + 1) c_x + c_x c_y / (q S)`, and `q S ≥ 2 c_max`
/// bounds the last term by `min(c_x, c_y) / 2`.
fn check_balanced_within_zones(
    nodes: &[StorageNode],
    previous: Option<&Assignment>,
    a: &Assignment,
) {
    let loads: Vec<u64> = nodes.iter().map(|n| a.load(&n.id) as u64).collect();
    for (x, nx) in nodes.iter().enumerate() {
        for (y, ny) in nodes.iter().enumerate() {
            if nx.zone != ny.zone || loads[y] >= room(ny, a) {
                continue;
            }
            let movable = a.partitions.iter().enumerate().any(|(p, holders)| {
                holders.contains(&nx.id)
                    && !holders.contains(&ny.id)
                    && previous.is_none_or(|prev| !prev.partitions[p].contains(&nx.id))
            });
            if movable {
                let (lx, ly) = (u128::from(loads[x]), u128::from(loads[y]));
                let (cx, cy) = (u128::from(nx.capacity), u128::from(ny.capacity));
                assert!(
                    2 * (2 * lx - 1) * cy < 2 * (2 * ly + 1) * cx + cx.min(cy),
                    "{x} holds {lx} replicas in {cx} bytes, {y} holds {ly} in {cy}"
                );
            }
        }
    }
}

/// In a fresh assignment, nodes of one zone with the same capacity hold
/// numbers of replicas within 1 of each other (from
/// [`check_balanced_within_zones`] with equal rooms).
fn check_equal_nodes_within_one(nodes: &[StorageNode], a: &Assignment) {
    for x in nodes {
        for y in nodes {
            if x.zone == y.zone && x.capacity == y.capacity {
                let (lx, ly) = (a.load(&x.id), a.load(&y.id));
                assert!(
                    lx <= ly + 1,
                    "{lx} and {ly} replicas on equal nodes of a zone"
                );
            }
        }
    }
}

/// A change to a cluster: add a node, remove one, or change a capacity.
#[derive(Clone, Debug)]
enum Change {
    Add { zone: usize, capacity_gb: u64 },
    Remove(proptest::sample::Index),
    Resize(proptest::sample::Index, u64),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0usize..8, 1u64..=1000).prop_map(|(zone, capacity_gb)| Change::Add { zone, capacity_gb }),
        any::<proptest::sample::Index>().prop_map(Change::Remove),
        (any::<proptest::sample::Index>(), 1u64..=1000).prop_map(|(i, c)| Change::Resize(i, c)),
    ]
}

fn apply(nodes: &[StorageNode], change: &Change) -> Vec<StorageNode> {
    let mut out = nodes.to_vec();
    match change {
        Change::Add { zone, capacity_gb } => {
            out.push(node(200, &format!("z{zone}"), capacity_gb * GB));
        }
        Change::Remove(i) => {
            out.remove(i.index(out.len()));
        }
        Change::Resize(i, capacity_gb) => out[i.index(nodes.len())].capacity = capacity_gb * GB,
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn random_clusters_meet_every_invariant(
        (nodes, rf) in cluster(),
        change in change(),
        seed in any::<u64>(),
    ) {
        let a = match assign(&nodes, rf, ZoneRedundancy::Maximum) {
            Err(AssignError::NotEnoughNodes { .. }) if nodes.len() < rf => return Ok(()),
            other => other.expect("enough nodes of at least 1 GB: feasible"),
        };
        // rf distinct nodes, as many zones as rf and the zones allow, no node
        // over its share.
        check_valid(&nodes, rf, rf.min(zone_count(&nodes)), &a);
        // The largest size: none larger is feasible.
        prop_assert!(!with_problem(&nodes, rf, None, |p| p.feasible(a.partition_size + 1)));
        // Each zone's replicas spread over its nodes in proportion to their
        // room.
        check_balanced_within_zones(&nodes, None, &a);
        check_equal_nodes_within_one(&nodes, &a);
        // Input order does not matter.
        prop_assert_eq!(
            &assign(&shuffled(&nodes, seed), rf, ZoneRedundancy::Maximum).expect("assign"),
            &a
        );
        // The same change applied twice, in any order of the nodes, gives the
        // same assignment; applying it again to its result changes nothing.
        let changed = apply(&nodes, &change);
        let Ok(after) = reassign(&changed, rf, ZoneRedundancy::Maximum, Some(&a)) else {
            prop_assert!(changed.len() < rf);
            return Ok(());
        };
        check_valid(&changed, rf, rf.min(zone_count(&changed)), &after);
        // Every replica sits where it evens out utilisation best, moved or
        // not, and as evenly as a fresh assignment of the changed cluster.
        check_balanced_within_zones(&changed, None, &after);
        let fresh = assign(&changed, rf, ZoneRedundancy::Maximum).expect("assign");
        prop_assert_eq!(fresh.partition_size, after.partition_size);
        let loads = |x: &Assignment| -> Vec<u64> {
            changed.iter().map(|n| x.load(&n.id) as u64).collect()
        };
        let cost = |x: &Assignment| {
            balance_cost(&changed, rf, rf.min(zone_count(&changed)), PARTITION_COUNT, x.partition_size, &loads(x))
        };
        prop_assert_eq!(cost(&after), cost(&fresh));
        let again = reassign(&shuffled(&changed, seed ^ 1), rf, ZoneRedundancy::Maximum, Some(&a))
            .expect("reassign");
        prop_assert_eq!(&again, &after);
        let twice = reassign(&changed, rf, ZoneRedundancy::Maximum, Some(&after))
            .expect("reassign");
        prop_assert_eq!(&twice, &after);
        // No fewer moves than any assignment of that size needs, and no
        // more than starting over.
        prop_assert!(moved(&a, &after) >= moves_lower_bound(&changed, &a, &after));
        prop_assert!(
            moved(&a, &after) >= proven_fewest_moves(&changed, rf, &a, after.partition_size)
        );
        prop_assert!(moved(&a, &after) <= moved(&a, &fresh));
    }
}

#[test]
fn adding_a_node_to_twenty_gives_it_its_share_and_moves_little_more() {
    // Clusters of 20 nodes in 3 or 4 zones, capacities 1–12 TB drawn from a
    // seed, and a node added in one zone.
    for seed in 1..=8u64 {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut draw = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        let zones = 3 + draw(2);
        let nodes: Vec<_> = (0..20u8)
            .map(|i| {
                let capacity = (1 + draw(12)) * 1000 * GB;
                node(i, &format!("z{}", u64::from(i) % zones), capacity)
            })
            .collect();
        let before = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
        let mut grown = nodes.clone();
        let zone = draw(zones);
        grown.push(node(100, &format!("z{zone}"), (1 + draw(12)) * 1000 * GB));
        let after = reassign(&grown, 3, ZoneRedundancy::Maximum, Some(&before)).expect("reassign");
        check_valid(&grown, 3, 3, &after);
        assert!(after.usable_capacity() >= before.usable_capacity());
        let with_history = moved(&before, &after);
        let minimum = proven_fewest_moves(&grown, 3, &before, after.partition_size);
        let node_bound = moves_lower_bound(&grown, &before, &after);
        let from_scratch = moved(
            &before,
            &assign(&grown, 3, ZoneRedundancy::Maximum).expect("assign"),
        );
        let share = after.load(&grown[20].id);
        eprintln!(
            "seed {seed}, {zones} zones: moved {with_history} replicas; proven minimum \
             {minimum}; per-node bound {node_bound}; from scratch {from_scratch}; \
             the new node holds {share}"
        );
        assert!(node_bound <= minimum);
        assert!(minimum <= with_history, "seed {seed}");
        assert!(with_history <= from_scratch, "seed {seed}");
        // The new node holds its share of its zone: as full as the others.
        assert!(share > 0, "seed {seed}");
        check_balanced_within_zones(&grown, None, &after);
    }
}

#[test]
fn reassigning_an_unchanged_cluster_moves_nothing() {
    let nodes: Vec<_> = (0..9u8)
        .map(|i| node(i, &format!("z{}", i % 3), u64::from(i % 4 + 1) * GB))
        .collect();
    let before = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    let after = reassign(&nodes, 3, ZoneRedundancy::Maximum, Some(&before)).expect("reassign");
    assert_eq!(after, before);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn equal_nodes_of_a_zone_hold_within_one_replica_of_each_other(
        (nodes, rf) in cluster_with(3, 100 * GB),
    ) {
        // Capacities of 100, 200 or 300 GB: many nodes of one zone are equal.
        let a = match assign(&nodes, rf, ZoneRedundancy::Maximum) {
            Err(AssignError::NotEnoughNodes { .. }) if nodes.len() < rf => return Ok(()),
            other => other.expect("feasible"),
        };
        check_valid(&nodes, rf, rf.min(zone_count(&nodes)), &a);
        check_equal_nodes_within_one(&nodes, &a);
        check_balanced_within_zones(&nodes, None, &a);
    }
}

#[test]
fn equal_nodes_of_a_zone_split_its_replicas_evenly() {
    // One zone, rf 1: 256 replicas over 2 nodes, then over 3.
    let two = [node(1, "a", 100 * GB), node(2, "a", 100 * GB)];
    let a = assign(&two, 1, ZoneRedundancy::Maximum).expect("assign");
    assert_eq!(a.partition_size, 100 * GB / 128);
    assert_eq!((a.load(&two[0].id), a.load(&two[1].id)), (128, 128));
    let three = [two[0].clone(), two[1].clone(), node(3, "a", 100 * GB)];
    let a = assign(&three, 1, ZoneRedundancy::Maximum).expect("assign");
    let mut loads: Vec<usize> = three.iter().map(|n| a.load(&n.id)).collect();
    loads.sort_unstable();
    assert_eq!(loads, [85, 85, 86]);
    // rf 3 over three zones, one of them with two equal nodes: each of those
    // holds half of its zone's 256 replicas. Larger single nodes elsewhere
    // leave the pair room for all 256 each.
    let nodes = [
        node(1, "a", 100 * GB),
        node(2, "a", 100 * GB),
        node(3, "b", 100 * GB),
        node(4, "c", 100 * GB),
    ];
    let a = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    check_valid(&nodes, 3, 3, &a);
    assert_eq!(a.partition_size, 100 * GB / 256);
    assert_eq!((a.load(&nodes[0].id), a.load(&nodes[1].id)), (128, 128));
}

#[test]
fn nodes_of_a_zone_fill_in_proportion_to_their_capacity() {
    // Brest and Lyon bound the size to 400 GB / 256. Paris has room for 128
    // and for all 256 replicas on its nodes; in proportion to capacity they
    // hold 64 and 192, each a quarter full.
    let nodes = [
        node(1, "paris", 200 * GB),
        node(2, "paris", 600 * GB),
        node(3, "lyon", 400 * GB),
        node(4, "brest", 400 * GB),
    ];
    let a = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    check_valid(&nodes, 3, 3, &a);
    assert_eq!(a.partition_size, 400 * GB / 256);
    assert_eq!((a.load(&nodes[0].id), a.load(&nodes[1].id)), (64, 192));
}

/// Paris and Lyon with two nodes of 100 GB each, Brest with one: with rf 3
/// and one replica in each zone, Brest's 100 GB bound the usable capacity.
fn paris_lyon_brest() -> [StorageNode; 5] {
    [
        node(1, "paris", 100 * GB),
        node(2, "paris", 100 * GB),
        node(3, "lyon", 100 * GB),
        node(4, "lyon", 100 * GB),
        node(5, "brest", 100 * GB),
    ]
}

#[test]
fn no_node_is_left_idle_next_to_a_full_one() {
    // Found on a real cluster: the whole of Paris's share went to one node,
    // none to the other. Every node now holds half its zone.
    let nodes = paris_lyon_brest();
    let a = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    check_valid(&nodes, 3, 3, &a);
    assert_eq!(a.partition_size, 100 * GB / 256);
    let loads: Vec<usize> = nodes.iter().map(|n| a.load(&n.id)).collect();
    assert_eq!(loads, [128, 128, 128, 128, 256]);
}

#[test]
fn balance_comes_before_moves() {
    // The lopsided assignment of that cluster, given as the previous one: a
    // reassignment evens it out (the second node of Paris and of Lyon take
    // half of their zone, 256 moves) though keeping it would move nothing.
    let nodes = paris_lyon_brest();
    let lopsided = Assignment {
        partition_size: 100 * GB / 256,
        partitions: vec![
            {
                let mut p = vec![nodes[0].id, nodes[2].id, nodes[4].id];
                p.sort_unstable();
                p
            };
            PARTITION_COUNT
        ],
    };
    let even = reassign(&nodes, 3, ZoneRedundancy::Maximum, Some(&lopsided)).expect("reassign");
    check_valid(&nodes, 3, 3, &even);
    let loads: Vec<usize> = nodes.iter().map(|n| even.load(&n.id)).collect();
    assert_eq!(loads, [128, 128, 128, 128, 256]);
    assert_eq!(moved(&lopsided, &even), 256);
    // Once even, it stays so: reassigning moves nothing.
    let again = reassign(&nodes, 3, ZoneRedundancy::Maximum, Some(&even)).expect("reassign");
    assert_eq!(again, even);
}

#[test]
fn a_node_removed_and_assigned_again_gets_its_share_back() {
    // Found by an operator: `layout remove` then `layout assign` of the same
    // node (same zone, same capacity) left it holding nothing, since the
    // usable capacity did not grow and leaving it idle moved nothing.
    let nodes = paris_lyon_brest();
    let before = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    let without: Vec<StorageNode> = nodes
        .iter()
        .filter(|n| n.id != nodes[1].id)
        .cloned()
        .collect();
    let removed = reassign(&without, 3, ZoneRedundancy::Maximum, Some(&before)).expect("reassign");
    assert_eq!(removed.load(&nodes[1].id), 0);
    assert_eq!(removed.load(&nodes[0].id), 256);
    let back = reassign(&nodes, 3, ZoneRedundancy::Maximum, Some(&removed)).expect("reassign");
    check_valid(&nodes, 3, 3, &back);
    let loads: Vec<usize> = nodes.iter().map(|n| back.load(&n.id)).collect();
    assert_eq!(loads, [128, 128, 128, 128, 256]);
    // Exactly its share moves back to it, nothing else.
    assert_eq!(moved(&removed, &back), 128);
}
