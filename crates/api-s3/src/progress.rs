//! How far s3s got with a request, to tell whose fault a failure was.
//!
//! s3s reads the whole body of the operations whose input is an XML document
//! (CreateBucket, DeleteObjects, CompleteMultipartUpload, ...) itself, after
//! the access check and before the operation, and answers any failure to
//! read it, an aws-chunked body it cannot decode included, with a bare
//! `500 InternalError`. A request that failed there is the client's fault:
//! [`S3Endpoint::respond`](crate::S3Endpoint::respond) tells it from a server
//! fault by the stage the request reached.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The stage one request has reached, shared between the endpoint (which
/// puts it in the request's extensions) and the hooks s3s calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress(Arc<AtomicU8>);

/// Stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Stage {
    /// Not yet authorised: s3s is parsing the request and its signature.
    Received = 0,
    /// The access check passed; s3s reads an XML body next, if the
    /// operation has one.
    Authorised = 1,
    /// Hangar's handler of the operation has started.
    Handled = 2,
}

impl Progress {
    /// Records that the request has reached `stage`.
    pub(crate) fn reach(&self, stage: Stage) {
        self.0.fetch_max(stage as u8, Ordering::Relaxed);
    }

    /// The furthest stage reached.
    pub(crate) fn stage(&self) -> Stage {
        match self.0.load(Ordering::Relaxed) {
            0 => Stage::Received,
            1 => Stage::Authorised,
            _ => Stage::Handled,
        }
    }

    /// Records `stage` on the progress in `extensions`, if there is one.
    pub(crate) fn mark(extensions: &http::Extensions, stage: Stage) {
        if let Some(p) = extensions.get::<Progress>() {
            p.reach(stage);
        }
    }
}
