//! Layout transitions: which versions are live, where writes and reads go
//! while data moves, and when an old version can retire.
//!
//! Each node publishes three counters in the layout history (merged by
//! maximum, so they only move forward):
//!
//! - **ack**: the node no longer starts writes that skip this version: every
//!   write it began before learning of it has finished.
//! - **sync**: the node holds everything it should hold in this version (its
//!   tables and blocks were copied from the previous holders).
//! - **sync_ack**: the node has seen every node's `sync` reach this version.
//!
//! The *tracked* nodes are those with a role in a live version. A version
//! retires once every tracked node's `sync_ack` has reached a newer one: from
//! then on no node reads from it nor writes to it alone. While several versions
//! are live, a write must reach a write quorum in each; reads use the newest
//! version that every tracked node has synced, whose replicas therefore hold
//! every acknowledged write. A node may start syncing version `v` only once
//! every tracked node has acknowledged `v` (no write can still miss it).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{LayoutHistory, LayoutVersion};
use crate::{Layout, NodeId, ReplicationParams};

/// Per-node progress through layout versions. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTrackers {
    /// Versions each node has acknowledged.
    pub ack: BTreeMap<NodeId, u64>,
    /// Versions each node has synced.
    pub sync: BTreeMap<NodeId, u64>,
    /// Versions each node has seen every node sync.
    pub sync_ack: BTreeMap<NodeId, u64>,
}

/// Which counter of [`UpdateTrackers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tracker {
    /// [`UpdateTrackers::ack`].
    Ack,
    /// [`UpdateTrackers::sync`].
    Sync,
    /// [`UpdateTrackers::sync_ack`].
    SyncAck,
}

impl UpdateTrackers {
    fn map(&self, tracker: Tracker) -> &BTreeMap<NodeId, u64> {
        match tracker {
            Tracker::Ack => &self.ack,
            Tracker::Sync => &self.sync,
            Tracker::SyncAck => &self.sync_ack,
        }
    }

    fn map_mut(&mut self, tracker: Tracker) -> &mut BTreeMap<NodeId, u64> {
        match tracker {
            Tracker::Ack => &mut self.ack,
            Tracker::Sync => &mut self.sync,
            Tracker::SyncAck => &mut self.sync_ack,
        }
    }

    /// Raises `node`'s `tracker` to `version`; true if it moved.
    pub fn raise(&mut self, tracker: Tracker, node: NodeId, version: u64) -> bool {
        let value = self.map_mut(tracker).entry(node).or_insert(0);
        if *value < version {
            *value = version;
            true
        } else {
            false
        }
    }

    /// The lowest value of `tracker` among `nodes` (0 for a node without one).
    pub fn min(&self, tracker: Tracker, nodes: &BTreeSet<NodeId>) -> u64 {
        let map = self.map(tracker);
        nodes
            .iter()
            .map(|n| map.get(n).copied().unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Takes the maximum of each node's counters; true if `self` changed.
    pub fn merge_from(&mut self, other: &UpdateTrackers) -> bool {
        let mut changed = false;
        for tracker in [Tracker::Ack, Tracker::Sync, Tracker::SyncAck] {
            for (node, version) in other.map(tracker) {
                changed |= self.raise(tracker, *node, *version);
            }
        }
        changed
    }
}

/// Nodes with a role (storage or gateway) in `versions`.
fn nodes_of(versions: &[LayoutVersion]) -> BTreeSet<NodeId> {
    versions
        .iter()
        .flat_map(|v| v.roles.keys().copied())
        .collect()
}

impl LayoutHistory {
    /// The per-node trackers.
    pub fn trackers(&self) -> &UpdateTrackers {
        &self.trackers
    }

    /// Raises `node`'s `tracker` to `version` (at most the current version);
    /// true if it moved. Trackers carry no timestamp: they only grow.
    pub fn raise_tracker(&mut self, tracker: Tracker, node: NodeId, version: u64) -> bool {
        let version = version.min(self.current().version);
        self.trackers.raise(tracker, node, version)
    }

    /// Index in `versions` of the oldest live version.
    pub(super) fn live_start(&self) -> usize {
        let mut start = 0;
        loop {
            let tracked = nodes_of(&self.versions[start..]);
            let synced_by_all = self.trackers.min(Tracker::SyncAck, &tracked);
            // The newest version every tracked node knows to be synced.
            let next = self
                .versions
                .iter()
                .rposition(|v| v.version <= synced_by_all)
                .unwrap_or(start)
                .max(start);
            if next == start {
                return start;
            }
            start = next;
        }
    }

    /// The live versions, oldest first: those not yet retired. The last is
    /// the current version.
    pub fn live_versions(&self) -> &[LayoutVersion] {
        &self.versions[self.live_start()..]
    }

    /// Nodes whose trackers decide transitions: those with a role in a live
    /// version.
    pub fn tracked_nodes(&self) -> BTreeSet<NodeId> {
        nodes_of(self.live_versions())
    }

    /// The lowest `tracker` among the tracked nodes.
    pub fn tracker_min(&self, tracker: Tracker) -> u64 {
        self.trackers.min(tracker, &self.tracked_nodes())
    }

    /// The version reads use: the newest live version every tracked node has
    /// synced, else the oldest live one. Versions without an assignment hold
    /// nothing and are skipped (unless no version has one).
    pub fn read_version(&self) -> &LayoutVersion {
        let live = self.live_versions();
        let synced = self.tracker_min(Tracker::Sync);
        let mut assigned = live.iter().filter(|v| v.assignment.is_some());
        live.iter()
            .rev()
            .filter(|v| v.assignment.is_some())
            .find(|v| v.version <= synced)
            .or_else(|| assigned.next())
            .unwrap_or(self.current())
    }

    /// The layouts a write must reach a quorum in: one per live version that
    /// has an assignment, oldest first.
    pub fn write_layouts(&self) -> Vec<Layout> {
        self.live_versions()
            .iter()
            .filter(|v| v.assignment.is_some())
            .map(routing_of)
            .collect()
    }

    /// The layout reads are routed with ([`Self::read_version`]'s).
    pub fn read_layout(&self) -> Layout {
        routing_of(self.read_version())
    }
}

/// The routing of one version.
pub(crate) fn routing_of(version: &LayoutVersion) -> Layout {
    let partitions = match &version.assignment {
        Some(a) => a.partitions.clone(),
        None => vec![Vec::new(); crate::PARTITION_COUNT],
    };
    // Validated at staging and decoding; `max` keeps a bad peer from making
    // this panic.
    let factor = version.params.replication_factor.max(1);
    Layout::new(version.version, ReplicationParams::new(factor), partitions)
}
