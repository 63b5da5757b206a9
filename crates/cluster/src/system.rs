//! A node's place in the cluster: its identity and RPC endpoint, membership,
//! the layout kept in sync, and quorum calls — started together by
//! [`System::start`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hangar_net::quic::{BulkCpuPriority, Congestion, QuicConfig, QuicTransport};
use hangar_net::{NodeKey, Rpc, RpcSecret, Transport};
use hangar_util::clock::Clock;

use crate::history::{LayoutHistory, LayoutParams, NodeRole};
use crate::layout_sync::{LayoutManager, LayoutSyncError};
use crate::membership::{BootstrapPeer, Membership, MembershipConfig, PeerStore};
use crate::quorum::QuorumRpc;
use crate::NodeId;

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Where the node key, peer list and layout are kept.
    pub metadata_dir: PathBuf,
    /// The cluster secret.
    pub rpc_secret: RpcSecret,
    /// UDP address of the QUIC endpoint.
    pub rpc_bind_addr: SocketAddr,
    /// Address announced to peers, if not the bound one.
    pub rpc_public_addr: Option<SocketAddr>,
    /// Congestion control of node connections.
    pub congestion: Congestion,
    /// CPU priority of the threads that carry bulk transfers.
    pub bulk_cpu_priority: BulkCpuPriority,
    /// Peers dialled at start.
    pub bootstrap_peers: Vec<BootstrapPeer>,
    /// Parameters of the layout of a fresh cluster.
    pub initial_params: LayoutParams,
    /// Ping and dial timing.
    pub membership: MembershipConfig,
}

/// Why the cluster part of a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The key or the transport.
    #[error(transparent)]
    Net(#[from] hangar_net::Error),
    /// The saved layout.
    #[error(transparent)]
    Layout(#[from] LayoutSyncError),
}

/// What this node knows of one node of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeStatus {
    /// The node.
    pub id: NodeId,
    /// Its address.
    pub addr: Option<SocketAddr>,
    /// Its host name.
    pub hostname: Option<String>,
    /// Connected and answering (always true for this node).
    pub up: bool,
    /// Smoothed ping round trip.
    pub rtt: Option<Duration>,
    /// Time since it was last heard from.
    pub last_seen: Option<Duration>,
    /// Its role in the current layout.
    pub role: Option<NodeRole>,
    /// Partitions it holds in the current layout.
    pub partitions: usize,
    /// The newest layout version it has applied, as it last said.
    pub layout_version: Option<u64>,
}

/// The cluster as this node sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterStatus {
    /// This node.
    pub node: NodeId,
    /// The current layout version.
    pub layout_version: u64,
    /// Every node known from membership or the layout, sorted by id.
    pub nodes: Vec<NodeStatus>,
}

/// Whether the data is reachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterHealth {
    /// `healthy` (every replica reachable), `degraded` (every partition has a
    /// write quorum) or `unavailable`.
    pub status: &'static str,
    /// Nodes known.
    pub known_nodes: usize,
    /// Nodes up (this one included).
    pub connected_nodes: usize,
    /// Nodes with a storage role.
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

/// A running node's cluster services.
pub struct System {
    membership: Arc<Membership>,
    layout: Arc<LayoutManager>,
    quorum: Arc<QuorumRpc>,
    consistency: crate::consistency::ModeCell,
}

impl System {
    /// Loads (or creates) the node key, binds the QUIC endpoint and starts
    /// membership and layout synchronisation.
    pub fn start(config: &ClusterConfig, clock: Clock) -> Result<Arc<Self>, SystemError> {
        let key = NodeKey::load_or_create(&config.metadata_dir)?;
        let mut quic = QuicConfig::new(config.rpc_bind_addr);
        quic.public_addr = config.rpc_public_addr;
        quic.congestion = config.congestion;
        quic.bulk_cpu_priority = config.bulk_cpu_priority;
        let transport = QuicTransport::bind(&key, &config.rpc_secret, &quic)?;
        tracing::info!(node = %key.id().to_hex(), addr = %transport.local_addr(), "cluster endpoint listening");
        if transport.local_addr().ip().is_unspecified() {
            tracing::warn!(
                "rpc_bind_addr is a wildcard address and rpc_public_addr is not set: \
                 peers will use the address they see this node's connections come from"
            );
        }
        let membership = MembershipConfig {
            bootstrap: config.bootstrap_peers.clone(),
            ..config.membership.clone()
        };
        Self::with_transport(
            transport,
            clock,
            Some(&config.metadata_dir),
            membership,
            config.initial_params,
        )
    }

    /// Starts over any transport (tests use the in-memory one).
    pub fn with_transport(
        transport: Arc<dyn Transport>,
        clock: Clock,
        metadata_dir: Option<&Path>,
        membership: MembershipConfig,
        initial_params: LayoutParams,
    ) -> Result<Arc<Self>, SystemError> {
        let rpc = Rpc::new(transport, clock.clone());
        let store = metadata_dir.map(PeerStore::new);
        let membership = Membership::new(rpc, membership, store);
        let initial = LayoutHistory::new(initial_params).map_err(LayoutSyncError::from)?;
        let layout = LayoutManager::start(membership.clone(), clock, metadata_dir, initial)?;
        let quorum = Arc::new(QuorumRpc::new(membership.clone()));
        let system = Arc::new(System {
            membership: membership.clone(),
            layout,
            quorum,
            consistency: crate::consistency::ModeCell::default(),
        });
        system.follow_zones();
        membership.start();
        Ok(system)
    }

    fn follow_zones(&self) {
        let mut changes = self.layout.subscribe();
        let quorum = self.quorum.clone();
        tokio::spawn(async move {
            loop {
                let zones: HashMap<NodeId, String> = changes
                    .borrow_and_update()
                    .current()
                    .roles
                    .iter()
                    .map(|(id, role)| (*id, role.zone.clone()))
                    .collect();
                quorum.set_zones(zones);
                if changes.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.membership.rpc().local_id()
    }

    /// The address peers reach this node at.
    pub fn rpc_addr(&self) -> SocketAddr {
        self.membership.rpc().local_addr()
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> &Arc<Rpc> {
        self.membership.rpc()
    }

    /// Membership.
    pub fn membership(&self) -> &Arc<Membership> {
        &self.membership
    }

    /// The layout, kept in sync with peers.
    pub fn layout(&self) -> &Arc<LayoutManager> {
        &self.layout
    }

    /// The quorums this node's reads and writes wait for.
    pub fn consistency_mode(&self) -> crate::ConsistencyMode {
        self.consistency.get()
    }

    /// Sets the quorums this node's reads and writes wait for.
    pub fn set_consistency_mode(&self, mode: crate::ConsistencyMode) {
        self.consistency.set(mode);
    }

    /// The quorum RPC helper.
    pub fn quorum(&self) -> &Arc<QuorumRpc> {
        &self.quorum
    }

    /// Connects to `peer` (`<node id>@<ip:port>`).
    pub async fn connect(&self, peer: &str) -> Result<(), String> {
        let peer: BootstrapPeer = peer.parse()?;
        let mut addrs = tokio::net::lookup_host(peer.addr.as_str())
            .await
            .map_err(|e| format!("resolving {}: {e}", peer.addr))?;
        let addr = addrs
            .next()
            .ok_or_else(|| format!("{} resolves to no address", peer.addr))?;
        self.membership
            .connect(peer.id, addr)
            .await
            .map_err(|e| e.to_string())
    }

    /// The cluster as this node sees it.
    pub fn status(&self) -> ClusterStatus {
        let history = self.layout.history();
        let current = history.current();
        let mut nodes: Vec<NodeStatus> = self
            .membership
            .status()
            .into_iter()
            .map(|p| NodeStatus {
                role: current.roles.get(&p.id).cloned(),
                partitions: current.load(&p.id),
                id: p.id,
                addr: p.addr,
                hostname: p.hostname,
                up: p.up,
                rtt: p.rtt,
                last_seen: p.last_seen,
                layout_version: p.layout_version,
            })
            .collect();
        for (id, role) in &current.roles {
            if !nodes.iter().any(|n| n.id == *id) {
                nodes.push(NodeStatus {
                    id: *id,
                    addr: None,
                    hostname: None,
                    up: false,
                    rtt: None,
                    last_seen: None,
                    role: Some(role.clone()),
                    partitions: current.load(id),
                    layout_version: None,
                });
            }
        }
        nodes.sort_by_key(|n| n.id);
        ClusterStatus {
            node: self.id(),
            layout_version: current.version,
            nodes,
        }
    }

    /// Whether the data is reachable, from this node's view.
    pub fn health(&self) -> ClusterHealth {
        let status = self.status();
        let history = self.layout.history();
        let current = history.current();
        let up = |id: &NodeId| status.nodes.iter().any(|n| n.id == *id && n.up);
        let storage: Vec<&NodeId> = current
            .roles
            .iter()
            .filter(|(_, r)| !r.is_gateway())
            .map(|(id, _)| id)
            .collect();
        let (mut quorum, mut all_ok, mut partitions) = (0, 0, 0);
        if let Some(assignment) = &current.assignment {
            let write_quorum = current.params.replication_factor / 2 + 1;
            for nodes in &assignment.partitions {
                partitions += 1;
                let alive = nodes.iter().filter(|n| up(n)).count();
                if alive >= write_quorum {
                    quorum += 1;
                }
                if alive == nodes.len() {
                    all_ok += 1;
                }
            }
        }
        let health = if partitions > 0 && all_ok == partitions {
            "healthy"
        } else if partitions > 0 && quorum == partitions {
            "degraded"
        } else {
            "unavailable"
        };
        ClusterHealth {
            status: health,
            known_nodes: status.nodes.len(),
            connected_nodes: status.nodes.iter().filter(|n| n.up).count(),
            storage_nodes: storage.len(),
            storage_nodes_up: storage.iter().filter(|id| up(id)).count(),
            partitions,
            partitions_quorum: quorum,
            partitions_all_ok: all_ok,
        }
    }

    /// Closes every connection and the endpoint.
    pub fn shutdown(&self) {
        self.membership.rpc().shutdown();
    }
}

#[cfg(test)]
mod tests;
