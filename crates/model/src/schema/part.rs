//! Parts of multipart uploads.

use hangar_db::Tree;
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;

/// One uploaded part. A part number uploaded twice keeps the later upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The multipart upload (its object version id).
    pub upload_id: Uuid,
    /// Part number, 1..=10000.
    pub part_number: u32,
    /// When this part upload finished (HLC).
    pub timestamp: u64,
    /// Where the part's bytes are.
    pub data_id: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// MD5 of the part, hex.
    pub etag: String,
    /// Checksum sent with the part, if any.
    pub checksum: Option<Checksum>,
}

impl Crdt for Part {
    fn merge(&mut self, other: &Self) {
        if (other.timestamp, other.data_id) > (self.timestamp, self.data_id) {
            *self = other.clone();
        }
    }
}

impl Versioned for Part {
    const TYPE_NAME: &'static str = "Part";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for Part {
    fn partition_key(&self) -> Hash {
        Hash::of(self.upload_id.as_bytes())
    }
    fn sort_key(&self) -> Vec<u8> {
        self.part_number.to_be_bytes().to_vec()
    }
}

/// Schema of the part table; replaced parts' data is released by the caller.
#[derive(Debug, Default)]
pub struct PartTable;

impl TableSchema for PartTable {
    const TREE: Tree = Tree("parts");
    type Entry = Part;

    fn updated(
        &self,
        tx: &mut hangar_db::Tx<'_>,
        old: Option<&Part>,
        incoming: &Part,
        new: &Part,
    ) -> hangar_table::Result<()> {
        // The data of a part replaced by a re-upload, or of a re-upload that
        // lost to a newer one, is no longer used.
        for loser in old.into_iter().chain([incoming]) {
            if loser.data_id != new.data_id {
                crate::release::queue(tx, &loser.data_id)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumAlgorithm;
    use hangar_util::crdt::check_merge_laws;
    use proptest::prelude::*;

    /// Uploads of one part number of one upload, as they race: timestamps
    /// from a small range so that they often tie, and a few data ids, so that
    /// equal timestamps meet different uploads. Every upload of a part writes
    /// a fresh data id, so the data id decides what was uploaded (size, ETag,
    /// checksum).
    fn part() -> impl Strategy<Value = Part> {
        (0u64..3, 0u8..3).prop_map(|(timestamp, d)| Part {
            upload_id: Uuid([7; 16]),
            part_number: 1,
            timestamp,
            data_id: Uuid([d; 16]),
            size: u64::from(d) * 100,
            etag: format!("{d:032x}"),
            checksum: (d % 2 == 1).then(|| Checksum {
                algorithm: ChecksumAlgorithm::Crc32,
                value: format!("crc{d}"),
            }),
        })
    }

    proptest! {
        #[test]
        fn part_merge_is_commutative_associative_idempotent(a in part(), b in part(), c in part()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }
}
