//! [`Table`]: merge-on-write storage of one schema's entries.

use std::sync::Arc;

use hangar_cluster::{Layout, NodeId};
use hangar_db::{Db, Tree, Tx};
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::Hash;

use crate::{Error, Result};

/// An item stored in a table.
pub trait Entry: Crdt + Versioned + Clone + Send + Sync + 'static {
    /// The key that decides placement (hashed) and groups entries.
    fn partition_key(&self) -> Hash;
    /// The key that orders entries within one partition key.
    fn sort_key(&self) -> Vec<u8>;
}

/// A table's definition.
pub trait TableSchema: Send + Sync + 'static {
    /// The engine tree holding the entries.
    const TREE: Tree;
    /// The entry type.
    type Entry: Entry;

    /// Runs in the transaction that changes an entry from `old` to `new`.
    fn updated(
        &self,
        _tx: &mut Tx<'_>,
        _old: Option<&Self::Entry>,
        _new: &Self::Entry,
    ) -> Result<()> {
        Ok(())
    }
}

/// A table: cheap to clone, shares its schema and database.
pub struct Table<S: TableSchema> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    schema: S,
    db: Db,
    layout: Layout,
    local: NodeId,
}

impl<S: TableSchema> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table {
            inner: self.inner.clone(),
        }
    }
}

/// Storage key: partition-key hash, then sort key, so a partition's entries are
/// contiguous and ordered.
fn storage_key(pk: &Hash, sk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + sk.len());
    k.extend_from_slice(pk.as_bytes());
    k.extend_from_slice(sk);
    k
}

impl<S: TableSchema> Table<S> {
    /// A table over `db`, placed by `layout`, seen from node `local`.
    pub fn new(schema: S, db: Db, layout: Layout, local: NodeId) -> Self {
        Table {
            inner: Arc::new(Inner {
                schema,
                db,
                layout,
                local,
            }),
        }
    }

    /// The schema.
    pub fn schema(&self) -> &S {
        &self.inner.schema
    }

    /// The database, to group writes to several tables in one transaction.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    fn check_write_quorum(&self, pk: &Hash) -> Result<()> {
        let nodes = self.inner.layout.nodes_of(pk);
        let ok = usize::from(nodes.contains(&self.inner.local));
        let needed = self.inner.layout.params().write_quorum();
        if ok < needed {
            return Err(Error::Quorum(hangar_cluster::Error::Quorum { needed, ok }));
        }
        Ok(())
    }

    /// Merges `entry` into the table and waits for a write quorum.
    pub async fn insert(&self, entry: S::Entry) -> Result<()> {
        let this = self.clone();
        self.inner
            .db
            .transaction(move |tx| this.insert_in(tx, &entry).map(|_| ()))
            .await
    }

    /// Merges `entry` inside an open transaction, running the schema hook.
    /// Returns the merged entry.
    pub fn insert_in(&self, tx: &mut Tx<'_>, entry: &S::Entry) -> Result<S::Entry> {
        self.check_write_quorum(&entry.partition_key())?;
        let key = storage_key(&entry.partition_key(), &entry.sort_key());
        let old = match tx.get(S::TREE, &key)? {
            Some(bytes) => Some(S::Entry::decode(&bytes)?),
            None => None,
        };
        let mut new = entry.clone();
        if let Some(old) = &old {
            new = old.clone();
            new.merge(entry);
        }
        let bytes = new.encode()?;
        if old.as_ref().map(Versioned::encode).transpose()?.as_deref() == Some(&bytes[..]) {
            return Ok(new);
        }
        tx.insert(S::TREE, &key, &bytes)?;
        self.inner.schema.updated(tx, old.as_ref(), &new)?;
        Ok(new)
    }

    /// Removes an entry outright (for entries whose removal every replica has
    /// agreed on, and for node-local bookkeeping).
    pub fn remove_in(&self, tx: &mut Tx<'_>, pk: &Hash, sk: &[u8]) -> Result<()> {
        tx.remove(S::TREE, &storage_key(pk, sk))?;
        Ok(())
    }

    /// Reads one entry inside a transaction.
    pub fn get_in(&self, tx: &mut Tx<'_>, pk: &Hash, sk: &[u8]) -> Result<Option<S::Entry>> {
        match tx.get(S::TREE, &storage_key(pk, sk))? {
            Some(b) => Ok(Some(S::Entry::decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Reads one entry.
    pub fn get(&self, pk: &Hash, sk: &[u8]) -> Result<Option<S::Entry>> {
        match self.inner.db.get(S::TREE, &storage_key(pk, sk))? {
            Some(b) => Ok(Some(S::Entry::decode(&b)?)),
            None => Ok(None),
        }
    }

    /// Reads up to `limit` entries of partition key `pk` whose sort key is at least
    /// `start`, in sort-key order.
    pub fn range(&self, pk: &Hash, start: &[u8], limit: usize) -> Result<Vec<S::Entry>> {
        let from = storage_key(pk, start);
        let end = partition_end(pk);
        let rows = self.inner.db.range(S::TREE, &from, end.as_deref(), limit)?;
        rows.iter()
            .map(|(_, v)| S::Entry::decode(v).map_err(Error::from))
            .collect()
    }

    /// Like [`Table::range`], inside a transaction.
    pub fn range_in(
        &self,
        tx: &mut Tx<'_>,
        pk: &Hash,
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<S::Entry>> {
        let from = storage_key(pk, start);
        let end = partition_end(pk);
        let rows = tx.range(S::TREE, &from, end.as_deref(), limit)?;
        rows.iter()
            .map(|(_, v)| S::Entry::decode(v).map_err(Error::from))
            .collect()
    }
}

/// The first storage key after every key of partition key `pk` (None: no bound).
fn partition_end(pk: &Hash) -> Option<Vec<u8>> {
    let mut end = pk.as_bytes().to_vec();
    while let Some(last) = end.last_mut() {
        if *last == 0xff {
            end.pop();
        } else {
            *last += 1;
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_util::crdt::Lww;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Item {
        group: String,
        name: String,
        value: Lww<u32>,
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
    struct Items;
    impl TableSchema for Items {
        const TREE: Tree = Tree("items");
        type Entry = Item;
    }

    fn item(group: &str, name: &str, ts: u64, v: u32) -> Item {
        Item {
            group: group.into(),
            name: name.into(),
            value: Lww::new(ts, v),
        }
    }

    fn table() -> Table<Items> {
        let node = NodeId::from_public_key(b"n");
        Table::new(
            Items,
            Db::open_in_memory().expect("db"),
            Layout::single_node(node),
            node,
        )
    }

    #[tokio::test]
    async fn older_writes_never_overwrite_newer_ones() {
        let t = table();
        t.insert(item("g", "a", 5, 50)).await.expect("insert");
        t.insert(item("g", "a", 3, 30)).await.expect("insert");
        let got = t.get(&Hash::of(b"g"), b"a").expect("get").expect("present");
        assert_eq!(*got.value.get(), 50);
    }

    #[tokio::test]
    async fn range_stays_within_one_partition_key_in_order() {
        let t = table();
        for (g, n) in [("g", "b"), ("g", "a"), ("h", "a"), ("g", "c")] {
            t.insert(item(g, n, 1, 1)).await.expect("insert");
        }
        let names: Vec<_> = t
            .range(&Hash::of(b"g"), b"b", 10)
            .expect("range")
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[tokio::test]
    async fn a_layout_needing_other_nodes_refuses_writes() {
        let node = NodeId::from_public_key(b"n");
        let other = NodeId::from_public_key(b"other");
        let t = Table::new(
            Items,
            Db::open_in_memory().expect("db"),
            Layout::single_node(other),
            node,
        );
        assert!(matches!(
            t.insert(item("g", "a", 1, 1)).await,
            Err(Error::Quorum(_))
        ));
    }
}
