//! PutObject and DeleteObject.

use std::sync::Arc;

use hangar_util::Uuid;

use super::write::Written;
use super::{BodyStream, ObjectService};
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::release::{self, IN_FLIGHT};
use crate::schema::object::{Object, ObjectData, ObjectMeta, ObjectVersion, PartRef, VersionState};
use crate::{Error, Result};

/// Longest object key, in bytes.
pub const KEY_LEN_MAX: usize = 1024;

/// A checksum known only once the body was read (sent as a trailer).
pub type LateChecksum = Arc<dyn Fn() -> Option<Checksum> + Send + Sync>;

/// What a client sent along with a body.
#[derive(Clone, Default)]
pub struct PutParams {
    /// Headers to store: standard ones (lowercase) and `x-amz-meta-*`.
    pub headers: Vec<(String, String)>,
    /// `Content-MD5`, decoded.
    pub content_md5: Option<[u8; 16]>,
    /// A checksum the body must match.
    pub expected_checksum: Option<Checksum>,
    /// An algorithm to compute and store even without an expected value.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// A checksum the body must match, read after the body (trailer).
    pub late_checksum: Option<LateChecksum>,
}

impl PutParams {
    pub(crate) fn algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.expected_checksum
            .as_ref()
            .map(|c| c.algorithm)
            .or(self.checksum_algorithm)
    }

    /// Checks the digests of what was written against what the client sent.
    pub(crate) fn verify(&self, written: &Written) -> Result<()> {
        if let Some(md5) = self.content_md5 {
            if md5 != written.md5 {
                return Err(Error::BadDigest);
            }
        }
        let late = self.late_checksum.as_ref().and_then(|f| f());
        if let Some(expected) = self.expected_checksum.as_ref().or(late.as_ref()) {
            if written.checksum.as_ref() != Some(expected) {
                return Err(Error::ChecksumMismatch {
                    algorithm: expected.algorithm,
                });
            }
        }
        Ok(())
    }
}

/// The outcome of a write.
#[derive(Clone, Debug)]
pub struct PutResult {
    /// Object version id.
    pub version: Uuid,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Checksum computed, if one was asked for.
    pub checksum: Option<Checksum>,
}

pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > KEY_LEN_MAX {
        return Err(Error::KeyTooLong);
    }
    Ok(())
}

impl ObjectService {
    /// Stores `body` as the new current version of `key`. The version becomes
    /// visible only once the whole body was read, stored and verified.
    pub async fn put_object(
        &self,
        bucket_id: Uuid,
        key: &str,
        params: PutParams,
        body: BodyStream,
    ) -> Result<PutResult> {
        check_key(key)?;
        let version = Uuid::random();
        let timestamp = self.inner.clock.now();
        let written = self
            .write_body(version, body, params.algorithm(), true)
            .await?;
        if let Err(e) = params.verify(&written) {
            if written.inline.is_none() {
                self.release_data(version).await?;
            }
            return Err(e);
        }
        let meta = ObjectMeta {
            size: written.size,
            etag: hex::encode(written.md5),
            headers: params.headers,
            checksum: written.checksum.clone(),
        };
        let data = match written.inline {
            Some(bytes) => ObjectData::Inline { meta, bytes },
            None => ObjectData::Parts {
                meta,
                parts: vec![PartRef {
                    part_number: 1,
                    data_id: version,
                    size: written.size,
                    checksum: written.checksum.clone(),
                }],
            },
        };
        let etag = data.meta().map(|m| m.etag.clone()).unwrap_or_default();
        let complete = self.object_with(
            bucket_id,
            key,
            version,
            timestamp,
            VersionState::Complete(data),
        );
        self.commit_version(complete, version, vec![version])
            .await?;
        Ok(PutResult {
            version,
            etag,
            size: written.size,
            checksum: written.checksum,
        })
    }

    pub(crate) fn object_with(
        &self,
        bucket_id: Uuid,
        key: &str,
        uuid: Uuid,
        timestamp: u64,
        state: VersionState,
    ) -> Object {
        Object {
            bucket_id,
            key: key.to_string(),
            versions: vec![ObjectVersion {
                uuid,
                timestamp,
                state,
            }],
        }
    }

    /// Commits an object entry carrying a complete version; the in-flight record
    /// of `data_ids` goes in the same transaction. If a newer version already
    /// won, this version's data is released at once.
    pub(crate) async fn commit_version(
        &self,
        object: Object,
        version: Uuid,
        data_ids: Vec<Uuid>,
    ) -> Result<()> {
        let objects = self.inner.objects.clone();
        self.inner
            .db
            .transaction(move |tx| {
                let merged = objects.insert_in(tx, &object)?;
                for id in &data_ids {
                    tx.remove(IN_FLIGHT, id.as_bytes())?;
                    if !merged.has_version(&version) {
                        release::queue(tx, id)?;
                    }
                }
                Ok::<_, Error>(())
            })
            .await
    }

    /// Releases the data stored under `data_id` by an upload that will not
    /// be committed.
    pub(crate) async fn release_data(&self, data_id: Uuid) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| {
                release::queue(tx, &data_id)?;
                tx.remove(IN_FLIGHT, data_id.as_bytes())
            })
            .await?;
        Ok(())
    }

    /// Deletes `key` (a delete marker hides older versions; their data is
    /// released). Deleting a missing key succeeds, as in S3.
    pub async fn delete_object(&self, bucket_id: Uuid, key: &str) -> Result<()> {
        check_key(key)?;
        let pk = crate::schema::object::bucket_partition(&bucket_id);
        let exists = self
            .inner
            .objects
            .get(&pk, key.as_bytes())?
            .is_some_and(|o| o.visible().is_some());
        if !exists {
            return Ok(());
        }
        let marker = self.object_with(
            bucket_id,
            key,
            Uuid::random(),
            self.inner.clock.now(),
            VersionState::Complete(ObjectData::DeleteMarker),
        );
        self.inner.objects.insert(marker).await?;
        Ok(())
    }
}
