//! Release of data that no version references any more.
//!
//! A data id (the bytes of a simple upload or of one part) is queued here, in the
//! transaction that stops referencing it, on every node that sees it stop
//! (the object's replicas run the same hook). The release worker
//! ([`ObjectService::release_some`](crate::ObjectService::release_some)) then
//! marks the data's block rows and block references deleted, through the
//! cluster, in bounded batches; each node holding a block drops its reference
//! count when the deletion reaches it. Releasing twice is harmless.
//!
//! A multipart upload that ends (completed or aborted) is queued with the
//! data ids its object kept; the worker reads the upload's parts and queues
//! the data of the others.
//!
//! Uploads being streamed by this node are recorded in `uploads_in_flight`, so
//! that the data of an upload cut short by a crash is released at the next
//! start.
//!
//! Nothing is released on the word of a record that may be stale. A queued
//! data id is either known never to have been committed (the upload failed
//! before its commit was sent: [`queue_unused`]), or it must be checked first
//! ([`queue`]): the hooks' view is one replica's, and an upload cut short by a
//! crash may have committed, or reached a single replica from which it will
//! spread. The release worker then reads the data's owner (recorded in its
//! block rows) from every replica, and releases only data that no replica
//! uses and that can no longer become visible (see
//! [`ObjectService::release_some`](crate::ObjectService::release_some)).

use hangar_db::{Tree, Tx};
use hangar_util::Uuid;

/// Data ids waiting for release: data id to [`Queued`].
pub(crate) const QUEUE: Tree = Tree("data_release");
/// Ended multipart uploads whose unused parts wait for release: upload id to
/// the data ids kept (16 bytes each).
pub(crate) const PARTS_QUEUE: Tree = Tree("parts_release");
/// Uploads being streamed by this node (data ids).
pub(crate) const IN_FLIGHT: Tree = Tree("uploads_in_flight");

/// Queues `data_id` for release once no replica's version uses it.
pub fn queue(tx: &mut Tx<'_>, data_id: &Uuid) -> hangar_db::Result<()> {
    tx.insert(QUEUE, data_id.as_bytes(), &Queued::default().encode())
}

/// Queues `data_id`, which no commit ever referenced (its upload failed
/// before committing), for release without a check.
pub fn queue_unused(tx: &mut Tx<'_>, data_id: &Uuid) -> hangar_db::Result<()> {
    let q = Queued {
        checked: false,
        due: None,
    };
    tx.insert(QUEUE, data_id.as_bytes(), &q.encode())
}

/// A release queue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    /// Whether the replicas must be asked whether a version uses the data.
    pub(crate) checked: bool,
    /// When it may be released (wall msec), once the worker has seen it.
    pub(crate) due: Option<u64>,
}

impl Default for Queued {
    fn default() -> Self {
        Queued {
            checked: true,
            due: None,
        }
    }
}

impl Queued {
    /// Empty (what every older version wrote: checked, not yet seen), or a
    /// flag byte (1: unused, no check) followed by the due time (u64 BE).
    pub(crate) fn encode(self) -> Vec<u8> {
        if self == Queued::default() {
            return Vec::new();
        }
        let mut v = vec![u8::from(!self.checked)];
        if let Some(due) = self.due {
            v.extend_from_slice(&due.to_be_bytes());
        }
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Self {
        let Some((&flags, rest)) = v.split_first() else {
            return Queued::default();
        };
        Queued {
            checked: flags & 1 == 0,
            due: <[u8; 8]>::try_from(rest).ok().map(u64::from_be_bytes),
        }
    }
}

/// Queues the parts of ended upload `upload_id` for release, except those
/// whose data is in `kept`.
pub fn queue_parts(tx: &mut Tx<'_>, upload_id: &Uuid, kept: &[Uuid]) -> hangar_db::Result<()> {
    let value: Vec<u8> = kept.iter().flat_map(|id| id.0).collect();
    tx.insert(PARTS_QUEUE, upload_id.as_bytes(), &value)
}

/// The kept data ids recorded by [`queue_parts`].
pub(crate) fn kept_ids(value: &[u8]) -> Vec<Uuid> {
    value
        .chunks_exact(16)
        .map(|c| Uuid(c.try_into().expect("chunks of 16")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Queued;

    #[test]
    fn queue_entries_read_back_as_written() {
        for checked in [true, false] {
            for due in [None, Some(0), Some(1_700_000_000_000)] {
                let q = Queued { checked, due };
                assert_eq!(Queued::decode(&q.encode()), q);
            }
        }
        assert_eq!(Queued::decode(b""), Queued::default());
    }
}
