//! Entry points for the fuzz harnesses (`hangar_testkit::fuzzing`), built
//! only with `--cfg fuzzing` (which cargo-fuzz sets) or the feature
//! `testing`: the handshake's proof decoder,
//! and the header frame a request stream starts with, so that a target can
//! reach each endpoint's payload decoding.

use crate::message::{encode, RequestHeader};
use crate::Priority;

/// Decodes a secret-proof message as a node reads its peer's; `Err` says why
/// it is refused.
pub fn parse_proof(msg: &[u8]) -> Result<(), crate::Error> {
    crate::handshake::parse_proof(msg).map(|_| ())
}

/// The header frame (length prefix included) of a request to `endpoint`,
/// followed by a body if `body`.
pub fn request_header_frame(endpoint: &str, priority: Priority, body: bool) -> Vec<u8> {
    let header = RequestHeader {
        endpoint: endpoint.to_string(),
        priority,
        clock: 0,
        body,
    };
    let bytes = encode(&header).expect("a request header encodes");
    let mut frame = Vec::with_capacity(bytes.len() + 4);
    crate::frame::push(&mut frame, &bytes).expect("a small frame");
    frame
}
