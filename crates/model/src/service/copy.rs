//! CopyObject and UploadPartCopy.

use hangar_util::Uuid;

use super::{BodyStream, GetRange, ObjectService, PutParams, PutResult, UploadedPart};
use crate::release::IN_FLIGHT;
use crate::schema::block_row::{data_partition, BlockRow, DataOwner};
use crate::schema::object::{ObjectData, PartRef, VersionState};
use crate::{Error, Result};

/// Rows copied per batch.
const ROWS_PER_COPY_TX: usize = 256;

impl ObjectService {
    /// Copies `data` to `dst_key`. Blocks are shared, not copied: the new
    /// version gets its own block rows pointing at the same blocks. `headers`
    /// replaces the stored headers when given.
    pub async fn copy_object(
        &self,
        data: &ObjectData,
        dst_bucket: Uuid,
        dst_key: &str,
        headers: Option<Vec<(String, String)>>,
    ) -> Result<PutResult> {
        super::put::check_key(dst_key)?;
        let version = Uuid::random();
        let timestamp = self.timestamp_after_current(&dst_bucket, dst_key)?;
        let mut new_data = data.clone();
        let mut new_ids = Vec::new();
        match &mut new_data {
            ObjectData::DeleteMarker => return Err(Error::NoSuchKey),
            ObjectData::Inline { meta, .. } => {
                if let Some(h) = headers {
                    meta.headers = h;
                }
            }
            ObjectData::Parts { meta, parts } => {
                if let Some(h) = headers {
                    meta.headers = h;
                }
                for part in parts.iter_mut() {
                    let new_id = Uuid::random();
                    new_ids.push(new_id);
                    let owner = self.data_owner(dst_bucket, dst_key, (version, timestamp), None);
                    if let Err(e) = self.copy_rows(part, new_id, &owner).await {
                        for id in &new_ids {
                            self.release_data(*id).await?;
                        }
                        return Err(e);
                    }
                    part.data_id = new_id;
                }
            }
        }
        let meta = new_data.meta().expect("not a delete marker").clone();
        let o = self.object_with(
            dst_bucket,
            dst_key,
            version,
            timestamp,
            VersionState::Complete(new_data),
        );
        let version = self.commit_version(o, new_ids, None).await?;
        Ok(PutResult {
            version,
            etag: meta.etag,
            size: meta.size,
            checksum: meta.checksum,
        })
    }

    pub(crate) async fn copy_rows(
        &self,
        part: &PartRef,
        new_id: Uuid,
        owner: &DataOwner,
    ) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| tx.insert(IN_FLIGHT, new_id.as_bytes(), b""))
            .await?;
        let pk = data_partition(&part.data_id);
        let mut cursor = 0u64;
        // The rows copied must cover the part exactly: a source released while
        // it is copied must fail the copy, not produce a truncated object.
        let mut covered = 0u64;
        loop {
            let rows = self
                .inner
                .block_rows
                .read_range(&pk, &cursor.to_be_bytes(), ROWS_PER_COPY_TX)
                .await?;
            let Some(last) = rows.last() else { break };
            cursor = last.offset + 1;
            let full = rows.len() == ROWS_PER_COPY_TX;
            for r in &rows {
                if r.offset != covered || r.deleted {
                    return Err(Error::DataIncomplete {
                        data_id: part.data_id,
                    });
                }
                covered += u64::from(r.size);
            }
            let copies: Vec<BlockRow> = rows
                .into_iter()
                .map(|r| BlockRow {
                    data_id: new_id,
                    owner: Some(owner.clone()),
                    ..r
                })
                .collect();
            self.record_blocks(&copies).await?;
            if !full {
                break;
            }
        }
        if covered != part.size {
            return Err(Error::DataIncomplete {
                data_id: part.data_id,
            });
        }
        Ok(())
    }

    /// Uploads bytes `range` of `data` as part `part_number` of an upload.
    pub async fn upload_part_copy(
        &self,
        data: &ObjectData,
        range: GetRange,
        bucket_id: Uuid,
        key: &str,
        upload_id: Uuid,
        part_number: u32,
    ) -> Result<UploadedPart> {
        let body: BodyStream = self.read_data(data, range);
        self.upload_part(
            bucket_id,
            key,
            upload_id,
            part_number,
            PutParams::default(),
            body,
        )
        .await
    }
}
