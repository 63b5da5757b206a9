//! Arbitrary bytes decoded as every stored type with `Versioned::decode`.

use hangar_cluster::LayoutHistory;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::schema::block_ref::BlockRef;
use hangar_model::schema::block_row::BlockRow;
use hangar_model::schema::bucket::{Bucket, BucketAlias};
use hangar_model::schema::object::Object;
use hangar_model::schema::part::Part;
use hangar_util::encoding::{round_trips, Versioned};

/// Whether `data` decodes as a `T` (panics if it decodes but does not
/// round-trip).
fn check<T: Versioned + PartialEq + std::fmt::Debug>(data: &[u8]) -> bool {
    match round_trips::<T>(data) {
        Ok(decoded) => decoded,
        Err(e) => panic!("{e}"),
    }
}

/// Decodes `data` as `Object`, `AccessKey`, `BlockRow`, `Bucket`,
/// `BucketAlias`, `BlockRef`, `Part` and `LayoutHistory`. Panics unless
/// decoding is refused or the value re-encodes, decodes again to an equal
/// value and re-encodes to the same bytes. Returns how many types decoded it.
pub fn stored_entries(data: &[u8]) -> usize {
    [
        check::<Object>(data),
        check::<AccessKey>(data),
        check::<BlockRow>(data),
        check::<Bucket>(data),
        check::<BucketAlias>(data),
        check::<BlockRef>(data),
        check::<Part>(data),
        check::<LayoutHistory>(data),
    ]
    .into_iter()
    .filter(|d| *d)
    .count()
}
