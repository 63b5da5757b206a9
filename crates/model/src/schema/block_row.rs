//! Block rows: one row per block of a data id (a simple object's data or one
//! multipart part), so a huge object never rewrites a huge row. Inserting a row
//! takes a reference on its block in the same transaction.

use hangar_block::BlockStore;
use hangar_db::{Tree, Tx};
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
}

impl Crdt for BlockRow {
    // Rows are immutable: a data id's block at an offset never changes.
    fn merge(&mut self, _other: &Self) {}
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

/// Partition key of a data id's rows.
pub fn data_partition(data_id: &Uuid) -> Hash {
    Hash::of(data_id.as_bytes())
}

/// Schema of the block row table; its hook keeps block reference counts.
#[derive(Debug)]
pub struct BlockRowTable {
    /// The store whose counts the hook changes.
    pub blocks: BlockStore,
}

impl TableSchema for BlockRowTable {
    const TREE: Tree = Tree("block_rows");
    type Entry = BlockRow;

    fn updated(
        &self,
        tx: &mut Tx<'_>,
        old: Option<&BlockRow>,
        new: &BlockRow,
    ) -> hangar_table::Result<()> {
        if old.is_none() {
            self.blocks.incref(tx, &new.hash)?;
        }
        Ok(())
    }
}
