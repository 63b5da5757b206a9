//! Background work of the model: releasing data, cleaning up after crashes.

use hangar_util::{Hash, Uuid};
use tracing::{info, warn};

use super::usage::Usage;
use super::ObjectService;
use crate::release::{self, Queued, IN_FLIGHT, PARTS_QUEUE, QUEUE};
use crate::schema::block_row::{data_partition, BlockRow};
use crate::{Error, Result};

/// Queued data ids looked at per call.
const RELEASE_SCAN_LEN: usize = 256;
/// Block rows released per batch.
const ROWS_PER_RELEASE_TX: usize = 256;
/// Most parts an upload can have, plus one.
const PARTS_MAX: usize = 10_001;

/// What became of a queued data id.
enum Released {
    /// Its rows were released (this many looked at).
    Rows(usize),
    /// A live version uses it: it leaves the queue, unreleased.
    Kept,
    /// Not known yet: it stays queued and is tried again later.
    Later,
}

impl ObjectService {
    /// Releases queued data whose delay has passed and that no version uses:
    /// marks its block rows and block references deleted, whole data ids at
    /// a time, until about `rows_max` rows were looked at. Returns that
    /// number.
    ///
    /// Each call looks at the next entries of the queue after the last call's
    /// (from the start again at its end), so entries waiting for a retry do
    /// not hold up the others. A new entry is due `release_delay_msec` after
    /// the worker first sees it; an entry whose replicas could not all be
    /// asked, or that a stale replica still uses, is due again
    /// `release_retry_msec` later (see [`super::usage`]).
    pub async fn release_some(&self, rows_max: usize) -> Result<usize> {
        let cursor = self.inner.release_cursor.lock().await.clone();
        let mut queued = self
            .inner
            .db
            .range(QUEUE, &cursor, None, RELEASE_SCAN_LEN)?;
        let next_cursor = match queued.last() {
            Some((k, _)) if queued.len() == RELEASE_SCAN_LEN => {
                let mut next = k.clone();
                next.push(0);
                next
            }
            _ => Vec::new(),
        };
        if queued.len() < RELEASE_SCAN_LEN && !cursor.is_empty() {
            // Wrapped around: the start of the queue too.
            let more = RELEASE_SCAN_LEN - queued.len();
            queued.extend(self.inner.db.range(QUEUE, &[], Some(&cursor), more)?);
        }
        *self.inner.release_cursor.lock().await = next_cursor;
        let now = self.inner.clock.wall_msec();
        let config = &self.inner.config;
        let mut removed = 0;
        let mut reschedule: Vec<(Uuid, Vec<u8>, Vec<u8>)> = Vec::new();
        for (k, v) in queued {
            let Some(data_id) = k.as_slice().try_into().ok().map(Uuid) else {
                continue;
            };
            let entry = Queued::decode(&v);
            // The delay counts from when this worker first saw the entry:
            // reads that began before the data was dropped keep finding its
            // rows meanwhile.
            let due = match entry.due {
                Some(due) => due,
                None => {
                    let due = now.saturating_add(config.release_delay_msec);
                    if due > now {
                        let later = Queued {
                            due: Some(due),
                            ..entry
                        };
                        reschedule.push((data_id, v, later.encode()));
                        continue;
                    }
                    due
                }
            };
            if due > now {
                continue;
            }
            // One data id failing (no quorum for its rows) must not hold up
            // the others: it stays queued and is tried again later.
            let retry = Queued {
                due: Some(now.saturating_add(config.release_retry_msec)),
                ..entry
            };
            match self.release_one(data_id, entry.checked).await {
                Ok(Released::Rows(n)) => removed += n,
                Ok(Released::Kept) => {
                    self.dequeue_if_unchanged(data_id, v).await?;
                }
                Ok(Released::Later) => reschedule.push((data_id, v, retry.encode())),
                Err(e) => {
                    warn!(%data_id, error = %e, "cannot release data yet");
                    reschedule.push((data_id, v, retry.encode()));
                }
            }
            if removed >= rows_max {
                break;
            }
        }
        if !reschedule.is_empty() {
            self.inner
                .db
                .transaction(move |tx| {
                    for (id, seen, new) in &reschedule {
                        // Unless a hook queued it again meanwhile.
                        if tx.get(QUEUE, id.as_bytes())?.as_ref() == Some(seen) {
                            tx.insert(QUEUE, id.as_bytes(), new)?;
                        }
                    }
                    Ok::<_, hangar_db::Error>(())
                })
                .await?;
        }
        Ok(removed)
    }

    /// Removes `data_id` from the queue if its entry is still `seen`.
    async fn dequeue_if_unchanged(&self, data_id: Uuid, seen: Vec<u8>) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| {
                if tx.get(QUEUE, data_id.as_bytes())?.as_ref() == Some(&seen) {
                    tx.remove(QUEUE, data_id.as_bytes())?;
                }
                Ok::<_, hangar_db::Error>(())
            })
            .await?;
        Ok(())
    }

    /// Releases every row of `data_id`, first asking the replicas whether
    /// a version uses it if `checked`.
    async fn release_one(&self, data_id: Uuid, checked: bool) -> Result<Released> {
        if checked {
            let pk = data_partition(&data_id);
            let first = self.inner.block_rows.read_range(&pk, &[], 1).await?;
            let owner = first.iter().find_map(|r| r.owner.clone());
            if let Some(owner) = owner {
                self.step(crate::CrashPoint::ReleaseCheck);
                match self.data_usage(data_id, &owner).await? {
                    Usage::Unused => {}
                    Usage::InUse => {
                        info!(%data_id, bucket = %owner.bucket_id, key = %owner.key,
                            "kept data queued for release: a version uses it");
                        return Ok(Released::Kept);
                    }
                    Usage::Unsure => return Ok(Released::Later),
                }
            }
        }
        let mut from = 0;
        let mut rows = 0;
        loop {
            let (n, next) = self.release_batch(data_id, from).await?;
            rows += n;
            match next {
                Some(next) => from = next,
                None => return Ok(Released::Rows(rows)),
            }
        }
    }

    /// Marks one batch of rows of `data_id` (from offset `from`) and their
    /// block references deleted, through the cluster; dequeues the data id
    /// after its last batch. Returns the rows read and where the next batch
    /// starts.
    async fn release_batch(&self, data_id: Uuid, from: u64) -> Result<(usize, Option<u64>)> {
        let pk = data_partition(&data_id);
        let rows = self
            .inner
            .block_rows
            .read_range(&pk, &from.to_be_bytes(), ROWS_PER_RELEASE_TX)
            .await?;
        let next = match rows.last() {
            Some(last) if rows.len() == ROWS_PER_RELEASE_TX => Some(last.offset + 1),
            _ => None,
        };
        let live: Vec<BlockRow> = rows
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| BlockRow {
                deleted: true,
                ..r.clone()
            })
            .collect();
        if !live.is_empty() {
            self.step(crate::CrashPoint::ReleaseRows);
            self.record_blocks(&live).await?;
        }
        if next.is_none() {
            self.inner
                .db
                .transaction(move |tx| tx.remove(QUEUE, data_id.as_bytes()))
                .await?;
        }
        Ok((rows.len(), next))
    }

    /// Queues for release the data of the parts of ended uploads that their
    /// object did not keep. Returns the uploads done.
    pub async fn release_ended_uploads(&self) -> Result<usize> {
        let queued = self
            .inner
            .db
            .range(PARTS_QUEUE, &[], None, RELEASE_SCAN_LEN)?;
        let mut done = 0;
        for (k, v) in queued {
            let Some(upload_id) = k.as_slice().try_into().ok().map(Uuid) else {
                continue;
            };
            let kept = release::kept_ids(&v);
            let parts = self
                .inner
                .parts
                .read_range(&Hash::of(upload_id.as_bytes()), b"", PARTS_MAX)
                .await?;
            self.inner
                .db
                .transaction(move |tx| {
                    for p in &parts {
                        if !kept.contains(&p.data_id) {
                            release::queue(tx, &p.data_id)?;
                        }
                    }
                    tx.remove(PARTS_QUEUE, upload_id.as_bytes())
                })
                .await?;
            done += 1;
        }
        Ok(done)
    }

    /// Removes tombstones (deleted objects, released block rows and
    /// references) that have waited the tombstone delay, from every replica
    /// once all of them hold them. Returns how many were removed.
    pub async fn collect_tombstones(&self, limit: usize) -> Result<usize> {
        let delay = self.inner.config.tombstone_delay_msec;
        let i = &self.inner;
        let removed = i.objects.collect_tombstones(limit, delay).await?.removed
            + i.block_rows.collect_tombstones(limit, delay).await?.removed
            + i.block_refs.collect_tombstones(limit, delay).await?.removed;
        Ok(removed)
    }

    /// Tombstones waiting for removal on this node.
    pub fn tombstones_waiting(&self) -> Result<usize> {
        let i = &self.inner;
        Ok(i.objects.tombstones_waiting()?
            + i.block_rows.tombstones_waiting()?
            + i.block_refs.tombstones_waiting()?)
    }

    /// Number of data ids waiting for release.
    pub fn release_queue_len(&self) -> Result<usize> {
        Ok(self.inner.db.range(QUEUE, &[], None, usize::MAX)?.len())
    }

    /// Queues for release the data of uploads that were being streamed when the
    /// node last stopped. Call once at startup, before serving requests. Such
    /// an upload may have committed (or reached a replica) just before the
    /// stop: the release asks every replica first.
    pub async fn recover_interrupted_uploads(&self) -> Result<usize> {
        let n = self
            .inner
            .db
            .transaction(|tx| {
                let ids = tx.range(IN_FLIGHT, &[], None, usize::MAX)?;
                for (k, _) in &ids {
                    tx.remove(IN_FLIGHT, k)?;
                    if let Ok(id) = <[u8; 16]>::try_from(k.as_slice()) {
                        release::queue(tx, &Uuid(id))?;
                    }
                }
                Ok::<_, Error>(ids.len())
            })
            .await?;
        if n > 0 {
            info!(
                uploads = n,
                "released data of uploads interrupted by the last stop"
            );
        }
        Ok(n)
    }
}
