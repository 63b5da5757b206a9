//! The seam between the RPC layer and the network: authenticated connections
//! carrying independent bidirectional streams. [`crate::quic`] implements it over
//! QUIC; [`crate::memory`] in memory, with latency, loss and partitions chosen
//! per link by tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hangar_util::NodeId;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Error, Priority};

/// The sending half of a stream.
pub trait SendHalf: AsyncWrite + Send + Unpin {
    /// Changes the priority of what is still to be sent.
    fn set_priority(&mut self, priority: Priority);
}

/// The receiving half of a stream.
pub trait RecvHalf: AsyncRead + Send + Unpin {}

impl<T: AsyncRead + Send + Unpin> RecvHalf for T {}

/// A bidirectional stream.
pub type Stream = (Box<dyn SendHalf>, Box<dyn RecvHalf>);

/// A stream the peer opened, and where its request should be handled.
pub struct AcceptedStream {
    /// The stream.
    pub stream: Stream,
    /// The runtime that should run the request's handler, if not the one that
    /// accepted it: the bulk lane's, for a stream of the bulk connection.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl From<Stream> for AcceptedStream {
    fn from(stream: Stream) -> Self {
        AcceptedStream {
            stream,
            runtime: None,
        }
    }
}

/// Opens and accepts connections to other nodes. Every connection it returns is
/// authenticated: the peer proved its node id and the cluster secret.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// This node's id.
    fn local_id(&self) -> NodeId;
    /// The address peers reach this node at.
    fn local_addr(&self) -> SocketAddr;
    /// Dials `addr`, expecting to find node `expected` there.
    async fn connect(
        &self,
        addr: SocketAddr,
        expected: NodeId,
    ) -> Result<Arc<dyn Connection>, Error>;
    /// The next connection a peer opened; `None` once the transport is closed.
    async fn accept(&self) -> Option<Arc<dyn Connection>>;
    /// Stops accepting and closes every connection.
    fn close(&self);
}

/// An authenticated connection to one peer.
#[async_trait]
pub trait Connection: Send + Sync + 'static {
    /// The peer's node id.
    fn peer_id(&self) -> NodeId;
    /// A random number the peer drew when it started: a new value means the peer
    /// restarted, and older connections to it are dead.
    fn peer_boot(&self) -> u64;
    /// The peer's current address (it may change while connected).
    fn remote_addr(&self) -> SocketAddr;
    /// The node that dialled this connection.
    fn initiator(&self) -> NodeId;
    /// The transport's smoothed round-trip time estimate.
    fn rtt(&self) -> Duration;
    /// Reports the round trip of a small request, less the time its handler
    /// took (transports that pace bulk data use it to see queueing delay).
    fn observe_round_trip(&self, _sample: Duration) {}
    /// Opens a stream whose data is sent with `priority`.
    async fn open_stream(&self, priority: Priority) -> Result<Stream, Error>;
    /// The next stream the peer opened.
    async fn accept_stream(&self) -> Result<AcceptedStream, Error>;
    /// Closes the connection.
    fn close(&self, reason: &str);
    /// Resolves once the connection is closed, by either side or by silence.
    async fn closed(&self);
    /// Whether the connection is closed.
    fn is_closed(&self) -> bool;
}
