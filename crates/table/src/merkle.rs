//! A summary of each (table, partition) that two replicas compare to find what
//! differs between them without sending their entries.
//!
//! Every entry contributes `H(key, value)` (BLAKE3 of its storage key and
//! encoded value). Entries are spread over a fixed tree by the hash of their
//! key: the root covers the partition, each of its 256 children covers the
//! entries whose key hash starts with one byte, and each of their 256 children
//! (the buckets) the entries whose key hash starts with two given bytes. A
//! node's value is the XOR of the contributions beneath it, so a write updates
//! the three nodes above its entry in place, in the transaction that writes the
//! entry, by XOR-ing out the old contribution and in the new one. Equal sets of
//! entries give equal nodes; replicas whose roots are equal are in sync, which
//! one round trip shows. An index row per entry, ordered by key hash, lists a
//! bucket's entries.
//!
//! The XOR of hashes tells accidental differences apart with certainty for
//! all practical purposes; it is not meant to resist a party choosing entries
//! to make two different sets collide.

use hangar_db::{Tree, Tx};
use hangar_util::Hash;

use crate::Result;

/// The tree holding every table's summaries and indexes.
pub(crate) const MERKLE_TREE: Tree = Tree("merkle");

/// A node's value; all zero for an empty subtree.
pub(crate) type NodeHash = [u8; 32];

const EMPTY: NodeHash = [0; 32];
const NODES: u8 = 0;
const INDEX: u8 = 1;

/// Keys of one table's summary rows.
#[derive(Clone, Copy)]
pub(crate) struct Summary {
    table: &'static str,
}

impl Summary {
    pub(crate) fn new(table: &'static str) -> Self {
        Summary { table }
    }

    fn prefix(&self, kind: u8, partition: u8) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.table.len() + 40);
        k.extend_from_slice(self.table.as_bytes());
        k.push(0);
        k.push(kind);
        k.push(partition);
        k
    }

    /// Key of the tree node above the entries whose key hash starts with
    /// `path` (0, 1 or 2 bytes) in `partition`.
    fn node_key(&self, partition: u8, path: &[u8]) -> Vec<u8> {
        let mut k = self.prefix(NODES, partition);
        k.push(path.len() as u8);
        k.extend_from_slice(path);
        k
    }

    fn index_key(&self, partition: u8, key_hash: &Hash) -> Vec<u8> {
        let mut k = self.prefix(INDEX, partition);
        k.extend_from_slice(key_hash.as_bytes());
        k
    }

    /// Records that the entry at `storage_key` changed from `old` to `new`
    /// (encoded values; `None`: absent).
    pub(crate) fn update(
        &self,
        tx: &mut Tx<'_>,
        storage_key: &[u8],
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<()> {
        let mut delta = EMPTY;
        for value in [old, new].into_iter().flatten() {
            xor(&mut delta, &contribution(storage_key, value));
        }
        if delta == EMPTY {
            return Ok(());
        }
        let partition = storage_key.first().copied().unwrap_or(0);
        let key_hash = Hash::of(storage_key);
        match (old, new) {
            (None, Some(_)) => tx.insert(
                MERKLE_TREE,
                &self.index_key(partition, &key_hash),
                storage_key,
            )?,
            (Some(_), None) => tx.remove(MERKLE_TREE, &self.index_key(partition, &key_hash))?,
            _ => {}
        }
        for depth in 0..=2 {
            let key = self.node_key(partition, &key_hash.as_bytes()[..depth]);
            let mut node = read_node(tx.get(MERKLE_TREE, &key)?);
            xor(&mut node, &delta);
            if node == EMPTY {
                tx.remove(MERKLE_TREE, &key)?;
            } else {
                tx.insert(MERKLE_TREE, &key, &node)?;
            }
        }
        Ok(())
    }

    /// The node above `path` (0, 1 or 2 bytes of key hash) in `partition`.
    pub(crate) fn node(&self, db: &hangar_db::Db, partition: u8, path: &[u8]) -> Result<NodeHash> {
        Ok(read_node(
            db.get(MERKLE_TREE, &self.node_key(partition, path))?,
        ))
    }

    /// The non-empty children of the node above `path` (0 or 1 byte), by
    /// their last path byte.
    pub(crate) fn children(
        &self,
        db: &hangar_db::Db,
        partition: u8,
        path: &[u8],
    ) -> Result<Vec<(u8, NodeHash)>> {
        let mut start = self.prefix(NODES, partition);
        start.push(path.len() as u8 + 1);
        start.extend_from_slice(path);
        let end = after(&start);
        let rows = db.range(MERKLE_TREE, &start, end.as_deref(), 256)?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| {
                let last = *k.last()?;
                Some((last, read_node(Some(v))))
            })
            .collect())
    }

    /// Storage keys of the entries in the bucket `path` (2 bytes) of
    /// `partition`.
    pub(crate) fn bucket(
        &self,
        db: &hangar_db::Db,
        partition: u8,
        path: &[u8; 2],
    ) -> Result<Vec<Vec<u8>>> {
        let mut start = self.prefix(INDEX, partition);
        start.extend_from_slice(path);
        let end = after(&start);
        let rows = db.range(MERKLE_TREE, &start, end.as_deref(), usize::MAX)?;
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}

fn contribution(storage_key: &[u8], value: &[u8]) -> NodeHash {
    let mut h = blake3::Hasher::new();
    h.update(&(storage_key.len() as u64).to_le_bytes());
    h.update(storage_key);
    h.update(value);
    *h.finalize().as_bytes()
}

fn xor(into: &mut NodeHash, other: &NodeHash) {
    for (a, b) in into.iter_mut().zip(other) {
        *a ^= b;
    }
}

fn read_node(bytes: Option<Vec<u8>>) -> NodeHash {
    bytes
        .and_then(|b| NodeHash::try_from(b.as_slice()).ok())
        .unwrap_or(EMPTY)
}

/// The first key after every key starting with `prefix` (`None`: no bound).
pub(crate) fn after(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
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
    use hangar_db::Db;

    use super::*;

    /// (storage key, old value, new value).
    type Change = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

    async fn apply(db: &Db, changes: Vec<Change>) {
        db.transaction(move |tx| {
            let s = Summary::new("t");
            for (k, old, new) in &changes {
                s.update(tx, k, old.as_deref(), new.as_deref())?;
            }
            Ok::<_, crate::Error>(())
        })
        .await
        .expect("update");
    }

    fn key(i: u8) -> Vec<u8> {
        let mut k = vec![7u8; 32];
        k.push(i);
        k
    }

    #[tokio::test]
    async fn equal_entries_give_equal_roots_whatever_the_order() {
        let (a, b) = (
            Db::open_in_memory().expect("db"),
            Db::open_in_memory().expect("db"),
        );
        let s = Summary::new("t");
        let entries: Vec<_> = (0..20u8).map(|i| (key(i), None, Some(vec![i]))).collect();
        apply(&a, entries.clone()).await;
        apply(&b, entries.into_iter().rev().collect()).await;
        let root = s.node(&a, 7, &[]).expect("root");
        assert_ne!(root, EMPTY);
        assert_eq!(root, s.node(&b, 7, &[]).expect("root"));
        // One changed value changes the root and exactly one bucket.
        apply(&b, vec![(key(3), Some(vec![3]), Some(vec![99]))]).await;
        assert_ne!(root, s.node(&b, 7, &[]).expect("root"));
        let differing: Vec<_> = s
            .children(&a, 7, &[])
            .expect("children")
            .into_iter()
            .zip(s.children(&b, 7, &[]).expect("children"))
            .filter(|(x, y)| x != y)
            .collect();
        assert_eq!(differing.len(), 1);
        let kh = Hash::of(&key(3));
        assert_eq!(differing[0].0 .0, kh.as_bytes()[0]);
        let bucket = s
            .bucket(&b, 7, &[kh.as_bytes()[0], kh.as_bytes()[1]])
            .expect("bucket");
        assert!(bucket.contains(&key(3)));
        // Removing everything empties the summary.
        apply(
            &b,
            (0..20u8)
                .map(|i| (key(i), Some(if i == 3 { vec![99] } else { vec![i] }), None))
                .collect(),
        )
        .await;
        assert_eq!(s.node(&b, 7, &[]).expect("root"), EMPTY);
        assert!(s.children(&b, 7, &[]).expect("children").is_empty());
    }
}
