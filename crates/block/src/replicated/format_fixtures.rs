//! The block messages, pinned by the fixtures of `testdata/formats/` (see
//! [`hangar_net::fixtures`]).

use hangar_net::fixtures::check_message;
use hangar_util::fixtures::Fixtures;
use hangar_util::Hash;

use super::{GetBlock, PutBlock};

fn fixtures() -> Fixtures {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn put_block_format_is_pinned() {
    let request = PutBlock {
        hash: Hash([0x5a; 32]),
    };
    // The response is nothing: the block's bytes travel as the body.
    check_message(&fixtures(), "PutBlock", &request, &()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn get_block_format_is_pinned() {
    let request = GetBlock {
        hash: Hash([0xa5; 32]),
    };
    // The response is nothing: the block's bytes travel as the body.
    check_message(&fixtures(), "GetBlock", &request, &()).unwrap_or_else(|e| panic!("{e}"));
}
