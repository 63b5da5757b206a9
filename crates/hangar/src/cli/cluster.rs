//! `hangar node ...` and `hangar status`.

use anyhow::{bail, Context};
use hangar_api_admin::api::{
    ConnectClusterNodesRequest, ConnectClusterNodesResponse, GetClusterHealthResponse,
    GetClusterStatusResponse, GetNodeInfoRequest, GetNodeInfoResponse, GetWorkerStatusResponse,
    NodeResp,
};
use hangar_api_admin::AdminRequest;
use hangar_cluster::history::format_bytes;

use super::client::AdminClient;
use super::table::render;
use super::AdminTarget;

/// `hangar node ...`: this node and its peers.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum NodeCommand {
    /// Prints this node's `<id>@<address>`, what other nodes connect to.
    Id,
    /// Connects this node to others.
    Connect {
        /// `<node id>@<host:port>` of each node (`hangar node id` on it prints it).
        #[arg(required = true, value_name = "ID@ADDR")]
        peers: Vec<String>,
    },
}

/// Runs `command` against the admin API at `target` and prints the outcome.
pub async fn run_node(target: AdminTarget, command: NodeCommand) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    match command {
        NodeCommand::Id => {
            let info: GetNodeInfoResponse = client
                .call(&AdminRequest::GetNodeInfo(GetNodeInfoRequest {
                    node: "self".to_string(),
                }))
                .await?;
            let Some(me) = info.success.values().next() else {
                let why = info.error.values().next().cloned().unwrap_or_default();
                bail!("the node did not describe itself: {why}");
            };
            outln!("{}", me.rpc_peer);
        }
        NodeCommand::Connect { peers } => {
            let outcomes: ConnectClusterNodesResponse = client
                .call(&AdminRequest::ConnectClusterNodes(
                    ConnectClusterNodesRequest(peers.clone()),
                ))
                .await?;
            let mut failed = 0;
            for (peer, outcome) in peers.iter().zip(&outcomes.0) {
                if outcome.success {
                    outln!("Connected to {peer}.");
                } else {
                    failed += 1;
                    let why = outcome.error.as_deref().unwrap_or("unknown error");
                    eprintln!("Failed to connect to {peer}: {why}");
                }
            }
            if failed > 0 {
                bail!("{failed} of {} connections failed", peers.len());
            }
        }
    }
    Ok(())
}

/// `hangar status`: the cluster's health and every node known.
pub async fn run_status(target: AdminTarget) -> anyhow::Result<()> {
    let client = AdminClient::new(&target)?;
    let status: GetClusterStatusResponse = client.call(&AdminRequest::GetClusterStatus).await?;
    let health: GetClusterHealthResponse = client
        .call(&AdminRequest::GetClusterHealth)
        .await
        .context("asking for the cluster's health")?;
    out!("{}", render_status(&status, &health));
    let workers: GetWorkerStatusResponse = client
        .call(&AdminRequest::GetWorkerStatus)
        .await
        .context("asking for the node's workers")?;
    outln!("\nWorkers of this node:");
    out!("{}", super::workers::render_workers(&workers));
    Ok(())
}

/// The health lines, then the table of nodes.
fn render_status(status: &GetClusterStatusResponse, health: &GetClusterHealthResponse) -> String {
    let mut out = format!(
        "Cluster: {} (layout version {})\n",
        health.status, status.layout_version
    );
    out.push_str(&format!(
        "Nodes: {} known, {} up; storage nodes: {}, {} up\n",
        health.known_nodes, health.connected_nodes, health.storage_nodes, health.storage_nodes_up
    ));
    if health.partitions == 0 {
        out.push_str(
            "Partitions: none assigned yet (stage roles with `hangar layout assign`, then apply)\n",
        );
    } else {
        out.push_str(&format!(
            "Partitions: {}, {} with a write quorum up, {} with every replica up\n",
            health.partitions, health.partitions_quorum, health.partitions_all_ok
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = status.nodes.iter().map(node_row).collect();
    out.push_str(&render(
        &[
            "ID",
            "HOSTNAME",
            "ADDRESS",
            "ZONE",
            "CAPACITY",
            "PARTITIONS",
            "STATUS",
            "RTT",
            "LAYOUT",
        ],
        &rows,
    ));
    out
}

fn node_row(n: &NodeResp) -> Vec<String> {
    let dash = || "-".to_string();
    let (zone, capacity) = match &n.role {
        Some(r) => (
            r.zone.clone(),
            r.capacity
                .map_or_else(|| "gateway".to_string(), format_bytes),
        ),
        None => (dash(), dash()),
    };
    let state = if n.is_up {
        "up".to_string()
    } else {
        match n.last_seen_secs_ago {
            Some(s) => format!("down ({s}s ago)"),
            None => "down (never seen)".to_string(),
        }
    };
    vec![
        short_id(&n.id).to_string(),
        n.hostname.clone().unwrap_or_else(dash),
        n.addr.clone().unwrap_or_else(dash),
        zone,
        capacity,
        n.stored_partitions.to_string(),
        state,
        n.rtt_ms.map_or_else(dash, |ms| format!("{ms:.2} ms")),
        n.layout_version.map_or_else(dash, |v| v.to_string()),
    ]
}

/// The first 16 hex characters of a node id, as tables show it (any unique
/// prefix names a node on the command line).
pub(crate) fn short_id(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use hangar_api_admin::api::NodeAssignedRole;

    use super::*;

    #[test]
    fn status_table_shows_each_node() {
        let node = |id: char, up: bool, role: Option<NodeAssignedRole>| NodeResp {
            id: id.to_string().repeat(64),
            role,
            addr: Some("10.0.0.1:3901".into()),
            hostname: Some("host".into()),
            is_up: up,
            last_seen_secs_ago: if up { Some(0) } else { Some(42) },
            rtt_ms: up.then_some(0.5),
            stored_partitions: if up { 256 } else { 0 },
            layout_version: Some(3),
        };
        let status = GetClusterStatusResponse {
            layout_version: 3,
            nodes: vec![
                node(
                    'a',
                    true,
                    Some(NodeAssignedRole {
                        zone: "dc1".into(),
                        capacity: Some(100_000_000_000),
                        tags: vec![],
                    }),
                ),
                node('b', false, None),
            ],
        };
        let health = GetClusterHealthResponse {
            status: "degraded".into(),
            known_nodes: 2,
            connected_nodes: 1,
            storage_nodes: 1,
            storage_nodes_up: 1,
            partitions: 256,
            partitions_quorum: 256,
            partitions_all_ok: 256,
        };
        let out = render_status(&status, &health);
        assert!(
            out.starts_with("Cluster: degraded (layout version 3)\n"),
            "{out}"
        );
        let a = out
            .lines()
            .find(|l| l.starts_with(&"a".repeat(16)))
            .expect("row of a");
        for cell in ["dc1", "100 GB", "256", "up", "0.50 ms"] {
            assert!(a.contains(cell), "{cell} in {a}");
        }
        let b = out
            .lines()
            .find(|l| l.starts_with(&"b".repeat(16)))
            .expect("row of b");
        assert!(b.contains("down (42s ago)"), "{b}");
    }
}
