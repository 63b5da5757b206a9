//! Removal of tombstones once every replica has them.
//!
//! An entry its schema calls a tombstone ([`TableSchema::is_tombstone`]: a
//! released block row, a deleted object) must be kept until every replica
//! holds it, or a replica that missed the deletion would bring the old entry
//! back through anti-entropy. When a node stores a tombstone, it records it
//! in `table_gc` with the time. [`Table::collect_tombstones`] then, for each
//! tombstone old enough: sends it to every node holding its partition in
//! every live layout version and, once all of them have acknowledged it,
//! asks each to delete it if it is still exactly that tombstone (a newer
//! write in between keeps the entry). A node that is down holds the removal
//! back until it answers again.

use hangar_cluster::quorum::Strategy;
use hangar_db::{Tree, Tx};
use hangar_net::CallOptions;
use hangar_util::encoding::Versioned;
use hangar_util::Hash;
use serde_bytes::ByteBuf;

use super::{request, storage_key, Table, TableSchema, Where};
use crate::remote::{TableOp, TableReply};
use crate::{Entry, Error, Result};

/// Tombstones waiting for removal: (table name, 0, storage key) -> (wall
/// msec when stored, BLAKE3 of the encoded tombstone).
const GC_TODO: Tree = Tree("table_gc");

/// Calls of the collection: at background priority, and bounded so that a
/// replica that went silent holds a step up for little time.
const GC_CALL: CallOptions = CallOptions {
    priority: Some(hangar_net::Priority::Background),
    timeout: std::time::Duration::from_secs(5),
};

/// What one tombstone collection step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Tombstones removed from every replica.
    pub removed: usize,
    /// Tombstones kept for later (a replica did not answer).
    pub deferred: usize,
}

fn todo_prefix<S: TableSchema>() -> Vec<u8> {
    let mut k = S::TREE.0.as_bytes().to_vec();
    k.push(0);
    k
}

fn todo_key<S: TableSchema>(storage_key: &[u8]) -> Vec<u8> {
    let mut k = todo_prefix::<S>();
    k.extend_from_slice(storage_key);
    k
}

impl<S: TableSchema> Table<S> {
    /// Records `new`, just stored, for removal if it is a tombstone.
    pub(super) fn note_tombstone(
        &self,
        tx: &mut Tx<'_>,
        key: &[u8],
        new: &S::Entry,
        bytes: &[u8],
    ) -> Result<()> {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return Ok(());
        };
        if !self.inner.schema.is_tombstone(new) {
            return Ok(());
        }
        // Tombstone ages go by the node's clock, which the simulation drives.
        let now = replicator.system().rpc().clock().wall_msec();
        let mut value = now.to_be_bytes().to_vec();
        value.extend_from_slice(Hash::of(bytes).as_bytes());
        tx.insert(GC_TODO, &todo_key::<S>(key), &value)?;
        Ok(())
    }

    /// Removes, from every replica, up to `limit` tombstones stored on this
    /// node at least `min_age_msec` ago (see the module documentation).
    pub async fn collect_tombstones(&self, limit: usize, min_age_msec: u64) -> Result<GcReport> {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return Ok(GcReport::default());
        };
        let prefix = todo_prefix::<S>();
        let end = crate::merkle::after(&prefix);
        let todo = self
            .inner
            .db
            .range(GC_TODO, &prefix, end.as_deref(), limit)?;
        let now = replicator.system().rpc().clock().wall_msec();
        let mut report = GcReport::default();
        for (todo_key, value) in todo {
            let Some(at) = value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
            else {
                continue;
            };
            if now.saturating_sub(at) < min_age_msec {
                continue;
            }
            let key = todo_key[prefix.len()..].to_vec();
            let stored = self.inner.db.get(S::TREE, &key)?;
            let current = stored.as_deref().map(S::Entry::decode).transpose()?;
            let Some(entry) = current.filter(|e| self.inner.schema.is_tombstone(e)) else {
                // Changed since (written again) or already gone.
                self.forget_todo(todo_key).await?;
                continue;
            };
            let bytes = stored.unwrap_or_default();
            let hash = Hash::of(&bytes);
            let nodes: Vec<_> = {
                let mut n: Vec<_> = self
                    .placement(&entry.partition_key())
                    .write_sets
                    .into_iter()
                    .flat_map(|(nodes, _)| nodes)
                    .collect();
                n.sort();
                n.dedup();
                n
            };
            // A replica known to be down would hold every call up until its
            // timeout: try again once it is back.
            let me = replicator.local_id();
            let membership = replicator.system().membership();
            if nodes.iter().any(|n| *n != me && !membership.is_up(*n)) {
                report.deferred += 1;
                continue;
            }
            let quorum = replicator.system().quorum().clone();
            let everyone = |op: TableOp| {
                let quorum = quorum.clone();
                let nodes = nodes.clone();
                async move {
                    quorum
                        .call(
                            &nodes,
                            request::<S>(op),
                            nodes.len(),
                            Strategy::All,
                            GC_CALL,
                        )
                        .await
                }
            };
            // Every replica must hold the tombstone before any forgets it.
            if everyone(TableOp::Update(vec![ByteBuf::from(bytes.clone())]))
                .await
                .is_err()
            {
                report.deferred += 1;
                continue;
            }
            let remove = TableOp::RemoveIfEqual {
                pk: entry.partition_key(),
                sk: ByteBuf::from(entry.sort_key()),
                hash,
            };
            match everyone(remove).await {
                Ok(_) => {
                    report.removed += 1;
                    self.forget_todo(todo_key).await?;
                }
                Err(_) => report.deferred += 1,
            }
        }
        Ok(report)
    }

    async fn forget_todo(&self, todo_key: Vec<u8>) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| tx.remove(GC_TODO, &todo_key))
            .await?;
        Ok(())
    }

    /// Removes this node's copy of (pk, sk) if its encoding hashes to `hash`.
    pub(super) async fn remove_if_equal(
        &self,
        pk: Hash,
        sk: Vec<u8>,
        hash: Hash,
    ) -> Result<TableReply> {
        let this = self.clone();
        self.inner
            .db
            .transaction(move |tx| {
                let key = storage_key(&pk, &sk);
                if let Some(bytes) = tx.get(S::TREE, &key)? {
                    if Hash::of(&bytes) == hash {
                        this.remove_in(tx, &pk, &sk)?;
                        tx.remove(GC_TODO, &todo_key::<S>(&key))?;
                    }
                }
                Ok::<_, Error>(())
            })
            .await?;
        Ok(TableReply::Updated)
    }

    /// Tombstones waiting for removal on this node.
    pub fn tombstones_waiting(&self) -> Result<usize> {
        let prefix = todo_prefix::<S>();
        let end = crate::merkle::after(&prefix);
        Ok(self
            .inner
            .db
            .range(GC_TODO, &prefix, end.as_deref(), usize::MAX)?
            .len())
    }
}
