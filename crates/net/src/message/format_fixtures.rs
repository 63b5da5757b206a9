//! The frame headers of every request and response, pinned by the fixtures of
//! `testdata/formats/` (see [`crate::fixtures`]).

use hangar_util::fixtures::Fixtures;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Priority, RemoteError, RequestHeader, ResponseHeader};
use crate::fixtures::check_payload;

fn assert_pinned<T: Serialize + DeserializeOwned>(name: &str, sample: &T) {
    let fixtures = Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"));
    check_payload(&fixtures, name, sample).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn request_header_format_is_pinned() {
    assert_pinned(
        "RequestHeader",
        &RequestHeader {
            endpoint: "table/op".into(),
            priority: Priority::Metadata,
            clock: 0x0123_4567_89ab_cdef,
            body: true,
        },
    );
}

#[test]
fn response_header_format_is_pinned() {
    assert_pinned(
        "ResponseHeader",
        &ResponseHeader {
            clock: 0x0fed_cba9_8765_4321,
            error: Some(RemoteError::Handler("disk full".into())),
            body: true,
            handled_us: 1_234_567,
        },
    );
}

#[test]
fn every_priority_is_pinned() {
    assert_pinned(
        "Priority",
        &vec![
            Priority::Background,
            Priority::Data,
            Priority::Metadata,
            Priority::Control,
        ],
    );
}

#[test]
fn every_remote_error_is_pinned() {
    assert_pinned(
        "RemoteError",
        &vec![
            RemoteError::NoHandler("block/put".into()),
            RemoteError::BadRequest("decoding: invalid type".into()),
            RemoteError::Handler("no such block".into()),
        ],
    );
}
