//! Whether a version still uses some data: the check every release makes.
//!
//! Data is released (its block rows and references marked deleted) only when
//! no version can use it any more. A local record saying the data is unused
//! can be stale: an upload cut short by a crash may have committed (or
//! reached one replica, from which it spreads), and a replica that saw a
//! version superseded may be the only one so far. So the release reads the
//! data's owner (recorded in every block row: bucket, key, version or upload,
//! part, timestamp) from **every** replica of the owner, and decides:
//!
//! - some replica's copy uses the data: if another replica's copy shows the
//!   version superseded, the stale copies will learn it, so ask again later;
//!   otherwise the version lives and the data is kept;
//! - no replica that answered uses it, and either every replica answered or,
//!   in every live layout version, a write quorum holds a complete version
//!   newer than the owner (so no read can ever see the owner again): release;
//! - otherwise (replicas missing, nothing proves the version dead): ask again
//!   later.

use hangar_util::{Hash, Uuid};

use super::ObjectService;
use crate::schema::block_row::DataOwner;
use crate::schema::object::{bucket_partition, Object, ObjectData, VersionState};
use crate::Result;

/// What the replicas say of some data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A live version uses it: keep it.
    InUse,
    /// No version uses it or ever can again: release it.
    Unused,
    /// Not known yet (replicas did not answer, or a stale replica still
    /// uses it): ask again later.
    Unsure,
}

/// What one replica's copy of the owner's object says of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Copy {
    /// Its version uses the data.
    Uses,
    /// It does not use the data.
    DoesNot,
    /// The owner is an upload in progress: its part table tells.
    AskParts,
}

fn uses(object: &Object, owner: &DataOwner, data_id: Uuid) -> Copy {
    let Some(v) = object.versions.iter().find(|v| v.uuid == owner.version) else {
        return Copy::DoesNot;
    };
    match &v.state {
        VersionState::Complete(ObjectData::Parts { parts, .. })
            if parts.iter().any(|p| p.data_id == data_id) =>
        {
            Copy::Uses
        }
        VersionState::Uploading {
            multipart: true, ..
        } if owner.part_number.is_some() => Copy::AskParts,
        _ => Copy::DoesNot,
    }
}

/// Whether `object` (one replica's copy) shows the owner's version dead: a
/// complete version (another one) newer than it, or the version aborted.
fn buries(object: Option<&Object>, owner: &DataOwner) -> bool {
    let Some(object) = object else {
        return false;
    };
    if object
        .versions
        .iter()
        .any(|v| v.uuid == owner.version && matches!(v.state, VersionState::Aborted))
    {
        return true;
    }
    let Some(ts) = owner.timestamp else {
        return false;
    };
    // Another version: a multipart completion takes a newer timestamp than
    // its upload's, recorded as the parts' owner.
    object.last_complete().is_some_and(|(v, _)| {
        v.uuid != owner.version && (v.timestamp, v.uuid) > (ts, owner.version)
    })
}

impl ObjectService {
    /// Whether a version uses `data_id`, owned by `owner`, asking every
    /// replica of the owner's object (and of the upload's part, for a part
    /// of an upload in progress).
    pub(crate) async fn data_usage(&self, data_id: Uuid, owner: &DataOwner) -> Result<Usage> {
        let objects = self
            .inner
            .objects
            .read_every_replica(&bucket_partition(&owner.bucket_id), owner.key.as_bytes())
            .await?;
        let mut in_use = false;
        let mut part_pending = false;
        for o in objects.copies() {
            match uses(o, owner, data_id) {
                Copy::Uses => in_use = true,
                Copy::DoesNot => {}
                Copy::AskParts => part_pending = true,
            }
        }
        let superseded = objects.answers.values().any(|o| buries(o.as_ref(), owner));
        if !in_use && part_pending {
            if let Some(n) = owner.part_number {
                let parts = self
                    .inner
                    .parts
                    .read_every_replica(&Hash::of(owner.version.as_bytes()), &n.to_be_bytes())
                    .await?;
                if parts.copies().any(|p| p.data_id == data_id) {
                    in_use = true;
                } else if !parts.all_answered() {
                    return Ok(Usage::Unsure);
                }
            }
        }
        if in_use {
            return Ok(if superseded {
                Usage::Unsure
            } else {
                Usage::InUse
            });
        }
        if objects.all_answered() || objects.write_quorum_where(|o| buries(o, owner)) {
            return Ok(Usage::Unused);
        }
        Ok(Usage::Unsure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::object::{ObjectMeta, ObjectVersion, PartRef};

    fn owner(ts: Option<u64>) -> DataOwner {
        DataOwner {
            bucket_id: Uuid([1; 16]),
            key: "k".into(),
            version: Uuid([2; 16]),
            part_number: None,
            written_at: 0,
            timestamp: ts,
        }
    }

    fn object(versions: Vec<(u8, u64, Option<Uuid>)>) -> Object {
        Object {
            bucket_id: Uuid([1; 16]),
            key: "k".into(),
            versions: versions
                .into_iter()
                .map(|(id, ts, data)| ObjectVersion {
                    uuid: Uuid([id; 16]),
                    timestamp: ts,
                    multipart: false,
                    state: VersionState::Complete(match data {
                        Some(d) => ObjectData::Parts {
                            meta: ObjectMeta {
                                size: 1,
                                etag: String::new(),
                                headers: vec![],
                                checksum: None,
                            },
                            parts: vec![PartRef {
                                part_number: 1,
                                data_id: d,
                                size: 1,
                                checksum: None,
                            }],
                        },
                        None => ObjectData::DeleteMarker,
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn a_copy_uses_the_data_of_its_version_only() {
        let d = Uuid([9; 16]);
        let o = owner(Some(10));
        assert_eq!(uses(&object(vec![(2, 10, Some(d))]), &o, d), Copy::Uses);
        let other = Uuid([8; 16]);
        assert_eq!(
            uses(&object(vec![(2, 10, Some(other))]), &o, d),
            Copy::DoesNot
        );
        // Another version using the same data id is not the owner.
        assert_eq!(uses(&object(vec![(3, 20, Some(d))]), &o, d), Copy::DoesNot);
    }

    #[test]
    fn only_a_newer_complete_version_buries_one() {
        let o = owner(Some(10));
        assert!(buries(Some(&object(vec![(3, 20, None)])), &o));
        assert!(!buries(Some(&object(vec![(3, 5, None)])), &o));
        assert!(!buries(None, &o));
        // The owner itself, completed later, does not bury itself.
        assert!(!buries(Some(&object(vec![(2, 20, None)])), &o));
        // Without the owner's timestamp, nothing can be said.
        assert!(!buries(Some(&object(vec![(3, 20, None)])), &owner(None)));
    }
}
