//! Hangar's admin API: JSON over HTTP/1.1 with a bearer token, plus `GET /health`
//! and Prometheus `GET /metrics`.
//!
//! Endpoint names and JSON shapes follow Garage's admin API v2 where the concept
//! is the same (`/v2/CreateKey`, `/v2/GetBucketInfo?globalAlias=..`, camelCase
//! fields), so existing tooling can talk to Hangar.
//!
//! Every operation is one [`AdminRequest`] variant. The server parses HTTP into
//! it ([`AdminRequest::from_http`]), runs it with [`handle`] against the
//! [`hangar_model::ObjectService`] or the node's [`hangar_cluster::System`]
//! (status, membership, layout), and turns the [`AdminResponse`] or the
//! [`Error`] into HTTP in one place. Clients such as the `hangar` CLI build the
//! same requests and send their HTTP form ([`AdminRequest::to_http`]).

pub mod api;
mod buckets;
mod cluster;
mod error;
mod handler;
mod keys;
mod layout;
mod metrics;
mod router;
mod server;
mod workers;

pub use api::{AdminRequest, AdminResponse};
pub use error::{Error, ErrorBody, Result};
pub use handler::handle;
pub use router::HttpParts;
pub use server::{serve, MAX_BODY_BYTES};

#[cfg(test)]
mod tests;
