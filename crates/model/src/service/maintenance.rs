//! Background work of the model: releasing data, cleaning up after crashes.

use hangar_util::{Hash, Uuid};
use tracing::{info, warn};

use super::ObjectService;
use crate::release::{self, IN_FLIGHT, PARTS_QUEUE, QUEUE};
use crate::schema::block_row::{data_partition, BlockRow};
use crate::{Error, Result};

/// Queued data ids looked at per call.
const RELEASE_SCAN_LEN: usize = 256;
/// Block rows released per batch.
const ROWS_PER_RELEASE_TX: usize = 256;
/// Most parts an upload can have, plus one.
const PARTS_MAX: usize = 10_001;

impl ObjectService {
    /// Releases queued data whose delay has passed: marks its block rows and
    /// block references deleted, whole data ids at a time, until about
    /// `rows_max` rows were looked at. Returns that number.
    pub async fn release_some(&self, rows_max: usize) -> Result<usize> {
        let queued = self.inner.db.range(QUEUE, &[], None, RELEASE_SCAN_LEN)?;
        let now = self.inner.clock.wall_msec();
        let mut removed = 0;
        for (k, _) in queued {
            let Some(data_id) = k.as_slice().try_into().ok().map(Uuid) else {
                continue;
            };
            // The delay counts from when this worker first saw the entry (after
            // a restart, from the restart): reads that began before the data
            // was dropped keep finding its rows meanwhile.
            let due = {
                let mut seen = self
                    .inner
                    .release_seen
                    .lock()
                    .expect("release_seen lock is never poisoned");
                let first = *seen.entry(data_id).or_insert(now);
                now.saturating_sub(first) >= self.inner.config.release_delay_msec
            };
            if !due {
                continue;
            }
            // One data id failing (no quorum for its rows) must not hold up
            // the others: it stays queued and is tried again later.
            match self.release_one(data_id).await {
                Ok(n) => {
                    removed += n;
                    self.inner
                        .release_seen
                        .lock()
                        .expect("release_seen lock is never poisoned")
                        .remove(&data_id);
                }
                Err(e) => warn!(%data_id, error = %e, "cannot release data yet"),
            }
            if removed >= rows_max {
                break;
            }
        }
        Ok(removed)
    }

    /// Releases every row of `data_id`; returns how many were looked at.
    async fn release_one(&self, data_id: Uuid) -> Result<usize> {
        let mut from = 0;
        let mut rows = 0;
        loop {
            let (n, next) = self.release_batch(data_id, from).await?;
            rows += n;
            match next {
                Some(next) => from = next,
                None => return Ok(rows),
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
    /// node last stopped. Call once at startup, before serving requests.
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
