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

/// The constraints every assignment must meet.
fn check_valid(nodes: &[StorageNode], rf: usize, zr: usize, a: &Assignment) {
    assert_eq!(a.partitions.len(), PARTITION_COUNT);
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
        let share = (n.capacity / a.partition_size).min(PARTITION_COUNT as u64);
        assert!(
            a.load(&n.id) as u64 <= share,
            "node over its capacity share"
        );
    }
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
}

fn cluster() -> impl Strategy<Value = (Vec<StorageNode>, usize, usize)> {
    (1usize..=10, 1usize..=4).prop_flat_map(|(n, zones)| {
        (
            proptest::collection::vec((0..zones, 1u64..=200), n),
            1..=n.min(4),
            any::<proptest::sample::Index>(),
        )
            .prop_map(move |(spec, rf, zr_pick)| {
                let nodes: Vec<_> = spec
                    .iter()
                    .enumerate()
                    .map(|(i, (z, c))| node(i as u8, &format!("z{z}"), c * GB))
                    .collect();
                let mut zones: Vec<_> = nodes.iter().map(|n| n.zone.clone()).collect();
                zones.sort();
                zones.dedup();
                let zr = 1 + zr_pick.index(rf.min(zones.len()));
                (nodes, rf, zr)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn assignments_are_valid_optimal_and_deterministic((nodes, rf, zr) in cluster()) {
        let a = assign(&nodes, rf, ZoneRedundancy::AtLeast(zr)).expect("assign");
        check_valid(&nodes, rf, zr, &a);
        // Optimal: no assignment exists with a larger partition size.
        let mut sorted: Vec<&StorageNode> = nodes.iter().collect();
        sorted.sort_by_key(|n| n.id);
        let mut zones: Vec<&str> = sorted.iter().map(|n| n.zone.as_str()).collect();
        zones.sort_unstable();
        zones.dedup();
        let problem = Problem { nodes: &sorted, zones: &zones, rf, zr, previous: None };
        prop_assert!(problem.solve(a.partition_size + 1).is_none());
        // Input order does not matter.
        let mut reversed = nodes.clone();
        reversed.reverse();
        prop_assert_eq!(assign(&reversed, rf, ZoneRedundancy::AtLeast(zr)).expect("assign"), a);
    }

    #[test]
    fn maximum_zone_redundancy_spreads_as_far_as_zones_allow((nodes, rf, _zr) in cluster()) {
        let a = assign(&nodes, rf, ZoneRedundancy::Maximum).expect("assign");
        let mut zones: Vec<_> = nodes.iter().map(|n| n.zone.clone()).collect();
        zones.sort();
        zones.dedup();
        check_valid(&nodes, rf, rf.min(zones.len()), &a);
    }
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

#[test]
fn adding_a_node_moves_little_more_than_the_new_node_must_receive() {
    let mut rng_caps = [
        7u64, 3, 9, 4, 4, 12, 6, 8, 5, 10, 3, 7, 9, 2, 6, 11, 5, 8, 4, 6,
    ];
    rng_caps.rotate_left(3);
    let nodes: Vec<_> = rng_caps
        .iter()
        .enumerate()
        .map(|(i, c)| node(i as u8, &format!("z{}", i % 3), c * GB))
        .collect();
    let before = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    let mut grown = nodes.clone();
    grown.push(node(100, "z1", 8 * GB));
    let after = reassign(&grown, 3, ZoneRedundancy::Maximum, Some(&before)).expect("reassign");
    check_valid(&grown, 3, 3, &after);
    assert!(after.usable_capacity() >= before.usable_capacity());
    // Every replica a node holds beyond its previous load had to move to it.
    let lower_bound: usize = grown
        .iter()
        .map(|n| after.load(&n.id).saturating_sub(before.load(&n.id)))
        .sum();
    let with_history = moved(&before, &after);
    let from_scratch = moved(
        &before,
        &assign(&grown, 3, ZoneRedundancy::Maximum).expect("assign"),
    );
    eprintln!(
        "moved {with_history} replicas; lower bound {lower_bound}; from scratch {from_scratch}"
    );
    assert!(
        with_history * 10 <= lower_bound * 11,
        "moved {with_history} replicas, at least {lower_bound} needed (from scratch: {from_scratch})"
    );
}

#[test]
fn reassigning_an_unchanged_cluster_moves_nothing() {
    let nodes: Vec<_> = (0..9u8)
        .map(|i| node(i, &format!("z{}", i % 3), u64::from(i % 4 + 1) * GB))
        .collect();
    let before = assign(&nodes, 3, ZoneRedundancy::Maximum).expect("assign");
    let after = reassign(&nodes, 3, ZoneRedundancy::Maximum, Some(&before)).expect("reassign");
    assert_eq!(moved(&before, &after), 0);
}
