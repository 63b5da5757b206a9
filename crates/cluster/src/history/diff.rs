//! What changes between two layout versions, node by node.

use std::collections::{BTreeMap, BTreeSet};

use super::{LayoutParams, LayoutVersion, NodeRole};
use crate::{NodeId, PARTITION_COUNT};

/// The changes from one layout version to the next, as `hangar layout show`
/// prints them (its [`std::fmt::Display`] is that table).
///
/// Bytes are counted at full usage: a partition moved counts as a whole
/// partition size. Data arriving at a node is counted with the new version's
/// partition size, data leaving it with the old one's; so they are upper
/// bounds, and the totals of both sides differ when the partition size
/// changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutDiff {
    /// The version the changes start from.
    pub from_version: u64,
    /// The version they make.
    pub to_version: u64,
    /// Parameters before.
    pub params_before: LayoutParams,
    /// Parameters after: those of the new assignment.
    pub params_after: LayoutParams,
    /// Partition size before (0 without an assignment).
    pub partition_size_before: u64,
    /// Partition size after.
    pub partition_size_after: u64,
    /// The cluster's usable capacity before.
    pub usable_capacity_before: u64,
    /// The cluster's usable capacity after.
    pub usable_capacity_after: u64,
    /// Every node with a role before or after, in id order.
    pub nodes: Vec<NodeDiff>,
}

/// One node's part of a [`LayoutDiff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDiff {
    /// The node.
    pub node: NodeId,
    /// Its role before (`None`: it had none).
    pub role_before: Option<NodeRole>,
    /// Its role after (`None`: removed).
    pub role_after: Option<NodeRole>,
    /// Partitions it held.
    pub partitions_before: usize,
    /// Partitions it will hold.
    pub partitions_after: usize,
    /// Partitions it will receive.
    pub incoming: usize,
    /// Partitions it will hand over.
    pub outgoing: usize,
    /// Bytes it will receive at most: `incoming` × the new partition size.
    pub bytes_in: u64,
    /// Bytes it will hand over at most: `outgoing` × the old partition size.
    pub bytes_out: u64,
    /// The part of its capacity used before: partitions × old partition size.
    pub usable_before: u64,
    /// The part of its capacity used after: partitions × new partition size.
    pub usable_after: u64,
}

/// How a node's role changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleChange {
    /// It had no role and gets one.
    Added,
    /// Its role is taken away.
    Removed,
    /// Its role changes.
    Changed,
    /// Its role stays (its partitions may still move).
    Unchanged,
}

impl NodeDiff {
    /// How the node's role changes.
    pub fn role_change(&self) -> RoleChange {
        match (&self.role_before, &self.role_after) {
            (None, Some(_)) => RoleChange::Added,
            (Some(_), None) => RoleChange::Removed,
            (Some(a), Some(b)) if a != b => RoleChange::Changed,
            _ => RoleChange::Unchanged,
        }
    }
}

impl LayoutDiff {
    /// The changes from `before` to `after`.
    pub fn between(before: &LayoutVersion, after: &LayoutVersion) -> Self {
        let (old, new) = (partitions(before), partitions(after));
        // (incoming, outgoing) per node.
        let mut moves: BTreeMap<NodeId, (usize, usize)> = BTreeMap::new();
        for p in 0..PARTITION_COUNT {
            let b = old.get(p).map_or(&[][..], Vec::as_slice);
            let a = new.get(p).map_or(&[][..], Vec::as_slice);
            for n in a.iter().filter(|n| !b.contains(n)) {
                moves.entry(*n).or_default().0 += 1;
            }
            for n in b.iter().filter(|n| !a.contains(n)) {
                moves.entry(*n).or_default().1 += 1;
            }
        }
        let nodes: BTreeSet<NodeId> = before
            .roles
            .keys()
            .chain(after.roles.keys())
            .chain(old.iter().chain(new).flatten())
            .copied()
            .collect();
        let (size_before, size_after) = (before.partition_size(), after.partition_size());
        let nodes = nodes
            .into_iter()
            .map(|node| {
                let (incoming, outgoing) = moves.get(&node).copied().unwrap_or_default();
                let partitions_before = before.load(&node);
                let partitions_after = after.load(&node);
                NodeDiff {
                    node,
                    role_before: before.roles.get(&node).cloned(),
                    role_after: after.roles.get(&node).cloned(),
                    partitions_before,
                    partitions_after,
                    incoming,
                    outgoing,
                    bytes_in: incoming as u64 * size_after,
                    bytes_out: outgoing as u64 * size_before,
                    usable_before: partitions_before as u64 * size_before,
                    usable_after: partitions_after as u64 * size_after,
                }
            })
            .collect();
        LayoutDiff {
            from_version: before.version,
            to_version: after.version,
            params_before: before.params,
            params_after: after.params,
            partition_size_before: size_before,
            partition_size_after: size_after,
            usable_capacity_before: before.usable_capacity(),
            usable_capacity_after: after.usable_capacity(),
            nodes,
        }
    }

    /// Partition replicas that move (the sum of every node's `incoming`).
    pub fn partitions_moved(&self) -> usize {
        self.nodes.iter().map(|n| n.incoming).sum()
    }

    /// Bytes that move at most (the sum of every node's `bytes_in`).
    pub fn bytes_moved(&self) -> u64 {
        self.nodes.iter().map(|n| n.bytes_in).sum()
    }
}

/// The partitions of `v`'s assignment (none for version 0).
fn partitions(v: &LayoutVersion) -> &[Vec<NodeId>] {
    v.assignment
        .as_ref()
        .map_or(&[], |a| a.partitions.as_slice())
}
