//! The table protocol's messages, pinned by the fixtures of
//! `testdata/formats/` (see [`hangar_net::fixtures`]). Every variant of
//! [`TableOp`] and [`TableReply`] is pinned through a list of all of them.
//! Entries travel encoded: their own formats are pinned as stored types.

use hangar_net::fixtures::{check_message, check_payload};
use hangar_util::fixtures::Fixtures;
use hangar_util::Hash;
use serde_bytes::ByteBuf;

use super::{BatchRequest, TableOp, TableReply, TableRequest};

fn fixtures() -> Fixtures {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
}

fn bytes(b: &[u8]) -> ByteBuf {
    ByteBuf::from(b.to_vec())
}

#[test]
fn table_request_format_is_pinned() {
    let request = TableRequest {
        table: "objects".into(),
        op: TableOp::Get {
            pk: Hash([0x11; 32]),
            sk: bytes(b"photos/cat.jpg"),
        },
    };
    let response = TableReply::Entry(Some(bytes(b"\x01an encoded entry")));
    check_message(&fixtures(), "TableRequest", &request, &response)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn every_table_op_is_pinned() {
    let ops = vec![
        TableOp::Update(vec![bytes(b"\x01entry one"), bytes(b"\x01entry two")]),
        TableOp::Merge(bytes(b"\x01an entry")),
        TableOp::Get {
            pk: Hash([0x21; 32]),
            sk: bytes(b"key"),
        },
        TableOp::Range {
            pk: Hash([0x22; 32]),
            start: bytes(b"a"),
            end: Some(bytes(b"m")),
            limit: 1000,
        },
        TableOp::RemoveIfEqual {
            pk: Hash([0x23; 32]),
            sk: bytes(b"key"),
            hash: Hash([0x24; 32]),
        },
        TableOp::Root { partition: 17 },
        TableOp::Children {
            partition: 18,
            path: bytes(&[0x7f]),
        },
        TableOp::Bucket {
            partition: 19,
            path: [0x7f, 0x80],
        },
    ];
    check_payload(&fixtures(), "TableOp", &ops).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn every_table_reply_is_pinned() {
    let replies = vec![
        TableReply::Updated,
        TableReply::Entry(Some(bytes(b"\x01an entry"))),
        TableReply::Entries(vec![bytes(b"\x01entry one"), bytes(b"\x01entry two")]),
        TableReply::Node(bytes(b"a summary node")),
        TableReply::Children(vec![(3, bytes(b"child three")), (250, bytes(b"child 250"))]),
    ];
    check_payload(&fixtures(), "TableReply", &replies).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn batch_request_format_is_pinned() {
    let request = BatchRequest {
        tables: vec![
            (
                "objects".into(),
                vec![bytes(b"\x01object one"), bytes(b"\x01object two")],
            ),
            ("block_rows".into(), vec![bytes(b"\x01a block row")]),
        ],
    };
    check_message(&fixtures(), "BatchRequest", &request, &()).unwrap_or_else(|e| panic!("{e}"));
}
