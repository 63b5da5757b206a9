//! The QUIC transport (quinn): one UDP socket per node, one connection per peer
//! pair (and its bulk companion, see [`crate::lane`]), a stream per request.
//!
//! Connecting goes through three gates, each closing the connection on failure:
//! 1. TLS 1.3 with the cluster's application protocol name ([`RpcSecret`]): a
//!    node with another secret is refused before any certificate is sent.
//! 2. The peer's certificate key must give the node id the dialler expected, and
//!    every handshake signature must verify with that key.
//! 3. Both ends prove they hold the secret itself with a keyed hash over TLS
//!    keying material exported from this session, on the first stream.
//!
//! The proof also says what the connection is for: the main connection of the
//! pair, or the bulk connection that joins an existing main one
//! ([`crate::lane`]); that one must come from the same node.
//!
//! A client must first prove it receives at its address (a QUIC stateless
//! retry), so spoofed datagrams cannot hold handshake slots. Incoming
//! handshakes then run concurrently (at most [`MAX_PENDING_HANDSHAKES`], and
//! [`MAX_PENDING_HANDSHAKES_PER_IP`] from one address) and each has a deadline,
//! so garbage, truncated or stalled handshakes cost a task for a few seconds and
//! never block the listener. A client past TLS but before its secret proof can
//! make this node buffer up to the connection window (16 MiB) for the
//! handshake deadline; the per-address cap bounds that to 64 MiB per address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use hangar_util::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::sync::{mpsc, Mutex, Semaphore};

use crate::handshake::{exporter, link_id, peer_id, read_proof, write_proof, LinkId, Purpose};
use crate::identity::NodeKey;
pub use crate::lane::BulkCpuPriority;
use crate::lane::{BulkLink, LaneRuntime, BULK_CID_LEN, BULK_CID_TAG, FIRST_REDIAL, MAX_REDIAL};
use crate::pacer::{PacedSend, Pacer, Path};
use crate::secret::Role;
use crate::transport::{AcceptedStream, Connection, SendHalf, Stream, Transport};
use crate::{Error, Priority, RpcSecret};

/// Incoming handshakes processed at once; more are refused.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Incoming handshakes processed at once from one IP address.
pub const MAX_PENDING_HANDSHAKES_PER_IP: usize = 4;
/// Connection-level receive window.
const RECEIVE_WINDOW: u32 = 16 << 20;
/// Concurrent streams a peer may open.
const MAX_STREAMS: u32 = 1024;

/// Settings of the QUIC transport.
#[derive(Clone, Debug)]
pub struct QuicConfig {
    /// UDP address to listen on.
    pub bind_addr: SocketAddr,
    /// Address peers should use, if not the bound one (behind NAT, or bound to
    /// a wildcard address).
    pub public_addr: Option<SocketAddr>,
    /// Deadline for a whole handshake, TLS and secret proof.
    pub handshake_timeout: Duration,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
    /// Keep-alive packets are sent after this much silence.
    pub keep_alive: Duration,
    /// Congestion control.
    pub congestion: Congestion,
    /// CPU priority of the threads that carry bulk transfers.
    pub bulk_cpu_priority: BulkCpuPriority,
}

/// The congestion controller of node connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Congestion {
    /// CUBIC: backs off on every loss, like TCP.
    Cubic,
    /// BBR: paces at the measured bottleneck rate, and does not take random
    /// loss for congestion, which suits long lossy Internet paths.
    Bbr,
}

impl QuicConfig {
    /// Defaults for a node listening on `bind_addr`.
    pub fn new(bind_addr: SocketAddr) -> Self {
        QuicConfig {
            bind_addr,
            public_addr: None,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(2),
            congestion: Congestion::Bbr,
            bulk_cpu_priority: BulkCpuPriority::Idle,
        }
    }
}

/// The QUIC implementation of [`Transport`].
pub struct QuicTransport {
    /// This transport, for the tasks that keep bulk connections up.
    me: Weak<QuicTransport>,
    endpoint: quinn::Endpoint,
    /// Client settings of bulk connections (their first connection id is
    /// marked).
    bulk_client: quinn::ClientConfig,
    /// The threads that drive bulk connections.
    lane: LaneRuntime,
    /// Their CPU priority.
    bulk_cpu_priority: BulkCpuPriority,
    /// Main connections this node accepted, by link id, for their bulk
    /// connections to join.
    links: std::sync::Mutex<HashMap<LinkId, (NodeId, Weak<BulkLink>)>>,
    id: NodeId,
    boot: u64,
    secret: RpcSecret,
    public_addr: SocketAddr,
    handshake_timeout: Duration,
    accepted: Mutex<mpsc::Receiver<Arc<dyn Connection>>>,
}

fn transport_config(config: &QuicConfig) -> Result<Arc<quinn::TransportConfig>, Error> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(config.idle_timeout)
        .map_err(|e| Error::Config(format!("idle timeout: {e}")))?;
    t.max_idle_timeout(Some(idle));
    t.keep_alive_interval(Some(config.keep_alive));
    t.max_concurrent_bidi_streams(MAX_STREAMS.into());
    t.max_concurrent_uni_streams(0u32.into());
    t.stream_receive_window((4u32 << 20).into());
    t.receive_window(RECEIVE_WINDOW.into());
    t.send_window(16 << 20);
    match config.congestion {
        Congestion::Cubic => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::CubicConfig::default()));
        }
        Congestion::Bbr => {
            t.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
        }
    }
    Ok(Arc::new(t))
}

impl QuicTransport {
    /// Binds the UDP socket and starts accepting connections.
    pub fn bind(
        key: &NodeKey,
        secret: &RpcSecret,
        config: &QuicConfig,
    ) -> Result<Arc<Self>, Error> {
        let transport = transport_config(config)?;
        let server_tls = crate::tls::server_config(key, secret)?;
        let server_crypto = QuicServerConfig::try_from(server_tls)
            .map_err(|e| Error::Config(format!("QUIC server: {e}")))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server.transport_config(transport.clone());
        let client_tls = crate::tls::client_config(key, secret)?;
        let client_crypto = QuicClientConfig::try_from(client_tls)
            .map_err(|e| Error::Config(format!("QUIC client: {e}")))?;
        let mut client = quinn::ClientConfig::new(Arc::new(client_crypto));
        client.transport_config(transport);
        let mut bulk_client = client.clone();
        client.initial_dst_cid_provider(Arc::new(|| initial_cid(false)));
        bulk_client.initial_dst_cid_provider(Arc::new(|| initial_cid(true)));
        let lane = LaneRuntime::start(config.bulk_cpu_priority)?;

        let mut endpoint = quinn::Endpoint::server(server, config.bind_addr)
            .map_err(|e| Error::io(format!("binding {}", config.bind_addr), e))?;
        endpoint.set_default_client_config(client);
        let local = endpoint
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let (tx, rx) = mpsc::channel(64);
        let this = Arc::new_cyclic(|me| QuicTransport {
            me: me.clone(),
            endpoint,
            bulk_client,
            lane,
            bulk_cpu_priority: config.bulk_cpu_priority,
            links: std::sync::Mutex::default(),
            id: key.id(),
            boot: hangar_util::rng::random(),
            secret: secret.clone(),
            public_addr: config.public_addr.unwrap_or(local),
            handshake_timeout: config.handshake_timeout,
            accepted: Mutex::new(rx),
        });
        tokio::spawn(accept_loop(this.clone(), tx));
        Ok(this)
    }

    /// How many connections are open on this node's endpoint, main and bulk
    /// ones alike, including those still in their handshake.
    pub fn open_connections(&self) -> usize {
        self.endpoint.open_connections()
    }

    /// The UDP address actually bound.
    pub fn bound_addr(&self) -> Result<SocketAddr, Error> {
        self.endpoint
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))
    }

    /// Runs the handshake of an incoming connection: the new peer connection,
    /// or `None` for a bulk connection (which joins its main connection).
    async fn accept_one(&self, incoming: quinn::Incoming) -> Result<Option<QuicConnection>, Error> {
        let remote = incoming.remote_address();
        // A bulk connection is driven by the bulk lane from its first packet.
        let tagged_bulk = incoming.orig_dst_cid().starts_with(BULK_CID_TAG);
        let lane = tagged_bulk.then(|| self.lane.handle().enter());
        let connecting = incoming.accept();
        drop(lane);
        let conn = connecting
            .map_err(|e| Error::Handshake(format!("TLS with {remote}: {e}")))?
            .await
            .map_err(|e| Error::Handshake(format!("TLS with {remote}: {e}")))?;
        let peer = peer_id(&conn)?;
        let (mut send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| Error::Handshake(format!("{peer}: no secret proof: {e}")))?;
        let exporter = exporter(&conn)?;
        let (proof, peer_boot, purpose) = read_proof(&conn, &mut recv).await?;
        if proof != self.secret.proof(&exporter, Role::Client) {
            conn.close(1u32.into(), b"bad secret proof");
            return Err(Error::Handshake(format!(
                "{peer} at {remote} does not hold the cluster secret"
            )));
        }
        if tagged_bulk != matches!(purpose, Purpose::Bulk(_)) {
            // The runtime driving it was chosen by the tag: a main connection
            // on the bulk lane would run at idle priority.
            conn.close(3u32.into(), b"connection id and purpose disagree");
            return Err(Error::Handshake(format!(
                "{peer} at {remote}: connection id and stated purpose disagree"
            )));
        }
        let server_proof = self.secret.proof(&exporter, Role::Server);
        match purpose {
            Purpose::Bulk(link_id) => {
                let Some(link) = self.accepted_link(&link_id, peer) else {
                    conn.close(3u32.into(), b"no such link");
                    return Err(Error::Handshake(format!(
                        "{peer} at {remote}: bulk connection for no current link"
                    )));
                };
                write_proof(&mut send, &server_proof, self.boot, purpose).await?;
                if link.attach(conn, self.lane.handle()) {
                    tracing::debug!(%peer, %remote, "bulk connection up");
                }
                Ok(None)
            }
            Purpose::Main => {
                let link = BulkLink::new();
                self.register_link(link_id(&exporter), peer, &link);
                write_proof(&mut send, &server_proof, self.boot, purpose).await?;
                Ok(Some(self.connection(conn, peer, peer_boot, peer, link)))
            }
        }
    }

    /// The bulk link of the main connection from `peer` named `link_id`.
    fn accepted_link(&self, link_id: &LinkId, peer: NodeId) -> Option<Arc<BulkLink>> {
        let links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (owner, link) = links.get(link_id)?;
        (*owner == peer).then(|| link.upgrade()).flatten()
    }

    /// Lets the bulk connection of an accepted main connection join it.
    fn register_link(&self, link_id: LinkId, peer: NodeId, link: &Arc<BulkLink>) {
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        links.retain(|_, (_, l)| l.strong_count() > 0);
        links.insert(link_id, (peer, Arc::downgrade(link)));
    }

    /// Wraps an authenticated main connection. Its bulk connection closes with
    /// it.
    fn connection(
        &self,
        conn: quinn::Connection,
        peer: NodeId,
        peer_boot: u64,
        initiator: NodeId,
        bulk: Arc<BulkLink>,
    ) -> QuicConnection {
        let (main, link, gone) = (conn.clone(), Arc::downgrade(&bulk), bulk.gone());
        tokio::spawn(async move {
            tokio::select! {
                _ = main.closed() => {}
                _ = gone.cancelled() => return,
            }
            if let Some(link) = link.upgrade() {
                link.close("main connection closed");
            }
        });
        QuicConnection {
            pacer: pacer_for(&conn, &bulk, self.bulk_cpu_priority),
            conn,
            peer,
            peer_boot,
            initiator,
            bulk,
            lane: self.lane.handle().clone(),
        }
    }

    async fn connect_inner(
        &self,
        addr: SocketAddr,
        expected: NodeId,
    ) -> Result<QuicConnection, Error> {
        let connect_err = |reason: String| Error::Connect { addr, reason };
        let conn = self
            .endpoint
            .connect(addr, crate::tls::SERVER_NAME)
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let (peer_boot, exporter) = self
            .client_handshake(&conn, addr, expected, Purpose::Main)
            .await?;
        let link = BulkLink::new();
        self.keep_bulk_connection(conn.clone(), expected, link_id(&exporter), &link);
        Ok(self.connection(conn, expected, peer_boot, self.id, link))
    }

    /// After TLS: checks the peer's id and exchanges secret proofs saying
    /// `purpose`. Returns the peer's boot number and the session's keying
    /// material.
    async fn client_handshake(
        &self,
        conn: &quinn::Connection,
        addr: SocketAddr,
        expected: NodeId,
        purpose: Purpose,
    ) -> Result<(u64, [u8; 32]), Error> {
        let connect_err = |reason: String| Error::Connect { addr, reason };
        let peer = peer_id(conn)?;
        if peer != expected {
            conn.close(2u32.into(), b"unexpected node id");
            return Err(Error::Handshake(format!(
                "{addr} is node {peer}, not the expected {expected}"
            )));
        }
        let exporter = exporter(conn)?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        write_proof(
            &mut send,
            &self.secret.proof(&exporter, Role::Client),
            self.boot,
            purpose,
        )
        .await?;
        let (proof, peer_boot, answered) = read_proof(conn, &mut recv).await?;
        if proof != self.secret.proof(&exporter, Role::Server) || answered != purpose {
            conn.close(1u32.into(), b"bad secret proof");
            return Err(Error::Handshake(format!(
                "{peer} at {addr} does not hold the cluster secret"
            )));
        }
        Ok((peer_boot, exporter))
    }

    /// Dials a bulk connection joining the main connection named `link_id`.
    async fn dial_bulk(
        &self,
        addr: SocketAddr,
        expected: NodeId,
        link_id: LinkId,
    ) -> Result<quinn::Connection, Error> {
        let connect_err = |reason: String| Error::Connect { addr, reason };
        // Driven by the bulk lane from its first packet.
        let connecting = {
            let _lane = self.lane.handle().enter();
            self.endpoint
                .connect_with(self.bulk_client.clone(), addr, crate::tls::SERVER_NAME)
        };
        let conn = connecting
            .map_err(|e| connect_err(e.to_string()))?
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        self.client_handshake(&conn, addr, expected, Purpose::Bulk(link_id))
            .await?;
        Ok(conn)
    }

    /// Keeps a bulk connection next to the main connection `main` (which this
    /// node dialled) while it is open: dials one, and dials again after losing
    /// it, waiting longer after each failure.
    fn keep_bulk_connection(
        &self,
        main: quinn::Connection,
        peer: NodeId,
        link_id: LinkId,
        link: &Arc<BulkLink>,
    ) {
        let (me, link, gone) = (self.me.clone(), Arc::downgrade(link), link.gone());
        tokio::spawn(async move {
            let mut wait = FIRST_REDIAL;
            while main.close_reason().is_none() && !gone.is_cancelled() {
                let Some(this) = me.upgrade() else { return };
                let addr = main.remote_address();
                let dialled = tokio::time::timeout(
                    this.handshake_timeout,
                    this.dial_bulk(addr, peer, link_id),
                )
                .await;
                let lane = this.lane.handle().clone();
                drop(this);
                match dialled {
                    Ok(Ok(bulk)) => {
                        let Some(l) = link.upgrade() else {
                            bulk.close(0u32.into(), b"main connection gone");
                            return;
                        };
                        if !l.attach(bulk.clone(), &lane) {
                            return;
                        }
                        drop(l);
                        wait = FIRST_REDIAL;
                        tokio::select! {
                            _ = bulk.closed() => {}
                            _ = main.closed() => return,
                            _ = gone.cancelled() => return,
                        }
                        tracing::debug!(%peer, "bulk connection lost");
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, "bulk connection: {e}"),
                    Err(_) => tracing::debug!(%peer, "bulk connection: handshake timed out"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = main.closed() => return,
                    _ = gone.cancelled() => return,
                }
                wait = (wait * 2).min(MAX_REDIAL);
            }
        });
    }
}

async fn accept_loop(this: Arc<QuicTransport>, tx: mpsc::Sender<Arc<dyn Connection>>) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    let per_ip: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    while let Some(incoming) = this.endpoint.accept().await {
        let remote = incoming.remote_address();
        // A stateless retry first proves the client receives at its address,
        // so spoofed datagrams cannot hold handshake slots.
        if !incoming.remote_address_validated() {
            if let Err(e) = incoming.retry() {
                // Only possible for an already validated address: refuse.
                tracing::debug!(%remote, "stateless retry impossible: {e}");
                e.into_incoming().refuse();
            }
            continue;
        }
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many handshakes in progress; refused");
            incoming.refuse();
            continue;
        };
        {
            let mut counts = per_ip
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = counts.entry(remote.ip()).or_insert(0);
            if *count >= MAX_PENDING_HANDSHAKES_PER_IP {
                tracing::warn!(%remote, "too many handshakes in progress from this address; refused");
                incoming.refuse();
                continue;
            }
            *count += 1;
        }
        let this = this.clone();
        let tx = tx.clone();
        let per_ip = per_ip.clone();
        tokio::spawn(async move {
            let result =
                tokio::time::timeout(this.handshake_timeout, this.accept_one(incoming)).await;
            drop(permit);
            {
                let mut counts = per_ip
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(count) = counts.get_mut(&remote.ip()) {
                    *count -= 1;
                    if *count == 0 {
                        counts.remove(&remote.ip());
                    }
                }
            }
            match result {
                Ok(Ok(Some(conn))) => {
                    tracing::debug!(peer = %conn.peer, %remote, "peer connected");
                    let _ = tx.send(Arc::new(conn)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::info!(%remote, "incoming connection refused: {e}"),
                Err(_) => tracing::info!(%remote, "incoming handshake timed out"),
            }
        });
    }
}

#[async_trait]
impl Transport for QuicTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn local_addr(&self) -> SocketAddr {
        self.public_addr
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        expected: NodeId,
    ) -> Result<Arc<dyn Connection>, Error> {
        let conn = tokio::time::timeout(self.handshake_timeout, self.connect_inner(addr, expected))
            .await
            .map_err(|_| Error::Connect {
                addr,
                reason: "handshake timed out".into(),
            })??;
        Ok(Arc::new(conn))
    }

    async fn accept(&self) -> Option<Arc<dyn Connection>> {
        self.accepted.lock().await.recv().await
    }

    fn close(&self) {
        self.endpoint.close(0u32.into(), b"shutting down");
    }
}

/// A random first destination connection id, tagged as a bulk connection's
/// if `bulk` (and never so otherwise).
fn initial_cid(bulk: bool) -> quinn::ConnectionId {
    let mut cid = [0u8; BULK_CID_LEN];
    hangar_util::rng::fill(&mut cid[..]);
    if bulk {
        cid[..BULK_CID_TAG.len()].copy_from_slice(BULK_CID_TAG);
    } else if cid.starts_with(BULK_CID_TAG) {
        cid[0] ^= 0xff;
    }
    quinn::ConnectionId::new(&cid)
}

/// A pacer reading the round trip of the connection bulk data goes on, and
/// following the delay of small requests unless bulk data travels on an
/// idle-priority bulk lane.
fn pacer_for(
    main: &quinn::Connection,
    bulk: &Arc<BulkLink>,
    bulk_cpu_priority: BulkCpuPriority,
) -> Arc<Pacer> {
    let main = main.clone();
    let bulk = Arc::downgrade(bulk);
    Pacer::new(
        move || match bulk.upgrade().and_then(|b| b.carrier(&main)) {
            Some(carrier) => Path {
                rtt: carrier.rtt(),
                follow_requests: bulk_cpu_priority == BulkCpuPriority::Normal,
            },
            None => Path {
                rtt: main.rtt(),
                follow_requests: true,
            },
        },
    )
}

/// A QUIC connection to an authenticated peer.
struct QuicConnection {
    conn: quinn::Connection,
    peer: NodeId,
    peer_boot: u64,
    initiator: NodeId,
    /// Paces the data and background streams of this connection.
    pacer: Arc<Pacer>,
    /// The connection that carries data and background streams on a fast
    /// link, when up.
    bulk: Arc<BulkLink>,
    /// Where the requests that arrive on the bulk connection are handled.
    lane: tokio::runtime::Handle,
}

impl SendHalf for quinn::SendStream {
    fn set_priority(&mut self, priority: Priority) {
        let _ = quinn::SendStream::set_priority(self, priority.rank());
    }
}

#[async_trait]
impl Connection for QuicConnection {
    fn peer_id(&self) -> NodeId {
        self.peer
    }

    fn peer_boot(&self) -> u64 {
        self.peer_boot
    }

    fn remote_addr(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    fn initiator(&self) -> NodeId {
        self.initiator
    }

    fn rtt(&self) -> Duration {
        self.conn.rtt()
    }

    fn observe_round_trip(&self, sample: Duration) {
        self.pacer.observe_request(sample);
    }

    async fn open_stream(&self, priority: Priority) -> Result<Stream, Error> {
        let bulk = if priority.is_bulk() {
            self.bulk.carrier(&self.conn)
        } else {
            None
        };
        let opened = match bulk {
            // A bulk connection lost at this moment: the main one carries it.
            Some(bulk) => match bulk.open_bi().await {
                Ok(stream) => Ok(stream),
                Err(_) => self.conn.open_bi().await,
            },
            None => self.conn.open_bi().await,
        };
        let (send, recv) = opened.map_err(|e| Error::ConnectionLost(e.to_string()))?;
        let _ = send.set_priority(priority.rank());
        let send = PacedSend::new(send, self.pacer.clone(), priority);
        Ok((Box::new(send), Box::new(recv)))
    }

    async fn accept_stream(&self) -> Result<AcceptedStream, Error> {
        let mut bulk = self.bulk.streams.lock().await;
        let (stream, runtime) = tokio::select! {
            main = self.conn.accept_bi() => {
                (main.map_err(|e| Error::ConnectionLost(e.to_string()))?, None)
            }
            Some(stream) = bulk.recv() => (stream, Some(self.lane.clone())),
        };
        let (send, recv) = stream;
        // Unpaced until the request says its priority.
        let send = PacedSend::new(send, self.pacer.clone(), Priority::Metadata);
        Ok(AcceptedStream {
            stream: (Box::new(send), Box::new(recv)),
            runtime,
        })
    }

    fn close(&self, reason: &str) {
        self.bulk.close(reason);
        self.conn.close(0u32.into(), reason.as_bytes());
    }

    async fn closed(&self) {
        self.conn.closed().await;
    }

    fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }
}
