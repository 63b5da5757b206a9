//! Objects: per (bucket, key), the versions and their state.

use hangar_db::{Tree, Tx};
use hangar_table::{Entry, TableSchema};
use hangar_util::crdt::Crdt;
use hangar_util::encoding::Versioned;
use hangar_util::{Hash, Uuid};
use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;

/// Metadata of a stored object version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes: MD5 hex, or MD5-of-MD5s `-N` for multipart.
    pub etag: String,
    /// Stored headers: standard ones (lowercase names) and `x-amz-meta-*`.
    pub headers: Vec<(String, String)>,
    /// Full-object or composite checksum.
    pub checksum: Option<Checksum>,
}

/// A reference to the bytes of one part of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRef {
    /// Part number (1 for simple uploads).
    pub part_number: u32,
    /// Where the bytes are (block rows).
    pub data_id: Uuid,
    /// Size in bytes.
    pub size: u64,
    /// Part checksum, if one was sent.
    pub checksum: Option<Checksum>,
}

/// The content of a complete object version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// A delete marker: the object does not exist from this version on.
    DeleteMarker,
    /// Small object stored in the entry itself.
    Inline {
        /// Metadata.
        meta: ObjectMeta,
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Object stored in blocks, part after part.
    Parts {
        /// Metadata.
        meta: ObjectMeta,
        /// The parts in order.
        parts: Vec<PartRef>,
    },
}

impl ObjectData {
    /// Metadata, unless this is a delete marker.
    pub fn meta(&self) -> Option<&ObjectMeta> {
        match self {
            ObjectData::DeleteMarker => None,
            ObjectData::Inline { meta, .. } | ObjectData::Parts { meta, .. } => Some(meta),
        }
    }
}

/// State of an object version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    /// Being uploaded. Multipart uploads stay here until completed or aborted.
    Uploading {
        /// Whether this is a multipart upload (its parts are in the part table).
        multipart: bool,
        /// Headers given when the upload started.
        headers: Vec<(String, String)>,
    },
    /// Visible.
    Complete(ObjectData),
    /// Abandoned; its data is released.
    Aborted,
}

impl VersionState {
    /// Of two states of one version, the higher wins. A completion beats an
    /// abort that raced with it: what a client was told is complete stays so.
    fn rank(&self) -> u8 {
        match self {
            VersionState::Uploading { .. } => 0,
            VersionState::Aborted => 1,
            VersionState::Complete(_) => 2,
        }
    }
}

/// One version of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectVersion {
    /// Version id (also the upload id of a multipart upload).
    pub uuid: Uuid,
    /// Last-writer-wins timestamp (HLC).
    pub timestamp: u64,
    /// State.
    pub state: VersionState,
    /// Whether this version is (or was) a multipart upload. Such a version,
    /// once superseded, leaves an abort tombstone: a replica that still has
    /// the upload in progress must not bring it back.
    #[serde(default)]
    pub multipart: bool,
}

/// All live versions of one object key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// Bucket id.
    pub bucket_id: Uuid,
    /// Object key.
    pub key: String,
    /// Versions by ascending (timestamp, uuid): at most one complete version (the
    /// last) and the uploads that started after it.
    pub versions: Vec<ObjectVersion>,
}

impl Object {
    /// The current complete version, if any (may be a delete marker).
    pub fn last_complete(&self) -> Option<(&ObjectVersion, &ObjectData)> {
        self.versions.iter().rev().find_map(|v| match &v.state {
            VersionState::Complete(d) => Some((v, d)),
            _ => None,
        })
    }

    /// The current visible version: complete and not a delete marker.
    pub fn visible(&self) -> Option<(&ObjectVersion, &ObjectData)> {
        self.last_complete()
            .filter(|(_, d)| !matches!(d, ObjectData::DeleteMarker))
    }

    /// Whether version `uuid` is still listed.
    pub fn has_version(&self, uuid: &Uuid) -> bool {
        self.versions.iter().any(|v| v.uuid == *uuid)
    }
}

impl Crdt for Object {
    fn merge(&mut self, other: &Self) {
        for ov in &other.versions {
            match self.versions.iter_mut().find(|v| v.uuid == ov.uuid) {
                Some(v) => {
                    v.multipart |= ov.multipart;
                    if ov.state.rank() > v.state.rank() {
                        v.state = ov.state.clone();
                        v.timestamp = ov.timestamp;
                    }
                }
                None => self.versions.push(ov.clone()),
            }
        }
        self.versions.sort_by_key(|v| (v.timestamp, v.uuid));
        // Keep the last complete version, what started after it, every
        // multipart upload in progress (uploads are independent of the object
        // until they complete) and every ended multipart upload as an abort
        // tombstone, so that a replica that still has the upload in progress
        // cannot bring it back.
        let Some(last) = self
            .versions
            .iter()
            .rposition(|v| matches!(v.state, VersionState::Complete(_)))
        else {
            return;
        };
        let mut index = 0;
        self.versions.retain_mut(|v| {
            let superseded = index < last;
            index += 1;
            if !superseded {
                return true;
            }
            match v.state {
                VersionState::Uploading {
                    multipart: true, ..
                }
                | VersionState::Aborted => true,
                VersionState::Complete(_) if v.multipart => {
                    v.state = VersionState::Aborted;
                    true
                }
                _ => false,
            }
        });
    }
}

impl Versioned for Object {
    const TYPE_NAME: &'static str = "Object";
    const FORMAT_VERSION: u8 = 1;
}

impl Entry for Object {
    fn partition_key(&self) -> Hash {
        bucket_partition(&self.bucket_id)
    }
    fn sort_key(&self) -> Vec<u8> {
        self.key.as_bytes().to_vec()
    }
}

/// Partition key of a bucket's objects.
pub fn bucket_partition(bucket_id: &Uuid) -> Hash {
    Hash::of(bucket_id.as_bytes())
}

/// The object table. Its hook queues for release the data of versions that
/// an update drops (replaced, deleted, aborted, or arriving already beaten),
/// and the parts of multipart uploads that end. It only queues, on this node:
/// the release itself (block rows and references, on other nodes) is the
/// release worker's.
#[derive(Debug, Default)]
pub struct ObjectTable;

impl TableSchema for ObjectTable {
    const TREE: Tree = Tree("objects");
    type Entry = Object;

    /// A deleted key with no upload in progress: only a delete marker and
    /// abort tombstones are left.
    fn is_tombstone(&self, o: &Object) -> bool {
        o.visible().is_none()
            && !o
                .versions
                .iter()
                .any(|v| matches!(v.state, VersionState::Uploading { .. }))
    }

    fn updated(
        &self,
        tx: &mut Tx<'_>,
        old: Option<&Object>,
        incoming: &Object,
        new: &Object,
    ) -> hangar_table::Result<()> {
        let before = old.into_iter().flat_map(|o| &o.versions);
        for ov in before.chain(&incoming.versions) {
            let now = new.versions.iter().find(|v| v.uuid == ov.uuid);
            let gone = matches!(
                now,
                None | Some(ObjectVersion {
                    state: VersionState::Aborted,
                    ..
                })
            );
            match &ov.state {
                VersionState::Complete(ObjectData::Parts { parts, .. }) if gone => {
                    for p in parts {
                        crate::release::queue(tx, &p.data_id)?;
                    }
                }
                VersionState::Uploading {
                    multipart: false, ..
                } if gone => {
                    crate::release::queue(tx, &ov.uuid)?;
                }
                VersionState::Uploading {
                    multipart: true, ..
                } => {
                    let kept: Vec<Uuid> = match now.map(|v| &v.state) {
                        Some(VersionState::Uploading { .. }) => continue,
                        Some(VersionState::Complete(ObjectData::Parts { parts, .. })) if !gone => {
                            parts.iter().map(|p| p.data_id).collect()
                        }
                        _ => Vec::new(),
                    };
                    crate::release::queue_parts(tx, &ov.uuid, &kept)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Versions as writers make them: even ids are simple writes (complete
    /// from the start), odd ids multipart uploads (in progress, then
    /// completed or aborted).
    fn version() -> impl Strategy<Value = ObjectVersion> {
        (0u8..5, 0u8..3).prop_map(|(id, st)| ObjectVersion {
            uuid: Uuid([id; 16]),
            multipart: id % 2 == 1,
            // The same id always has the same timestamp, as in real use.
            timestamp: u64::from(id) * 10,
            state: match (id % 2, st) {
                (0, _) | (1, 1) => VersionState::Complete(ObjectData::DeleteMarker),
                (1, 0) => VersionState::Uploading {
                    multipart: true,
                    headers: vec![],
                },
                _ => VersionState::Aborted,
            },
        })
    }

    /// `o` without abort tombstones.
    fn live(o: &Object) -> Object {
        let mut o = o.clone();
        o.versions
            .retain(|v| !matches!(v.state, VersionState::Aborted));
        o
    }

    fn object() -> impl Strategy<Value = Object> {
        proptest::collection::vec(version(), 0..4).prop_map(|vs| {
            let mut o = Object {
                bucket_id: Uuid([0; 16]),
                key: "k".into(),
                versions: vec![],
            };
            for v in vs {
                o.merge(&Object {
                    versions: vec![v],
                    ..o.clone()
                });
            }
            o
        })
    }

    fn merged(a: &Object, b: &Object) -> Object {
        let mut x = a.clone();
        x.merge(b);
        x
    }

    proptest! {
        #[test]
        fn object_merge_is_commutative_associative_idempotent(a in object(), b in object(), c in object()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&a, &a), a.clone());
            // Associative up to abort tombstones: an upload whose completion
            // was superseded before its (losing) abort arrived keeps the
            // tombstone where the abort came second, and not where the
            // completion was forgotten first. Either way nothing visible
            // differs, and exchanging the results converges.
            let left = merged(&merged(&a, &b), &c);
            let right = merged(&a, &merged(&b, &c));
            prop_assert_eq!(live(&left), live(&right));
            let both = merged(&left, &right);
            prop_assert_eq!(merged(&right, &left), both.clone());
            prop_assert_eq!(merged(&both, &left), both.clone());
            prop_assert_eq!(live(&both), live(&left));
        }
    }
}
