//! PutObject and DeleteObject.

use std::sync::Arc;

use hangar_table::Entry as _;
use hangar_util::Uuid;

use super::write::Written;
use super::{BodyStream, ObjectService};
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::release::{self, IN_FLIGHT};
use crate::schema::block_row::DataOwner;
use crate::schema::object::{Object, ObjectData, ObjectMeta, ObjectVersion, PartRef, VersionState};
use crate::{Error, Result};

/// Most times a write beaten by a version with a later timestamp is
/// written again above it (see [`ObjectService::write_winning`]).
const REWRITES_MAX: usize = 3;

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
    /// A condition on the current object, checked when the write commits.
    pub precondition: Option<Precondition>,
}

/// A condition on the object a write replaces (`If-None-Match` / `If-Match`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// The key must not exist (`If-None-Match: *`).
    Absent,
    /// The current object must have this ETag (`If-Match`); `*`: must exist.
    ETagIs(String),
}

impl Precondition {
    /// Whether the condition holds for the current object's ETag.
    pub fn holds(&self, current_etag: Option<&str>) -> bool {
        match (self, current_etag) {
            (Precondition::Absent, current) => current.is_none(),
            (Precondition::ETagIs(want), Some(etag)) => {
                want == "*" || want.trim_matches('"') == etag
            }
            (Precondition::ETagIs(_), None) => false,
        }
    }
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
        let timestamp = self.timestamp_after_current(&bucket_id, key)?;
        let mut written = self
            .write_body(
                version,
                self.data_owner(bucket_id, key, (version, timestamp), None),
                body,
                params.algorithm(),
                true,
            )
            .await?;
        let in_flight = written.in_flight.take();
        if let Err(e) = params.verify(&written) {
            if written.inline.is_none() {
                self.release_data(version).await?;
            }
            if let Some(g) = in_flight {
                g.disarm();
            }
            return Err(e);
        }
        let meta = ObjectMeta {
            size: written.size,
            etag: hex::encode(written.md5),
            headers: params.headers,
            checksum: written.checksum.clone(),
        };
        // Inline data has no data id to settle or release.
        let data_ids = if written.inline.is_some() {
            Vec::new()
        } else {
            vec![version]
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
        let precondition = params.precondition.clone();
        let complete = self.object_with(
            bucket_id,
            key,
            version,
            timestamp,
            VersionState::Complete(data),
        );
        let committed = self.commit_version(complete, data_ids, precondition).await;
        // Committed, or released by commit_version: nothing left in flight.
        if let Some(g) = in_flight {
            g.disarm();
        }
        let version = committed?;
        Ok(PutResult {
            version,
            etag,
            size: written.size,
            checksum: written.checksum,
        })
    }

    /// A fresh timestamp greater than every version of `key` this node
    /// holds, so a write supersedes what is there even if the wall clock went
    /// backwards (e.g. across a restart). Other nodes' versions are ordered by
    /// the hybrid clock, which every message between nodes advances.
    pub(crate) fn timestamp_after_current(&self, bucket_id: &Uuid, key: &str) -> Result<u64> {
        let pk = crate::schema::object::bucket_partition(bucket_id);
        if let Some(o) = self.inner.objects.get(&pk, key.as_bytes())? {
            if let Some(max) = o.versions.iter().map(|v| v.timestamp).max() {
                self.inner.clock.observe(max);
            }
        }
        Ok(self.inner.clock.now())
    }

    /// The owner recorded in the block rows of data written now for `key`'s
    /// version (id, timestamp).
    pub(crate) fn data_owner(
        &self,
        bucket_id: Uuid,
        key: &str,
        (version, timestamp): (Uuid, u64),
        part_number: Option<u32>,
    ) -> DataOwner {
        DataOwner {
            bucket_id,
            key: key.to_string(),
            version,
            part_number,
            written_at: self.inner.clock.wall_msec(),
            timestamp: Some(timestamp),
        }
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
                multipart: matches!(
                    state,
                    VersionState::Uploading {
                        multipart: true,
                        ..
                    }
                ),
                state,
            }],
        }
    }

    /// The ETag of the visible version of `key`, read from a quorum.
    pub(crate) async fn current_etag(&self, bucket_id: &Uuid, key: &str) -> Result<Option<String>> {
        let pk = crate::schema::object::bucket_partition(bucket_id);
        let current = self.inner.objects.read(&pk, key.as_bytes()).await?;
        Ok(current
            .as_ref()
            .and_then(|o| o.visible())
            .and_then(|(_, d)| d.meta().map(|m| m.etag.clone())))
    }

    /// Commits an object entry carrying a complete version made of
    /// `data_ids`. If a newer version already won, the replicas release this
    /// version's data (the object table's hook). Returns the id of the
    /// version written (see [`ObjectService::write_winning`]).
    pub(crate) async fn commit_version(
        &self,
        object: Object,
        data_ids: Vec<Uuid>,
        precondition: Option<Precondition>,
    ) -> Result<Uuid> {
        let pk = object.partition_key();
        let _adding = self.inner.locks.bucket_write(&pk).await;
        // Conditional writes through this node are checked and written one at
        // a time, so two of them racing here cannot both win.
        let _name = match &precondition {
            Some(_) => Some(
                self.inner
                    .locks
                    .name(object.bucket_id.as_bytes(), object.key.as_bytes())
                    .await,
            ),
            None => None,
        };
        let checked = async {
            self.check_bucket_live(&object.bucket_id).await?;
            if let Some(p) = &precondition {
                let etag = self.current_etag(&object.bucket_id, &object.key).await?;
                if !p.holds(etag.as_deref()) {
                    return Err(Error::PreconditionFailed);
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = checked {
            // Nothing was written: the data goes now.
            for id in data_ids {
                self.release_data(id).await?;
            }
            return Err(e);
        }
        self.step(crate::CrashPoint::BeforeCommit);
        let written = self.write_winning(object).await;
        if written.is_ok() {
            self.step(crate::CrashPoint::AfterCommit);
        }
        // Committed, the data is the version's (the replicas release the
        // data of versions that lose). A commit that failed its quorum may
        // still have reached some replicas and spread from there: its data
        // is released only once every replica was asked.
        for id in data_ids {
            match &written {
                Ok(_) => self.settle_in_flight(id).await?,
                Err(_) => self.release_checked(id).await?,
            }
        }
        if written.is_ok() {
            self.step(crate::CrashPoint::AfterSettle);
        }
        written
    }

    /// Writes `object`, carrying one complete version, at write quorum, and
    /// returns the id of the version written.
    ///
    /// Versions are ordered by timestamp, and nodes' clocks differ a little:
    /// a write through a node whose clock is behind could lose to a version
    /// written earlier through another node. So when a replica of the quorum
    /// answers that what it already held beat this version, the version is
    /// written again as a new one, timestamped above the winner (which was
    /// there before this write arrived, so this write is the later one). Its
    /// data goes under new ids: the replicas release the data of the version
    /// that lost.
    pub(crate) async fn write_winning(&self, mut object: Object) -> Result<Uuid> {
        let mut rewrites = 0;
        loop {
            let ours = object.versions[0].uuid;
            let merged = self.inner.objects.insert_merged(object.clone()).await?;
            let winner = merged
                .iter()
                .filter_map(|o| o.last_complete())
                .filter(|(v, _)| v.uuid != ours)
                .map(|(v, _)| v.timestamp)
                .max();
            let Some(winner) = winner else {
                return Ok(ours);
            };
            if rewrites == REWRITES_MAX {
                // Beaten again and again: writes racing through several
                // nodes, any order of which is right.
                return Ok(ours);
            }
            rewrites += 1;
            self.inner.clock.observe(winner);
            object = self.above(object).await?;
        }
    }

    /// `object`'s version as a new version with a fresh timestamp, its data
    /// (if in blocks) under new ids.
    async fn above(&self, mut object: Object) -> Result<Object> {
        let old = object.versions[0].clone();
        let version = Uuid::random();
        let timestamp = self.inner.clock.now();
        let mut state = old.state;
        if let VersionState::Complete(ObjectData::Parts { parts, .. }) = &mut state {
            let mut new_ids = Vec::new();
            for part in parts.iter_mut() {
                let new_id = Uuid::random();
                new_ids.push(new_id);
                let owner =
                    self.data_owner(object.bucket_id, &object.key, (version, timestamp), None);
                if let Err(e) = self.copy_rows(part, new_id, &owner).await {
                    for id in &new_ids {
                        self.release_data(*id).await?;
                    }
                    return Err(e);
                }
                part.data_id = new_id;
            }
            for id in new_ids {
                self.settle_in_flight(id).await?;
            }
        }
        object.versions = vec![ObjectVersion {
            uuid: version,
            timestamp,
            state,
            multipart: false,
        }];
        Ok(object)
    }

    /// Releases the data stored under `data_id` by an upload whose commit
    /// was never sent.
    pub(crate) async fn release_data(&self, data_id: Uuid) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| {
                release::queue_unused(tx, &data_id)?;
                tx.remove(IN_FLIGHT, data_id.as_bytes())
            })
            .await?;
        Ok(())
    }

    /// Queues the data stored under `data_id` by an upload whose commit may
    /// have reached some replica: the release asks every replica first.
    pub(crate) async fn release_checked(&self, data_id: Uuid) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| {
                release::queue(tx, &data_id)?;
                tx.remove(IN_FLIGHT, data_id.as_bytes())
            })
            .await?;
        Ok(())
    }

    /// Ends the in-flight record of `data_id` without releasing it: its data
    /// is now referenced (or may be) by what was written.
    pub(crate) async fn settle_in_flight(&self, data_id: Uuid) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| tx.remove(IN_FLIGHT, data_id.as_bytes()))
            .await?;
        Ok(())
    }

    /// Releases `data_id` (after asking every replica) unless it left the
    /// in-flight records, i.e. unless the transaction that settles (or
    /// releases) it already ran.
    pub(crate) async fn release_if_in_flight(&self, data_id: Uuid) -> Result<()> {
        self.inner
            .db
            .transaction(move |tx| {
                if tx.get(IN_FLIGHT, data_id.as_bytes())?.is_some() {
                    release::queue(tx, &data_id)?;
                    tx.remove(IN_FLIGHT, data_id.as_bytes())?;
                }
                Ok::<_, hangar_db::Error>(())
            })
            .await?;
        Ok(())
    }

    /// Deletes `key` (a delete marker hides older versions; their data is
    /// released). Deleting a missing key succeeds, as in S3.
    pub async fn delete_object(&self, bucket_id: Uuid, key: &str) -> Result<()> {
        check_key(key)?;
        // The marker is written even when the key looks absent: a write that
        // failed may sit on a replica this request does not read, and spread
        // later; the marker, newer, still hides it. (One round trip, where a
        // read first would take two for keys that exist.)
        let marker = self.object_with(
            bucket_id,
            key,
            Uuid::random(),
            self.timestamp_after_current(&bucket_id, key)?,
            VersionState::Complete(ObjectData::DeleteMarker),
        );
        self.write_winning(marker).await?;
        Ok(())
    }
}
