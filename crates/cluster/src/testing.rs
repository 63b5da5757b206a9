//! In-process clusters over the in-memory network, for tests of the layers
//! above (enabled by the `testing` feature).

use std::sync::Arc;
use std::time::Duration;

use hangar_net::memory::{Link, LinkState, MemoryNetwork};
use hangar_net::{NodeKey, RpcSecret};
use hangar_util::clock::Clock;

use crate::history::{LayoutParams, NodeRole};
use crate::membership::{BootstrapPeer, MembershipConfig};
use crate::{NodeId, System};

/// Nodes on one in-memory network, each in its own zone, with an applied
/// layout.
pub struct MemoryCluster {
    /// The network: links can be slowed, silenced or cut.
    pub net: MemoryNetwork,
    /// Node ids, in start order.
    pub ids: Vec<NodeId>,
    /// The nodes.
    pub systems: Vec<Arc<System>>,
    /// One-way latency of every link.
    pub latency: Duration,
    secret: RpcSecret,
    params: LayoutParams,
}

impl MemoryCluster {
    /// Starts `nodes` storage nodes (zones `z0`, `z1`...) with links of
    /// `latency` each way, applies layout version 1 with `replication_factor`,
    /// and waits until every node is connected and has it.
    ///
    /// # Panics
    ///
    /// If the cluster does not form within 20 s.
    pub async fn start(nodes: usize, replication_factor: usize, latency: Duration) -> Self {
        let net = MemoryNetwork::new();
        net.set_default_link(Link::with_latency(latency));
        let secret = RpcSecret::generate();
        let ids: Vec<NodeId> = (0..nodes)
            .map(|_| NodeKey::generate().expect("key").id())
            .collect();
        let params = LayoutParams {
            replication_factor,
            ..LayoutParams::default()
        };
        let mut systems: Vec<Arc<System>> = Vec::new();
        for id in &ids {
            let bootstrap = systems.first().map(|s| (ids[0], s.clone()));
            systems.push(start_node(&net, &secret, (*id, None), bootstrap, params));
        }
        wait_until("all connected", || {
            systems
                .iter()
                .all(|s| s.status().nodes.iter().filter(|n| n.up).count() == nodes)
        })
        .await;
        for (i, id) in ids.iter().enumerate() {
            systems[0]
                .layout()
                .update(|h, ts| h.stage_role(*id, NodeRole::storage(format!("z{i}"), 1 << 40), ts))
                .expect("stage");
        }
        systems[0]
            .layout()
            .update(|h, ts| h.apply(Some(1), ts))
            .expect("apply");
        wait_until("layout everywhere", || {
            systems
                .iter()
                .all(|s| s.layout().snapshot().current().version == 1)
        })
        .await;
        MemoryCluster {
            net,
            ids,
            systems,
            latency,
            secret,
            params,
        }
    }

    /// The cluster's secret: another endpoint on [`MemoryCluster::net`] needs
    /// it to reach the nodes.
    pub fn secret(&self) -> &RpcSecret {
        &self.secret
    }

    /// Stops node `node` as a crash would: its links go down and its
    /// endpoint closes. What it stored is whatever its caller keeps.
    pub fn crash(&self, node: usize) {
        (self.crasher(node))();
    }

    /// What [`MemoryCluster::crash`] does to node `node`, as a function that
    /// can be called from anywhere (a crash hook inside the node itself).
    pub fn crasher(&self, node: usize) -> impl Fn() + Send + Sync + 'static {
        let (net, ids, latency) = (self.net.clone(), self.ids.clone(), self.latency);
        let system = self.systems[node].clone();
        move || {
            set_links(&net, &ids, node, latency, LinkState::Down);
            system.shutdown();
        }
    }

    /// Starts node `node` again after [`MemoryCluster::crash`], under the
    /// same identity and address with a new endpoint, joining through
    /// another node. Returns once it has the layout version it had (a
    /// server reads it from its metadata directory) with its new system,
    /// which replaces the old one in `systems`.
    ///
    /// # Panics
    ///
    /// If it does not learn the layout within 20 s.
    pub async fn restart(&mut self, node: usize) -> Arc<System> {
        let version = self.systems[node].layout().snapshot().current().version;
        self.set_state(node, LinkState::Up);
        let via = (node + 1) % self.ids.len();
        let system = start_node(
            &self.net,
            &self.secret,
            (self.ids[node], Some(self.systems[node].rpc_addr())),
            Some((self.ids[via], self.systems[via].clone())),
            self.params,
        );
        self.systems[node] = system.clone();
        wait_until("the restarted node has its layout", || {
            system.layout().snapshot().current().version >= version
        })
        .await;
        system
    }

    /// Sets the state of every link of node `node` (by index).
    pub fn set_state(&self, node: usize, state: LinkState) {
        set_links(&self.net, &self.ids, node, self.latency, state);
    }
}

/// Sets every link of node `node` (of `ids`) to `state`.
fn set_links(
    net: &MemoryNetwork,
    ids: &[NodeId],
    node: usize,
    latency: Duration,
    state: LinkState,
) {
    for (other, id) in ids.iter().enumerate() {
        if other != node {
            let link = Link {
                state,
                ..Link::with_latency(latency)
            };
            net.set_link(ids[node], *id, link);
        }
    }
}

/// Starts the node `id` on `net` (at the given address, or a new one),
/// joining through `bootstrap` if given.
fn start_node(
    net: &MemoryNetwork,
    secret: &RpcSecret,
    (id, addr): (NodeId, Option<std::net::SocketAddr>),
    bootstrap: Option<(NodeId, Arc<System>)>,
    params: LayoutParams,
) -> Arc<System> {
    let membership = MembershipConfig {
        bootstrap: bootstrap
            .map(|(id, s)| BootstrapPeer {
                id,
                addr: s.rpc_addr().to_string(),
            })
            .into_iter()
            .collect(),
        ..MembershipConfig::default()
    };
    let transport = net.transport_at(id, secret, addr);
    System::with_transport(transport, Clock::system(), None, membership, params).expect("start")
}

/// Waits until `f` holds, checking every 20 ms.
///
/// # Panics
///
/// If it does not within 20 s.
pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not within 20 s: {what}");
}
