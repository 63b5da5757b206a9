//! The S3 front end. The `s3s` crate parses and renders the protocol (routing,
//! SigV4 verification, XML); this crate checks who may do what, translates each
//! operation into [`hangar_model::ObjectService`] calls and maps model errors to
//! S3 errors ([`error::to_s3`]). Every operation not implemented here answers
//! `501 NotImplemented`.
//!
//! Main types: [`S3Frontend`] (the `s3s::S3` implementation), [`S3Endpoint`]
//! and [`serve`] (the HTTP side: TCP_NODELAY, request ids, log levels by
//! status, graceful shutdown, and the few fixes a request needs before s3s
//! sees it).

mod access;
mod buckets;
mod checksums;
mod conditions;
mod dispatch;
pub mod error;
mod headers;
mod listing;
mod multipart;
mod objects;
mod progress;
mod server;
mod sig_v2_path;

use hangar_model::schema::access_key::AccessKey;
use hangar_model::ObjectService;
use s3s::S3Result;

pub use server::{build_endpoint, build_service, serve, S3Endpoint, S3Settings};

/// The S3 operations of Hangar.
#[derive(Clone, Debug)]
pub struct S3Frontend {
    model: ObjectService,
    settings: S3Settings,
}

/// What a request needs on its bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
    Owner,
    /// Any permission at all (to learn that the bucket exists).
    Any,
}

impl S3Frontend {
    /// A front end over `model`.
    pub fn new(model: ObjectService, settings: S3Settings) -> Self {
        S3Frontend { model, settings }
    }

    /// The access key that signed `req`. Every operation starts here, which
    /// marks the request as handled by Hangar ([`progress`]).
    pub(crate) async fn key_of<T>(&self, req: &s3s::S3Request<T>) -> S3Result<AccessKey> {
        progress::Progress::mark(&req.extensions, progress::Stage::Handled);
        let c = req
            .credentials
            .as_ref()
            .ok_or_else(|| s3s::s3_error!(AccessDenied, "anonymous access is not allowed"))?;
        self.model
            .get_key(&c.access_key)
            .await
            .map_err(access::key_error)
    }

    /// Resolves `bucket` for `key` and checks the permission.
    pub(crate) async fn bucket_for(
        &self,
        name: &str,
        key: &AccessKey,
        need: Need,
    ) -> S3Result<hangar_util::Uuid> {
        let id = self
            .model
            .resolve_bucket(name, Some(key))
            .await
            .map_err(error::to_s3)?;
        if !self.allows(key, &id, need).await? {
            return Err(s3s::s3_error!(
                AccessDenied,
                "the key lacks the permission on this bucket"
            ));
        }
        Ok(id)
    }

    /// Whether `key` has `need` on `bucket`. The key was read from this
    /// node's copy, which may not yet have a permission granted a moment ago
    /// (with the bucket's creation, say): a refusal is confirmed from a read
    /// quorum first.
    pub(crate) async fn allows(
        &self,
        key: &AccessKey,
        bucket: &hangar_util::Uuid,
        need: Need,
    ) -> S3Result<bool> {
        if need.met_by(key, bucket) {
            return Ok(true);
        }
        let fresh = self
            .model
            .get_key_from_quorum(&key.id)
            .await
            .map_err(access::key_error)?;
        Ok(need.met_by(&fresh, bucket))
    }
}

impl Need {
    /// Whether `key`'s permission on `bucket` covers this need.
    fn met_by(self, key: &AccessKey, bucket: &hangar_util::Uuid) -> bool {
        let p = key.permission(bucket);
        match self {
            Need::Read => p.read,
            Need::Write => p.write,
            Need::Owner => p.owner,
            Need::Any => p.is_any(),
        }
    }
}
