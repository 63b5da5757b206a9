//! The fuzz targets' harnesses (`fuzz/`), in the workspace so that the
//! committed corpora replay on the stable toolchain in every test run
//! (`tests/fuzz_corpora.rs`): each target of `fuzz/fuzz_targets/` is one line
//! that calls the function of the same name here, and the checks are the
//! same in both places.
//!
//! - [`stored_entries`]: bytes decoded as every stored type;
//! - [`admin_json`]: the admin API's request and JSON body parsing;
//! - [`s3_request`]: whole S3 requests through the S3 endpoint;
//! - [`rpc_stream`]: bytes a peer sends on a request stream, and the
//!   handshake's proof decoder.
//!
//! Each panics on a finding, as libFuzzer expects.

mod admin_json;
mod node;
mod rpc_stream;
mod s3_request;
mod s3_signing;
mod stored_entries;

pub use admin_json::admin_json;
pub use node::{with_node, FuzzNode, REBUILD_EVERY};
pub use rpc_stream::rpc_stream;
pub use s3_request::{s3_request, s3_response};
pub use stored_entries::stored_entries;
