//! Background work of the model: releasing data, cleaning up after crashes.

use hangar_util::Uuid;
use tracing::info;

use super::ObjectService;
use crate::release::{self, IN_FLIGHT, QUEUE};
use crate::schema::block_row::data_partition;
use crate::{Error, Result};

/// Queued data ids looked at per call.
const RELEASE_SCAN_LEN: usize = 256;
/// Block rows removed per transaction.
const ROWS_PER_RELEASE_TX: usize = 256;

impl ObjectService {
    /// Releases queued data: removes up to about `rows_max` block rows (dropping
    /// their block references). Returns the number of rows removed.
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
            loop {
                let n = self.release_batch(data_id).await?;
                removed += n;
                if n < ROWS_PER_RELEASE_TX {
                    self.inner
                        .release_seen
                        .lock()
                        .expect("release_seen lock is never poisoned")
                        .remove(&data_id);
                    break;
                }
                if removed >= rows_max {
                    break;
                }
            }
            if removed >= rows_max {
                break;
            }
        }
        Ok(removed)
    }

    /// Removes one batch of rows of `data_id`; dequeues it when none is left.
    async fn release_batch(&self, data_id: Uuid) -> Result<usize> {
        let rows = self.inner.block_rows.clone();
        let blocks = self.inner.blocks.clone();
        self.inner
            .db
            .transaction(move |tx| {
                let pk = data_partition(&data_id);
                let batch = rows.range_in(tx, &pk, b"", ROWS_PER_RELEASE_TX)?;
                for row in &batch {
                    rows.remove_in(tx, &pk, &row.offset.to_be_bytes())?;
                    blocks.decref(tx, &row.hash)?;
                }
                if batch.len() < ROWS_PER_RELEASE_TX {
                    tx.remove(QUEUE, data_id.as_bytes())?;
                }
                Ok::<_, Error>(batch.len())
            })
            .await
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
