//! Keeping each node's blocks what the layout says they should be.
//!
//! - **Resync**: a block this node references but lacks (a new reference
//!   arrived, a layout change gave it the block's partition, scrub found its
//!   file missing or corrupt) is queued in `block_resync`, keyed by due time,
//!   and fetched from the other nodes holding it. Items that fail are tried
//!   again later; a block whose last reference is gone is left to garbage
//!   collection.
//! - **Scrub**: every referenced block is read back and checked against its
//!   hash, a few at a time; a corrupt file is set aside (the store does that)
//!   and the block queued for resync. The position is kept across restarts.

use hangar_db::{Tree, Tx};
use hangar_util::Hash;
use serde::Serialize;

use crate::refcount::{self, RC};
use crate::{BlockStore, Error, ReplicatedBlocks, Result};

/// Blocks to check and fetch: (due msec BE, hash) -> ().
pub(crate) const RESYNC: Tree = Tree("block_resync");
/// Scrub state: `cursor` (the last hash checked) and `pass_started` (msec).
const SCRUB: Tree = Tree("block_scrub");
/// Wait before a newly referenced block is looked for: its writer is usually
/// still sending it.
pub const NEW_REFERENCE_DELAY_MSEC: u64 = 10_000;
/// Wait before an item that failed is tried again.
const RETRY_DELAY_MSEC: u64 = 30_000;

/// What one resync step did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResyncReport {
    /// Items looked at.
    pub checked: usize,
    /// Blocks fetched from peers.
    pub fetched: usize,
    /// Items that failed and were queued again.
    pub failed: usize,
    /// Blocks this node references and should hold that no node has. Not
    /// queued again: waiting would not bring a copy back. Whether that is a
    /// loss depends on what references them, which the layer above knows
    /// (the data of an upload that failed before storing its blocks is
    /// referenced until its release).
    pub nowhere: Vec<Hash>,
}

/// What one scrub step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScrubReport {
    /// Blocks read and checked.
    pub checked: usize,
    /// Blocks found missing or corrupt (queued for resync).
    pub damaged: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Whether this step finished a pass over every block.
    pub pass_done: bool,
}

fn resync_key(due_msec: u64, hash: &Hash) -> Vec<u8> {
    refcount::gc_key(due_msec, hash)
}

impl BlockStore {
    /// Queues `hash` to be checked (and fetched if this node should hold it
    /// but lacks it) once `delay_msec` has passed, in the caller's
    /// transaction.
    pub fn queue_resync(
        &self,
        tx: &mut Tx<'_>,
        hash: &Hash,
        delay_msec: u64,
    ) -> hangar_db::Result<()> {
        let due = self.clock().wall_msec().saturating_add(delay_msec);
        tx.insert(RESYNC, &resync_key(due, hash), b"")
    }

    /// Items waiting in the resync queue.
    pub fn resync_queue_len(&self) -> Result<usize> {
        Ok(self.db().range(RESYNC, &[], None, usize::MAX)?.len())
    }

    /// Queues every referenced block for a check now (`hangar repair
    /// blocks`). Returns how many were queued.
    pub async fn queue_all_for_resync(&self) -> Result<usize> {
        let mut after: Vec<u8> = Vec::new();
        let mut queued = 0;
        loop {
            let start = after.clone();
            let this = self.clone();
            let (n, last) = self
                .db()
                .transaction(move |tx| {
                    let rows = tx.range(RC, &start, None, 1024)?;
                    for (k, _) in &rows {
                        if let Ok(h) = <[u8; 32]>::try_from(k.as_slice()) {
                            this.queue_resync(tx, &Hash(h), 0)?;
                        }
                    }
                    Ok::<_, Error>((rows.len(), rows.last().map(|(k, _)| k.clone())))
                })
                .await?;
            queued += n;
            match last {
                Some(mut k) if n == 1024 => {
                    k.push(0);
                    after = k;
                }
                _ => return Ok(queued),
            }
        }
    }

    /// Reads and checks up to `limit` referenced blocks after the scrub
    /// cursor; a missing or corrupt one is queued for resync. At the end of
    /// the blocks the cursor goes back to the start.
    pub async fn scrub_some(&self, limit: usize) -> Result<ScrubReport> {
        let cursor = self.db().get(SCRUB, b"cursor")?.unwrap_or_default();
        let mut start = cursor.clone();
        if !start.is_empty() {
            start.push(0);
        }
        let rows = self.db().range(RC, &start, None, limit)?;
        let mut report = ScrubReport::default();
        let mut damaged = Vec::new();
        for (k, _) in &rows {
            let Ok(h) = <[u8; 32]>::try_from(k.as_slice()) else {
                continue;
            };
            let hash = Hash(h);
            report.checked += 1;
            match self.read(hash).await {
                Ok(data) => report.bytes += data.len() as u64,
                Err(Error::Missing { .. } | Error::Corrupt { .. }) => {
                    tracing::warn!(%hash, "scrub: block missing or corrupt; fetching it from a peer");
                    damaged.push(hash);
                }
                Err(e) => return Err(e),
            }
        }
        report.damaged = damaged.len();
        report.pass_done = rows.len() < limit;
        let next = if report.pass_done {
            Vec::new()
        } else {
            rows.last().map(|(k, _)| k.clone()).unwrap_or_default()
        };
        let this = self.clone();
        let now = self.clock().wall_msec();
        let pass_done = report.pass_done;
        self.db()
            .transaction(move |tx| {
                for hash in &damaged {
                    this.queue_resync(tx, hash, 0)?;
                }
                tx.insert(SCRUB, b"cursor", &next)?;
                if pass_done {
                    tx.insert(SCRUB, b"pass_done", &now.to_be_bytes())?;
                }
                Ok::<_, Error>(())
            })
            .await?;
        Ok(report)
    }

    /// When the last full scrub pass ended (wall msec), if ever.
    pub fn last_scrub_msec(&self) -> Result<Option<u64>> {
        Ok(self
            .db()
            .get(SCRUB, b"pass_done")?
            .and_then(|v| v.try_into().ok())
            .map(u64::from_be_bytes))
    }

    /// Restarts the scrub from the first block (`hangar repair scrub`).
    pub async fn restart_scrub(&self) -> Result<()> {
        self.db()
            .transaction(|tx| {
                tx.remove(SCRUB, b"cursor")?;
                tx.remove(SCRUB, b"pass_done")
            })
            .await?;
        Ok(())
    }
}

impl ReplicatedBlocks {
    /// Handles up to `limit` resync items, those due (or all of them with
    /// `all`): each block this node should hold, references and lacks is
    /// fetched from another node.
    pub async fn resync_some(&self, limit: usize, all: bool) -> Result<ResyncReport> {
        let store = self.local().clone();
        let now = store.clock().wall_msec();
        let end = (!all).then(|| now.saturating_add(1).to_be_bytes().to_vec());
        let items = store.db().range(RESYNC, &[], end.as_deref(), limit)?;
        let mut report = ResyncReport::default();
        for (key, _) in items {
            let Some(hash) = refcount::parse_gc_key(&key) else {
                continue;
            };
            report.checked += 1;
            let outcome = self.resync_one(hash).await;
            let retry = match outcome {
                Ok(Resynced::Fetched) => {
                    report.fetched += 1;
                    false
                }
                Ok(Resynced::NotNeeded) => false,
                Ok(Resynced::Nowhere) => {
                    report.nowhere.push(hash);
                    false
                }
                Err(e) => {
                    tracing::debug!(%hash, "resync: {e}");
                    report.failed += 1;
                    true
                }
            };
            let s = store.clone();
            store
                .db()
                .transaction(move |tx| {
                    tx.remove(RESYNC, &key)?;
                    if retry {
                        s.queue_resync(tx, &hash, RETRY_DELAY_MSEC)?;
                    }
                    Ok::<_, Error>(())
                })
                .await?;
        }
        Ok(report)
    }

    /// Fetches `hash` if this node should hold it, references it and lacks a
    /// good copy.
    async fn resync_one(&self, hash: Hash) -> Result<Resynced> {
        let store = self.local();
        if store.refcount(hash).await? == 0 || !self.holds(&hash) || store.is_present(&hash) {
            return Ok(Resynced::NotNeeded);
        }
        let Some(data) = self.fetch_from_peers(hash).await? else {
            // No copy anywhere: either it was lost, or the upload that
            // references it failed before storing it (its reference goes
            // when the upload's release gets through). The caller tells.
            return Ok(Resynced::Nowhere);
        };
        store.write(hash, data).await?;
        tracing::info!(%hash, "resync: fetched a block this node should hold");
        Ok(Resynced::Fetched)
    }
}

/// What resyncing one block did.
enum Resynced {
    /// Fetched from a peer and stored.
    Fetched,
    /// Nothing to do: not referenced, not this node's, or present.
    NotNeeded,
    /// Referenced and this node's, but no node has it.
    Nowhere,
}
