//! JSON shapes of the node and cluster endpoints: `GetNodeInfo`,
//! `GetClusterStatus`, `GetClusterHealth` and `ConnectClusterNodes`.
//!
//! Node ids are 64 hex characters. Fields marked *extension* are Hangar's own;
//! the others have Garage's names and meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Query of `GetNodeInfo`: which node to describe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetNodeInfoRequest {
    /// `self` (the node answering), `*` (every known node), or a node id or a
    /// unique prefix of one.
    pub node: String,
}

/// Answer of `GetNodeInfo`, in Garage's multi-node form: nodes that answered
/// under `success`, the others under `error`, both keyed by node id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetNodeInfoResponse {
    /// Node id to its description.
    pub success: BTreeMap<String, NodeInfo>,
    /// Node id to why it could not be described.
    pub error: BTreeMap<String, String>,
}

/// One node, as `GetNodeInfo` describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// Node id.
    pub node_id: String,
    /// Address other nodes reach it at (`ip:port`) (extension).
    pub rpc_addr: String,
    /// `<nodeId>@<rpcAddr>`, what `hangar node connect` and `bootstrap_peers`
    /// take (extension).
    pub rpc_peer: String,
    /// Its host name (extension).
    pub hostname: Option<String>,
    /// Version of Hangar it runs (extension; Garage calls it `garageVersion`).
    pub hangar_version: String,
}

/// A node's role in the layout, in [`NodeResp`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAssignedRole {
    /// Its zone.
    pub zone: String,
    /// Bytes it offers; `null` for a gateway.
    pub capacity: Option<u64>,
    /// Operator labels.
    pub tags: Vec<String>,
}

/// One node of [`GetClusterStatusResponse`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeResp {
    /// Node id.
    pub id: String,
    /// Its role in the current layout, if any.
    pub role: Option<NodeAssignedRole>,
    /// Its RPC address, if known.
    pub addr: Option<String>,
    /// Its host name, once it said it.
    pub hostname: Option<String>,
    /// Connected and answering pings (always true for the node answering).
    pub is_up: bool,
    /// Seconds since it was last heard from.
    pub last_seen_secs_ago: Option<u64>,
    /// Smoothed ping round trip in milliseconds (extension).
    pub rtt_ms: Option<f64>,
    /// Partitions it holds in the current layout (extension).
    pub stored_partitions: usize,
    /// The newest layout version it applied, as it last said (extension).
    pub layout_version: Option<u64>,
}

/// Answer of `GetClusterStatus`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClusterStatusResponse {
    /// The current layout version on the node answering.
    pub layout_version: u64,
    /// Every node known from membership or the layout, by id.
    pub nodes: Vec<NodeResp>,
}

/// Answer of `GetClusterHealth`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClusterHealthResponse {
    /// `healthy` (every replica reachable), `degraded` (every partition has a
    /// write quorum) or `unavailable`.
    pub status: String,
    /// Nodes known.
    pub known_nodes: usize,
    /// Nodes up, the one answering included.
    pub connected_nodes: usize,
    /// Nodes with a storage role in the current layout.
    pub storage_nodes: usize,
    /// Storage nodes up.
    pub storage_nodes_up: usize,
    /// Partitions in the layout (0 before the first apply).
    pub partitions: usize,
    /// Partitions with a write quorum of replicas up.
    pub partitions_quorum: usize,
    /// Partitions with every replica up.
    pub partitions_all_ok: usize,
}

/// Body of `ConnectClusterNodes`: `["<node id>@<host:port>", ...]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectClusterNodesRequest(pub Vec<String>);

/// The outcome of one entry of [`ConnectClusterNodesRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectNodeResponse {
    /// Whether the node is now connected.
    pub success: bool,
    /// Why not, if not.
    pub error: Option<String>,
}

/// Answer of `ConnectClusterNodes`: one entry per entry of the request, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectClusterNodesResponse(pub Vec<ConnectNodeResponse>);
