//! `repair versions`: releasing data that no object version uses.
//!
//! Data normally leaves through the release queue, fed by the transactions
//! that stop referencing it. Two cases escape it: a coordinator that died for
//! good after storing an upload's blocks but before committing it, and a
//! commit that reached no replica. Their block rows then hold blocks for
//! ever. Each block row records its owner (bucket, key, version and part);
//! this repair walks the rows this node holds and asks the cluster whether
//! the owner still uses the data.

use hangar_util::{Hash, Uuid};
use tracing::{info, warn};

use super::ObjectService;
use crate::release::{self, IN_FLIGHT};
use crate::schema::block_row::{BlockRow, DataOwner};
use crate::schema::object::{bucket_partition, ObjectData, VersionState};
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
    /// Data ids whose owner could not be read (no quorum): left alone.
    pub unreadable: u64,
}

impl ObjectService {
    /// Queues for release every data id this node holds rows of that no
    /// object version or multipart upload uses any more and that was written
    /// longer than the grace delay ago. Safe at any time: data in use, or
    /// whose owner cannot be read from a quorum, is left alone.
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
        match self.data_in_use(data_id, owner).await {
            Ok(true) => {}
            Ok(false) => {
                info!(%data_id, bucket = %owner.bucket_id, key = %owner.key, "repair versions: releasing data no version uses");
                self.inner
                    .db
                    .transaction(move |tx| release::queue(tx, &data_id))
                    .await?;
                report.released += 1;
            }
            Err(e) => {
                warn!(%data_id, error = %e, "repair versions: cannot read the data's owner");
                report.unreadable += 1;
            }
        }
        Ok(())
    }

    /// Whether `owner` still uses `data_id`, read from a quorum.
    async fn data_in_use(&self, data_id: Uuid, owner: &DataOwner) -> Result<bool> {
        let object = self
            .inner
            .objects
            .read(&bucket_partition(&owner.bucket_id), owner.key.as_bytes())
            .await?;
        let Some(version) = object
            .as_ref()
            .and_then(|o| o.versions.iter().find(|v| v.uuid == owner.version))
        else {
            return Ok(false);
        };
        Ok(match (&version.state, owner.part_number) {
            (VersionState::Complete(ObjectData::Parts { parts, .. }), _) => {
                parts.iter().any(|p| p.data_id == data_id)
            }
            // A part of an upload in progress: used while it is the part's
            // current data (an upload of the same part number replaces it).
            (VersionState::Uploading { .. }, Some(n)) => self
                .inner
                .parts
                .read(&Hash::of(owner.version.as_bytes()), &n.to_be_bytes())
                .await?
                .is_some_and(|p| p.data_id == data_id),
            // A simple upload is committed as a complete version: never in use
            // while only uploading, but such data is still within its grace.
            (VersionState::Uploading { .. }, None) => false,
            (VersionState::Complete(_) | VersionState::Aborted, _) => false,
        })
    }
}
