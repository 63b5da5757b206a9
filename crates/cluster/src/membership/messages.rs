//! Messages nodes exchange to know each other.

use std::net::SocketAddr;

use hangar_net::{Message, NodeId, Priority};
use hangar_util::Hash;
use serde::{Deserialize, Serialize};

/// What a node says of itself on every ping and pong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHello {
    /// The address peers should dial.
    pub addr: SocketAddr,
    /// The machine's host name.
    pub hostname: String,
    /// The node's newest applied layout version.
    pub layout_version: u64,
    /// Digest of the node's whole layout state (applied and staged); peers
    /// with another digest exchange layouts.
    pub layout_digest: Hash,
}

/// Liveness probe; answered with the responder's [`NodeHello`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ping(pub NodeHello);

impl Message for Ping {
    const ENDPOINT: &'static str = "cluster/ping";
    const PRIORITY: Priority = Priority::Control;
    type Response = NodeHello;
}

/// The peers a node knows (id and address), answered with the responder's.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExchangePeers(pub Vec<(NodeId, SocketAddr)>);

impl Message for ExchangePeers {
    const ENDPOINT: &'static str = "cluster/peers";
    const PRIORITY: Priority = Priority::Control;
    type Response = Vec<(NodeId, SocketAddr)>;
}
