//! The RPC endpoint: typed request/response calls between nodes over a
//! [`Transport`], one stream per request, with optional streaming bodies.
//!
//! It keeps one live connection per peer. When two connections to the same peer
//! exist (both dialled at once, or the peer restarted), both ends settle on the
//! same one without talking: a connection from a restarted peer (new boot
//! number) or a redial from the same side replaces the old one; between two
//! simultaneous dials, the one opened by the lower node id wins.
//!
//! Every request and response carries the sender's hybrid logical clock, which
//! the receiver observes, so timestamps issued after a call are above those of
//! the caller.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use hangar_util::clock::Clock;
use hangar_util::NodeId;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use crate::body::{self, IncomingBody, OutgoingBody};
use crate::message::{decode, encode, RemoteError, RequestHeader, ResponseHeader};
use crate::transport::{Connection, Stream, Transport};
use crate::{frame, Error, Message, Priority};

/// Largest header frame.
const MAX_HEADER: usize = 64 << 10;
/// A peer must send a request's header and payload within this delay.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Clock values further ahead of our wall clock than this are not observed.
pub const MAX_CLOCK_LEAD_MSEC: u64 = 3_600_000;

/// Options of one call.
#[derive(Clone, Copy, Debug)]
pub struct CallOptions {
    /// Overrides the message type's priority.
    pub priority: Option<Priority>,
    /// Deadline for sending the request (and its body) and receiving the
    /// response header and payload.
    pub timeout: Duration,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            priority: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// What a handler answers: the response, and optionally a body streamed after it.
pub struct Reply<R> {
    /// The response.
    pub response: R,
    /// A body following the response.
    pub body: Option<OutgoingBody>,
}

impl<R> Reply<R> {
    /// A response without body.
    pub fn new(response: R) -> Self {
        Reply {
            response,
            body: None,
        }
    }

    /// A response followed by `body`.
    pub fn with_body(response: R, body: OutgoingBody) -> Self {
        Reply {
            response,
            body: Some(body),
        }
    }
}

/// A change in the set of connected peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// A connection to the peer is open.
    Connected {
        /// The peer.
        id: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// The last connection to the peer closed.
    Disconnected {
        /// The peer.
        id: NodeId,
    },
}

/// A connected peer.
#[derive(Clone, Debug)]
pub struct PeerConnection {
    /// The peer.
    pub id: NodeId,
    /// Its current address.
    pub addr: SocketAddr,
    /// The transport's round-trip time estimate.
    pub rtt: Duration,
}

type HandlerResult = Result<(Vec<u8>, Option<OutgoingBody>), RemoteError>;
type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;
type ErasedHandler =
    Arc<dyn Fn(NodeId, Bytes, Option<IncomingBody>) -> HandlerFuture + Send + Sync>;

/// The RPC endpoint of a node.
pub struct Rpc {
    transport: Arc<dyn Transport>,
    clock: Clock,
    handlers: RwLock<HashMap<&'static str, ErasedHandler>>,
    peers: Mutex<HashMap<NodeId, Arc<dyn Connection>>>,
    events: broadcast::Sender<PeerEvent>,
    dialer: std::sync::OnceLock<Dialer>,
}

/// Dials a peer that a call needs and has no connection to (see
/// [`Rpc::set_dialer`]); done when the attempt is over, whatever its outcome.
pub type Dialer = Arc<dyn Fn(NodeId) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Longest a call waits for the dial it triggered before it fails with
/// [`Error::NotConnected`].
const ON_DEMAND_DIAL_WAIT: Duration = Duration::from_secs(1);

impl Rpc {
    /// An endpoint over `transport`; starts accepting connections.
    pub fn new(transport: Arc<dyn Transport>, clock: Clock) -> Arc<Self> {
        let (events, _) = broadcast::channel(256);
        let rpc = Arc::new(Rpc {
            transport,
            clock,
            handlers: RwLock::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            events,
            dialer: std::sync::OnceLock::new(),
        });
        let weak = Arc::downgrade(&rpc);
        let transport = rpc.transport.clone();
        tokio::spawn(async move {
            while let Some(conn) = transport.accept().await {
                let Some(rpc) = weak.upgrade() else { break };
                rpc.add_connection(conn);
            }
        });
        rpc
    }

    /// This node's id.
    pub fn local_id(&self) -> NodeId {
        self.transport.local_id()
    }

    /// The address peers reach this node at.
    pub fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// The node's hybrid logical clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Subscribes to peer connections and disconnections.
    pub fn subscribe(&self) -> broadcast::Receiver<PeerEvent> {
        self.events.subscribe()
    }

    /// Handles requests of type `M` with `handler`.
    pub fn register<M, F, Fut>(&self, handler: F)
    where
        M: Message,
        F: Fn(NodeId, M) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<M::Response, String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.register_streaming::<M, _, _>(move |from, msg, _body| {
            let handler = handler.clone();
            async move { handler(from, msg).await.map(Reply::new) }
        });
    }

    /// Handles requests of type `M`, with bodies in either direction.
    pub fn register_streaming<M, F, Fut>(&self, handler: F)
    where
        M: Message,
        F: Fn(NodeId, M, Option<IncomingBody>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply<M::Response>, String>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: ErasedHandler = Arc::new(move |from, payload, body| {
            let handler = handler.clone();
            Box::pin(async move {
                let msg: M =
                    decode(&payload).map_err(|e| RemoteError::BadRequest(e.to_string()))?;
                let reply = handler(from, msg, body)
                    .await
                    .map_err(RemoteError::Handler)?;
                let payload =
                    encode(&reply.response).map_err(|e| RemoteError::Handler(e.to_string()))?;
                Ok((payload, reply.body))
            })
        });
        self.handlers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(M::ENDPOINT, erased);
    }

    fn handler(&self, endpoint: &str) -> Option<ErasedHandler> {
        self.handlers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(endpoint)
            .cloned()
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Arc<dyn Connection>>> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connects to node `expected` at `addr`, unless already connected.
    pub async fn connect(
        self: &Arc<Self>,
        addr: SocketAddr,
        expected: NodeId,
    ) -> Result<(), Error> {
        if expected == self.local_id() || self.is_connected(expected) {
            return Ok(());
        }
        let conn = self.transport.connect(addr, expected).await?;
        self.add_connection(conn);
        Ok(())
    }

    /// Whether a live connection to `id` exists.
    pub fn is_connected(&self, id: NodeId) -> bool {
        self.peers().get(&id).is_some_and(|c| !c.is_closed())
    }

    /// The connected peers.
    pub fn connected_peers(&self) -> Vec<PeerConnection> {
        let mut peers: Vec<PeerConnection> = self
            .peers()
            .values()
            .filter(|c| !c.is_closed())
            .map(|c| PeerConnection {
                id: c.peer_id(),
                addr: c.remote_addr(),
                rtt: c.rtt(),
            })
            .collect();
        peers.sort_by_key(|p| p.id);
        peers
    }

    /// The current address of the connection to `id`, if connected.
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.peers()
            .get(&id)
            .filter(|c| !c.is_closed())
            .map(|c| c.remote_addr())
    }

    /// Closes the connection to `id`, if any.
    pub fn disconnect(&self, id: NodeId) {
        if let Some(conn) = self.peers().remove(&id) {
            conn.close("disconnected");
        }
    }

    /// Stops the endpoint: closes every connection and the transport.
    pub fn shutdown(&self) {
        for (_, conn) in self.peers().drain() {
            conn.close("shutting down");
        }
        self.transport.close();
    }

    fn add_connection(self: &Arc<Self>, conn: Arc<dyn Connection>) {
        let id = conn.peer_id();
        {
            let mut peers = self.peers();
            if let Some(old) = peers.get(&id) {
                if !old.is_closed() {
                    let keep_new = old.peer_boot() != conn.peer_boot()
                        || old.initiator() == conn.initiator()
                        || conn.initiator() == self.local_id().min(id);
                    if !keep_new {
                        conn.close("duplicate connection");
                        return;
                    }
                    old.close("replaced by a newer connection");
                }
            }
            peers.insert(id, conn.clone());
        }
        let _ = self.events.send(PeerEvent::Connected {
            id,
            addr: conn.remote_addr(),
        });
        let rpc = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Ok(accepted) = conn.accept_stream().await {
                let Some(rpc) = rpc.upgrade() else { return };
                let serve = async move { rpc.serve(id, accepted.stream).await };
                match accepted.runtime {
                    Some(runtime) => runtime.spawn(serve),
                    None => tokio::spawn(serve),
                };
            }
            let Some(rpc) = rpc.upgrade() else { return };
            let removed = {
                let mut peers = rpc.peers();
                match peers.get(&id) {
                    Some(current) if Arc::ptr_eq(current, &conn) => peers.remove(&id).is_some(),
                    _ => false,
                }
            };
            if removed {
                tracing::debug!(peer = %id, "connection closed");
                let _ = rpc.events.send(PeerEvent::Disconnected { id });
            }
        });
    }

    fn observe(&self, ts: u64) {
        if ts > self.clock.wall_msec().saturating_add(MAX_CLOCK_LEAD_MSEC) {
            tracing::warn!(ts, "peer clock more than an hour ahead; not followed");
            return;
        }
        self.clock.observe(ts);
    }

    async fn serve(&self, from: NodeId, stream: Stream) {
        let (mut send, recv) = stream;
        let mut recv = buffered(recv);
        let request = async {
            let header: RequestHeader = decode(&frame::read(recv.as_mut(), MAX_HEADER).await?)?;
            let payload = frame::read(recv.as_mut(), frame::MAX_MESSAGE).await?;
            Ok::<_, Error>((header, payload))
        };
        let (header, payload) = match tokio::time::timeout(REQUEST_READ_TIMEOUT, request).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(peer = %from, "bad request stream: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %from, "request stream idle; dropped");
                return;
            }
        };
        self.observe(header.clock);
        send.set_priority(header.priority);
        let body = header.body.then(|| IncomingBody::remote(recv));
        let started = Instant::now();
        let result = match self.handler(&header.endpoint) {
            None => Err(RemoteError::NoHandler(header.endpoint)),
            Some(handler) => handler(from, payload, body).await,
        };
        let handled = started.elapsed();
        if let Err(e) = self.respond(send.as_mut(), result, handled).await {
            tracing::debug!(peer = %from, "sending a response: {e}");
        }
    }

    async fn respond(
        &self,
        send: &mut dyn crate::transport::SendHalf,
        result: HandlerResult,
        handled: Duration,
    ) -> Result<(), Error> {
        let (error, payload, body) = match result {
            Ok((payload, body)) => (None, payload, body),
            Err(e) => (Some(e), Vec::new(), None),
        };
        let header = ResponseHeader {
            clock: self.clock.now(),
            error,
            body: body.is_some(),
            handled_us: handled.as_micros().try_into().unwrap_or(u64::MAX),
        };
        let mut message = Vec::with_capacity(payload.len() + 64);
        frame::push(&mut message, &encode(&header)?)?;
        frame::push(&mut message, &payload)?;
        frame::write_all_progressing(send, &message).await?;
        if let Some(b) = body {
            body::send(send, b).await?;
        }
        frame::idle_deadline(async {
            send.shutdown()
                .await
                .map_err(|e| Error::ConnectionLost(e.to_string()))
        })
        .await
    }

    /// Installs what dials a peer a call needs and has no connection to (the
    /// membership, which knows addresses and paces dials): the call waits
    /// for the attempt, at most a second, then uses the new connection. The
    /// first dialer installed stays.
    pub fn set_dialer(&self, dialer: Dialer) {
        let _ = self.dialer.set(dialer);
    }

    /// The open connection to `to`, if any.
    fn open_connection(&self, to: NodeId) -> Option<Arc<dyn Connection>> {
        self.peers().get(&to).filter(|c| !c.is_closed()).cloned()
    }

    /// Sends `msg` to `to` and waits for the response.
    pub async fn call<M: Message>(&self, to: NodeId, msg: &M) -> Result<M::Response, Error> {
        self.call_with(to, msg, CallOptions::default(), None)
            .await
            .map(|(r, _)| r)
    }

    /// Sends `msg` (and `body`) to `to` with `options`; returns the response and
    /// the body that follows it, if any. A call to this node itself runs the
    /// handler directly.
    pub async fn call_with<M: Message>(
        &self,
        to: NodeId,
        msg: &M,
        options: CallOptions,
        body: Option<OutgoingBody>,
    ) -> Result<(M::Response, Option<IncomingBody>), Error> {
        let payload = encode(msg)?;
        let work = async {
            if to == self.local_id() {
                return self.call_local::<M>(payload, body).await;
            }
            let conn = match self.open_connection(to) {
                Some(c) => c,
                None => {
                    // A peer back from a cut or a restart: dial it now
                    // rather than fail until the next redial.
                    if let Some(dial) = self.dialer.get() {
                        let _ = tokio::time::timeout(ON_DEMAND_DIAL_WAIT, dial(to)).await;
                    }
                    self.open_connection(to).ok_or(Error::NotConnected(to))?
                }
            };
            let priority = options.priority.unwrap_or(M::PRIORITY);
            self.call_remote::<M>(conn.as_ref(), priority, payload, body)
                .await
        };
        tokio::time::timeout(options.timeout, work)
            .await
            .map_err(|_| Error::Timeout(options.timeout))?
    }

    async fn call_local<M: Message>(
        &self,
        payload: Vec<u8>,
        body: Option<OutgoingBody>,
    ) -> Result<(M::Response, Option<IncomingBody>), Error> {
        let handler = self
            .handler(M::ENDPOINT)
            .ok_or_else(|| Error::NoHandler(M::ENDPOINT.into()))?;
        let (payload, body) = handler(
            self.local_id(),
            payload.into(),
            body.map(IncomingBody::local),
        )
        .await
        .map_err(remote_error)?;
        Ok((decode(&payload)?, body.map(IncomingBody::local)))
    }

    async fn call_remote<M: Message>(
        &self,
        conn: &dyn Connection,
        priority: Priority,
        payload: Vec<u8>,
        body: Option<OutgoingBody>,
    ) -> Result<(M::Response, Option<IncomingBody>), Error> {
        let (mut send, recv) = conn.open_stream(priority).await?;
        let mut recv = buffered(recv);
        let header = RequestHeader {
            endpoint: M::ENDPOINT.to_string(),
            priority,
            clock: self.clock.now(),
            body: body.is_some(),
        };
        let mut message = Vec::with_capacity(payload.len() + 64);
        frame::push(&mut message, &encode(&header)?)?;
        frame::push(&mut message, &payload)?;
        let sent = Instant::now();
        send.write_all(&message)
            .await
            .map_err(|e| Error::ConnectionLost(e.to_string()))?;
        let has_body = body.is_some();
        if let Some(b) = body {
            body::send(send.as_mut(), b).await?;
        }
        send.shutdown()
            .await
            .map_err(|e| Error::ConnectionLost(e.to_string()))?;
        let header: ResponseHeader = decode(&frame::read(recv.as_mut(), MAX_HEADER).await?)?;
        if !has_body && !priority.is_bulk() {
            // What the caller waited beyond the handler's own work: the
            // delay small requests suffer, which bulk traffic is paced by.
            let handled = Duration::from_micros(header.handled_us);
            conn.observe_round_trip(sent.elapsed().saturating_sub(handled));
        }
        self.observe(header.clock);
        if let Some(e) = header.error {
            return Err(remote_error(e));
        }
        let payload = frame::read(recv.as_mut(), frame::MAX_MESSAGE).await?;
        let response = decode(&payload)?;
        Ok((response, header.body.then(|| IncomingBody::remote(recv))))
    }
}

/// Reads a stream through a small buffer: a header and a small payload then
/// take one read from the transport instead of four.
fn buffered(recv: Box<dyn crate::transport::RecvHalf>) -> Box<dyn crate::transport::RecvHalf> {
    Box::new(tokio::io::BufReader::with_capacity(16 << 10, recv))
}

fn remote_error(e: RemoteError) -> Error {
    match e {
        RemoteError::NoHandler(endpoint) => Error::NoHandler(endpoint),
        RemoteError::BadRequest(why) => Error::Protocol(why),
        RemoteError::Handler(why) => Error::Remote(why),
    }
}
