//! An in-memory network for tests and simulations: nodes are
//! [`MemoryTransport`]s on one [`MemoryNetwork`], and each link between two nodes
//! has a one-way latency, a packet loss rate and a state (up, silent, down).
//!
//! Streams behave like QUIC streams: data arrives in order within a stream, a
//! lost packet delays what follows it in the same stream only (it is
//! "retransmitted" after a retransmission timeout), and streams are independent.
//! A *silent* link swallows data without error, like a firewall dropping
//! packets; a *down* link closes the connections crossing it and refuses new
//! ones. Connecting checks the cluster secret and the expected node id as the
//! QUIC transport does.

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hangar_util::NodeId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::PollSender;

use crate::transport::{AcceptedStream, Connection, SendHalf, Stream, Transport};
use crate::{Error, Priority, RpcSecret};

/// Bytes per simulated packet, for loss.
const PACKET: usize = 1200;
/// Chunks in flight per stream direction before the writer waits.
const STREAM_WINDOW: usize = 64;

/// The state of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Data flows.
    Up,
    /// Data sent is silently dropped; connections stay open.
    Silent,
    /// Connections are closed and refused.
    Down,
}

/// The behaviour of a link between two nodes (both directions).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// One-way delay.
    pub latency: Duration,
    /// Probability that a packet is lost and must be retransmitted.
    pub loss: f64,
    /// Whether data flows.
    pub state: LinkState,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::ZERO,
            loss: 0.0,
            state: LinkState::Up,
        }
    }
}

impl Link {
    /// A link with `latency` each way.
    pub fn with_latency(latency: Duration) -> Self {
        Link {
            latency,
            ..Link::default()
        }
    }

    /// When data written now reaches the other end; `None` if it never does.
    fn delivery(&self, len: usize) -> Option<Duration> {
        match self.state {
            LinkState::Up => {}
            LinkState::Silent | LinkState::Down => return None,
        }
        let mut delay = self.latency;
        if self.loss > 0.0 {
            let packets = len.div_ceil(PACKET).max(1);
            let rto = (self.latency * 4).max(Duration::from_millis(10));
            for _ in 0..packets {
                if hangar_util::rng::chance(self.loss) {
                    delay += rto;
                    break;
                }
            }
        }
        Some(delay)
    }
}

struct Registered {
    id: NodeId,
    alpn: Vec<u8>,
    boot: u64,
    incoming: mpsc::Sender<Arc<dyn Connection>>,
}

#[derive(Default)]
struct NetState {
    nodes: HashMap<SocketAddr, Registered>,
    links: HashMap<(NodeId, NodeId), Link>,
    default_link: Link,
    next_port: u16,
    /// Close signals of open connections, by the pair they join.
    connections: Vec<((NodeId, NodeId), u64, watch::Sender<bool>)>,
    next_connection: u64,
}

fn pair(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

/// A simulated network.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<NetState>>,
}

impl MemoryNetwork {
    /// An empty network whose links are perfect until configured.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NetState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The behaviour of links not configured with [`MemoryNetwork::set_link`].
    pub fn set_default_link(&self, link: Link) {
        self.lock().default_link = link;
    }

    /// Sets the link between `a` and `b`. Setting it down closes the
    /// connections between them.
    pub fn set_link(&self, a: NodeId, b: NodeId, link: Link) {
        let mut state = self.lock();
        state.links.insert(pair(a, b), link);
        if link.state == LinkState::Down {
            state.connections.retain(|(p, _, close)| {
                if *p == pair(a, b) {
                    let _ = close.send(true);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// The link between `a` and `b`.
    pub fn link(&self, a: NodeId, b: NodeId) -> Link {
        let state = self.lock();
        state
            .links
            .get(&pair(a, b))
            .copied()
            .unwrap_or(state.default_link)
    }

    /// A node with id `id` and cluster secret `secret` joins the network.
    pub fn transport(&self, id: NodeId, secret: &RpcSecret) -> Arc<MemoryTransport> {
        self.transport_at(id, secret, None)
    }

    /// Like [`MemoryNetwork::transport`], at `addr` if given (a node
    /// restarting on the address it had).
    pub fn transport_at(
        &self,
        id: NodeId,
        secret: &RpcSecret,
        addr: Option<SocketAddr>,
    ) -> Arc<MemoryTransport> {
        let (tx, rx) = mpsc::channel(64);
        let boot = hangar_util::rng::random();
        let addr = {
            let mut state = self.lock();
            let addr = addr.unwrap_or_else(|| {
                state.next_port += 1;
                SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), state.next_port))
            });
            state.nodes.insert(
                addr,
                Registered {
                    id,
                    alpn: secret.alpn(),
                    boot,
                    incoming: tx,
                },
            );
            addr
        };
        Arc::new(MemoryTransport {
            network: self.clone(),
            id,
            boot,
            alpn: secret.alpn(),
            addr,
            incoming: tokio::sync::Mutex::new(rx),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// A node's endpoint on a [`MemoryNetwork`].
pub struct MemoryTransport {
    network: MemoryNetwork,
    id: NodeId,
    boot: u64,
    alpn: Vec<u8>,
    addr: SocketAddr,
    incoming: tokio::sync::Mutex<mpsc::Receiver<Arc<dyn Connection>>>,
    /// Set by `close`: a closed endpoint dials nothing more.
    closed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Transport for MemoryTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        expected: NodeId,
    ) -> Result<Arc<dyn Connection>, Error> {
        let unreachable = |reason: &str| Error::Connect {
            addr,
            reason: reason.into(),
        };
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(unreachable("this endpoint is closed"));
        }
        let (peer, peer_boot, accept) = {
            let state = self.network.lock();
            let node = state
                .nodes
                .get(&addr)
                .ok_or_else(|| unreachable("no node there"))?;
            (node.id, node.boot, node.incoming.clone())
        };
        let link = self.network.link(self.id, peer);
        let Some(one_way) = link.delivery(PACKET) else {
            return Err(unreachable("link down"));
        };
        // The TLS handshake and the secret proof: two round trips.
        tokio::time::sleep(one_way * 4).await;
        let peer_alpn = self
            .network
            .lock()
            .nodes
            .get(&addr)
            .map(|n| n.alpn.clone())
            .ok_or_else(|| unreachable("node left"))?;
        if peer_alpn != self.alpn {
            return Err(Error::Handshake(format!(
                "{addr}: no application protocol in common"
            )));
        }
        if peer != expected {
            return Err(Error::Handshake(format!(
                "{addr} is node {peer}, not the expected {expected}"
            )));
        }
        let (close_tx, close_rx) = watch::channel(false);
        let number = {
            let mut state = self.network.lock();
            state.next_connection += 1;
            let number = state.next_connection;
            state
                .connections
                .push((pair(self.id, peer), number, close_tx));
            number
        };
        let limbo: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>> = Arc::default();
        let (to_peer_tx, to_peer_rx) = mpsc::unbounded_channel();
        let (to_us_tx, to_us_rx) = mpsc::unbounded_channel();
        let ours = Arc::new(MemoryConnection {
            network: self.network.clone(),
            local: self.id,
            peer,
            peer_boot,
            peer_addr: addr,
            initiator: self.id,
            number,
            streams_out: to_peer_tx,
            streams_in: tokio::sync::Mutex::new(to_us_rx),
            closed: close_rx.clone(),
            limbo: limbo.clone(),
        });
        let theirs = Arc::new(MemoryConnection {
            network: self.network.clone(),
            local: peer,
            peer: self.id,
            peer_boot: self.boot,
            peer_addr: self.addr,
            initiator: self.id,
            number,
            streams_out: to_us_tx,
            streams_in: tokio::sync::Mutex::new(to_peer_rx),
            closed: close_rx,
            limbo,
        });
        accept
            .send(theirs)
            .await
            .map_err(|_| unreachable("node stopped"))?;
        Ok(ours)
    }

    async fn accept(&self) -> Option<Arc<dyn Connection>> {
        self.incoming.lock().await.recv().await
    }

    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut state = self.network.lock();
        // Only this endpoint's registration: a node restarted on the same
        // address has its own.
        if state
            .nodes
            .get(&self.addr)
            .is_some_and(|r| r.boot == self.boot)
        {
            state.nodes.remove(&self.addr);
        }
        let id = self.id;
        state.connections.retain(|((a, b), _, close)| {
            if *a == id || *b == id {
                let _ = close.send(true);
                false
            } else {
                true
            }
        });
    }
}

struct MemoryConnection {
    network: MemoryNetwork,
    local: NodeId,
    peer: NodeId,
    peer_boot: u64,
    peer_addr: SocketAddr,
    initiator: NodeId,
    number: u64,
    streams_out: mpsc::UnboundedSender<Stream>,
    streams_in: tokio::sync::Mutex<mpsc::UnboundedReceiver<Stream>>,
    closed: watch::Receiver<bool>,
    /// Senders of streams that lost data on a silent link: kept open so that
    /// the receiver waits for ever, as it would for data that never comes.
    limbo: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>>,
}

#[async_trait]
impl Connection for MemoryConnection {
    fn peer_id(&self) -> NodeId {
        self.peer
    }

    fn peer_boot(&self) -> u64 {
        self.peer_boot
    }

    fn remote_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    fn initiator(&self) -> NodeId {
        self.initiator
    }

    fn rtt(&self) -> Duration {
        self.network.link(self.local, self.peer).latency * 2
    }

    async fn open_stream(&self, _priority: Priority) -> Result<Stream, Error> {
        if self.is_closed() {
            return Err(Error::ConnectionLost("connection closed".into()));
        }
        let (send_out, recv_out) = pipe(self, self.local, self.peer);
        let (send_back, recv_back) = pipe(self, self.peer, self.local);
        self.streams_out
            .send((Box::new(send_back), Box::new(recv_out)))
            .map_err(|_| Error::ConnectionLost("connection closed".into()))?;
        Ok((Box::new(send_out), Box::new(recv_back)))
    }

    async fn accept_stream(&self) -> Result<AcceptedStream, Error> {
        let mut closed = self.closed.clone();
        let mut incoming = self.streams_in.lock().await;
        tokio::select! {
            s = incoming.recv() => s
                .map(AcceptedStream::from)
                .ok_or_else(|| Error::ConnectionLost("connection closed".into())),
            _ = closed.wait_for(|c| *c) => Err(Error::ConnectionLost("connection closed".into())),
        }
    }

    fn close(&self, _reason: &str) {
        let mut state = self.network.lock();
        state.connections.retain(|(_, number, close)| {
            let this = *number == self.number;
            if this {
                let _ = close.send(true);
            }
            !this
        });
    }

    async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|c| *c).await;
    }

    fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }
}

type Chunk = (Instant, Bytes);

fn pipe(conn: &MemoryConnection, from: NodeId, to: NodeId) -> (MemorySend, MemoryRecv) {
    let (tx, rx) = mpsc::channel(STREAM_WINDOW);
    (
        MemorySend {
            network: conn.network.clone(),
            from,
            to,
            keep: Some(tx.clone()),
            limbo: conn.limbo.clone(),
            tx: PollSender::new(tx),
            last: Instant::now(),
            closed: conn.closed.clone(),
        },
        MemoryRecv {
            rx,
            current: Bytes::new(),
            pending: None,
            sleep: None,
            closed: conn.closed.clone(),
        },
    )
}

struct MemorySend {
    network: MemoryNetwork,
    from: NodeId,
    to: NodeId,
    tx: PollSender<Chunk>,
    /// Moved to the connection's limbo when data is lost for good.
    keep: Option<mpsc::Sender<Chunk>>,
    limbo: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>>,
    last: Instant,
    closed: watch::Receiver<bool>,
}

impl AsyncWrite for MemorySend {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if *self.closed.borrow() {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        if self.keep.is_none() {
            // Earlier data was lost for good: nothing after it can arrive.
            return Poll::Ready(Ok(buf.len()));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let link = self.network.link(self.from, self.to);
        let Some(delay) = link.delivery(buf.len()) else {
            // Swallowed by a silent link; the reservation is released unused.
            let _ = self.tx.abort_send();
            if let Some(keep) = self.keep.take() {
                self.limbo
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(keep);
            }
            return Poll::Ready(Ok(buf.len()));
        };
        // In order within the stream: never before the previous chunk.
        let at = (Instant::now() + delay).max(self.last);
        self.last = at;
        let chunk = Bytes::copy_from_slice(buf);
        if self.tx.send_item((at, chunk)).is_err() {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.keep = None;
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}

impl SendHalf for MemorySend {
    fn set_priority(&mut self, _priority: Priority) {}
}

struct MemoryRecv {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    pending: Option<Chunk>,
    sleep: Option<Pin<Box<Sleep>>>,
    closed: watch::Receiver<bool>,
}

impl AsyncRead for MemoryRecv {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if *self.closed.borrow() {
                return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
            }
            if !self.current.is_empty() {
                let n = self.current.len().min(buf.remaining());
                let bytes = self.current.split_to(n);
                buf.put_slice(&bytes);
                return Poll::Ready(Ok(()));
            }
            if let Some((at, _)) = &self.pending {
                let at = *at;
                if Instant::now() < at {
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                    sleep.as_mut().reset(at);
                    ready!(sleep.as_mut().poll(cx));
                }
                self.sleep = None;
                if let Some((_, chunk)) = self.pending.take() {
                    self.current = chunk;
                }
                continue;
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(chunk) => self.pending = Some(chunk),
                None => return Poll::Ready(Ok(())),
            }
        }
    }
}
