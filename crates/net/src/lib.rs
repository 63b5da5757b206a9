//! The network between Hangar nodes: identities, the cluster secret, an
//! encrypted multiplexed transport, and typed RPC over it.
//!
//! - [`NodeKey`]: a node's long-term Ed25519 key; its [`NodeId`] is the hash of
//!   the public key.
//! - [`RpcSecret`]: the cluster secret. Only nodes holding it can connect.
//! - [`Transport`]: authenticated connections carrying independent streams;
//!   [`quic::QuicTransport`] over QUIC, [`memory::MemoryNetwork`] in memory for
//!   tests, with per-link latency, loss and partitions.
//! - [`Rpc`]: typed requests ([`Message`]) with priorities, deadlines, streaming
//!   bodies and the hybrid logical clock carried on every call.
//! - [`NODE_PROTOCOL`]: the version of everything nodes exchange; [`fixtures`]
//!   pins the encoding of each message to it in tests.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use hangar_net::{memory::MemoryNetwork, Message, NodeKey, Priority, Rpc, RpcSecret};
//! use hangar_util::clock::Clock;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Echo(String);
//! impl Message for Echo {
//!     const ENDPOINT: &'static str = "example/echo";
//!     const PRIORITY: Priority = Priority::Control;
//!     type Response = String;
//! }
//!
//! let net = MemoryNetwork::new();
//! let secret = RpcSecret::generate();
//! let (a, b) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
//! let rpc_a = Rpc::new(net.transport(a.id(), &secret), Clock::system());
//! let rpc_b = Rpc::new(net.transport(b.id(), &secret), Clock::system());
//! rpc_b.register(|_from, Echo(s): Echo| async move { Ok(s) });
//! rpc_a.connect(rpc_b.local_addr(), b.id()).await.unwrap();
//! assert_eq!(rpc_a.call(b.id(), &Echo("hi".into())).await.unwrap(), "hi");
//! # });
//! ```

mod body;
mod error;
pub mod fixtures;
mod frame;
#[cfg(any(fuzzing, feature = "testing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handshake;
mod identity;
mod lane;
mod lane_guard;
pub mod memory;
mod message;
mod pacer;
pub mod quic;
mod rpc;
mod secret;
mod tls;
mod transport;

pub use body::{body_from_chunks, IncomingBody, OutgoingBody};
pub use error::Error;
pub use handshake::NODE_PROTOCOL;
pub use hangar_util::NodeId;
pub use identity::{NodeKey, KEY_FILE};
pub use message::{Message, Priority};
pub use rpc::{CallOptions, Dialer, PeerConnection, PeerEvent, Reply, Rpc, MAX_CLOCK_LEAD_MSEC};
pub use secret::RpcSecret;
pub use transport::{AcceptedStream, Connection, RecvHalf, SendHalf, Stream, Transport};

#[cfg(test)]
mod tests;
