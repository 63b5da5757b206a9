//! Live membership: which nodes exist, where they are, and whether they answer.
//!
//! Every node pings each connected peer every [`MembershipConfig::ping_interval`]
//! and measures the round trip. A peer is *up* while it is connected and has
//! answered (or pinged us) within [`MembershipConfig::down_after`]; a closed
//! connection marks it down at once. Nodes exchange their peer lists, so a node
//! told about a single bootstrap peer soon knows the whole cluster, and they
//! redial lost peers with exponential backoff. The peer list is saved in the
//! metadata directory, so a restarted node finds its peers again, even if its
//! bootstrap peer is gone. A peer's address is what it announces in its pings
//! (its `rpc_public_addr`), so a node that comes back on a new address is found
//! again as soon as it reaches any peer.

mod messages;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hangar_net::{CallOptions, NodeId, PeerEvent, Rpc};
use hangar_util::Hash;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::lock;

pub use messages::{ExchangePeers, NodeHello, Ping};
pub use store::{PeerStore, PEERS_FILE};

/// Most peers a node keeps: gossip beyond it is ignored (logged), so a faulty
/// or hostile member cannot make every node's peer list grow without bound.
pub const MAX_PEERS: usize = 1024;

/// A peer to dial at start: its id and `host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapPeer {
    /// The node expected there.
    pub id: NodeId,
    /// Host name or IP address, and port.
    pub addr: String,
}

impl std::str::FromStr for BootstrapPeer {
    type Err = String;

    /// Parses `<64 hex node id>@<host:port>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, addr) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?}: expected <node id>@<host:port>"))?;
        let id = NodeId::from_hex(id)
            .ok_or_else(|| format!("{s:?}: the node id must be 64 hex characters"))?;
        if addr
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return Err(format!("{s:?}: expected <node id>@<host:port>"));
        }
        Ok(BootstrapPeer {
            id,
            addr: addr.to_string(),
        })
    }
}

/// Timing of membership.
#[derive(Clone, Debug)]
pub struct MembershipConfig {
    /// Peers to dial at start.
    pub bootstrap: Vec<BootstrapPeer>,
    /// Delay between pings to each peer.
    pub ping_interval: Duration,
    /// A ping without answer after this long failed.
    pub ping_timeout: Duration,
    /// A peer silent for this long is down.
    pub down_after: Duration,
    /// Longest delay between two attempts to dial an unreachable peer.
    pub max_backoff: Duration,
    /// Delay between peer list exchanges.
    pub exchange_interval: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            bootstrap: Vec::new(),
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(2),
            down_after: Duration::from_secs(3),
            max_backoff: Duration::from_secs(10),
            exchange_interval: Duration::from_secs(10),
        }
    }
}

/// What this node knows of a peer.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerStatus {
    /// The peer.
    pub id: NodeId,
    /// Its address, if known.
    pub addr: Option<SocketAddr>,
    /// Its host name, once it said it.
    pub hostname: Option<String>,
    /// Whether it is connected and answering.
    pub up: bool,
    /// Smoothed ping round-trip time.
    pub rtt: Option<Duration>,
    /// Time since it last answered or pinged us.
    pub last_seen: Option<Duration>,
    /// Its newest applied layout version, as it last said.
    pub layout_version: Option<u64>,
}

#[derive(Debug)]
struct Peer {
    addr: Option<SocketAddr>,
    bootstrap: Option<String>,
    hostname: Option<String>,
    last_seen: Option<Instant>,
    rtt: Option<Duration>,
    layout_version: Option<u64>,
    failures: u32,
    next_dial: Instant,
    dialing: bool,
    pinging: bool,
    /// Whether the last state logged was up.
    logged_up: bool,
}

impl Peer {
    fn new() -> Self {
        Peer {
            addr: None,
            bootstrap: None,
            hostname: None,
            last_seen: None,
            rtt: None,
            layout_version: None,
            failures: 0,
            next_dial: Instant::now(),
            dialing: false,
            pinging: false,
            logged_up: false,
        }
    }
}

/// The membership service of a node.
pub struct Membership {
    rpc: Arc<Rpc>,
    config: MembershipConfig,
    store: Option<PeerStore>,
    hello: Mutex<NodeHello>,
    peers: Mutex<BTreeMap<NodeId, Peer>>,
    saved: Arc<Mutex<Vec<(NodeId, SocketAddr)>>>,
    saving: Arc<Mutex<()>>,
    layout_differs: Mutex<Option<mpsc::UnboundedSender<NodeId>>>,
}

impl Membership {
    /// Membership over `rpc`; `store` keeps the peer list across restarts.
    /// Registers its handlers; call [`Membership::start`] to begin.
    pub fn new(rpc: Arc<Rpc>, config: MembershipConfig, store: Option<PeerStore>) -> Arc<Self> {
        let hello = NodeHello {
            addr: rpc.local_addr(),
            hostname: hostname(),
            layout_version: 0,
            layout_digest: Hash([0; 32]),
        };
        let mut peers = BTreeMap::new();
        let saved = store.as_ref().map(PeerStore::load).unwrap_or_default();
        for (id, addr) in &saved {
            peers.entry(*id).or_insert_with(Peer::new).addr = Some(*addr);
        }
        for b in &config.bootstrap {
            peers.entry(b.id).or_insert_with(Peer::new).bootstrap = Some(b.addr.clone());
        }
        peers.remove(&rpc.local_id());
        let m = Arc::new(Membership {
            rpc,
            config,
            store,
            hello: Mutex::new(hello),
            peers: Mutex::new(peers),
            saved: Arc::new(Mutex::new(saved)),
            saving: Arc::default(),
            layout_differs: Mutex::new(None),
        });
        m.register();
        m
    }

    fn register(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.rpc.register(move |from, Ping(hello): Ping| {
            let m = weak.upgrade();
            async move {
                let m = m.ok_or("shutting down")?;
                m.heard_from(from, &hello, None);
                Ok(m.hello())
            }
        });
        let weak = Arc::downgrade(self);
        self.rpc
            .register(move |_from, ExchangePeers(list): ExchangePeers| {
                let m = weak.upgrade();
                async move {
                    let m = m.ok_or("shutting down")?;
                    let ours = m.known_addresses();
                    m.learn(&list);
                    Ok(ours)
                }
            });
    }

    /// Sets what this node announces of its layout.
    pub fn set_layout_summary(&self, version: u64, digest: Hash) {
        let mut hello = lock(&self.hello);
        hello.layout_version = version;
        hello.layout_digest = digest;
    }

    /// Peers whose layout digest differs from ours are sent on `tx`.
    pub fn on_layout_difference(&self, tx: mpsc::UnboundedSender<NodeId>) {
        *lock(&self.layout_differs) = Some(tx);
    }

    fn hello(&self) -> NodeHello {
        lock(&self.hello).clone()
    }

    /// Adds a peer and dials it now.
    pub async fn connect(
        self: &Arc<Self>,
        id: NodeId,
        addr: SocketAddr,
    ) -> Result<(), hangar_net::Error> {
        self.rpc.connect(addr, id).await?;
        {
            let mut peers = lock(&self.peers);
            let p = peers.entry(id).or_insert_with(Peer::new);
            p.addr = Some(addr);
            p.failures = 0;
        }
        self.ping(id).await;
        self.save_if_changed();
        Ok(())
    }

    /// Starts pinging, dialling and exchanging peer lists, and dialling a
    /// peer at once when a call needs it ([`Membership::dial_on_demand`]).
    pub fn start(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        self.rpc.set_dialer(Arc::new(move |id| {
            // A task of its own: the caller may stop waiting, the dial goes
            // on and records its outcome.
            let dial = weak.upgrade().map(|m| tokio::spawn(m.dial_on_demand(id)));
            Box::pin(async move {
                if let Some(d) = dial {
                    let _ = d.await;
                }
            })
        }));
        self.every(self.config.ping_interval, Self::round);
        self.every(self.config.exchange_interval, |m| {
            for peer in m.rpc.connected_peers() {
                tokio::spawn(m.clone().exchange(peer.id));
            }
        });
        let weak = Arc::downgrade(self);
        let mut events = self.rpc.subscribe();
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(m) = weak.upgrade() else { return };
                match event {
                    PeerEvent::Connected { id, .. } => {
                        lock(&m.peers).entry(id).or_insert_with(Peer::new);
                        let m2 = m.clone();
                        tokio::spawn(async move { m2.ping(id).await });
                        tokio::spawn(m.clone().exchange(id));
                    }
                    PeerEvent::Disconnected { id } => {
                        tracing::info!(peer = %id, "peer disconnected");
                        if let Some(p) = lock(&m.peers).get_mut(&id) {
                            p.next_dial = Instant::now();
                        }
                    }
                }
            }
        });
    }

    /// Runs `f` every `interval` (the first time at once) while `self` lives.
    fn every(self: &Arc<Self>, interval: Duration, f: impl Fn(&Arc<Self>) + Send + 'static) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(m) = weak.upgrade() else { return };
                f(&m);
            }
        });
    }

    /// One round: ping connected peers, dial the others when their backoff allows.
    fn round(self: &Arc<Self>) {
        let now = Instant::now();
        let mut to_ping = Vec::new();
        let mut to_dial = Vec::new();
        {
            let mut peers = lock(&self.peers);
            for (id, p) in peers.iter_mut() {
                let up = self.rpc.is_connected(*id)
                    && p.last_seen
                        .is_some_and(|t| t.elapsed() < self.config.down_after);
                if p.logged_up && !up {
                    tracing::warn!(peer = %id, "peer down: silent for {:?}", p.last_seen.map(|t| t.elapsed()));
                    p.logged_up = false;
                }
                if self.rpc.is_connected(*id) {
                    if !p.pinging {
                        p.pinging = true;
                        to_ping.push(*id);
                    }
                } else if !p.dialing
                    && now >= p.next_dial
                    && (p.addr.is_some() || p.bootstrap.is_some())
                {
                    p.dialing = true;
                    to_dial.push((*id, p.addr, p.bootstrap.clone()));
                }
            }
        }
        for id in to_ping {
            let m = self.clone();
            tokio::spawn(async move {
                m.ping(id).await;
                if let Some(p) = lock(&m.peers).get_mut(&id) {
                    p.pinging = false;
                }
            });
        }
        for (id, addr, bootstrap) in to_dial {
            tokio::spawn(self.clone().dial(id, addr, bootstrap));
        }
    }

    /// Dials `id` now, whatever its backoff, because a call needs it: after
    /// a cut heals or the peer restarts, requests reconnect at once instead
    /// of failing until the next redial (up to `max_backoff` later). Never
    /// while a dial of the peer is under way: one attempt at a time, so a
    /// peer that is really gone costs calls one dial at a time, not one each.
    async fn dial_on_demand(self: Arc<Self>, id: NodeId) {
        let (addr, bootstrap) = {
            let mut peers = lock(&self.peers);
            let Some(p) = peers.get_mut(&id) else { return };
            if p.dialing || (p.addr.is_none() && p.bootstrap.is_none()) {
                return;
            }
            p.dialing = true;
            (p.addr, p.bootstrap.clone())
        };
        self.dial(id, addr, bootstrap).await;
    }

    async fn dial(
        self: Arc<Self>,
        id: NodeId,
        addr: Option<SocketAddr>,
        bootstrap: Option<String>,
    ) {
        let mut candidates: Vec<SocketAddr> = addr.into_iter().collect();
        if let Some(host) = &bootstrap {
            let lookup = tokio::net::lookup_host(host.as_str());
            match tokio::time::timeout(self.config.ping_timeout * 5, lookup).await {
                Ok(Ok(found)) => candidates.extend(found.filter(|a| Some(*a) != addr)),
                Ok(Err(e)) => tracing::debug!(peer = %id, "resolving {host}: {e}"),
                Err(_) => tracing::debug!(peer = %id, "resolving {host}: timed out"),
            }
        }
        let mut connected = false;
        for a in candidates {
            match self.rpc.connect(a, id).await {
                Ok(()) => {
                    connected = true;
                    break;
                }
                Err(e @ hangar_net::Error::Handshake(_)) => {
                    tracing::warn!(peer = %id, addr = %a, "dial refused: {e} (same rpc_secret on both nodes?)");
                }
                Err(e) => tracing::debug!(peer = %id, addr = %a, "dial failed: {e}"),
            }
        }
        let mut peers = lock(&self.peers);
        if let Some(p) = peers.get_mut(&id) {
            p.dialing = false;
            if connected {
                p.failures = 0;
            } else {
                p.failures = p.failures.saturating_add(1);
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1u32 << p.failures.min(8))
                    .min(self.config.max_backoff);
                p.next_dial = Instant::now() + backoff;
            }
        }
    }

    async fn ping(&self, id: NodeId) {
        let start = Instant::now();
        let options = CallOptions {
            timeout: self.config.ping_timeout,
            ..CallOptions::default()
        };
        match self
            .rpc
            .call_with(id, &Ping(self.hello()), options, None)
            .await
        {
            Ok((hello, _)) => self.heard_from(id, &hello, Some(start.elapsed())),
            Err(e) => tracing::debug!(peer = %id, "ping failed: {e}"),
        }
    }

    fn heard_from(&self, id: NodeId, hello: &NodeHello, rtt: Option<Duration>) {
        let ours = lock(&self.hello).layout_digest;
        let mut changed_addr = false;
        {
            let mut peers = lock(&self.peers);
            let p = peers.entry(id).or_insert_with(Peer::new);
            // A node bound to a wildcard address announces it; the address it
            // is reached at then comes from the connection.
            let addr = if hello.addr.ip().is_unspecified() {
                self.rpc.peer_addr(id).map_or(hello.addr, |seen| {
                    SocketAddr::new(seen.ip(), hello.addr.port())
                })
            } else {
                hello.addr
            };
            if p.addr != Some(addr) && !addr.ip().is_unspecified() {
                changed_addr = true;
                p.addr = Some(addr);
            }
            p.hostname = Some(hello.hostname.clone());
            p.layout_version = Some(hello.layout_version);
            p.last_seen = Some(Instant::now());
            p.failures = 0;
            if let Some(sample) = rtt {
                p.rtt = Some(match p.rtt {
                    None => sample,
                    Some(old) => (old * 4 + sample) / 5,
                });
            }
            if !p.logged_up {
                tracing::info!(peer = %id, %addr, "peer up");
                p.logged_up = true;
            }
        }
        if hello.layout_digest != ours {
            if let Some(tx) = lock(&self.layout_differs).as_ref() {
                let _ = tx.send(id);
            }
        }
        if changed_addr {
            self.save_if_changed();
        }
    }

    async fn exchange(self: Arc<Self>, id: NodeId) {
        let ours = self.known_addresses();
        let options = CallOptions {
            timeout: self.config.ping_timeout,
            ..CallOptions::default()
        };
        match self
            .rpc
            .call_with(id, &ExchangePeers(ours), options, None)
            .await
        {
            Ok((theirs, _)) => self.learn(&theirs),
            Err(e) => tracing::debug!(peer = %id, "peer exchange failed: {e}"),
        }
    }

    /// Adds peers we did not know (at most [`MAX_PEERS`] in all); takes a
    /// gossiped address only for peers we cannot currently reach.
    fn learn(&self, list: &[(NodeId, SocketAddr)]) {
        let me = self.rpc.local_id();
        {
            let mut peers = lock(&self.peers);
            for (id, addr) in list.iter().take(MAX_PEERS) {
                if *id == me || addr.ip().is_unspecified() || addr.port() == 0 {
                    continue;
                }
                if !peers.contains_key(id) && peers.len() >= MAX_PEERS {
                    tracing::warn!(peer = %id, "peer list full ({MAX_PEERS}); not learned");
                    continue;
                }
                let p = peers.entry(*id).or_insert_with(|| {
                    tracing::info!(peer = %id, %addr, "learned of a new peer");
                    Peer::new()
                });
                if p.addr.is_none() || (!self.rpc.is_connected(*id) && p.addr != Some(*addr)) {
                    p.addr = Some(*addr);
                    p.next_dial = Instant::now();
                }
            }
        }
        self.save_if_changed();
    }

    fn known_addresses(&self) -> Vec<(NodeId, SocketAddr)> {
        let mut list: Vec<(NodeId, SocketAddr)> = lock(&self.peers)
            .iter()
            .filter_map(|(id, p)| p.addr.map(|a| (*id, a)))
            .collect();
        list.push((self.rpc.local_id(), lock(&self.hello).addr));
        list.sort();
        list
    }

    fn save_if_changed(&self) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let me = self.rpc.local_id();
        let current: Vec<(NodeId, SocketAddr)> = self
            .known_addresses()
            .into_iter()
            .filter(|(id, _)| *id != me)
            .collect();
        {
            let mut saved = lock(&self.saved);
            if *saved == current {
                return;
            }
            saved.clone_from(&current);
        }
        // One save at a time, and each writes the newest list: concurrent saves
        // must neither interleave in the temporary file nor land out of order.
        let saved = self.saved.clone();
        let saving = self.saving.clone();
        tokio::task::spawn_blocking(move || {
            let _one_at_a_time = lock(&saving);
            let newest = lock(&saved).clone();
            if let Err(e) = store.save(&newest) {
                tracing::warn!("saving the peer list: {e}");
            }
        });
    }

    /// Whether `id` is this node, or a connected peer that answered recently.
    pub fn is_up(&self, id: NodeId) -> bool {
        if id == self.rpc.local_id() {
            return true;
        }
        self.rpc.is_connected(id)
            && lock(&self.peers)
                .get(&id)
                .and_then(|p| p.last_seen)
                .is_some_and(|t| t.elapsed() < self.config.down_after)
    }

    /// The smoothed round-trip time to `id` (zero for this node).
    pub fn rtt(&self, id: NodeId) -> Option<Duration> {
        if id == self.rpc.local_id() {
            return Some(Duration::ZERO);
        }
        lock(&self.peers).get(&id).and_then(|p| p.rtt)
    }

    /// Every node known, this one included, sorted by id.
    pub fn status(&self) -> Vec<PeerStatus> {
        let me = self.hello();
        let mut out = vec![PeerStatus {
            id: self.rpc.local_id(),
            addr: Some(me.addr),
            hostname: Some(me.hostname),
            up: true,
            rtt: Some(Duration::ZERO),
            last_seen: Some(Duration::ZERO),
            layout_version: Some(me.layout_version),
        }];
        let peers = lock(&self.peers);
        for (id, p) in peers.iter() {
            out.push(PeerStatus {
                id: *id,
                addr: p.addr,
                hostname: p.hostname.clone(),
                up: self.rpc.is_connected(*id)
                    && p.last_seen
                        .is_some_and(|t| t.elapsed() < self.config.down_after),
                rtt: p.rtt,
                last_seen: p.last_seen.map(|t| t.elapsed()),
                layout_version: p.layout_version,
            });
        }
        out.sort_by_key(|s| s.id);
        out
    }

    /// The RPC endpoint.
    pub fn rpc(&self) -> &Arc<Rpc> {
        &self.rpc
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

#[cfg(test)]
mod format_fixtures;
#[cfg(test)]
mod tests;
