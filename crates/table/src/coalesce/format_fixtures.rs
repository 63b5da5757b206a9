//! The coalesced write message, pinned by the fixtures of `testdata/formats/`
//! (see [`hangar_net::fixtures`]). Entries travel encoded: their own formats
//! are pinned as stored types.

use hangar_net::fixtures::check_message;
use hangar_util::fixtures::Fixtures;
use serde_bytes::ByteBuf;

use super::{MergeReply, MergeRequest};

fn bytes(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

#[test]
fn merge_request_format_is_pinned() {
    let request = MergeRequest {
        entries: vec![
            ("objects".into(), bytes(b"\x01an object")),
            ("block_rows".into(), bytes(b"\x01a block row")),
            ("parts".into(), bytes(b"\x01a part")),
        ],
    };
    let reply: MergeReply = vec![
        Ok(Some(bytes(b"\x01the merged object"))),
        Ok(None),
        Err("no table parts".into()),
    ];
    check_message(
        &Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR")),
        "MergeRequest",
        &request,
        &reply,
    )
    .unwrap_or_else(|e| panic!("{e}"));
}
