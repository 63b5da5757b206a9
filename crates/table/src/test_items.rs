//! A small entry type and tables of it, for the crate's tests.

use hangar_db::Tree;
use hangar_util::crdt::{Crdt, Lww};
use hangar_util::encoding::Versioned;
use hangar_util::Hash;
use serde::{Deserialize, Serialize};

use crate::{Entry, TableSchema};

/// An entry of group `group` (its partition key) named `name` (its sort key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Item {
    pub group: String,
    pub name: String,
    /// Last writer wins; tests use 0 for "deleted".
    pub value: Lww<u32>,
}

impl Crdt for Item {
    fn merge(&mut self, other: &Self) {
        self.value.merge(&other.value);
    }
}

impl Versioned for Item {
    const TYPE_NAME: &'static str = "Item";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for Item {
    fn partition_key(&self) -> Hash {
        Hash::of(self.group.as_bytes())
    }
    fn sort_key(&self) -> Vec<u8> {
        self.name.as_bytes().to_vec()
    }
}

/// A table of items; an item of value 0 is a tombstone.
pub(crate) struct Items;
impl TableSchema for Items {
    const TREE: Tree = Tree("items");
    type Entry = Item;

    fn is_tombstone(&self, item: &Item) -> bool {
        *item.value.get() == 0
    }
}

/// A second table of items.
pub(crate) struct Others;
impl TableSchema for Others {
    const TREE: Tree = Tree("others");
    type Entry = Item;
}

/// Item `name` of `group` with `value` written at `ts`.
pub(crate) fn item_in(group: &str, name: &str, ts: u64, value: u32) -> Item {
    Item {
        group: group.into(),
        name: name.into(),
        value: Lww::new(ts, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::check_merge_laws;
    use proptest::prelude::*;

    /// Copies of one item as replicas hold them: values (0 is a deletion)
    /// written at timestamps from a small range, so that different values
    /// often tie.
    fn item() -> impl Strategy<Value = Item> {
        (0u64..3, 0u32..3).prop_map(|(ts, value)| item_in("g", "n", ts, value))
    }

    proptest! {
        #[test]
        fn item_merge_is_commutative_associative_idempotent(a in item(), b in item(), c in item()) {
            check_merge_laws(&a, &b, &c).map_err(TestCaseError::fail)?;
        }
    }
}
