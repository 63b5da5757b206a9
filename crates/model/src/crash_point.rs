//! The steps of the write and release paths where crash tests stop a node.
//!
//! A node's [`ObjectService`](crate::ObjectService) reports each step to a
//! hook ([`ObjectService::set_crash_hook`](crate::ObjectService::set_crash_hook));
//! servers set none. Tests crash the node from the hook (its disk keeps what
//! a killed process leaves, its network goes away), then check that no
//! acknowledged write is lost and no object is listed that cannot be read.

use std::sync::Arc;

/// A step of PutObject (and UploadPart, CopyObject) or of the release of data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// The upload's data id was recorded in flight; no block is stored yet.
    InFlightRecorded,
    /// Every block and block row is stored and the body verified; the
    /// version is not sent yet.
    BeforeCommit,
    /// The version is committed at write quorum; its in-flight record is
    /// still there.
    AfterCommit,
    /// The in-flight record is settled; the client is not answered yet.
    AfterSettle,
    /// A queued data id is due; the release is about to ask the replicas
    /// whether a version uses it.
    ReleaseCheck,
    /// The release is about to mark a batch of block rows deleted.
    ReleaseRows,
}

impl CrashPoint {
    /// Every step, in the order a PUT and then a release reach them.
    pub const ALL: [CrashPoint; 6] = [
        CrashPoint::InFlightRecorded,
        CrashPoint::BeforeCommit,
        CrashPoint::AfterCommit,
        CrashPoint::AfterSettle,
        CrashPoint::ReleaseCheck,
        CrashPoint::ReleaseRows,
    ];
}

/// What [`ObjectService::set_crash_hook`](crate::ObjectService::set_crash_hook) takes.
pub type CrashHook = Arc<dyn Fn(CrashPoint) + Send + Sync>;
