//! Block references: one per (block, data id, offset), stored with the block
//! (partitioned by its hash), so the nodes that hold a block count the data
//! that uses it. A reference is written with its block row and marked deleted
//! when the data is released; the hook turns both events into this node's
//! reference count, once each, however often they arrive.

use hangar_block::{BlockStore, NEW_REFERENCE_DELAY_MSEC};
use hangar_db::{Tree, Tx};
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

/// A use of a block by a data id at an offset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// The block.
    pub hash: Hash,
    /// The data using it.
    pub data_id: Uuid,
    /// Where in that data.
    pub offset: u64,
    /// Set once the data was released.
    pub deleted: bool,
}

impl Crdt for BlockRef {
    fn merge(&mut self, other: &Self) {
        self.deleted |= other.deleted;
    }
}

impl Versioned for BlockRef {
    const TYPE_NAME: &'static str = "BlockRef";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for BlockRef {
    fn partition_key(&self) -> Hash {
        self.hash
    }
    fn sort_key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(24);
        k.extend_from_slice(self.data_id.as_bytes());
        k.extend_from_slice(&self.offset.to_be_bytes());
        k
    }
}

/// The block reference table; its hook keeps this node's block reference
/// counts.
#[derive(Debug)]
pub struct BlockRefTable {
    /// The node's blocks, whose counts change with the references.
    pub blocks: BlockStore,
}

impl TableSchema for BlockRefTable {
    const TREE: Tree = Tree("block_refs");
    type Entry = BlockRef;

    fn is_tombstone(&self, r: &BlockRef) -> bool {
        r.deleted
    }

    fn updated(
        &self,
        tx: &mut Tx<'_>,
        old: Option<&BlockRef>,
        _incoming: &BlockRef,
        new: &BlockRef,
    ) -> hangar_table::Result<()> {
        match old {
            // A new live reference counts once; one first seen deleted never.
            // The block is looked for a little later: if this node lacks it
            // then (it missed the write, or just took over the partition), it
            // is fetched from another node.
            None if !new.deleted => {
                self.blocks.incref(tx, &new.hash)?;
                self.blocks
                    .queue_resync(tx, &new.hash, NEW_REFERENCE_DELAY_MSEC)?;
            }
            Some(o) if !o.deleted && new.deleted => self.blocks.decref(tx, &new.hash)?,
            _ => {}
        }
        Ok(())
    }

    fn dropped(&self, tx: &mut Tx<'_>, entry: &BlockRef) -> hangar_table::Result<()> {
        // This node no longer holds the block's partition: its count drops,
        // and the block file goes with the last reference.
        if !entry.deleted {
            self.blocks.decref(tx, &entry.hash)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::check_merge_laws;
    use proptest::prelude::*;

    /// Copies of one reference (block, data id, offset: all of it is its key)
    /// as replicas hold them: live, or deleted once the data was released.
    fn block_ref() -> impl Strategy<Value = BlockRef> {
        any::<bool>().prop_map(|deleted| BlockRef {
            hash: Hash::of(b"b"),
            data_id: Uuid([1; 16]),
            offset: 0,
            deleted,
        })
    }

    proptest! {
        #[test]
        fn block_ref_merge_is_commutative_associative_idempotent(a in block_ref(), b in block_ref(), c in block_ref()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }

    #[test]
    fn deletion_wins_whatever_the_order() {
        let live = BlockRef {
            hash: Hash::of(b"b"),
            data_id: Uuid([1; 16]),
            offset: 0,
            deleted: false,
        };
        let gone = BlockRef {
            deleted: true,
            ..live.clone()
        };
        let mut a = live.clone();
        a.merge(&gone);
        let mut b = gone.clone();
        b.merge(&live);
        assert_eq!(a, gone);
        assert_eq!(b, gone);
    }
}
