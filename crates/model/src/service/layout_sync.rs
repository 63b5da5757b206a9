//! Following layout changes: once every node has acknowledged a new layout
//! version (no write begun under an older one is still running anywhere),
//! this node syncs every table with the other holders of each of its
//! partitions, fetches the blocks it now references and lacks, and raises
//! its `sync` tracker. When every node has done so, reads move to the new
//! version and older ones retire; entries and blocks of partitions this node
//! holds in no live version are then dropped.

use std::sync::atomic::Ordering;

use hangar_cluster::history::Tracker;

use super::ObjectService;
use crate::{Error, Result};

/// Resync items handled per step while syncing.
const RESYNC_BATCH: usize = 1000;

/// What a layout sync step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutSyncStep {
    /// This node is synced with the current version (or waits for other
    /// nodes to acknowledge it).
    Idle,
    /// This node synced its data to `version` and said so.
    Synced {
        /// The version synced.
        version: u64,
    },
    /// Some partition or block could not be synced yet; tried again later.
    Incomplete {
        /// Partition syncs that failed.
        partitions: usize,
        /// Blocks that could not be fetched.
        blocks: usize,
    },
}

/// One table's Merkle summary roots on this node.
#[derive(Clone, Debug)]
pub struct TableRoots {
    /// The table's name.
    pub table: &'static str,
    /// The root of each partition this node holds, in partition order.
    pub roots: Vec<(hangar_cluster::Partition, [u8; 32])>,
}

impl ObjectService {
    /// One step of following the layout (see the module documentation).
    pub async fn layout_sync_step(&self) -> Result<LayoutSyncStep> {
        let system = self.inner.replicator.system().clone();
        let me = system.id();
        let history = system.layout().snapshot();
        let current = history.current().version;
        let mine = history.trackers().sync.get(&me).copied().unwrap_or(0);
        if mine >= current || history.tracker_min(Tracker::Ack) < current {
            // Once per set of live versions: what this node holds in none of
            // them goes.
            let live = history.live_versions().first().map_or(0, |v| v.version);
            if self.inner.offloaded_for.swap(live, Ordering::Relaxed) != live {
                if let Err(e) = self.offload().await {
                    self.inner.offloaded_for.store(0, Ordering::Relaxed);
                    return Err(e);
                }
            }
            return Ok(LayoutSyncStep::Idle);
        }
        let partitions = self.sync_tables().await;
        let mut blocks = 0;
        loop {
            let r = self.resync_some(RESYNC_BATCH, true).await?;
            blocks += r.failed;
            if r.checked < RESYNC_BATCH || r.failed > 0 {
                break;
            }
        }
        if partitions > 0 || blocks > 0 {
            return Ok(LayoutSyncStep::Incomplete { partitions, blocks });
        }
        system
            .layout()
            .update(|h, _| {
                h.raise_tracker(Tracker::Sync, me, current);
                Ok(())
            })
            .map_err(|e| Error::Layout(format!("raising the sync tracker: {e}")))?;
        tracing::info!(
            version = current,
            "this node's data is synced with the layout"
        );
        Ok(LayoutSyncStep::Synced { version: current })
    }

    /// One anti-entropy pass of every table; returns the partition syncs
    /// that failed.
    pub async fn sync_tables(&self) -> usize {
        let i = &self.inner;
        i.buckets.sync_all().await
            + i.aliases.sync_all().await
            + i.keys.sync_all().await
            + i.objects.sync_all().await
            + i.parts.sync_all().await
            + i.block_rows.sync_all().await
            + i.block_refs.sync_all().await
    }

    /// Every table's summary roots of the partitions this node holds (see
    /// `Table::held_roots`), by table name: after anti-entropy, the holders
    /// of a partition report equal roots.
    pub fn table_roots(&self) -> Result<Vec<TableRoots>> {
        fn roots<S: hangar_table::TableSchema>(t: &hangar_table::Table<S>) -> Result<TableRoots> {
            Ok(TableRoots {
                table: S::TREE.0,
                roots: t.held_roots()?,
            })
        }
        let i = &self.inner;
        Ok(vec![
            roots(&i.buckets)?,
            roots(&i.aliases)?,
            roots(&i.keys)?,
            roots(&i.objects)?,
            roots(&i.parts)?,
            roots(&i.block_rows)?,
            roots(&i.block_refs)?,
        ])
    }

    /// Drops this node's copy of what it no longer holds.
    async fn offload(&self) -> Result<()> {
        let i = &self.inner;
        i.objects.offload().await?;
        i.parts.offload().await?;
        i.block_rows.offload().await?;
        i.block_refs.offload().await?;
        i.buckets.offload().await?;
        i.aliases.offload().await?;
        i.keys.offload().await?;
        Ok(())
    }
}
