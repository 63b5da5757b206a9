//! Release of data that no version references any more.
//!
//! A data id (the bytes of a simple upload or of one part) is queued here, in the
//! transaction that stops referencing it. [`ObjectService::release_some`](crate::ObjectService::release_some)
//! then removes its block rows in bounded batches, each row's removal dropping
//! its block reference in the same transaction.
//!
//! Uploads being streamed are recorded in `uploads_in_flight`, so that the data
//! of an upload cut short by a crash is released at the next start.

use hangar_db::{Tree, Tx};
use hangar_util::Uuid;

/// Data ids waiting for release.
pub(crate) const QUEUE: Tree = Tree("data_release");
/// Uploads being streamed by this node (data ids).
pub(crate) const IN_FLIGHT: Tree = Tree("uploads_in_flight");

/// Queues `data_id` for release.
pub fn queue(tx: &mut Tx<'_>, data_id: &Uuid) -> hangar_db::Result<()> {
    tx.insert(QUEUE, data_id.as_bytes(), b"")
}
