//! [`Table`]: merge-on-write storage of one schema's entries.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use futures::stream::FuturesUnordered;
use hangar_cluster::quorum::{SetQuorums, Strategy};
use hangar_cluster::{Layout, NodeId};
use hangar_db::{Db, Tree, Tx};
use hangar_net::CallOptions;
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::Hash;
use serde_bytes::ByteBuf;

use crate::merkle::Summary;
use crate::remote::{RemoteTable, Replicator, TableOp, TableReply, TableRequest};
use crate::replication::{Placement, Replication};
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
    /// Whether `entry` only records a deletion, and may be removed once every
    /// replica holds it (see [`Table::collect_tombstones`]).
    fn is_tombstone(&self, _entry: &Self::Entry) -> bool {
        false
    }

    /// Runs in the transaction that removes this node's copy of `entry`
    /// because the node no longer holds its partition (not a deletion: the
    /// entry lives on elsewhere).
    fn dropped(&self, _tx: &mut Tx<'_>, _entry: &Self::Entry) -> Result<()> {
        Ok(())
    }

    /// The engine tree holding the entries.
    const TREE: Tree;
    /// The entry type.
    type Entry: Entry;

    /// Runs in the transaction that merges `incoming` into `old` (the stored
    /// entry, if any), giving `new`; also when nothing changed, so that a hook
    /// sees what an incoming entry lost to (an older version that arrives
    /// late). Hooks must therefore be idempotent.
    fn updated(
        &self,
        _tx: &mut Tx<'_>,
        _old: Option<&Self::Entry>,
        _incoming: &Self::Entry,
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
    placement: Where,
}

/// Where a table's entries live.
enum Where {
    /// A fixed layout, of which only this node is reachable.
    Local { layout: Layout, local: NodeId },
    /// On the cluster's nodes, per the current layout.
    Cluster {
        replicator: Replicator,
        replication: Replication,
    },
}

impl<S: TableSchema> Clone for Table<S> {
    fn clone(&self) -> Self {
        Table {
            inner: self.inner.clone(),
        }
    }
}

/// The storage key of `entry`.
fn storage_key_of<E: Entry>(entry: &E) -> Vec<u8> {
    storage_key(&entry.partition_key(), &entry.sort_key())
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
    /// A table over `db`, placed by `layout`, seen from node `local`, which
    /// reaches no other node.
    pub fn new(schema: S, db: Db, layout: Layout, local: NodeId) -> Self {
        Table {
            inner: Arc::new(Inner {
                schema,
                db,
                placement: Where::Local { layout, local },
            }),
        }
    }

    /// A table replicated on the cluster of `replicator` with `replication`;
    /// this node's copy is kept in `db` and answers the other nodes.
    pub fn replicated(
        schema: S,
        db: Db,
        replicator: &Replicator,
        replication: Replication,
    ) -> Self {
        let table = Table {
            inner: Arc::new(Inner {
                schema,
                db,
                placement: Where::Cluster {
                    replicator: replicator.clone(),
                    replication,
                },
            }),
        };
        replicator.register(S::TREE.0, Arc::new(LocalCopy(Arc::downgrade(&table.inner))));
        table
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
        let Where::Local { layout, local } = &self.inner.placement else {
            return Ok(());
        };
        let nodes = layout.nodes_of(pk);
        let ok = usize::from(nodes.contains(local));
        let needed = layout.params().write_quorum();
        if ok < needed {
            return Err(Error::Quorum(
                hangar_cluster::quorum::QuorumError::too_few_nodes(needed, ok),
            ));
        }
        Ok(())
    }

    /// Merges `entry` into the table and waits for a write quorum.
    pub async fn insert(&self, entry: S::Entry) -> Result<()> {
        self.insert_merged(entry).await.map(|_| ())
    }

    /// Like [`Table::insert`], and returns what the replicas that made the
    /// write quorum hold after merging `entry`, where that differs from
    /// `entry`: an entry already there that won over part of it shows here.
    pub async fn insert_merged(&self, entry: S::Entry) -> Result<Vec<S::Entry>> {
        let bytes = entry.encode()?;
        if let Where::Cluster { replicator, .. } = &self.inner.placement {
            let _in_flight = replicator.system().layout().begin_write();
            let placement = self.placement(&entry.partition_key());
            let mut progress = SetQuorums::new(placement.write_sets);
            let me = replicator.local_id();
            let bytes = ByteBuf::from(bytes);
            // Peers get the entry through their write queues; this node
            // merges it directly.
            let pending: FuturesUnordered<_> = progress
                .nodes()
                .into_iter()
                .map(|node| {
                    let (this, replicator, bytes) =
                        (self.clone(), replicator.clone(), bytes.clone());
                    async move {
                        let merged = if node == me {
                            this.merge_here(bytes).await.map_err(|e| e.to_string())
                        } else {
                            replicator.merge_on(node, S::TREE.0, bytes).await
                        };
                        (node, merged)
                    }
                })
                .collect();
            let mut merged = Vec::new();
            progress
                .collect(pending, |_, m: Option<ByteBuf>| merged.extend(m))
                .await?;
            return merged
                .iter()
                .map(|b| S::Entry::decode(b).map_err(Error::from))
                .collect();
        }
        let this = self.clone();
        let merged = self
            .inner
            .db
            .transaction(move |tx| this.insert_in(tx, &entry))
            .await?;
        Ok(if merged.encode()? == bytes {
            Vec::new()
        } else {
            vec![merged]
        })
    }

    /// Merges an encoded entry into this node's copy (a replicated table's
    /// write, on one of its replicas); returns the merged entry if it
    /// differs from the one given.
    async fn merge_here(&self, bytes: ByteBuf) -> Result<Option<ByteBuf>> {
        let entry = S::Entry::decode(&bytes)?;
        let this = self.clone();
        let merged = self
            .inner
            .db
            .transaction(move |tx| this.merge_in(tx, &entry))
            .await?
            .encode()?;
        Ok((merged != bytes.as_slice()).then(|| ByteBuf::from(merged)))
    }

    /// Merges `entry` into this node's copy inside an open transaction,
    /// running the schema hook. Returns the merged entry.
    pub fn insert_in(&self, tx: &mut Tx<'_>, entry: &S::Entry) -> Result<S::Entry> {
        self.check_write_quorum(&entry.partition_key())?;
        self.merge_in(tx, entry)
    }

    fn merge_in(&self, tx: &mut Tx<'_>, entry: &S::Entry) -> Result<S::Entry> {
        let key = storage_key(&entry.partition_key(), &entry.sort_key());
        let stored = tx.get(S::TREE, &key)?;
        let old = stored.as_deref().map(S::Entry::decode).transpose()?;
        let mut new = entry.clone();
        if let Some(old) = &old {
            new = old.clone();
            new.merge(entry);
        }
        let bytes = new.encode()?;
        if stored.as_deref() != Some(&bytes[..]) {
            tx.insert(S::TREE, &key, &bytes)?;
            if let Some(summary) = self.summary() {
                summary.update(tx, &key, stored.as_deref(), Some(&bytes))?;
            }
            self.note_tombstone(tx, &key, &new, &bytes)?;
        }
        self.inner.schema.updated(tx, old.as_ref(), entry, &new)?;
        Ok(new)
    }

    /// The Merkle summary of a replicated table.
    fn summary(&self) -> Option<Summary> {
        match self.inner.placement {
            Where::Cluster { .. } => Some(Summary::new(S::TREE.0)),
            Where::Local { .. } => None,
        }
    }

    /// Removes an entry outright (for entries whose removal every replica has
    /// agreed on, and for node-local bookkeeping).
    pub fn remove_in(&self, tx: &mut Tx<'_>, pk: &Hash, sk: &[u8]) -> Result<()> {
        let key = storage_key(pk, sk);
        if let Some(summary) = self.summary() {
            let stored = tx.get(S::TREE, &key)?;
            summary.update(tx, &key, stored.as_deref(), None)?;
        }
        tx.remove(S::TREE, &key)?;
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
        self.range_until(pk, start, None, limit)
    }

    /// Like [`Table::range`], stopping before sort key `end` if given.
    pub fn range_until(
        &self,
        pk: &Hash,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<S::Entry>> {
        let from = storage_key(pk, start);
        let end = match end {
            Some(sk) if sk <= start => return Ok(Vec::new()),
            Some(sk) => Some(storage_key(pk, sk)),
            None => partition_end(pk),
        };
        let rows = self.inner.db.range(S::TREE, &from, end.as_deref(), limit)?;
        rows.iter()
            .map(|(_, v)| S::Entry::decode(v).map_err(Error::from))
            .collect()
    }

    /// Walks this node's copy of the whole table: up to `limit` entries of
    /// any partition stored after `cursor` (from the start if `None`).
    pub fn scan_local(&self, cursor: Option<&[u8]>, limit: usize) -> Result<ScanPage<S::Entry>> {
        let from = match cursor {
            Some(c) => {
                let mut next = c.to_vec();
                // The smallest key after `c`.
                next.push(0);
                next
            }
            None => Vec::new(),
        };
        let rows = self.inner.db.range(S::TREE, &from, None, limit)?;
        let next = match rows.last() {
            Some((k, _)) if rows.len() == limit => Some(k.clone()),
            _ => None,
        };
        let entries = rows
            .iter()
            .map(|(_, v)| S::Entry::decode(v).map_err(Error::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(ScanPage { entries, next })
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

/// One page of [`Table::scan_local`].
#[derive(Debug)]
pub struct ScanPage<E> {
    /// The entries, in storage order.
    pub entries: Vec<E>,
    /// Where the next page starts; `None` after the last one.
    pub next: Option<Vec<u8>>,
}

mod gc;
mod replicas;
mod sync;

pub use gc::GcReport;
pub use replicas::ReplicaAnswers;
pub use sync::SyncReport;

/// Reads and writes through the cluster.
impl<S: TableSchema> Table<S> {
    /// Whether this table lives on the cluster ([`Table::replicated`]).
    pub fn is_replicated(&self) -> bool {
        matches!(self.inner.placement, Where::Cluster { .. })
    }

    pub(crate) fn placement(&self, pk: &Hash) -> Placement {
        match &self.inner.placement {
            Where::Local { local, .. } => Placement {
                write_sets: vec![(vec![*local], 1)],
                read_nodes: vec![*local],
                read_quorum: 1,
            },
            Where::Cluster {
                replicator,
                replication,
            } => {
                let mut p = replication.placement(&replicator.routing(), pk);
                let mode = replicator.system().consistency_mode();
                p.read_quorum = mode.read_quorum(p.read_quorum);
                for (_, q) in &mut p.write_sets {
                    *q = mode.write_quorum(*q);
                }
                p
            }
        }
    }

    async fn quorum_read(
        &self,
        replicator: &Replicator,
        nodes: &[NodeId],
        op: TableOp,
        quorum: usize,
    ) -> Result<Vec<(NodeId, TableReply)>> {
        if nodes.len() < quorum {
            return Err(Error::Quorum(
                hangar_cluster::quorum::QuorumError::too_few_nodes(quorum, nodes.len()),
            ));
        }
        let request = request::<S>(op);
        Ok(replicator
            .system()
            .quorum()
            .call(
                nodes,
                request,
                quorum,
                Strategy::Hedged,
                CallOptions::default(),
            )
            .await?)
    }

    /// Reads one entry from a read quorum of its replicas, merging their
    /// answers; replicas that answered with an older value (or none) get the
    /// merged one back (read repair).
    pub async fn read(&self, pk: &Hash, sk: &[u8]) -> Result<Option<S::Entry>> {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return self.get(pk, sk);
        };
        let placement = self.placement(pk);
        let op = TableOp::Get {
            pk: *pk,
            sk: ByteBuf::from(sk.to_vec()),
        };
        let replies = self
            .quorum_read(replicator, &placement.read_nodes, op, placement.read_quorum)
            .await?;
        let mut answers = Vec::with_capacity(replies.len());
        for (node, reply) in replies {
            match reply {
                TableReply::Entry(e) => answers.push((node, e)),
                other => return Err(unexpected(&other)),
            }
        }
        let mut merged: Option<S::Entry> = None;
        for (_, bytes) in &answers {
            if let Some(bytes) = bytes {
                let entry = S::Entry::decode(bytes)?;
                match &mut merged {
                    Some(m) => m.merge(&entry),
                    None => merged = Some(entry),
                }
            }
        }
        if let Some(m) = &merged {
            let bytes = m.encode()?;
            let stale: Vec<NodeId> = answers
                .iter()
                .filter(|(_, b)| b.as_ref().map(|b| b.as_slice()) != Some(&bytes[..]))
                .map(|(n, _)| *n)
                .collect();
            self.repair(stale.into_iter().map(|n| (n, vec![bytes.clone()])));
        }
        Ok(merged)
    }

    /// Reads one entry from this node's copy when it holds the entry's
    /// partition and has the entry, else like [`Table::read`]. Cheaper than a
    /// quorum read but may miss a change not yet replicated here: for entries
    /// read on every request (access keys, bucket names), whose changes are
    /// rare and spread within seconds.
    pub async fn read_near(&self, pk: &Hash, sk: &[u8]) -> Result<Option<S::Entry>> {
        if let Where::Cluster { replicator, .. } = &self.inner.placement {
            let me = replicator.local_id();
            if self.placement(pk).read_nodes.contains(&me) {
                if let Some(e) = self.get(pk, sk)? {
                    return Ok(Some(e));
                }
            }
        }
        self.read(pk, sk).await
    }

    /// Reads up to `limit` entries of partition key `pk` from sort key `start`
    /// on, in order, from a read quorum of the partition's replicas. Answers are
    /// merged entry by entry before anything is filtered, so an entry changed on
    /// a write quorum (deleted, for one) shows its change even if a replica
    /// still has the old value. Stale replicas get the merged entries back.
    pub async fn read_range(&self, pk: &Hash, start: &[u8], limit: usize) -> Result<Vec<S::Entry>> {
        self.read_range_until(pk, start, None, limit).await
    }

    /// Like [`Table::read_range`], stopping before sort key `end` if given
    /// (a listing under a prefix reads no entry past it).
    pub async fn read_range_until(
        &self,
        pk: &Hash,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<S::Entry>> {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return self.range_until(pk, start, end, limit);
        };
        let placement = self.placement(pk);
        let op = TableOp::Range {
            pk: *pk,
            start: ByteBuf::from(start.to_vec()),
            end: end.map(|e| ByteBuf::from(e.to_vec())),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let replies = self
            .quorum_read(replicator, &placement.read_nodes, op, placement.read_quorum)
            .await?;
        // Per node, its answer by sort key.
        let mut answers: Vec<(NodeId, EncodedBySortKey)> = Vec::new();
        let mut merged: BTreeMap<Vec<u8>, S::Entry> = BTreeMap::new();
        for (node, reply) in replies {
            let TableReply::Entries(entries) = reply else {
                return Err(unexpected(&reply));
            };
            let mut mine = BTreeMap::new();
            for bytes in entries {
                let entry = S::Entry::decode(&bytes)?;
                let sk = entry.sort_key();
                match merged.get_mut(&sk) {
                    Some(m) => m.merge(&entry),
                    None => {
                        merged.insert(sk.clone(), entry);
                    }
                }
                mine.insert(sk, bytes.into_vec());
            }
            answers.push((node, mine));
        }
        // Every answer starts at `start`, so the first `limit` merged entries
        // are covered by every full answer: nothing a replica left out of its
        // answer can come before them.
        let merged: Vec<(Vec<u8>, S::Entry)> = merged.into_iter().take(limit).collect();
        let mut repairs: Vec<(NodeId, Vec<Vec<u8>>)> = Vec::new();
        let encoded: Vec<(Vec<u8>, Vec<u8>)> = merged
            .iter()
            .map(|(sk, e)| Ok((sk.clone(), e.encode()?)))
            .collect::<Result<_>>()?;
        for (node, mine) in &answers {
            let stale: Vec<Vec<u8>> = encoded
                .iter()
                .filter(|(sk, bytes)| mine.get(sk) != Some(bytes))
                .map(|(_, bytes)| bytes.clone())
                .collect();
            if !stale.is_empty() {
                repairs.push((*node, stale));
            }
        }
        self.repair(repairs.into_iter());
        Ok(merged.into_iter().map(|(_, e)| e).collect())
    }

    /// Sends merged entries to the replicas that answered without them, in the
    /// background: the read does not wait for it.
    fn repair(&self, repairs: impl Iterator<Item = (NodeId, Vec<Vec<u8>>)>) {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return;
        };
        for (node, entries) in repairs {
            let replicator = replicator.clone();
            let request = request::<S>(TableOp::Update(
                entries.into_iter().map(ByteBuf::from).collect(),
            ));
            tokio::spawn(async move {
                let rpc = replicator.system().rpc().clone();
                if let Err(e) = rpc.call(node, &request).await {
                    tracing::debug!(%node, table = %request.table, "read repair failed: {e}");
                } else {
                    tracing::debug!(%node, table = %request.table, "read repair sent");
                }
            });
        }
    }
}

/// One replica's answer to a range read: encoded entries by sort key.
type EncodedBySortKey = BTreeMap<Vec<u8>, Vec<u8>>;

/// A request for table `S`'s copy on another node.
fn request<S: TableSchema>(op: TableOp) -> TableRequest {
    TableRequest {
        table: S::TREE.0.to_string(),
        op,
    }
}

fn unexpected(reply: &TableReply) -> Error {
    Error::Protocol(format!("unexpected table reply {reply:?}"))
}

/// This node's copy of a table, answering the table protocol. It holds the
/// table weakly: the registry must not keep tables alive.
struct LocalCopy<S>(Weak<Inner<S>>);

#[async_trait::async_trait]
impl<S: TableSchema> RemoteTable for LocalCopy<S> {
    fn db(&self) -> Option<Db> {
        self.0.upgrade().map(|inner| inner.db.clone())
    }

    fn merge_encoded_in(&self, tx: &mut Tx<'_>, entries: &[ByteBuf]) -> Result<()> {
        let inner = self
            .0
            .upgrade()
            .ok_or_else(|| Error::Protocol("table closed".into()))?;
        let table = Table { inner };
        for bytes in entries {
            table.merge_in(tx, &S::Entry::decode(bytes)?)?;
        }
        Ok(())
    }

    fn merge_one_in(&self, tx: &mut Tx<'_>, bytes: &[u8]) -> Result<Option<ByteBuf>> {
        let inner = self
            .0
            .upgrade()
            .ok_or_else(|| Error::Protocol("table closed".into()))?;
        let merged = Table { inner }
            .merge_in(tx, &S::Entry::decode(bytes)?)?
            .encode()?;
        Ok((merged != bytes).then(|| ByteBuf::from(merged)))
    }

    async fn handle(&self, op: TableOp) -> Result<TableReply> {
        let inner = self
            .0
            .upgrade()
            .ok_or_else(|| Error::Protocol("table closed".into()))?;
        let table = Table { inner };
        match op {
            TableOp::Update(entries) => {
                let entries = entries
                    .iter()
                    .map(|b| S::Entry::decode(b))
                    .collect::<Result<Vec<_>, _>>()?;
                let this = table.clone();
                table
                    .inner
                    .db
                    .transaction(move |tx| {
                        for e in &entries {
                            this.merge_in(tx, e)?;
                        }
                        Ok::<_, Error>(())
                    })
                    .await?;
                Ok(TableReply::Updated)
            }
            TableOp::Merge(bytes) => Ok(TableReply::Entry(table.merge_here(bytes).await?)),
            TableOp::Get { pk, sk } => {
                let entry = table.get(&pk, &sk)?;
                Ok(TableReply::Entry(
                    entry.map(|e| e.encode().map(ByteBuf::from)).transpose()?,
                ))
            }
            TableOp::Root { partition } => {
                let root = Summary::new(S::TREE.0).node(&table.inner.db, partition, &[])?;
                Ok(TableReply::Node(ByteBuf::from(root.to_vec())))
            }
            TableOp::Children { partition, path } => {
                if path.len() > 1 {
                    return Err(Error::Protocol("summary path too long".into()));
                }
                let children =
                    Summary::new(S::TREE.0).children(&table.inner.db, partition, &path)?;
                Ok(TableReply::Children(
                    children
                        .into_iter()
                        .map(|(b, h)| (b, ByteBuf::from(h.to_vec())))
                        .collect(),
                ))
            }
            TableOp::Bucket { partition, path } => {
                let entries = table.bucket_entries(partition, &path)?;
                Ok(TableReply::Entries(
                    entries.into_iter().map(|(_, b)| ByteBuf::from(b)).collect(),
                ))
            }
            TableOp::RemoveIfEqual { pk, sk, hash } => {
                table.remove_if_equal(pk, sk.into_vec(), hash).await
            }
            TableOp::Range {
                pk,
                start,
                end,
                limit,
            } => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_RANGE);
                let entries =
                    table.range_until(&pk, &start, end.as_deref().map(|e| &e[..]), limit)?;
                Ok(TableReply::Entries(
                    entries
                        .iter()
                        .map(|e| e.encode().map(ByteBuf::from))
                        .collect::<Result<_, _>>()?,
                ))
            }
        }
    }
}

/// Most entries one node returns for a range request.
const MAX_RANGE: usize = 10_000;

/// The first storage key after every key of partition key `pk` (None: no bound).
fn partition_end(pk: &Hash) -> Option<Vec<u8>> {
    crate::merkle::after(pk.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_items::{item_in as item, Items};

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
