//! Block rows: one row per block of a data id (a simple object's data or one
//! multipart part), so a huge object never rewrites a huge row. Rows live on
//! the nodes of their data id's partition; the reference they hold on their
//! block is a [`super::block_ref::BlockRef`], which lives with the block.

use hangar_db::Tree;
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

/// One block of a data id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRow {
    /// The data id this block belongs to.
    pub data_id: Uuid,
    /// Offset of the block within the data.
    pub offset: u64,
    /// Block hash.
    pub hash: Hash,
    /// Uncompressed size in bytes.
    pub size: u32,
    /// Set once the data was released (a tombstone: every replica must learn
    /// it before the row may be forgotten).
    #[serde(default)]
    pub deleted: bool,
    /// What the data was written for (`None` in rows written before owners
    /// were recorded).
    #[serde(default)]
    pub owner: Option<DataOwner>,
}

/// What a data id was written for, so that `repair versions` can tell data
/// that no version uses any more (left by a coordinator that died before
/// committing, or by a commit that reached no replica). Ordered field by
/// field, so that copies of a row that disagree merge to the same owner.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DataOwner {
    /// The object's bucket.
    pub bucket_id: Uuid,
    /// The object's key.
    pub key: String,
    /// The object version, or the multipart upload the part belongs to.
    pub version: Uuid,
    /// The part number, for the data of a multipart upload's part.
    pub part_number: Option<u32>,
    /// When the data began to be written (wall msec).
    pub written_at: u64,
    /// The HLC timestamp of the version (of the multipart upload, for a
    /// part), when known (`None` in rows written before it was recorded): a
    /// complete version newer than this one on a write quorum means the data
    /// can never be visible again.
    #[serde(default)]
    pub timestamp: Option<u64>,
}

impl Crdt for BlockRow {
    // A data id's block at an offset never changes; only its release does.
    // Its owner is recorded once, but copies can disagree: a row written
    // before owners were recorded has none, and nothing stops two copies
    // from naming different owners. The greatest owner wins (`None` is the
    // least, and an owner with its version's timestamp beats the same owner
    // without), so every replica keeps the same one whatever the order the
    // copies arrive in.
    fn merge(&mut self, other: &Self) {
        self.deleted |= other.deleted;
        if other.owner > self.owner {
            self.owner.clone_from(&other.owner);
        }
    }
}

impl Versioned for BlockRow {
    const TYPE_NAME: &'static str = "BlockRow";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for BlockRow {
    fn partition_key(&self) -> Hash {
        data_partition(&self.data_id)
    }
    fn sort_key(&self) -> Vec<u8> {
        self.offset.to_be_bytes().to_vec()
    }
}

impl BlockRow {
    /// The reference this row holds on its block.
    pub fn block_ref(&self) -> super::block_ref::BlockRef {
        super::block_ref::BlockRef {
            hash: self.hash,
            data_id: self.data_id,
            offset: self.offset,
            deleted: self.deleted,
        }
    }
}

/// Partition key of a data id's rows.
pub fn data_partition(data_id: &Uuid) -> Hash {
    Hash::of(data_id.as_bytes())
}

/// The block rows table.
#[derive(Debug, Default)]
pub struct BlockRowTable;

impl TableSchema for BlockRowTable {
    const TREE: Tree = Tree("block_rows");
    type Entry = BlockRow;

    fn is_tombstone(&self, row: &BlockRow) -> bool {
        row.deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::{check_merge_laws, merged};
    use proptest::prelude::*;

    /// Owners as rows record them: none (rows written before owners were
    /// recorded), or one of a few that differ in the version, in when the
    /// data began to be written, and in whether the version's timestamp is
    /// known (rows written before it was recorded).
    fn owner() -> impl Strategy<Value = Option<DataOwner>> {
        proptest::option::of((0u8..2, 0u64..2, proptest::option::of(0u64..2))).prop_map(|o| {
            o.map(|(version, written_at, timestamp)| DataOwner {
                bucket_id: Uuid([1; 16]),
                key: "k".into(),
                version: Uuid([version; 16]),
                part_number: None,
                written_at,
                timestamp,
            })
        })
    }

    /// Copies of one row (data id, offset) as replicas hold them: live or
    /// released, with any owner. A data id's block at an offset never changes
    /// (data ids are fresh for every write), so hash and size are the same in
    /// every copy.
    fn row() -> impl Strategy<Value = BlockRow> {
        (any::<bool>(), owner()).prop_map(|(deleted, owner)| BlockRow {
            data_id: Uuid([2; 16]),
            offset: 0,
            hash: Hash::of(b"block"),
            size: 4096,
            deleted,
            owner,
        })
    }

    /// The case the merge laws found: two copies of a row whose owners differ
    /// (here only in `written_at`) each kept its own owner when merged with
    /// the other, so replicas that received them in different orders never
    /// converged.
    #[test]
    fn differing_owners_merge_to_the_same_whatever_the_order() {
        let owner = |written_at| DataOwner {
            bucket_id: Uuid([1; 16]),
            key: "k".into(),
            version: Uuid([0; 16]),
            part_number: None,
            written_at,
            timestamp: None,
        };
        let row = |owner| BlockRow {
            data_id: Uuid([2; 16]),
            offset: 0,
            hash: Hash::of(b"block"),
            size: 4096,
            deleted: false,
            owner,
        };
        let a = row(Some(owner(0)));
        let b = row(Some(owner(1)));
        assert_eq!(merged(&a, &b), merged(&b, &a));
        assert_eq!(merged(&a, &b), b);
        // An owner is learnt from any copy that has one, and one with its
        // version's timestamp beats the same owner without.
        let none = row(None);
        assert_eq!(merged(&none, &a), a);
        assert_eq!(merged(&a, &none), a);
        let timed = row(Some(DataOwner {
            timestamp: Some(5),
            ..owner(0)
        }));
        assert_eq!(merged(&a, &timed), timed);
        assert_eq!(merged(&timed, &a), timed);
    }

    proptest! {
        #[test]
        fn block_row_merge_is_commutative_associative_idempotent(a in row(), b in row(), c in row()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }
}
