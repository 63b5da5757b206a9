//! The QUIC transport (quinn): one UDP socket per node, one connection per peer
//! pair, a stream per request.
//!
//! Connecting goes through three gates, each closing the connection on failure:
//! 1. TLS 1.3 with the cluster's application protocol name ([`RpcSecret`]): a
//!    node with another secret is refused before any certificate is sent.
//! 2. The peer's certificate key must give the node id the dialler expected, and
//!    every handshake signature must verify with that key.
//! 3. Both ends prove they hold the secret itself with a keyed hash over TLS
//!    keying material exported from this session, on the first stream.
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
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hangar_util::NodeId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;
use tokio::sync::{mpsc, Mutex, Semaphore};

use crate::identity::{id_of_certificate, NodeKey};
use crate::pacer::{PacedSend, Pacer};
use crate::secret::Role;
use crate::transport::{Connection, SendHalf, Stream, Transport};
use crate::{Error, Priority, RpcSecret};

/// Incoming handshakes processed at once; more are refused.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Incoming handshakes processed at once from one IP address.
pub const MAX_PENDING_HANDSHAKES_PER_IP: usize = 4;
/// Connection-level receive window.
const RECEIVE_WINDOW: u32 = 16 << 20;
/// Concurrent streams a peer may open.
const MAX_STREAMS: u32 = 1024;

const EXPORTER_LABEL: &[u8] = b"EXPORTER-hangar-rpc-secret-proof";

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
        }
    }
}

/// The QUIC implementation of [`Transport`].
pub struct QuicTransport {
    endpoint: quinn::Endpoint,
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

        let mut endpoint = quinn::Endpoint::server(server, config.bind_addr)
            .map_err(|e| Error::io(format!("binding {}", config.bind_addr), e))?;
        endpoint.set_default_client_config(client);
        let local = endpoint
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let (tx, rx) = mpsc::channel(64);
        let this = Arc::new(QuicTransport {
            endpoint,
            id: key.id(),
            boot: rand::random(),
            secret: secret.clone(),
            public_addr: config.public_addr.unwrap_or(local),
            handshake_timeout: config.handshake_timeout,
            accepted: Mutex::new(rx),
        });
        tokio::spawn(accept_loop(this.clone(), tx));
        Ok(this)
    }

    /// The UDP address actually bound.
    pub fn bound_addr(&self) -> Result<SocketAddr, Error> {
        self.endpoint
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))
    }

    async fn accept_one(&self, incoming: quinn::Incoming) -> Result<QuicConnection, Error> {
        let remote = incoming.remote_address();
        let conn = incoming
            .await
            .map_err(|e| Error::Handshake(format!("TLS with {remote}: {e}")))?;
        let peer = peer_id(&conn)?;
        let (mut send, mut recv) = conn
            .accept_bi()
            .await
            .map_err(|e| Error::Handshake(format!("{peer}: no secret proof: {e}")))?;
        let exporter = exporter(&conn)?;
        let (proof, peer_boot) = read_proof(&mut recv).await?;
        if proof != self.secret.proof(&exporter, Role::Client) {
            conn.close(1u32.into(), b"bad secret proof");
            return Err(Error::Handshake(format!(
                "{peer} at {remote} does not hold the cluster secret"
            )));
        }
        write_proof(
            &mut send,
            &self.secret.proof(&exporter, Role::Server),
            self.boot,
        )
        .await?;
        Ok(QuicConnection {
            pacer: pacer_for(&conn),
            conn,
            peer,
            peer_boot,
            initiator: peer,
        })
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
        let peer = peer_id(&conn)?;
        if peer != expected {
            conn.close(2u32.into(), b"unexpected node id");
            return Err(Error::Handshake(format!(
                "{addr} is node {peer}, not the expected {expected}"
            )));
        }
        let exporter = exporter(&conn)?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        write_proof(
            &mut send,
            &self.secret.proof(&exporter, Role::Client),
            self.boot,
        )
        .await?;
        let (proof, peer_boot) = read_proof(&mut recv).await?;
        if proof != self.secret.proof(&exporter, Role::Server) {
            conn.close(1u32.into(), b"bad secret proof");
            return Err(Error::Handshake(format!(
                "{peer} at {addr} does not hold the cluster secret"
            )));
        }
        Ok(QuicConnection {
            pacer: pacer_for(&conn),
            conn,
            peer,
            peer_boot,
            initiator: self.id,
        })
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
                Ok(Ok(conn)) => {
                    tracing::debug!(peer = %conn.peer, %remote, "peer connected");
                    let _ = tx.send(Arc::new(conn)).await;
                }
                Ok(Err(e)) => tracing::info!(%remote, "incoming connection refused: {e}"),
                Err(_) => tracing::info!(%remote, "incoming handshake timed out"),
            }
        });
    }
}

fn peer_id(conn: &quinn::Connection) -> Result<NodeId, Error> {
    let refuse = |why: &str| {
        conn.close(2u32.into(), why.as_bytes());
        Error::Handshake(format!("{}: {why}", conn.remote_address()))
    };
    let Some(identity) = conn.peer_identity() else {
        return Err(refuse("no certificate"));
    };
    let Ok(certs) = identity.downcast::<Vec<CertificateDer<'static>>>() else {
        return Err(refuse("unexpected identity type"));
    };
    certs
        .first()
        .and_then(id_of_certificate)
        .ok_or_else(|| refuse("unreadable certificate"))
}

fn exporter(conn: &quinn::Connection) -> Result<[u8; 32], Error> {
    let mut out = [0u8; 32];
    conn.export_keying_material(&mut out, EXPORTER_LABEL, b"")
        .map_err(|_| Error::Handshake("TLS keying material unavailable".into()))?;
    Ok(out)
}

async fn write_proof(
    send: &mut quinn::SendStream,
    proof: &blake3::Hash,
    boot: u64,
) -> Result<(), Error> {
    let mut msg = [0u8; 40];
    msg[..32].copy_from_slice(proof.as_bytes());
    msg[32..].copy_from_slice(&boot.to_be_bytes());
    send.write_all(&msg)
        .await
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))?;
    send.finish()
        .map_err(|e| Error::Handshake(format!("sending the secret proof: {e}")))
}

async fn read_proof(recv: &mut quinn::RecvStream) -> Result<(blake3::Hash, u64), Error> {
    let mut msg = [0u8; 40];
    recv.read_exact(&mut msg)
        .await
        .map_err(|e| Error::Handshake(format!("reading the secret proof: {e}")))?;
    let mut proof = [0u8; 32];
    proof.copy_from_slice(&msg[..32]);
    let mut boot = [0u8; 8];
    boot.copy_from_slice(&msg[32..]);
    Ok((blake3::Hash::from_bytes(proof), u64::from_be_bytes(boot)))
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

/// A pacer reading the round trip of `conn`.
fn pacer_for(conn: &quinn::Connection) -> Arc<Pacer> {
    let conn = conn.clone();
    Pacer::new(move || conn.rtt())
}

/// A QUIC connection to an authenticated peer.
struct QuicConnection {
    conn: quinn::Connection,
    peer: NodeId,
    peer_boot: u64,
    initiator: NodeId,
    /// Paces the data and background streams of this connection.
    pacer: Arc<Pacer>,
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
        let (send, recv) = self
            .conn
            .open_bi()
            .await
            .map_err(|e| Error::ConnectionLost(e.to_string()))?;
        let _ = send.set_priority(priority.rank());
        let send = PacedSend::new(send, self.pacer.clone(), priority);
        Ok((Box::new(send), Box::new(recv)))
    }

    async fn accept_stream(&self) -> Result<Stream, Error> {
        let (send, recv) = self
            .conn
            .accept_bi()
            .await
            .map_err(|e| Error::ConnectionLost(e.to_string()))?;
        // Unpaced until the request says its priority.
        let send = PacedSend::new(send, self.pacer.clone(), Priority::Metadata);
        Ok((Box::new(send), Box::new(recv)))
    }

    fn close(&self, reason: &str) {
        self.conn.close(0u32.into(), reason.as_bytes());
    }

    async fn closed(&self) {
        self.conn.closed().await;
    }

    fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }
}
