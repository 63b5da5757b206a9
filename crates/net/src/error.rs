//! Errors of the transport and RPC layer.

use hangar_util::NodeId;

/// Errors of the `net` crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No connection to the node is open.
    #[error("not connected to node {0}")]
    NotConnected(NodeId),
    /// The peer could not be reached or the connection was lost.
    #[error("connection to {addr} failed: {reason}")]
    Connect {
        /// Address dialled.
        addr: std::net::SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The peer failed authentication: wrong secret, wrong identity, or a
    /// handshake that did not follow the protocol.
    #[error("handshake refused: {0}")]
    Handshake(String),
    /// The connection or stream broke.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The call did not complete in time.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A frame could not be read, was too large, or did not decode.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The peer has no handler for the endpoint.
    #[error("no handler for endpoint {0}")]
    NoHandler(String),
    /// The remote handler returned an error.
    #[error("remote error: {0}")]
    Remote(String),
    /// Reading or writing local files (the node key).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A bad configuration value (secret, key).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
