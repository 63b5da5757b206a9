//! Multipart uploads: create, upload parts, complete, abort, list.

use hangar_util::{Hash, Uuid};
use md5::Digest as _;

use super::{BodyStream, ObjectService, PutParams, PutResult};
use crate::checksum::{self, ChecksumAlgorithm};
use crate::schema::object::{bucket_partition, ObjectData, ObjectMeta, PartRef, VersionState};
use crate::schema::part::Part;
use crate::{Error, Result};

/// Smallest size of every part but the last, as in S3.
pub const PART_SIZE_MIN: u64 = 5 << 20;
/// Highest part number, as in S3.
pub const PART_NUMBER_MAX: u32 = 10_000;

/// A part as named in a completion request.
#[derive(Clone, Debug)]
pub struct CompletedPart {
    /// Part number.
    pub part_number: u32,
    /// ETag the client saw (quotes optional).
    pub etag: String,
}

/// The result of uploading one part.
#[derive(Clone, Debug)]
pub struct UploadedPart {
    /// MD5 hex of the part.
    pub etag: String,
    /// Checksum computed, if asked for.
    pub checksum: Option<checksum::Checksum>,
}

/// An upload in progress.
#[derive(Clone, Debug)]
pub struct MultipartUpload {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: Uuid,
    /// When it started (msec).
    pub timestamp: u64,
}

impl ObjectService {
    /// Starts a multipart upload of `key`; returns the upload id.
    pub async fn create_multipart_upload(
        &self,
        bucket_id: Uuid,
        key: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Uuid> {
        super::put::check_key(key)?;
        let upload_id = Uuid::random();
        let o = self.object_with(
            bucket_id,
            key,
            upload_id,
            self.inner.clock.now(),
            VersionState::Uploading {
                multipart: true,
                headers,
            },
        );
        let _adding = self
            .inner
            .locks
            .bucket_write(&bucket_partition(&bucket_id))
            .await;
        self.check_bucket_live(&bucket_id).await?;
        self.inner.objects.insert(o).await?;
        Ok(upload_id)
    }

    /// The headers and timestamp of upload `upload_id` of `key` (read from a
    /// quorum); `NoSuchUpload` unless it is in progress.
    async fn upload_state(
        &self,
        bucket_id: &Uuid,
        key: &str,
        upload_id: &Uuid,
    ) -> Result<(u64, Vec<(String, String)>)> {
        let object = self
            .inner
            .objects
            .read(&bucket_partition(bucket_id), key.as_bytes())
            .await?
            .ok_or(Error::NoSuchUpload)?;
        object
            .versions
            .iter()
            .find_map(|v| match &v.state {
                VersionState::Uploading {
                    multipart: true,
                    headers,
                } if v.uuid == *upload_id => Some((v.timestamp, headers.clone())),
                _ => None,
            })
            .ok_or(Error::NoSuchUpload)
    }

    /// Stores part `part_number` of an upload.
    pub async fn upload_part(
        &self,
        bucket_id: Uuid,
        key: &str,
        upload_id: Uuid,
        part_number: u32,
        params: PutParams,
        body: BodyStream,
    ) -> Result<UploadedPart> {
        if !(1..=PART_NUMBER_MAX).contains(&part_number) {
            return Err(Error::InvalidArgument(
                "part number must be between 1 and 10000".into(),
            ));
        }
        let (upload_ts, _) = self.upload_state(&bucket_id, key, &upload_id).await?;
        let data_id = Uuid::random();
        let algorithm = params.algorithm();
        let owner = self.data_owner(bucket_id, key, (upload_id, upload_ts), Some(part_number));
        let mut written = self
            .write_body(data_id, owner, body, algorithm, false)
            .await?;
        let in_flight = written.in_flight.take();
        if let Err(e) = params.verify(&written) {
            self.release_data(data_id).await?;
            if let Some(g) = in_flight {
                g.disarm();
            }
            return Err(e);
        }
        let part = Part {
            upload_id,
            part_number,
            timestamp: self.inner.clock.now(),
            data_id,
            size: written.size,
            etag: hex::encode(written.md5),
            checksum: written.checksum.clone(),
        };
        let etag = part.etag.clone();
        let recorded = async {
            // Checked again, and written under the key's lock, which the
            // completion and the abort through this node take: a part must not
            // land after its upload ended.
            let _name = self
                .inner
                .locks
                .name(bucket_id.as_bytes(), key.as_bytes())
                .await;
            match self.upload_state(&bucket_id, key, &upload_id).await {
                Ok(_) => {}
                Err(Error::NoSuchUpload) => return Ok(false),
                Err(e) => return Err(e),
            }
            // A re-upload's loser (this part or the one it replaces) is
            // released by the part table's hook.
            self.inner.parts.insert(part).await?;
            Ok(true)
        }
        .await;
        let recorded = match recorded {
            Ok(true) => {
                self.settle_in_flight(data_id).await?;
                true
            }
            Ok(false) => {
                self.release_data(data_id).await?;
                false
            }
            Err(e) => {
                // The part may have reached some replicas: its data is
                // released only if none has it.
                self.release_checked(data_id).await?;
                if let Some(g) = in_flight {
                    g.disarm();
                }
                return Err(e);
            }
        };
        if let Some(g) = in_flight {
            g.disarm();
        }
        if !recorded {
            return Err(Error::NoSuchUpload);
        }
        Ok(UploadedPart {
            etag,
            checksum: written.checksum,
        })
    }

    /// Completes an upload from the listed parts.
    pub async fn complete_multipart_upload(
        &self,
        bucket_id: Uuid,
        key: &str,
        upload_id: Uuid,
        requested: &[CompletedPart],
    ) -> Result<PutResult> {
        if requested.is_empty() {
            return Err(Error::InvalidArgument(
                "the completion lists no part".into(),
            ));
        }
        if requested
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(Error::InvalidPartOrder);
        }
        // The completed object is newer than anything stored for the key, as in
        // S3 where it takes effect at completion.
        let _name = self
            .inner
            .locks
            .name(bucket_id.as_bytes(), key.as_bytes())
            .await;
        let (_, headers) = self.upload_state(&bucket_id, key, &upload_id).await?;
        let timestamp = self.timestamp_after_current(&bucket_id, key)?;
        let stored = self
            .inner
            .parts
            .read_range(
                &Hash::of(upload_id.as_bytes()),
                b"",
                PART_NUMBER_MAX as usize + 1,
            )
            .await?;
        let (parts, etag) = plan_completion(requested, &stored)?;
        let size = parts.iter().map(|p| p.size).sum();
        let checksum = composite_checksum(&parts);
        let meta = ObjectMeta {
            size,
            etag: etag.clone(),
            headers,
            checksum: checksum.clone(),
        };
        let mut o = self.object_with(
            bucket_id,
            key,
            upload_id,
            timestamp,
            VersionState::Complete(ObjectData::Parts { meta, parts }),
        );
        o.versions[0].multipart = true;
        self.inner.objects.insert(o).await?;
        Ok(PutResult {
            version: upload_id,
            etag,
            size,
            checksum,
        })
    }

    /// Abandons an upload and releases its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket_id: Uuid,
        key: &str,
        upload_id: Uuid,
    ) -> Result<()> {
        let _name = self
            .inner
            .locks
            .name(bucket_id.as_bytes(), key.as_bytes())
            .await;
        let (timestamp, _) = self.upload_state(&bucket_id, key, &upload_id).await?;
        let mut o = self.object_with(bucket_id, key, upload_id, timestamp, VersionState::Aborted);
        o.versions[0].multipart = true;
        self.inner.objects.insert(o).await?;
        Ok(())
    }

    /// Parts of an upload with part number above `marker`, at most `max`;
    /// the flag says whether more follow.
    pub async fn list_parts(
        &self,
        bucket_id: &Uuid,
        key: &str,
        upload_id: &Uuid,
        marker: u32,
        max: usize,
    ) -> Result<(Vec<Part>, bool)> {
        self.upload_state(bucket_id, key, upload_id).await?;
        let start = marker.saturating_add(1).to_be_bytes();
        let mut parts = self
            .inner
            .parts
            .read_range(&Hash::of(upload_id.as_bytes()), &start, max + 1)
            .await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((parts, truncated))
    }

    /// Uploads in progress in a bucket, by key, with key after `key_marker`.
    pub async fn list_multipart_uploads(
        &self,
        bucket_id: &Uuid,
        prefix: &str,
        key_marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<MultipartUpload>, bool)> {
        let pk = bucket_partition(bucket_id);
        let mut cursor = prefix.as_bytes().to_vec();
        if let Some(m) = key_marker {
            if m.as_bytes() >= cursor.as_slice() {
                cursor = m.as_bytes().to_vec();
                cursor.push(0);
            }
        }
        let end = super::list::after_prefix(prefix.as_bytes());
        let mut out = Vec::new();
        loop {
            let batch = self
                .inner
                .objects
                .read_range_until(&pk, &cursor, end.as_deref(), 1000)
                .await?;
            for o in &batch {
                if !o.key.starts_with(prefix) {
                    return Ok((out, false));
                }
                for v in &o.versions {
                    if matches!(
                        v.state,
                        VersionState::Uploading {
                            multipart: true,
                            ..
                        }
                    ) {
                        if out.len() == max {
                            return Ok((out, true));
                        }
                        out.push(MultipartUpload {
                            key: o.key.clone(),
                            upload_id: v.uuid,
                            timestamp: v.timestamp,
                        });
                    }
                }
            }
            match batch.last() {
                Some(last) if batch.len() == 1000 => {
                    cursor = last.key.as_bytes().to_vec();
                    cursor.push(0);
                }
                _ => return Ok((out, false)),
            }
        }
    }
}

/// The parts of the object and its ETag, from the completion list and the
/// stored parts: every listed part exists with that ETag, and every part but
/// the last is at least [`PART_SIZE_MIN`].
fn plan_completion(requested: &[CompletedPart], stored: &[Part]) -> Result<(Vec<PartRef>, String)> {
    let mut parts = Vec::with_capacity(requested.len());
    let mut md5s = md5::Md5::new();
    for (i, r) in requested.iter().enumerate() {
        let invalid = || Error::InvalidPart {
            part_number: r.part_number,
        };
        let p = stored
            .iter()
            .find(|p| p.part_number == r.part_number)
            .filter(|p| p.etag == r.etag.trim_matches('"'))
            .ok_or_else(invalid)?;
        if i + 1 < requested.len() && p.size < PART_SIZE_MIN {
            return Err(Error::EntityTooSmall {
                part_number: r.part_number,
            });
        }
        md5s.update(hex::decode(&p.etag).map_err(|_| invalid())?);
        parts.push(PartRef {
            part_number: p.part_number,
            data_id: p.data_id,
            size: p.size,
            checksum: p.checksum.clone(),
        });
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
    Ok((parts, etag))
}

/// The composite checksum of the parts, when every part has one of one algorithm.
fn composite_checksum(parts: &[PartRef]) -> Option<checksum::Checksum> {
    let algorithm: ChecksumAlgorithm = parts.first()?.checksum.as_ref()?.algorithm;
    let sums: Option<Vec<_>> = parts.iter().map(|p| p.checksum.clone()).collect();
    checksum::composite(algorithm, &sums?)
}
