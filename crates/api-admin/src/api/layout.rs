//! JSON shapes of the layout endpoints: `GetClusterLayout`,
//! `UpdateClusterLayout`, `PreviewClusterLayoutChanges`, `ApplyClusterLayout`,
//! `RevertClusterLayout` and `GetClusterLayoutHistory`.
//!
//! Capacities and sizes are in bytes, node ids 64 hex characters (requests may
//! name a known node by a unique prefix). Fields marked *extension* are
//! Hangar's own; the others have Garage's names and meaning.

use serde::{Deserialize, Serialize, Serializer};

/// How many distinct zones each partition must span: `"maximum"` or
/// `{"atLeast": n}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ZoneRedundancy {
    /// As many as the replication factor and the zones allow.
    Maximum,
    /// At least this many.
    AtLeast(usize),
}

/// The parameters of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutParameters {
    /// Zones each partition spans.
    pub zone_redundancy: ZoneRedundancy,
    /// Copies of each partition (extension).
    pub replication_factor: usize,
}

/// New parameters in `UpdateClusterLayout`: fields left out keep their staged
/// (or else current) value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayoutParametersUpdate {
    /// New zone redundancy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_redundancy: Option<ZoneRedundancy>,
    /// New replication factor (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<usize>,
}

/// A node with a role in the current layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutNodeRole {
    /// Node id.
    pub id: String,
    /// Its zone.
    pub zone: String,
    /// Bytes it offers; `null` for a gateway.
    pub capacity: Option<u64>,
    /// Partitions it holds.
    pub stored_partitions: usize,
    /// Bytes of its capacity the layout uses (partitions × partition size);
    /// `null` for a gateway.
    pub usable_capacity: Option<u64>,
    /// Operator labels.
    pub tags: Vec<String>,
}

/// What a staged change does to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleChangeAction {
    /// Take the node out of the layout (`"remove": true`).
    Remove,
    /// Give the node this role.
    Set {
        /// Its zone.
        zone: String,
        /// Bytes it offers; `None` makes a gateway.
        capacity: Option<u64>,
        /// Operator labels.
        tags: Vec<String>,
    },
}

/// A change of one node's role: `{"id", "remove": true}` or
/// `{"id", "zone", "capacity", "tags"}` (`capacity` `null` or left out: a
/// gateway; `tags` left out: none).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RoleChangeWire")]
pub struct NodeRoleChange {
    /// Node id; in requests, a unique prefix of a known node's id will do.
    pub id: String,
    /// The change.
    pub action: RoleChangeAction,
}

/// The flat JSON form of [`NodeRoleChange`], as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleChangeWire {
    id: String,
    #[serde(default)]
    remove: Option<bool>,
    #[serde(default)]
    zone: Option<String>,
    #[serde(default)]
    capacity: Option<u64>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl TryFrom<RoleChangeWire> for NodeRoleChange {
    type Error = String;

    fn try_from(w: RoleChangeWire) -> Result<Self, String> {
        let action = match w.remove {
            Some(true) => {
                if w.zone.is_some() || w.capacity.is_some() || w.tags.is_some() {
                    return Err(format!(
                        "role change of {}: a removal takes no zone, capacity or tags",
                        w.id
                    ));
                }
                RoleChangeAction::Remove
            }
            Some(false) => {
                return Err(format!(
                    "role change of {}: remove must be true (leave it out to set a role)",
                    w.id
                ))
            }
            None => RoleChangeAction::Set {
                zone: w.zone.ok_or_else(|| {
                    format!(
                        "role change of {}: zone is required (or \"remove\": true)",
                        w.id
                    )
                })?,
                capacity: w.capacity,
                tags: w.tags.unwrap_or_default(),
            },
        };
        Ok(NodeRoleChange { id: w.id, action })
    }
}

impl Serialize for NodeRoleChange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Out<'a> {
            Remove {
                id: &'a str,
                remove: bool,
            },
            Set {
                id: &'a str,
                zone: &'a str,
                capacity: Option<u64>,
                tags: &'a [String],
            },
        }
        match &self.action {
            RoleChangeAction::Remove => Out::Remove {
                id: &self.id,
                remove: true,
            },
            RoleChangeAction::Set {
                zone,
                capacity,
                tags,
            } => Out::Set {
                id: &self.id,
                zone,
                capacity: *capacity,
                tags,
            },
        }
        .serialize(s)
    }
}

/// Answer of `GetClusterLayout`, `UpdateClusterLayout` and
/// `RevertClusterLayout`: the current layout and the changes staged on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClusterLayoutResponse {
    /// Current layout version (0 before the first apply).
    pub version: u64,
    /// Nodes with a role, by id.
    pub roles: Vec<LayoutNodeRole>,
    /// Current parameters.
    pub parameters: LayoutParameters,
    /// Bytes of data each partition can hold (0 before the first apply).
    pub partition_size: u64,
    /// Staged role changes, by node id.
    pub staged_role_changes: Vec<NodeRoleChange>,
    /// Staged parameters, if any.
    pub staged_parameters: Option<LayoutParameters>,
}

/// Body of `UpdateClusterLayout`: role changes and parameters to stage,
/// all or none.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateClusterLayoutRequest {
    /// Role changes, at most one per node.
    #[serde(default)]
    pub roles: Vec<NodeRoleChange>,
    /// New parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<LayoutParametersUpdate>,
}

/// Answer of `PreviewClusterLayoutChanges`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewClusterLayoutChangesResponse {
    /// The changes, as text lines: parameters, capacity before and after, and
    /// per node the partitions and bytes that would move.
    pub message: Vec<String>,
    /// The layout the apply would make.
    pub new_layout: GetClusterLayoutResponse,
}

/// Body of `ApplyClusterLayout`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyClusterLayoutRequest {
    /// The version the apply must create: the current one plus one.
    pub version: u64,
}

/// Answer of `ApplyClusterLayout`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyClusterLayoutResponse {
    /// What changed, as text lines (see [`PreviewClusterLayoutChangesResponse`]).
    pub message: Vec<String>,
    /// The new layout.
    pub layout: GetClusterLayoutResponse,
}

/// One kept version of [`GetClusterLayoutHistoryResponse`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLayoutVersion {
    /// Its number.
    pub version: u64,
    /// `current`; `draining` for an older version still live (writes still
    /// reach it, until every node has synced a newer one); or `historical`.
    pub status: String,
    /// Nodes with a capacity.
    pub storage_nodes: usize,
    /// Nodes without one.
    pub gateway_nodes: usize,
    /// Its parameters (extension).
    pub parameters: LayoutParameters,
    /// Bytes the cluster could store with it (extension).
    pub usable_capacity: u64,
}

/// Answer of `GetClusterLayoutHistory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClusterLayoutHistoryResponse {
    /// The current version.
    pub current_version: u64,
    /// The lowest version every node with a role in a live version has
    /// acknowledged.
    pub min_ack: u64,
    /// The versions kept, oldest first.
    pub versions: Vec<ClusterLayoutVersion>,
    /// Each node's progress through the versions.
    pub update_trackers: std::collections::BTreeMap<String, NodeUpdateTrackers>,
}

/// One node's progress through layout versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeUpdateTrackers {
    /// The newest version it no longer skips in its writes.
    pub ack: u64,
    /// The newest version whose data it holds entirely.
    pub sync: u64,
    /// The newest version it knows every node has synced.
    pub sync_ack: u64,
}

/// `POST /v2/ClusterLayoutSkipDeadNodes`: lets a layout change finish without
/// the nodes that are down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterLayoutSkipDeadNodesRequest {
    /// The current layout version (as `layout history` shows it).
    pub version: u64,
    /// Also count the dead nodes as synced: old versions then retire even
    /// though data only those nodes held may be lost.
    #[serde(default)]
    pub allow_missing_data: bool,
}

/// Answer of `ClusterLayoutSkipDeadNodes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterLayoutSkipDeadNodesResponse {
    /// Nodes whose acknowledgement was given in their place.
    pub ack_updated: Vec<String>,
    /// Nodes also counted as synced.
    pub sync_updated: Vec<String>,
}
