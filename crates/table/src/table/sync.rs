//! Anti-entropy: two replicas of a partition compare their summaries (see
//! [`crate::merkle`]) from the root down and exchange the entries of the
//! buckets that differ, both ways. Identical replicas cost one round trip.

use std::collections::BTreeMap;

use futures::StreamExt;

use hangar_cluster::{NodeId, Partition, PARTITION_COUNT};
use hangar_net::{CallOptions, Priority};
use serde_bytes::ByteBuf;

use super::{request, storage_key_of, Table, TableSchema, Where};
use crate::merkle::{NodeHash, Summary};
use crate::remote::{TableOp, TableReply};
use crate::{Error, Result};
use hangar_util::encoding::Versioned;

/// What one partition sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Requests sent to the peer.
    pub round_trips: usize,
    /// Buckets that differed.
    pub buckets: usize,
    /// Entries received from the peer.
    pub received: usize,
    /// Entries sent to the peer.
    pub sent: usize,
}

impl<S: TableSchema> Table<S> {
    /// The root of this node's summary of `partition`.
    pub fn summary_root(&self, partition: Partition) -> Result<[u8; 32]> {
        Summary::new(S::TREE.0).node(&self.inner.db, partition_byte(partition), &[])
    }

    /// The summary roots of the partitions this node holds in some live
    /// layout version, in partition order: replicas that hold the same
    /// entries have equal roots.
    pub fn held_roots(&self) -> Result<Vec<(Partition, [u8; 32])>> {
        let Where::Cluster {
            replicator,
            replication,
        } = &self.inner.placement
        else {
            return Ok(Vec::new());
        };
        let me = replicator.local_id();
        let routing = replicator.routing();
        (0..PARTITION_COUNT)
            .map(|p| Partition(p as u16))
            .filter(|p| replication.holders(&routing, *p).contains(&me))
            .map(|p| Ok((p, self.summary_root(p)?)))
            .collect()
    }

    /// Brings this node's copy of `partition` and `peer`'s to the same entries:
    /// each gets the entries it lacks or holds older versions of.
    pub async fn sync_partition(&self, partition: Partition, peer: NodeId) -> Result<SyncReport> {
        let p = partition_byte(partition);
        let summary = Summary::new(S::TREE.0);
        let mut report = SyncReport::default();
        let theirs = node(
            self.ask(peer, TableOp::Root { partition: p }, &mut report)
                .await?,
        )?;
        if theirs == summary.node(&self.inner.db, p, &[])? {
            return Ok(report);
        }
        let mut differing = Vec::new();
        for first in self.differing_children(peer, p, &[], &mut report).await? {
            for second in self
                .differing_children(peer, p, &[first], &mut report)
                .await?
            {
                differing.push([first, second]);
            }
        }
        for path in differing {
            report.buckets += 1;
            let reply = self
                .ask(peer, TableOp::Bucket { partition: p, path }, &mut report)
                .await?;
            let TableReply::Entries(theirs) = reply else {
                return Err(super::unexpected(&reply));
            };
            // Theirs by storage key, decoded once.
            let theirs: BTreeMap<Vec<u8>, (Vec<u8>, S::Entry)> = theirs
                .into_iter()
                .map(|b| {
                    let e = S::Entry::decode(&b)?;
                    Ok((storage_key_of(&e), (b.into_vec(), e)))
                })
                .collect::<Result<_>>()?;
            // Ours, before merging theirs: what they lack or hold older.
            let to_send: Vec<ByteBuf> = self
                .bucket_entries(p, &path)?
                .into_iter()
                .filter(|(key, bytes)| theirs.get(key).map(|(b, _)| b) != Some(bytes))
                .map(|(_, bytes)| ByteBuf::from(bytes))
                .collect();
            let received: Vec<S::Entry> = theirs.into_values().map(|(_, e)| e).collect();
            report.received += received.len();
            let this = self.clone();
            self.inner
                .db
                .transaction(move |tx| {
                    for e in &received {
                        this.merge_in(tx, e)?;
                    }
                    Ok::<_, Error>(())
                })
                .await?;
            if !to_send.is_empty() {
                report.sent += to_send.len();
                self.ask(peer, TableOp::Update(to_send), &mut report)
                    .await?;
            }
        }
        Ok(report)
    }

    /// Child bytes under `path` whose summaries differ between here and `peer`.
    async fn differing_children(
        &self,
        peer: NodeId,
        partition: u8,
        path: &[u8],
        report: &mut SyncReport,
    ) -> Result<Vec<u8>> {
        let op = TableOp::Children {
            partition,
            path: ByteBuf::from(path.to_vec()),
        };
        let reply = self.ask(peer, op, report).await?;
        let TableReply::Children(theirs) = reply else {
            return Err(super::unexpected(&reply));
        };
        let mut all: BTreeMap<u8, (NodeHash, NodeHash)> = BTreeMap::new();
        for (b, h) in theirs {
            all.entry(b).or_default().1 = node(TableReply::Node(h))?;
        }
        let summary = Summary::new(S::TREE.0);
        for (b, h) in summary.children(&self.inner.db, partition, path)? {
            all.entry(b).or_default().0 = h;
        }
        Ok(all
            .into_iter()
            .filter(|(_, (ours, theirs))| ours != theirs)
            .map(|(b, _)| b)
            .collect())
    }

    /// The entries of a summary bucket of this node's copy: (storage key,
    /// encoded entry).
    pub(super) fn bucket_entries(
        &self,
        partition: u8,
        path: &[u8; 2],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let summary = Summary::new(S::TREE.0);
        let mut out = Vec::new();
        for key in summary.bucket(&self.inner.db, partition, path)? {
            if let Some(bytes) = self.inner.db.get(S::TREE, &key)? {
                out.push((key, bytes));
            }
        }
        Ok(out)
    }

    async fn ask(&self, peer: NodeId, op: TableOp, report: &mut SyncReport) -> Result<TableReply> {
        let Where::Cluster { replicator, .. } = &self.inner.placement else {
            return Err(Error::Protocol(
                "anti-entropy needs a replicated table".into(),
            ));
        };
        report.round_trips += 1;
        let request = request::<S>(op);
        let options = CallOptions {
            priority: Some(Priority::Background),
            ..CallOptions::default()
        };
        let (reply, _) = replicator
            .system()
            .rpc()
            .call_with(peer, &request, options, None)
            .await
            .map_err(|e| Error::Protocol(format!("anti-entropy with {peer}: {e}")))?;
        Ok(reply)
    }

    /// One anti-entropy pass over the partitions this node holds. Returns
    /// how many partition syncs failed (an unreachable peer, say).
    pub async fn sync_all(&self) -> usize {
        let Where::Cluster {
            replicator,
            replication,
        } = &self.inner.placement
        else {
            return 0;
        };
        let me = replicator.local_id();
        let routing = replicator.routing();
        let mut pairs = Vec::new();
        for p in 0..PARTITION_COUNT {
            let partition = Partition(p as u16);
            // The partition's holders in every live version: a node new to it
            // gets its entries from the previous holders.
            let nodes = replication.holders(&routing, partition);
            if !nodes.contains(&me) {
                continue;
            }
            pairs.extend(
                nodes
                    .into_iter()
                    .filter(|n| *n != me)
                    .map(|peer| (partition, peer)),
            );
        }
        // Several partitions at once: a pass costs about
        // partitions x peers / SYNC_PARALLELISM round trips.
        let results: Vec<bool> = futures::stream::iter(pairs)
            .map(|(partition, peer)| async move {
                match self.sync_partition(partition, peer).await {
                    Ok(r) if r.received + r.sent > 0 => {
                        tracing::info!(
                            table = S::TREE.0, partition = partition.0, %peer,
                            received = r.received, sent = r.sent, "anti-entropy repaired entries"
                        );
                        true
                    }
                    Ok(_) => true,
                    Err(e) => {
                        tracing::debug!(table = S::TREE.0, partition = partition.0, %peer, "anti-entropy: {e}");
                        false
                    }
                }
            })
            .buffer_unordered(SYNC_PARALLELISM)
            .collect()
            .await;
        results.iter().filter(|ok| !**ok).count()
    }

    /// Removes this node's copy of the entries of every partition it holds in
    /// no live layout version (a layout change gave them to other nodes,
    /// which have synced them), running the schema's
    /// [`TableSchema::dropped`] hook on each. Returns the entries removed.
    pub async fn offload(&self) -> Result<usize> {
        let Where::Cluster {
            replicator,
            replication,
        } = &self.inner.placement
        else {
            return Ok(0);
        };
        let me = replicator.local_id();
        let routing = replicator.routing();
        let mut removed = 0;
        for p in 0..PARTITION_COUNT {
            let partition = Partition(p as u16);
            if replication.holders(&routing, partition).contains(&me) {
                continue;
            }
            let byte = partition_byte(partition);
            let end = crate::merkle::after(&[byte]);
            if self
                .inner
                .db
                .range(S::TREE, &[byte], end.as_deref(), 1)?
                .is_empty()
            {
                continue;
            }
            loop {
                let this = self.clone();
                let n = self
                    .inner
                    .db
                    .transaction(move |tx| {
                        let end = crate::merkle::after(&[byte]);
                        let rows = tx.range(S::TREE, &[byte], end.as_deref(), OFFLOAD_BATCH)?;
                        for (key, bytes) in &rows {
                            let entry = S::Entry::decode(bytes)?;
                            this.inner.schema.dropped(tx, &entry)?;
                            let summary = Summary::new(S::TREE.0);
                            summary.update(tx, key, Some(bytes), None)?;
                            tx.remove(S::TREE, key)?;
                        }
                        Ok::<_, Error>(rows.len())
                    })
                    .await?;
                removed += n;
                if n < OFFLOAD_BATCH {
                    break;
                }
            }
        }
        if removed > 0 {
            tracing::info!(
                table = S::TREE.0,
                entries = removed,
                "dropped entries of partitions this node no longer holds"
            );
        }
        Ok(removed)
    }
}

/// Partition syncs of one pass run at once.
const SYNC_PARALLELISM: usize = 16;

/// Entries removed per transaction when offloading.
const OFFLOAD_BATCH: usize = 1000;

fn partition_byte(partition: Partition) -> u8 {
    u8::try_from(partition.0).unwrap_or(u8::MAX)
}

fn node(reply: TableReply) -> Result<NodeHash> {
    match reply {
        TableReply::Node(h) => NodeHash::try_from(h.as_slice())
            .map_err(|_| Error::Protocol("summary node of the wrong size".into())),
        other => Err(super::unexpected(&other)),
    }
}
