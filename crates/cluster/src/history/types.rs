//! The data of a layout version: node roles, parameters and the assignment.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::assignment::{Assignment, StorageNode, ZoneRedundancy};
use crate::{NodeId, PARTITION_COUNT};

/// What a node is in the layout: where it is, and how much it stores.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeRole {
    /// Its zone (site, datacenter...). Copies of a partition go to distinct zones.
    pub zone: String,
    /// Bytes it offers for data; `None` makes it a gateway, which stores nothing.
    pub capacity: Option<u64>,
    /// Free-form labels for operators; the assignment ignores them.
    pub tags: Vec<String>,
}

impl NodeRole {
    /// A storage node of `capacity` bytes in `zone`, without tags.
    pub fn storage(zone: impl Into<String>, capacity: u64) -> Self {
        NodeRole {
            zone: zone.into(),
            capacity: Some(capacity),
            tags: Vec::new(),
        }
    }
    /// A gateway in `zone` (no capacity), without tags.
    pub fn gateway(zone: impl Into<String>) -> Self {
        NodeRole {
            zone: zone.into(),
            capacity: None,
            tags: Vec::new(),
        }
    }
    /// True if the node stores no data.
    pub fn is_gateway(&self) -> bool {
        self.capacity.is_none()
    }
}

/// The parameters of a layout, changed like roles: staged, then applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutParams {
    /// Copies of each partition.
    pub replication_factor: usize,
    /// How many distinct zones each partition must span.
    #[serde(with = "zone_redundancy_serde")]
    pub zone_redundancy: ZoneRedundancy,
}

impl Default for LayoutParams {
    /// Three copies in as many zones as possible.
    fn default() -> Self {
        LayoutParams {
            replication_factor: 3,
            zone_redundancy: ZoneRedundancy::Maximum,
        }
    }
}

impl LayoutParams {
    /// A total order, used to break ties between concurrent changes.
    fn key(&self) -> (usize, u8, usize) {
        match self.zone_redundancy {
            ZoneRedundancy::Maximum => (self.replication_factor, 0, 0),
            ZoneRedundancy::AtLeast(k) => (self.replication_factor, 1, k),
        }
    }
}

impl PartialOrd for LayoutParams {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LayoutParams {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// Serde for [`ZoneRedundancy`], which lives in the assignment module without
/// serde derives: through a mirror enum of the same shape.
mod zone_redundancy_serde {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::assignment::ZoneRedundancy;

    #[derive(Serialize, Deserialize)]
    enum Mirror {
        Maximum,
        AtLeast(usize),
    }

    pub fn serialize<S: Serializer>(z: &ZoneRedundancy, s: S) -> Result<S::Ok, S::Error> {
        match *z {
            ZoneRedundancy::Maximum => Mirror::Maximum,
            ZoneRedundancy::AtLeast(k) => Mirror::AtLeast(k),
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ZoneRedundancy, D::Error> {
        Ok(match Mirror::deserialize(d)? {
            Mirror::Maximum => ZoneRedundancy::Maximum,
            Mirror::AtLeast(k) => ZoneRedundancy::AtLeast(k),
        })
    }
}

/// Which nodes hold each partition: the serialisable form of an
/// [`Assignment`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayoutAssignment {
    /// Bytes of data each partition can hold.
    pub partition_size: u64,
    /// For each of the [`PARTITION_COUNT`] partitions, its nodes.
    pub partitions: Vec<Vec<NodeId>>,
}

impl LayoutAssignment {
    /// Bytes the cluster can store, each replicated `replication_factor` times.
    pub fn usable_capacity(&self) -> u64 {
        self.partition_size * PARTITION_COUNT as u64
    }
    /// Number of partitions `node` holds.
    pub fn load(&self, node: &NodeId) -> usize {
        self.partitions.iter().filter(|p| p.contains(node)).count()
    }
}

impl From<Assignment> for LayoutAssignment {
    fn from(a: Assignment) -> Self {
        LayoutAssignment {
            partition_size: a.partition_size,
            partitions: a.partitions,
        }
    }
}

impl From<LayoutAssignment> for Assignment {
    fn from(a: LayoutAssignment) -> Self {
        Assignment {
            partition_size: a.partition_size,
            partitions: a.partitions,
        }
    }
}

/// One applied layout: the roles, the parameters and the assignment computed
/// from them. Version 0 is the empty layout of a fresh cluster.
///
/// The derived order (version first, then apply timestamp, then content) is the
/// total order that decides which of two concurrent versions wins a merge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayoutVersion {
    /// The version number; each apply creates the next one.
    pub version: u64,
    /// HLC timestamp of the apply that created it (0 for version 0).
    pub applied_at: u64,
    /// Every node with a role: storage nodes and gateways.
    pub roles: BTreeMap<NodeId, NodeRole>,
    /// Parameters the assignment was computed with.
    pub params: LayoutParams,
    /// The assignment; `None` only for version 0.
    pub assignment: Option<LayoutAssignment>,
}

impl LayoutVersion {
    /// Version 0: no roles, no assignment.
    pub fn empty(params: LayoutParams) -> Self {
        LayoutVersion {
            version: 0,
            applied_at: 0,
            roles: BTreeMap::new(),
            params,
            assignment: None,
        }
    }
    /// Bytes of data each partition can hold (0 without an assignment).
    pub fn partition_size(&self) -> u64 {
        self.assignment.as_ref().map_or(0, |a| a.partition_size)
    }
    /// Bytes the cluster can store (0 without an assignment).
    pub fn usable_capacity(&self) -> u64 {
        self.assignment
            .as_ref()
            .map_or(0, LayoutAssignment::usable_capacity)
    }
    /// Number of partitions `node` holds.
    pub fn load(&self, node: &NodeId) -> usize {
        self.assignment.as_ref().map_or(0, |a| a.load(node))
    }
    /// The nodes the assignment places data on: those with a capacity.
    pub fn storage_nodes(&self) -> Vec<StorageNode> {
        self.roles
            .iter()
            .filter_map(|(id, role)| {
                role.capacity.map(|capacity| StorageNode {
                    id: *id,
                    zone: role.zone.clone(),
                    capacity,
                })
            })
            .collect()
    }
}

/// A staged change of one node's role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StagedRole {
    /// Give the node this role (new node, or a changed role).
    Set(NodeRole),
    /// Take the node out of the layout.
    Remove,
}

/// The staged changes, as [`crate::LayoutHistory::staged`] shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StagedChanges {
    /// Role changes by node.
    pub roles: BTreeMap<NodeId, StagedRole>,
    /// New parameters, if staged.
    pub params: Option<LayoutParams>,
}

impl StagedChanges {
    /// True if nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty() && self.params.is_none()
    }
}
