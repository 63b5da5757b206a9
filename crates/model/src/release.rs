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

use hangar_db::{Tree, Tx};
use hangar_util::Uuid;

/// Data ids waiting for release.
pub(crate) const QUEUE: Tree = Tree("data_release");
/// Ended multipart uploads whose unused parts wait for release: upload id to
/// the data ids kept (16 bytes each).
pub(crate) const PARTS_QUEUE: Tree = Tree("parts_release");
/// Uploads being streamed by this node (data ids).
pub(crate) const IN_FLIGHT: Tree = Tree("uploads_in_flight");

/// Queues `data_id` for release.
pub fn queue(tx: &mut Tx<'_>, data_id: &Uuid) -> hangar_db::Result<()> {
    tx.insert(QUEUE, data_id.as_bytes(), b"")
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
