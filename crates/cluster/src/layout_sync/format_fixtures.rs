//! The layout messages, pinned by the fixtures of `testdata/formats/` (see
//! [`hangar_net::fixtures`]). Their payload, an encoded
//! [`LayoutHistory`](crate::LayoutHistory), is pinned as a stored type, so the
//! samples carry fixed bytes.

use hangar_net::fixtures::check_message;
use hangar_util::fixtures::Fixtures;
use serde_bytes::ByteBuf;

use super::{PullLayout, PushLayout};

fn fixtures() -> Fixtures {
    Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn pull_layout_format_is_pinned() {
    let history = ByteBuf::from(b"\x01an encoded layout history".to_vec());
    check_message(&fixtures(), "PullLayout", &PullLayout, &history)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn push_layout_format_is_pinned() {
    let request = PushLayout(ByteBuf::from(b"\x01an encoded layout history".to_vec()));
    check_message(&fixtures(), "PushLayout", &request, &()).unwrap_or_else(|e| panic!("{e}"));
}
