//! `repair versions`: releasing data that no object version uses.
//!
//! Data normally leaves through the release queue, fed by the transactions
//! that stop referencing it. Two cases escape it: a coordinator that died for
//! good after storing an upload's blocks but before committing it, and a
//! commit that reached no replica. Their block rows then hold blocks for
//! ever. Each block row records its owner (bucket, key, version and part);
//! this repair walks the rows this node holds and asks the cluster whether
//! the owner still uses the data.

use tracing::{info, warn};

use super::usage::Usage;
use super::ObjectService;
use crate::release::{self, IN_FLIGHT};
use crate::schema::block_row::BlockRow;
use crate::Result;

/// Block rows read from the local table per step.
const SCAN_BATCH: usize = 256;

/// What a `repair versions` pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionsRepairReport {
    /// Data ids looked at (live ones, held by this node).
    pub checked: u64,
    /// Data ids no version uses, queued for release.
    pub released: u64,
    /// Data ids written within the grace delay (their upload may be going on).
    pub recent: u64,
    /// Data ids without a recorded owner (written by an older version).
    pub ownerless: u64,
    /// Data ids whose owner could not be read from every replica that must
    /// be asked (or that a replica not yet up to date still uses): left alone.
    pub unreadable: u64,
}

impl ObjectService {
    /// Queues for release every data id this node holds rows of that no
    /// object version or multipart upload uses any more and that was written
    /// longer than the grace delay ago. Safe at any time: data in use, or
    /// whose owner cannot be read from every replica that must be asked, is
    /// left alone.
    pub async fn repair_versions(&self) -> Result<VersionsRepairReport> {
        let mut report = VersionsRepairReport::default();
        let mut cursor: Option<Vec<u8>> = None;
        loop {
            let page = self
                .inner
                .block_rows
                .scan_local(cursor.as_deref(), SCAN_BATCH)?;
            // Every data id has a row at offset 0: one check per data id.
            for row in page.entries.iter().filter(|r| r.offset == 0 && !r.deleted) {
                self.check_data(row, &mut report).await?;
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        info!(
            checked = report.checked,
            released = report.released,
            recent = report.recent,
            ownerless = report.ownerless,
            unreadable = report.unreadable,
            "repair versions done"
        );
        Ok(report)
    }

    async fn check_data(&self, row: &BlockRow, report: &mut VersionsRepairReport) -> Result<()> {
        report.checked += 1;
        let Some(owner) = &row.owner else {
            report.ownerless += 1;
            return Ok(());
        };
        let now = self.inner.clock.wall_msec();
        let data_id = row.data_id;
        let streaming_here = self.inner.db.get(IN_FLIGHT, data_id.as_bytes())?.is_some();
        if streaming_here
            || now.saturating_sub(owner.written_at) < self.inner.config.orphan_grace_msec
        {
            report.recent += 1;
            return Ok(());
        }
        match self.data_usage(data_id, owner).await {
            Ok(Usage::InUse) => {}
            Ok(Usage::Unused) => {
                info!(%data_id, bucket = %owner.bucket_id, key = %owner.key, "repair versions: releasing data no version uses");
                // The release asks the replicas once more when it is due.
                self.inner
                    .db
                    .transaction(move |tx| release::queue(tx, &data_id))
                    .await?;
                report.released += 1;
            }
            Ok(Usage::Unsure) => report.unreadable += 1,
            Err(e) => {
                warn!(%data_id, error = %e, "repair versions: cannot read the data's owner");
                report.unreadable += 1;
            }
        }
        Ok(())
    }
}
