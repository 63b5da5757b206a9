//! Node and cluster endpoints: `GetNodeInfo`, `GetClusterStatus`,
//! `GetClusterHealth`, `ConnectClusterNodes`.

use std::collections::BTreeMap;
use std::time::Duration;

use hangar_cluster::{NodeId, NodeStatus, System};

use crate::api::{
    ConnectClusterNodesRequest, ConnectClusterNodesResponse, ConnectNodeResponse,
    GetClusterHealthResponse, GetClusterStatusResponse, GetNodeInfoRequest, GetNodeInfoResponse,
    NodeAssignedRole, NodeInfo, NodeResp,
};
use crate::error::{Error, Result};
use crate::layout::resolve_node;

/// How long one entry of `ConnectClusterNodes` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most entries one `ConnectClusterNodes` takes (they are dialled in turn).
const MAX_CONNECT_ENTRIES: usize = 64;

/// `GetNodeInfo`: this node described; other nodes are reported under `error`,
/// as only a node's own admin API describes it.
pub(crate) fn get_node_info(
    cluster: &System,
    request: GetNodeInfoRequest,
) -> Result<GetNodeInfoResponse> {
    let me = cluster.id();
    let status = cluster.status();
    let targets: Vec<NodeId> = match request.node.as_str() {
        "self" => vec![me],
        "*" => status.nodes.iter().map(|n| n.id).collect(),
        other => {
            let history = cluster.layout().history();
            let known = status.nodes.iter().map(|n| n.id);
            vec![resolve_node(other, known.chain(history.known_nodes()))?]
        }
    };
    let mut response = GetNodeInfoResponse {
        success: BTreeMap::new(),
        error: BTreeMap::new(),
    };
    for id in targets {
        if id == me {
            let addr = cluster.rpc_addr();
            let hostname = status
                .nodes
                .iter()
                .find(|n| n.id == me)
                .and_then(|n| n.hostname.clone());
            let info = NodeInfo {
                node_id: me.to_hex(),
                rpc_addr: addr.to_string(),
                rpc_peer: format!("{}@{addr}", me.to_hex()),
                hostname,
                hangar_version: env!("CARGO_PKG_VERSION").to_string(),
            };
            response.success.insert(me.to_hex(), info);
        } else {
            response.error.insert(
                id.to_hex(),
                "this node only describes itself: ask that node's admin API".to_string(),
            );
        }
    }
    Ok(response)
}

/// `GetClusterStatus`: every node this one knows of.
pub(crate) fn get_cluster_status(cluster: &System) -> GetClusterStatusResponse {
    let status = cluster.status();
    GetClusterStatusResponse {
        layout_version: status.layout_version,
        nodes: status.nodes.iter().map(node_resp).collect(),
    }
}

fn node_resp(n: &NodeStatus) -> NodeResp {
    NodeResp {
        id: n.id.to_hex(),
        role: n.role.as_ref().map(|r| NodeAssignedRole {
            zone: r.zone.clone(),
            capacity: r.capacity,
            tags: r.tags.clone(),
        }),
        addr: n.addr.map(|a| a.to_string()),
        hostname: n.hostname.clone(),
        is_up: n.up,
        last_seen_secs_ago: n.last_seen.map(|d| d.as_secs()),
        // Microsecond precision: enough for a LAN, short to print.
        rtt_ms: n
            .rtt
            .map(|d| (d.as_secs_f64() * 1_000_000.0).round() / 1000.0),
        stored_partitions: n.partitions,
        layout_version: n.layout_version,
    }
}

/// `GetClusterHealth`.
pub(crate) fn get_cluster_health(cluster: &System) -> GetClusterHealthResponse {
    let h = cluster.health();
    GetClusterHealthResponse {
        status: h.status.to_string(),
        known_nodes: h.known_nodes,
        connected_nodes: h.connected_nodes,
        storage_nodes: h.storage_nodes,
        storage_nodes_up: h.storage_nodes_up,
        partitions: h.partitions,
        partitions_quorum: h.partitions_quorum,
        partitions_all_ok: h.partitions_all_ok,
    }
}

/// `ConnectClusterNodes`: dials each `<id>@<host:port>` in turn, each for at
/// most [`CONNECT_TIMEOUT`]; one outcome per entry.
pub(crate) async fn connect_cluster_nodes(
    cluster: &System,
    request: ConnectClusterNodesRequest,
) -> Result<ConnectClusterNodesResponse> {
    if request.0.len() > MAX_CONNECT_ENTRIES {
        return Err(Error::bad_request(format!(
            "at most {MAX_CONNECT_ENTRIES} nodes per call, not {}",
            request.0.len()
        )));
    }
    let mut outcomes = Vec::with_capacity(request.0.len());
    for peer in &request.0 {
        let result = match tokio::time::timeout(CONNECT_TIMEOUT, cluster.connect(peer)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "{peer}: no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            )),
        };
        outcomes.push(match result {
            Ok(()) => ConnectNodeResponse {
                success: true,
                error: None,
            },
            Err(e) => ConnectNodeResponse {
                success: false,
                error: Some(e),
            },
        });
    }
    Ok(ConnectClusterNodesResponse(outcomes))
}
