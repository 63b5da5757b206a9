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
/// committing, or by a commit that reached no replica).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    fn merge(&mut self, other: &Self) {
        self.deleted |= other.deleted;
        if self.owner.is_none() {
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
