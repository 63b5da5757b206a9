//! The stored format of [`LayoutHistory`] (the layout file, and the payload of
//! the layout messages), pinned by the fixtures of `testdata/formats/` (see
//! [`hangar_util::fixtures`]).

use std::collections::BTreeMap;

use hangar_util::crdt::Lww;
use hangar_util::fixtures::Fixtures;

use super::{
    LayoutAssignment, LayoutHistory, LayoutParams, LayoutVersion, NodeRole, StagedRole, Staging,
    UpdateTrackers,
};
use crate::assignment::ZoneRedundancy;
use crate::{NodeId, PARTITION_COUNT};

fn node(n: u8) -> NodeId {
    NodeId([n; 32])
}

/// A history with every field filled: a version without an assignment and one
/// with, storage and gateway roles with tags, both zone redundancies, staged
/// role changes of both kinds, staged parameters and every tracker. Built
/// field by field, not by `apply`, so that the assignment algorithm can change
/// without changing the sample.
fn sample() -> LayoutHistory {
    let fresh = LayoutVersion {
        version: 0,
        applied_at: 0,
        roles: BTreeMap::new(),
        params: LayoutParams {
            replication_factor: 3,
            zone_redundancy: ZoneRedundancy::Maximum,
        },
        assignment: None,
    };
    let applied = LayoutVersion {
        version: 1,
        applied_at: 1_000,
        roles: BTreeMap::from([
            (
                node(1),
                NodeRole {
                    zone: "dc1".into(),
                    capacity: Some(1 << 40),
                    tags: vec!["ssd".into(), "rack-3".into()],
                },
            ),
            (
                node(2),
                NodeRole {
                    zone: "dc2".into(),
                    capacity: None,
                    tags: vec!["gateway".into()],
                },
            ),
        ]),
        params: LayoutParams {
            replication_factor: 1,
            zone_redundancy: ZoneRedundancy::AtLeast(1),
        },
        assignment: Some(LayoutAssignment {
            partition_size: 1 << 32,
            partitions: vec![vec![node(1)]; PARTITION_COUNT],
        }),
    };
    let staging = Staging {
        reverted_at: 1_500,
        roles: BTreeMap::from([
            (node(2), Lww::new(1_600, StagedRole::Remove)),
            (
                node(3),
                Lww::new(
                    1_700,
                    StagedRole::Set(NodeRole {
                        zone: "dc3".into(),
                        capacity: Some(1 << 41),
                        tags: vec!["hdd".into()],
                    }),
                ),
            ),
        ]),
        params: Some(Lww::new(
            1_800,
            LayoutParams {
                replication_factor: 2,
                zone_redundancy: ZoneRedundancy::Maximum,
            },
        )),
    };
    let trackers = UpdateTrackers {
        ack: BTreeMap::from([(node(1), 1), (node(2), 1)]),
        sync: BTreeMap::from([(node(1), 1), (node(2), 0)]),
        sync_ack: BTreeMap::from([(node(1), 0)]),
    };
    LayoutHistory {
        versions: vec![fresh, applied],
        staging,
        trackers,
    }
}

#[test]
fn layout_history_format_is_pinned() {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
        .check_stored(&sample())
        .unwrap_or_else(|e| panic!("{e}"));
}
