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
use hangar_util::encoding::Versioned;
use libfuzzer_sys::fuzz_target;

fn check<T: Versioned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = T::decode(data) else { return };
    let encoded = value
        .encode()
        .unwrap_or_else(|e| panic!("{}: decoded value fails to encode: {e}", T::TYPE_NAME));
    let again = T::decode(&encoded)
        .unwrap_or_else(|e| panic!("{}: re-encoded value fails to decode: {e}", T::TYPE_NAME));
    assert_eq!(value, again, "{}: value changed through encode/decode", T::TYPE_NAME);
    let encoded_again = again.encode().expect("encode");
    assert_eq!(encoded, encoded_again, "{}: encoding is not stable", T::TYPE_NAME);
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
