//! Why a layout operation was refused.

use crate::assignment::AssignError;
use crate::NodeId;

/// Errors of [`crate::LayoutHistory`] operations. Nothing changes when one is
/// returned.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The timestamp is not newer than everything the history holds: the change
    /// could lose to an older one. Observe [`crate::LayoutHistory::max_timestamp`]
    /// in the clock and take a new timestamp.
    #[error("timestamp {ts} is not newer than the layout's latest change ({latest})")]
    StaleTimestamp {
        /// Timestamp given.
        ts: u64,
        /// Newest timestamp in the history.
        latest: u64,
    },
    /// A role's zone is empty.
    #[error("node {node}: the zone must not be empty")]
    EmptyZone {
        /// The node.
        node: NodeId,
    },
    /// A role's capacity is zero; a node without capacity is a gateway.
    #[error("node {node}: capacity must be positive (leave it out for a gateway)")]
    ZeroCapacity {
        /// The node.
        node: NodeId,
    },
    /// The replication factor is zero.
    #[error("replication_factor must be at least 1")]
    ZeroReplicationFactor,
    /// The zone redundancy is zero or above the replication factor.
    #[error("zone redundancy {wanted} must be between 1 and the replication factor {replication_factor}")]
    InvalidZoneRedundancy {
        /// Zones asked for.
        wanted: usize,
        /// Replication factor.
        replication_factor: usize,
    },
    /// Removing a node that has no role, current or staged.
    #[error("node {node} has no role in the layout")]
    UnknownNode {
        /// The node.
        node: NodeId,
    },
    /// No staged change alters the roles or the parameters.
    #[error("no staged changes to apply")]
    NothingStaged,
    /// The version asked for is not the one the apply would create.
    #[error("apply would create layout version {next}, not {expected}")]
    VersionMismatch {
        /// Version the caller expected to create.
        expected: u64,
        /// Version the apply would create (current + 1).
        next: u64,
    },
    /// No assignment satisfies the staged layout.
    #[error("no assignment possible: {0}")]
    Assignment(#[from] AssignError),
    /// The text is not a hex node id prefix.
    #[error("{prefix:?} is not a hex node id prefix")]
    InvalidNodePrefix {
        /// The text given.
        prefix: String,
    },
    /// No known node id starts with the prefix.
    #[error("no known node id starts with {prefix:?}")]
    NoSuchNode {
        /// The prefix given.
        prefix: String,
    },
    /// Several known node ids start with the prefix.
    #[error("node id prefix {prefix:?} is ambiguous: {} nodes match", matches.len())]
    AmbiguousNodePrefix {
        /// The prefix given.
        prefix: String,
        /// The matching nodes, in ascending order.
        matches: Vec<NodeId>,
    },
}
