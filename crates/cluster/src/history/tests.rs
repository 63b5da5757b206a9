use proptest::prelude::*;

use super::*;
use crate::assignment::AssignError;
use hangar_util::Hash;

const GB: u64 = 1_000_000_000;

fn id(i: u8) -> NodeId {
    NodeId::from_public_key(&[i])
}

fn params(replication_factor: usize) -> LayoutParams {
    LayoutParams {
        replication_factor,
        zone_redundancy: ZoneRedundancy::Maximum,
    }
}

/// Version 1: nodes 1, 2, 3 of 100 GB in zones dc1, dc2, dc3; factor 3.
fn three_zones() -> LayoutHistory {
    let mut h = LayoutHistory::new(params(3)).expect("new");
    for i in 1..=3u8 {
        h.stage_role(
            id(i),
            NodeRole::storage(format!("dc{i}"), 100 * GB),
            u64::from(i),
        )
        .expect("stage");
    }
    h.apply(Some(1), 10).expect("apply");
    h
}

fn node_diff(diff: &LayoutDiff, node: NodeId) -> &NodeDiff {
    diff.nodes
        .iter()
        .find(|n| n.node == node)
        .expect("node in the diff")
}

fn merged(a: &LayoutHistory, b: &LayoutHistory) -> LayoutHistory {
    let mut x = a.clone();
    x.merge(b);
    x
}

// ---- staging, apply, revert ----

#[test]
fn a_fresh_history_is_version_zero_and_routes_nowhere() {
    let h = LayoutHistory::new(params(3)).expect("new");
    assert_eq!(h.current().version, 0);
    assert!(h.current().roles.is_empty());
    assert_eq!(h.current().assignment, None);
    assert!(h.staged().is_empty());
    assert_eq!(h.max_timestamp(), 0);
    let layout = h.routing();
    assert_eq!(layout.layout_version(), 0);
    assert!(layout.nodes_of(&Hash::of(b"k")).is_empty());
}

#[test]
fn staged_roles_are_applied_as_the_next_version() {
    let mut h = LayoutHistory::new(params(3)).expect("new");
    for i in 1..=3u8 {
        h.stage_role(
            id(i),
            NodeRole::storage(format!("dc{i}"), 100 * GB),
            u64::from(i),
        )
        .expect("stage");
    }
    let staged = h.staged();
    assert_eq!(staged.roles.len(), 3);
    assert_eq!(
        staged.roles.get(&id(1)),
        Some(&StagedRole::Set(NodeRole::storage("dc1", 100 * GB)))
    );
    assert_eq!(h.current().version, 0, "staging changes nothing yet");

    let diff = h.apply(Some(1), 10).expect("apply");
    assert_eq!((diff.from_version, diff.to_version), (0, 1));
    assert!(h.staged().is_empty());
    let v = h.current();
    assert_eq!((v.version, v.applied_at), (1, 10));
    assert_eq!(v.roles.len(), 3);
    let layout = h.routing();
    assert_eq!(layout.layout_version(), 1);
    assert_eq!(layout.params().factor(), 3);
    let mut all = vec![id(1), id(2), id(3)];
    all.sort_unstable();
    for p in 0..PARTITION_COUNT {
        let nodes = layout.partition_nodes(crate::Partition(p as u16));
        assert_eq!(nodes, all.as_slice(), "one copy in each zone");
    }
    assert_eq!(h.versions().len(), 2);
    assert_eq!(h.version(0).map(|v| v.version), Some(0));
}

#[test]
fn apply_checks_the_expected_version() {
    let mut h = three_zones();
    h.stage_role(id(4), NodeRole::storage("dc4", 100 * GB), 20)
        .expect("stage");
    let before = h.clone();
    assert_eq!(
        h.apply(Some(1), 21).expect_err("stale version"),
        LayoutError::VersionMismatch {
            expected: 1,
            next: 2
        }
    );
    assert_eq!(
        h.apply(Some(3), 21).expect_err("future version"),
        LayoutError::VersionMismatch {
            expected: 3,
            next: 2
        }
    );
    assert_eq!(h, before, "a refused apply changes nothing");
    h.apply(None, 21).expect("apply without a check");
    assert_eq!(h.current().version, 2);
}

#[test]
fn apply_refuses_when_nothing_would_change() {
    let mut h = three_zones();
    assert_eq!(h.apply(None, 20), Err(LayoutError::NothingStaged));
    assert_eq!(h.preview(), Err(LayoutError::NothingStaged));
    // Staging what is already there changes nothing either.
    h.stage_role(id(1), NodeRole::storage("dc1", 100 * GB), 20)
        .expect("stage");
    h.stage_params(params(3), 21).expect("stage params");
    assert!(!h.staged().is_empty());
    assert_eq!(h.apply(Some(2), 22), Err(LayoutError::NothingStaged));
    assert_eq!(h.current().version, 1);
}

#[test]
fn apply_refuses_an_impossible_assignment() {
    let mut h = LayoutHistory::new(params(3)).expect("new");
    h.stage_role(id(1), NodeRole::storage("dc1", GB), 1)
        .expect("stage");
    h.stage_role(id(2), NodeRole::storage("dc2", GB), 2)
        .expect("stage");
    let expected = LayoutError::Assignment(AssignError::NotEnoughNodes {
        nodes: 2,
        replication_factor: 3,
    });
    assert_eq!(h.preview(), Err(expected));
    let before = h.clone();
    assert!(matches!(
        h.apply(Some(1), 3),
        Err(LayoutError::Assignment(AssignError::NotEnoughNodes { .. }))
    ));
    assert_eq!(h, before, "the staged changes stay for the operator to fix");
    // Zone redundancy that the zones cannot give.
    h.stage_role(id(3), NodeRole::storage("dc2", GB), 4)
        .expect("stage");
    h.stage_params(
        LayoutParams {
            replication_factor: 3,
            zone_redundancy: ZoneRedundancy::AtLeast(3),
        },
        5,
    )
    .expect("stage params");
    assert!(matches!(
        h.apply(None, 6),
        Err(LayoutError::Assignment(
            AssignError::ImpossibleZoneRedundancy {
                wanted: 3,
                zones: 2,
                ..
            }
        ))
    ));
}

#[test]
fn revert_drops_the_staged_changes() {
    let mut h = three_zones();
    h.stage_role(id(4), NodeRole::storage("dc4", GB), 20)
        .expect("stage");
    h.stage_params(params(2), 21).expect("stage params");
    h.revert(22).expect("revert");
    assert!(h.staged().is_empty());
    assert_eq!(h.max_timestamp(), 22);
    assert_eq!(h.revert(23), Err(LayoutError::NothingStaged));
    assert_eq!(h.apply(None, 23), Err(LayoutError::NothingStaged));
    // Staging goes on after a revert.
    h.stage_remove(id(3), 23).expect("remove");
    assert_eq!(h.staged().roles.get(&id(3)), Some(&StagedRole::Remove));
}

#[test]
fn changes_need_a_timestamp_newer_than_the_history() {
    let mut h = three_zones();
    let stale = |ts, latest| Err(LayoutError::StaleTimestamp { ts, latest });
    assert_eq!(
        h.stage_role(id(4), NodeRole::storage("dc4", GB), 10),
        stale(10, 10)
    );
    assert_eq!(h.stage_remove(id(1), 5), stale(5, 10));
    assert_eq!(h.stage_params(params(1), 10), stale(10, 10));
    h.stage_params(params(1), 11).expect("newer");
    assert_eq!(h.revert(11), stale(11, 11));
    assert_eq!(h.apply(None, 11).map(|_| ()), stale(11, 11));
}

#[test]
fn invalid_roles_and_parameters_are_refused() {
    let mut h = three_zones();
    let n = id(9);
    assert_eq!(
        h.stage_role(n, NodeRole::storage(" ", GB), 20),
        Err(LayoutError::EmptyZone { node: n })
    );
    assert_eq!(
        h.stage_role(n, NodeRole::storage("dc1", 0), 20),
        Err(LayoutError::ZeroCapacity { node: n })
    );
    assert_eq!(
        h.stage_params(params(0), 20),
        Err(LayoutError::ZeroReplicationFactor)
    );
    for wanted in [0, 4] {
        let p = LayoutParams {
            replication_factor: 3,
            zone_redundancy: ZoneRedundancy::AtLeast(wanted),
        };
        assert_eq!(
            h.stage_params(p, 20),
            Err(LayoutError::InvalidZoneRedundancy {
                wanted,
                replication_factor: 3
            })
        );
    }
    assert_eq!(
        h.stage_remove(n, 20),
        Err(LayoutError::UnknownNode { node: n })
    );
    assert!(LayoutHistory::new(params(0)).is_err());
    assert!(h.staged().is_empty());
}

#[test]
fn removing_a_node_only_staged_cancels_it() {
    let mut h = three_zones();
    h.stage_role(id(4), NodeRole::storage("dc4", GB), 20)
        .expect("stage");
    h.stage_remove(id(4), 21).expect("cancel");
    assert_eq!(h.apply(None, 22), Err(LayoutError::NothingStaged));
}

// ---- diff ----

#[test]
fn adding_a_fourth_node_shows_partitions_arriving_and_leaving() {
    let mut h = three_zones();
    // Three nodes, factor 3: every node holds all 256 partitions.
    let old_size = 100 * GB / 256;
    assert_eq!(h.current().partition_size(), old_size);
    h.stage_role(id(4), NodeRole::storage("dc4", 100 * GB), 20)
        .expect("stage");
    let diff = h.preview().expect("preview");
    // Four nodes, factor 3: 768 replicas, 192 per node.
    let new_size = 100 * GB / 192;
    assert_eq!((diff.from_version, diff.to_version), (1, 2));
    assert_eq!(diff.params_before, params(3));
    assert_eq!(diff.params_after, params(3));
    assert_eq!(diff.partition_size_before, old_size);
    assert_eq!(diff.partition_size_after, new_size);
    assert_eq!(diff.usable_capacity_before, 256 * old_size);
    assert_eq!(diff.usable_capacity_after, 256 * new_size);
    assert_eq!(diff.nodes.len(), 4);

    let new = node_diff(&diff, id(4));
    assert_eq!(new.role_change(), RoleChange::Added);
    assert_eq!(new.role_before, None);
    assert_eq!(new.role_after, Some(NodeRole::storage("dc4", 100 * GB)));
    assert_eq!((new.partitions_before, new.partitions_after), (0, 192));
    assert_eq!((new.incoming, new.outgoing), (192, 0));
    assert_eq!(new.bytes_in, 192 * new_size);
    assert_eq!(new.bytes_out, 0);
    assert_eq!((new.usable_before, new.usable_after), (0, 192 * new_size));
    for i in 1..=3 {
        let old = node_diff(&diff, id(i));
        assert_eq!(old.role_change(), RoleChange::Unchanged);
        assert_eq!((old.partitions_before, old.partitions_after), (256, 192));
        assert_eq!((old.incoming, old.outgoing), (0, 64));
        assert_eq!((old.bytes_in, old.bytes_out), (0, 64 * old_size));
        assert_eq!(old.usable_before, 256 * old_size);
        assert_eq!(old.usable_after, 192 * new_size);
    }
    assert_eq!(diff.partitions_moved(), 192);
    assert_eq!(diff.bytes_moved(), 192 * new_size);

    let text = diff.to_string();
    assert!(text.contains("Layout version 1 -> 2"), "{text}");
    assert!(text.contains("Usable capacity: 100 GB -> 133 GB"), "{text}");
    assert!(text.contains("Moves: 192 partition replicas"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&id(4).to_string()))
        .expect("a line for the new node");
    assert!(
        line.contains("added") && line.contains("0 -> 192"),
        "{line}"
    );

    // Apply does what the preview showed.
    assert_eq!(h.apply(Some(2), 21).expect("apply"), diff);
    assert_eq!(h.current().load(&id(4)), 192);
}

#[test]
fn removing_a_node_moves_all_its_partitions_away() {
    let mut h = three_zones();
    h.stage_role(id(4), NodeRole::storage("dc4", 100 * GB), 20)
        .expect("stage");
    h.apply(Some(2), 21).expect("apply");
    h.stage_remove(id(2), 22).expect("remove");
    let diff = h.apply(Some(3), 23).expect("apply");
    let gone = node_diff(&diff, id(2));
    assert_eq!(gone.role_change(), RoleChange::Removed);
    assert_eq!(gone.role_after, None);
    assert_eq!((gone.partitions_before, gone.partitions_after), (192, 0));
    assert_eq!((gone.incoming, gone.outgoing), (0, 192));
    assert_eq!(diff.partitions_moved(), 192);
    assert_eq!(h.current().load(&id(2)), 0);
    assert!(!h.current().roles.contains_key(&id(2)));
    assert!(diff.to_string().contains("removed"));
}

#[test]
fn gateways_get_no_partitions() {
    let mut h = three_zones();
    h.stage_role(id(5), NodeRole::gateway("dc1"), 20)
        .expect("stage gateway");
    let diff = h.apply(Some(2), 21).expect("apply");
    let gw = node_diff(&diff, id(5));
    assert_eq!(gw.role_change(), RoleChange::Added);
    assert_eq!((gw.partitions_after, gw.incoming, gw.bytes_in), (0, 0, 0));
    assert_eq!(diff.partitions_moved(), 0, "a gateway moves no data");
    assert!(h.current().roles.contains_key(&id(5)));
    assert_eq!(h.current().load(&id(5)), 0);
    let layout = h.routing();
    for b in 0..=255u8 {
        assert!(!layout.nodes_of(&Hash([b; 32])).contains(&id(5)));
    }
    assert!(h.current().to_string().contains("gateway"));
    assert!(h.render_history().contains("gateways"));
}

#[test]
fn a_parameter_change_is_applied() {
    let mut h = three_zones();
    h.stage_params(params(1), 20).expect("stage params");
    let diff = h.apply(Some(2), 21).expect("apply");
    assert_eq!(diff.params_before, params(3));
    assert_eq!(diff.params_after, params(1));
    assert!(diff.to_string().contains("Replication factor: 3 -> 1"));
    assert_eq!(h.routing().params().factor(), 1);
    let a = h.current().assignment.as_ref().expect("assignment");
    assert!(a.partitions.iter().all(|p| p.len() == 1));
    // Nothing arrives anywhere: every partition stays on one of its holders.
    assert_eq!(diff.partitions_moved(), 0);
}

// ---- determinism, history bound ----

#[test]
fn the_same_staged_changes_give_the_same_version() {
    let mut a = LayoutHistory::new(params(2)).expect("new");
    let mut b = a.clone();
    let roles = [
        (1u8, "dc1", 100),
        (2, "dc2", 250),
        (3, "dc2", 80),
        (4, "dc3", 120),
    ];
    for (ts, (i, zone, cap)) in roles.iter().enumerate() {
        a.stage_role(id(*i), NodeRole::storage(*zone, cap * GB), ts as u64 + 1)
            .expect("stage");
    }
    for (ts, (i, zone, cap)) in roles.iter().rev().enumerate() {
        b.stage_role(id(*i), NodeRole::storage(*zone, cap * GB), ts as u64 + 1)
            .expect("stage");
    }
    assert_eq!(a.preview(), b.preview());
    a.apply(Some(1), 100).expect("apply");
    b.apply(Some(1), 100).expect("apply");
    assert_eq!(a.current(), b.current());
    assert_eq!(a.routing(), b.routing());
}

#[test]
fn only_the_last_versions_are_kept() {
    let mut h = three_zones();
    let mut ts = 10;
    for round in 0..(MAX_VERSIONS as u64 + 2) {
        ts += 1;
        let capacity = 100 * GB + (round + 1) * GB;
        h.stage_role(id(1), NodeRole::storage("dc1", capacity), ts)
            .expect("stage");
        ts += 1;
        h.apply(None, ts).expect("apply");
        // Every node has synced the new version: the older ones retire.
        let current = h.current().version;
        for node in h.current().roles.keys().copied().collect::<Vec<_>>() {
            h.raise_tracker(Tracker::SyncAck, node, current);
        }
    }
    assert_eq!(h.versions().len(), MAX_VERSIONS);
    let current = h.current().version;
    assert_eq!(current, 1 + MAX_VERSIONS as u64 + 2);
    assert_eq!(h.versions()[0].version, current + 1 - MAX_VERSIONS as u64);
    assert!(h.version(1).is_none());
    assert!(h.version(current).is_some());
    let table = h.render_history();
    assert_eq!(table.lines().count(), 1 + MAX_VERSIONS);
}

// ---- layout transitions ----

/// `h` with one more node in dc1, applied.
fn add_node(h: &mut LayoutHistory, ts: u64) {
    h.stage_role(id(9), NodeRole::storage("dc1", 100 * GB), ts)
        .expect("stage");
    h.apply(None, ts + 1).expect("apply");
}

fn raise_all(h: &mut LayoutHistory, tracker: Tracker, version: u64) {
    for node in h.tracked_nodes() {
        h.raise_tracker(tracker, node, version);
    }
}

#[test]
fn a_new_version_is_written_alongside_the_old_until_synced_then_retires_it() {
    let mut h = three_zones();
    // Version 0 has no assignment: only version 1 takes writes and reads.
    assert_eq!(h.write_layouts().len(), 1);
    assert_eq!(h.read_version().version, 1);

    add_node(&mut h, 100);
    assert_eq!(h.current().version, 2);
    let versions: Vec<u64> = h
        .write_layouts()
        .iter()
        .map(Layout::layout_version)
        .collect();
    assert_eq!(versions, [1, 2], "writes reach both versions");
    assert_eq!(
        h.read_version().version,
        1,
        "reads stay on the synced version"
    );
    assert!(h.tracked_nodes().contains(&id(9)));

    // Acknowledged and synced by all but the new node: nothing moves.
    for n in 1..=6 {
        h.raise_tracker(Tracker::Ack, id(n), 2);
        h.raise_tracker(Tracker::Sync, id(n), 2);
    }
    assert_eq!(h.tracker_min(Tracker::Ack), 0);
    assert_eq!(h.read_version().version, 1);

    raise_all(&mut h, Tracker::Sync, 2);
    assert_eq!(
        h.read_version().version,
        2,
        "reads move once every node synced"
    );
    assert_eq!(h.write_layouts().len(), 2, "writes still reach both");

    raise_all(&mut h, Tracker::SyncAck, 2);
    let versions: Vec<u64> = h.live_versions().iter().map(|v| v.version).collect();
    assert_eq!(versions, [2], "version 1 retired");
    assert_eq!(h.write_layouts().len(), 1);
}

#[test]
fn live_versions_are_kept_beyond_the_history_limit() {
    let mut h = three_zones();
    let mut ts = 100;
    for round in 0..(MAX_VERSIONS as u64 + 2) {
        h.stage_role(id(1), NodeRole::storage("dc1", 101 * GB + round * GB), ts)
            .expect("stage");
        h.apply(None, ts + 1).expect("apply");
        ts += 2;
    }
    // Nobody synced anything: every version since 1 may still hold data.
    assert_eq!(h.live_versions()[0].version, 0);
    let kept = usize::try_from(h.current().version).expect("small") + 1;
    assert!(kept > MAX_VERSIONS);
    assert_eq!(h.versions().len(), kept, "versions 0 to current all kept");
}

#[test]
fn trackers_merge_by_maximum_whichever_versions_win() {
    let mut a = three_zones();
    let mut b = a.clone();
    a.raise_tracker(Tracker::Sync, id(1), 1);
    b.raise_tracker(Tracker::Ack, id(2), 1);
    add_node(&mut b, 100);
    b.raise_tracker(Tracker::Ack, id(2), 2);
    let mut ab = a.clone();
    ab.merge(&b);
    let mut ba = b.clone();
    ba.merge(&a);
    assert_eq!(ab, ba);
    assert_eq!(ab.current().version, 2);
    assert_eq!(ab.trackers().sync.get(&id(1)), Some(&1));
    assert_eq!(ab.trackers().ack.get(&id(2)), Some(&2));
    // A tracker never goes back, nor past the current version.
    assert!(!ab.raise_tracker(Tracker::Ack, id(2), 1));
    ab.raise_tracker(Tracker::Sync, id(3), 50);
    assert_eq!(ab.trackers().sync.get(&id(3)), Some(&2));
}

#[test]
fn histories_written_before_trackers_existed_still_decode() {
    let h = three_zones();
    let old_format = rmp_serde::to_vec(&(&h.versions, &h.staging)).expect("encode");
    let decoded: LayoutHistory = rmp_serde::from_slice(&old_format).expect("decode");
    assert_eq!(decoded.versions(), h.versions());
    assert_eq!(decoded.trackers(), &UpdateTrackers::default());
}

// ---- node lookup ----

#[test]
fn nodes_are_found_by_hex_prefix() {
    let h = three_zones();
    let n = id(2);
    let hex = n.to_hex();
    assert_eq!(h.find_node_by_prefix(&hex[..6]), Ok(n));
    assert_eq!(h.find_node_by_prefix(&hex[..6].to_uppercase()), Ok(n));
    assert_eq!(h.find_node_by_prefix(&hex), Ok(n));
    assert_eq!(NodeId::from_hex(&hex), Some(n));
    assert!(matches!(
        h.find_node_by_prefix("xyz"),
        Err(LayoutError::InvalidNodePrefix { .. })
    ));
    assert!(matches!(
        h.find_node_by_prefix(""),
        Err(LayoutError::InvalidNodePrefix { .. })
    ));
    let unknown = id(200).to_hex();
    let known: Vec<String> = h.known_nodes().iter().map(NodeId::to_hex).collect();
    assert!(!known.iter().any(|k| k.starts_with(&unknown[..12])));
    assert!(matches!(
        h.find_node_by_prefix(&unknown[..12]),
        Err(LayoutError::NoSuchNode { .. })
    ));

    let mut a = [0u8; 32];
    a[0] = 0xab;
    let mut b = a;
    b[1] = 0xcd;
    let (a, b) = (NodeId(a), NodeId(b));
    assert_eq!(
        find_node_by_prefix("ab", [a, b, a]),
        Err(LayoutError::AmbiguousNodePrefix {
            prefix: "ab".into(),
            matches: vec![a, b]
        })
    );
    assert_eq!(find_node_by_prefix("abcd", [a, b]), Ok(b));
}

// ---- merging ----

#[test]
fn a_newer_version_wins_and_drops_older_staged_changes() {
    let base = three_zones();
    let mut a = base.clone();
    let mut b = base.clone();
    b.stage_role(id(4), NodeRole::storage("dc4", 100 * GB), 20)
        .expect("stage");
    b.apply(Some(2), 21).expect("apply");
    // Staged on a at a later time, but against version 1.
    a.stage_role(id(5), NodeRole::storage("dc5", GB), 30)
        .expect("stage");
    assert!(a.merge(&b));
    assert_eq!(a.current().version, 2);
    assert_eq!(a.current(), b.current());
    assert!(a.staged().is_empty());
    assert!(!a.merge(&b), "merging again changes nothing");
    // The other way, the older side does not win.
    let mut b2 = b.clone();
    assert!(!b2.merge(&base));
    assert_eq!(b2, b);
}

#[test]
fn staged_changes_merge_node_by_node_last_writer_wins() {
    let base = three_zones();
    let mut a = base.clone();
    let mut b = base.clone();
    a.stage_role(id(4), NodeRole::storage("dc4", GB), 20)
        .expect("stage");
    a.stage_params(params(2), 21).expect("params");
    b.stage_remove(id(1), 22).expect("remove");
    b.stage_role(id(4), NodeRole::storage("dc4", 2 * GB), 25)
        .expect("stage");
    let ab = merged(&a, &b);
    assert_eq!(ab, merged(&b, &a));
    let staged = ab.staged();
    assert_eq!(
        staged.roles.get(&id(4)),
        Some(&StagedRole::Set(NodeRole::storage("dc4", 2 * GB)))
    );
    assert_eq!(staged.roles.get(&id(1)), Some(&StagedRole::Remove));
    assert_eq!(staged.params, Some(params(2)));
    assert_eq!(ab.max_timestamp(), 25);
}

#[test]
fn a_revert_beats_older_staged_changes_but_not_newer_ones() {
    let base = three_zones();
    let mut a = base.clone();
    a.stage_role(id(4), NodeRole::storage("dc4", GB), 20)
        .expect("stage");
    // b saw a's change and reverted it at 30.
    let mut b = a.clone();
    b.revert(30).expect("revert");
    // c, concurrently, staged an older change (25) and a newer one (35).
    let mut c = base.clone();
    c.stage_params(params(2), 25).expect("params");
    c.stage_role(id(5), NodeRole::storage("dc5", GB), 35)
        .expect("stage");
    let all = merged(&merged(&a, &c), &b);
    assert_eq!(all, merged(&b, &merged(&c, &a)));
    let staged = all.staged();
    assert_eq!(staged.params, None, "staged before the revert");
    assert!(
        !staged.roles.contains_key(&id(4)),
        "staged before the revert"
    );
    assert_eq!(
        staged.roles.get(&id(5)),
        Some(&StagedRole::Set(NodeRole::storage("dc5", GB))),
        "staged after the revert"
    );
}

#[test]
fn concurrent_applies_converge_on_one_version() {
    let base = three_zones();
    let mut a = base.clone();
    let mut b = base.clone();
    a.stage_role(id(4), NodeRole::storage("dc4", GB), 20)
        .expect("stage");
    a.apply(Some(2), 21).expect("apply");
    b.stage_role(id(5), NodeRole::storage("dc5", GB), 20)
        .expect("stage");
    b.apply(Some(2), 22).expect("apply");
    let ab = merged(&a, &b);
    assert_eq!(ab, merged(&b, &a));
    assert_eq!(ab.current(), b.current(), "the later apply wins");
}

// ---- encoding ----

#[test]
fn histories_round_trip_through_the_versioned_encoding() {
    let mut h = three_zones();
    h.stage_role(id(4), NodeRole::gateway("dc1"), 20)
        .expect("stage");
    h.stage_role(
        id(5),
        NodeRole {
            zone: "dc2".into(),
            capacity: Some(GB),
            tags: vec!["ssd".into(), "rack 4".into()],
        },
        21,
    )
    .expect("stage");
    h.stage_params(
        LayoutParams {
            replication_factor: 2,
            zone_redundancy: ZoneRedundancy::AtLeast(2),
        },
        22,
    )
    .expect("params");
    let bytes = h.encode().expect("encode");
    assert_eq!(bytes[0], LayoutHistory::FORMAT_VERSION);
    let back = LayoutHistory::decode(&bytes).expect("decode");
    assert_eq!(back, h);
    assert_eq!(back.routing(), h.routing());
    // 256 partitions × 3 nodes as 32-byte binaries, not arrays of integers.
    assert!(bytes.len() < 256 * 3 * 36, "{} bytes", bytes.len());

    let mut reverted = h.clone();
    reverted.revert(30).expect("revert");
    let back = LayoutHistory::decode(&reverted.encode().expect("encode")).expect("decode");
    assert_eq!(back, reverted);
}

#[test]
fn decoding_refuses_broken_histories() {
    let mut empty = three_zones();
    empty.versions.clear();
    let bytes = empty.encode().expect("encode");
    assert!(LayoutHistory::decode(&bytes).is_err());

    let mut short = three_zones();
    if let Some(a) = short.versions[1].assignment.as_mut() {
        a.partitions.pop();
    }
    assert!(LayoutHistory::decode(&short.encode().expect("encode")).is_err());

    let mut unordered = three_zones();
    unordered.versions.swap(0, 1);
    assert!(LayoutHistory::decode(&unordered.encode().expect("encode")).is_err());
}

// ---- CRDT laws ----

#[derive(Clone, Debug)]
enum Op {
    Role {
        node: u8,
        zone: u8,
        capacity: Option<u8>,
    },
    Remove(u8),
    Params(u8),
    Revert,
    Apply,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..5, 0u8..3, proptest::option::weighted(0.8, 1u8..4))
            .prop_map(|(node, zone, capacity)| Op::Role { node, zone, capacity }),
        2 => (0u8..5).prop_map(Op::Remove),
        1 => (1u8..=3).prop_map(Op::Params),
        1 => Just(Op::Revert),
        1 => Just(Op::Apply),
    ]
}

/// Small graph of histories: the three-zone base, then a few operations at
/// interleaving timestamps (failed operations are skipped).
fn history() -> impl Strategy<Value = LayoutHistory> {
    (11u64..16, proptest::collection::vec((1u64..4, op()), 0..7)).prop_map(|(start, ops)| {
        let mut h = three_zones();
        let mut ts = start;
        for (gap, op) in ops {
            ts += gap;
            let _ = match op {
                Op::Role {
                    node,
                    zone,
                    capacity,
                } => h.stage_role(
                    id(node),
                    NodeRole {
                        zone: format!("dc{zone}"),
                        capacity: capacity.map(|c| u64::from(c) * 50 * GB),
                        tags: Vec::new(),
                    },
                    ts,
                ),
                Op::Remove(node) => h.stage_remove(id(node), ts),
                Op::Params(rf) => h.stage_params(params(usize::from(rf)), ts),
                Op::Revert => h.revert(ts),
                Op::Apply => h.apply(None, ts).map(|_| ()),
            };
        }
        h
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn merge_is_commutative_associative_and_idempotent(
        a in history(),
        b in history(),
        c in history(),
    ) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        let mut x = a.clone();
        let changed = x.merge(&b);
        prop_assert_eq!(changed, x != a);
        // The merge keeps every staged change newer than the kept revert.
        prop_assert!(x.staging.roles.values().all(|c| c.timestamp() > x.staging.reverted_at));
    }
}
