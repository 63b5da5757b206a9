//! Arbitrary bytes decoded as every stored type with `Versioned::decode`.
//!
//! Checks: decoding never panics; a value that decodes re-encodes without error,
//! decodes again to an equal value, and re-encodes to the same bytes.
#![no_main]

use hangar_cluster::LayoutHistory;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::schema::block_ref::BlockRef;
use hangar_model::schema::block_row::BlockRow;
use hangar_model::schema::bucket::{Bucket, BucketAlias};
use hangar_model::schema::object::Object;
use hangar_model::schema::part::Part;
use hangar_util::encoding::{round_trips, Versioned};
use libfuzzer_sys::fuzz_target;

fn check<T: Versioned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Err(e) = round_trips::<T>(data) {
        panic!("{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Object>(data);
    check::<AccessKey>(data);
    check::<BlockRow>(data);
    check::<Bucket>(data);
    check::<BucketAlias>(data);
    check::<BlockRef>(data);
    check::<Part>(data);
    check::<LayoutHistory>(data);
});
