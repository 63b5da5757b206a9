//! Typed messages: each request type names its endpoint, its default priority
//! and its response type. Requests and responses travel as MessagePack.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How urgent a request is. Streams of higher priority are sent first when a
/// link is busy, so repair traffic never delays a user's request and nothing
/// delays a ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// Resync, scrub, rebalancing.
    Background = 0,
    /// Block data of user requests.
    Data = 1,
    /// Metadata reads and writes of user requests.
    Metadata = 2,
    /// Pings, peer lists, layout.
    Control = 3,
}

impl Priority {
    /// The value given to the transport's stream scheduler (higher goes first).
    pub fn rank(self) -> i32 {
        self as i32
    }

    /// Data and background traffic: paced so that it does not delay the rest.
    pub fn is_bulk(self) -> bool {
        matches!(self, Priority::Data | Priority::Background)
    }
}

/// A request type.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Name of the endpoint that handles it; unique in the cluster protocol.
    const ENDPOINT: &'static str;
    /// Priority used unless a call says otherwise.
    const PRIORITY: Priority;
    /// What the handler answers.
    type Response: Serialize + DeserializeOwned + Send + 'static;
}

/// First frame of a request stream.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RequestHeader {
    pub endpoint: String,
    pub priority: Priority,
    /// The caller's hybrid logical clock.
    pub clock: u64,
    /// A body follows the payload.
    pub body: bool,
}

/// First frame of a response stream.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ResponseHeader {
    /// The responder's hybrid logical clock.
    pub clock: u64,
    /// `None` on success (the payload follows), else why the request failed.
    pub error: Option<RemoteError>,
    /// A body follows the payload.
    pub body: bool,
    /// Microseconds the handler took: the caller subtracts them from the round
    /// trip to see the time spent in networks, queues and schedulers.
    pub handled_us: u64,
}

/// A failure reported by the remote end.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RemoteError {
    /// No handler is registered for the endpoint.
    NoHandler(String),
    /// The request did not decode.
    BadRequest(String),
    /// The handler failed.
    Handler(String),
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, crate::Error> {
    rmp_serde::to_vec(value).map_err(|e| crate::Error::Protocol(format!("encoding: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, crate::Error> {
    rmp_serde::from_slice(bytes).map_err(|e| crate::Error::Protocol(format!("decoding: {e}")))
}

#[cfg(test)]
mod format_fixtures;
