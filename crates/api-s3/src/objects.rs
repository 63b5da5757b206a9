//! Object operations: PutObject, GetObject, HeadObject, DeleteObject(s), CopyObject.

use futures::StreamExt;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::schema::object::{ObjectData, ObjectMeta, ObjectVersion};
use hangar_model::{BodyStream, ObjectService, Precondition};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use tracing::warn;

use crate::checksums::{self, ChecksumFields};
use crate::conditions::{self, Conditions};
use crate::error::to_s3;
use crate::headers::{self, etag, timestamp, StandardHeaders};
use crate::{Need, S3Frontend};

/// Adapts an s3s body to the model's body type.
pub(crate) fn body_of(blob: Option<StreamingBlob>) -> BodyStream {
    match blob {
        Some(b) => Box::pin(b.map(|r| r.map_err(std::io::Error::other))),
        None => Box::pin(futures::stream::empty()),
    }
}

/// Features we do not implement must not be silently accepted.
pub(crate) fn reject_unsupported(
    sse: Option<&ServerSideEncryption>,
    sse_c: Option<&SSECustomerAlgorithm>,
    lock: bool,
    acl: Option<&ObjectCannedACL>,
    storage_class: Option<&StorageClass>,
    tagging: bool,
    redirect: bool,
) -> S3Result<()> {
    if sse.is_some() || sse_c.is_some() {
        return Err(s3_error!(
            NotImplemented,
            "Server-side encryption is not supported"
        ));
    }
    if lock {
        return Err(s3_error!(NotImplemented, "Object lock is not supported"));
    }
    if acl.is_some_and(|a| a.as_str() != ObjectCannedACL::PRIVATE) {
        return Err(s3_error!(
            NotImplemented,
            "Only the private canned ACL is supported"
        ));
    }
    if storage_class.is_some_and(|s| s.as_str() != StorageClass::STANDARD) {
        return Err(s3_error!(
            NotImplemented,
            "Only the STANDARD storage class is supported"
        ));
    }
    if tagging {
        return Err(s3_error!(NotImplemented, "Object tagging is not supported"));
    }
    if redirect {
        return Err(s3_error!(
            NotImplemented,
            "Website redirects are not supported"
        ));
    }
    Ok(())
}

pub(crate) fn reject_version_id(v: Option<&String>) -> S3Result<()> {
    match v.map(String::as_str) {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(
            NotImplemented,
            "Bucket versioning is not supported"
        )),
    }
}

/// The visible version of `key` with its metadata; `None` when there is none.
/// A failed read is an error, never taken for an absent key.
async fn current_meta(
    model: &ObjectService,
    bucket: &hangar_util::Uuid,
    key: &str,
) -> S3Result<Option<(ObjectVersion, ObjectMeta)>> {
    match model.get_object(bucket, key).await {
        Ok((v, d)) => Ok(d.meta().cloned().map(|m| (v, m))),
        Err(hangar_model::Error::NoSuchKey) => Ok(None),
        Err(e) => Err(to_s3(e)),
    }
}

/// The version a GET or HEAD reads, and which bytes of it.
struct Located {
    version: ObjectVersion,
    data: ObjectData,
    meta: ObjectMeta,
    span: std::ops::Range<u64>,
    /// Number of parts, when one part was asked for.
    parts: Option<usize>,
}

impl S3Frontend {
    pub(crate) async fn handle_put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        reject_unsupported(
            i.server_side_encryption.as_ref(),
            i.sse_customer_algorithm.as_ref(),
            i.object_lock_mode.is_some() || i.object_lock_legal_hold_status.is_some(),
            i.acl.as_ref(),
            i.storage_class.as_ref(),
            i.tagging.is_some(),
            i.website_redirect_location.is_some(),
        )?;
        if i.write_offset_bytes.is_some() {
            return Err(s3_error!(NotImplemented, "Appends are not supported"));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        if i.if_match.is_some() || i.if_none_match.is_some() {
            let c = Conditions {
                if_match: i.if_match.as_ref(),
                if_none_match: i.if_none_match.as_ref(),
                ..Default::default()
            };
            match current_meta(&self.model, &bucket, &i.key).await? {
                Some((v, m)) => conditions::check(&c, &m.etag, v.timestamp, false)?,
                None if i.if_match.is_some() => return Err(s3_error!(NoSuchKey)),
                None => {}
            }
        }
        let mut params = checksums::put_params(
            &ChecksumFields {
                algorithm: i.checksum_algorithm.as_ref(),
                crc32: i.checksum_crc32.as_ref(),
                crc32c: i.checksum_crc32c.as_ref(),
                crc64nvme: i.checksum_crc64nvme.as_ref(),
                sha1: i.checksum_sha1.as_ref(),
                sha256: i.checksum_sha256.as_ref(),
                content_md5: i.content_md5.as_ref(),
            },
            &req.headers,
            req.trailing_headers,
        )?;
        params.headers = headers::to_stored(&StandardHeaders {
            cache_control: i.cache_control.as_ref(),
            content_disposition: i.content_disposition.as_ref(),
            content_encoding: i.content_encoding.as_ref(),
            content_language: i.content_language.as_ref(),
            content_type: i.content_type.as_ref(),
            expires: i.expires.as_ref(),
            metadata: i.metadata.as_ref(),
        })?;
        params.precondition = match (&i.if_none_match, &i.if_match) {
            (Some(ETagCondition::Any), _) => Some(Precondition::Absent),
            (Some(ETagCondition::ETag(_)), _) => {
                return Err(s3_error!(
                    NotImplemented,
                    "If-None-Match on writes supports only '*'"
                ));
            }
            (None, Some(ETagCondition::Any)) => Some(Precondition::ETagIs("*".into())),
            (None, Some(ETagCondition::ETag(ETag::Strong(v) | ETag::Weak(v)))) => {
                Some(Precondition::ETagIs(v.clone()))
            }
            (None, None) => None,
        };
        let r = self
            .model
            .put_object(bucket, &i.key, params, body_of(i.body))
            .await
            .map_err(to_s3)?;
        let c = checksums::out(r.checksum.as_ref());
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&r.etag)),
            checksum_crc32: c.0,
            checksum_crc32c: c.1,
            checksum_crc64nvme: c.2,
            checksum_sha1: c.3,
            checksum_sha256: c.4,
            checksum_type: r
                .checksum
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
            ..Default::default()
        }))
    }

    /// Shared by GET and HEAD: finds the version, checks conditions, computes the range.
    async fn locate(
        &self,
        bucket: &hangar_util::Uuid,
        key: &str,
        cond: &Conditions<'_>,
        part_number: Option<i32>,
        range: Option<&Range>,
    ) -> S3Result<Located> {
        let (version, data) = self.model.get_object(bucket, key).await.map_err(to_s3)?;
        let meta = data.meta().cloned().ok_or_else(|| s3_error!(NoSuchKey))?;
        conditions::check_read(cond, &meta, version.timestamp)?;
        let (span, parts) = match (part_number, range) {
            (Some(_), Some(_)) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter"
                ))
            }
            (Some(n), None) => {
                let n = u32::try_from(n)
                    .map_err(|_| s3_error!(InvalidArgument, "invalid partNumber"))?;
                let (r, count) = ObjectService::part_range(&data, n).ok_or_else(|| {
                    s3_error!(InvalidPart, "The requested partnumber is not satisfiable")
                })?;
                (r, Some(count))
            }
            (None, Some(r)) => (
                r.check(meta.size).map_err(|_| {
                    s3_error!(InvalidRange, "The requested range is not satisfiable")
                })?,
                None,
            ),
            (None, None) => (0..meta.size, None),
        };
        Ok(Located {
            version,
            data,
            meta,
            span,
            parts,
        })
    }

    pub(crate) async fn handle_get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let key = self.key_of(&req).await?;
        let i = &req.input;
        reject_version_id(i.version_id.as_ref())?;
        if i.sse_customer_algorithm.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Server-side encryption is not supported"
            ));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let located = self
            .locate(&bucket, &i.key, &cond, i.part_number, i.range.as_ref())
            .await?;
        let body = first_chunk_read(self.model.read_data(&located.data, located.span.clone()))
            .await
            .map_err(|e| {
                warn!(bucket = %i.bucket, key = %i.key, error = %e, "object data unreadable");
                crate::error::unavailable(
                    "The object's data cannot be read right now. Please try again.",
                )
            })?;
        let (h, status) = describe(&located, i.range.is_some(), i.checksum_mode.as_ref());
        let out = GetObjectOutput {
            body: Some(StreamingBlob::wrap(body)),
            content_length: h.content_length,
            content_range: h.content_range,
            accept_ranges: h.accept_ranges,
            e_tag: h.e_tag,
            last_modified: h.last_modified,
            parts_count: h.parts_count,
            checksum_crc32: h.checksum_crc32,
            checksum_crc32c: h.checksum_crc32c,
            checksum_crc64nvme: h.checksum_crc64nvme,
            checksum_sha1: h.checksum_sha1,
            checksum_sha256: h.checksum_sha256,
            cache_control: h.cache_control,
            content_disposition: h.content_disposition,
            content_encoding: h.content_encoding,
            content_language: h.content_language,
            content_type: h.content_type,
            expires: h.expires,
            metadata: h.metadata,
            ..Default::default()
        };
        let mut resp = S3Response::new(out);
        resp.status = status;
        Ok(resp)
    }

    pub(crate) async fn handle_head_object(
        &self,
        req: &S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let key = self.key_of(req).await?;
        let i = &req.input;
        reject_version_id(i.version_id.as_ref())?;
        if i.sse_customer_algorithm.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Server-side encryption is not supported"
            ));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        let cond = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let located = self
            .locate(&bucket, &i.key, &cond, i.part_number, i.range.as_ref())
            .await?;
        let (out, status) = describe(&located, i.range.is_some(), i.checksum_mode.as_ref());
        let mut resp = S3Response::new(out);
        resp.status = status;
        Ok(resp)
    }

    pub(crate) async fn handle_delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let key = self.key_of(&req).await?;
        reject_version_id(req.input.version_id.as_ref())?;
        let bucket = self
            .bucket_for(&req.input.bucket, &key, Need::Write)
            .await?;
        self.model
            .delete_object(bucket, &req.input.key)
            .await
            .map_err(to_s3)?;
        let mut resp = S3Response::new(DeleteObjectOutput::default());
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    pub(crate) async fn handle_delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let key = self.key_of(&req).await?;
        let bucket = self
            .bucket_for(&req.input.bucket, &key, Need::Write)
            .await?;
        let quiet = req.input.delete.quiet == Some(true);
        if req.input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "At most 1000 keys may be deleted at once"
            ));
        }
        if req
            .input
            .delete
            .objects
            .iter()
            .any(|o| o.e_tag.is_some() || o.size.is_some() || o.last_modified_time.is_some())
        {
            return Err(s3_error!(
                NotImplemented,
                "Conditional deletes are not supported"
            ));
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in req.input.delete.objects {
            let result = match reject_version_id(o.version_id.as_ref()) {
                Ok(()) => self
                    .model
                    .delete_object(bucket, &o.key)
                    .await
                    .map_err(to_s3),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(o.key),
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    message: e.message().map(str::to_string),
                    key: Some(o.key),
                    version_id: o.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            request_charged: None,
        }))
    }

    pub(crate) async fn handle_copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        reject_unsupported(
            i.server_side_encryption.as_ref(),
            i.sse_customer_algorithm
                .as_ref()
                .or(i.copy_source_sse_customer_algorithm.as_ref()),
            i.object_lock_mode.is_some() || i.object_lock_legal_hold_status.is_some(),
            i.acl.as_ref(),
            i.storage_class.as_ref(),
            i.tagging.is_some()
                || i.tagging_directive
                    .as_ref()
                    .is_some_and(|t| t.as_str() == TaggingDirective::REPLACE),
            i.website_redirect_location.is_some(),
        )?;
        let source = self
            .copy_source_object(
                &key,
                &i.copy_source,
                &Conditions {
                    if_match: i.copy_source_if_match.as_ref(),
                    if_none_match: i.copy_source_if_none_match.as_ref(),
                    if_modified_since: i.copy_source_if_modified_since.as_ref(),
                    if_unmodified_since: i.copy_source_if_unmodified_since.as_ref(),
                },
            )
            .await?;
        let (src_bucket, src_key, data) = (source.bucket, source.key, source.data);
        let dst_bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        let replace = i
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if src_bucket == dst_bucket && src_key == i.key && !replace {
            return Err(s3_error!(InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
        }
        let headers = if replace {
            Some(headers::to_stored(&StandardHeaders {
                cache_control: i.cache_control.as_ref(),
                content_disposition: i.content_disposition.as_ref(),
                content_encoding: i.content_encoding.as_ref(),
                content_language: i.content_language.as_ref(),
                content_type: i.content_type.as_ref(),
                expires: i.expires.as_ref(),
                metadata: i.metadata.as_ref(),
            })?)
        } else {
            None
        };
        let r = self
            .model
            .copy_object(&data, dst_bucket, &i.key, headers)
            .await
            .map_err(to_s3)?;
        let c = checksums::out(r.checksum.as_ref());
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&r.etag)),
                last_modified: Some(timestamp(self.model.clock().wall_msec())),
                checksum_crc32: c.0,
                checksum_crc32c: c.1,
                checksum_crc64nvme: c.2,
                checksum_sha1: c.3,
                checksum_sha256: c.4,
                checksum_type: None,
            }),
            ..Default::default()
        }))
    }
}

/// The object a copy reads, once permissions and copy-source conditions passed.
pub(crate) struct CopySourceObject {
    pub(crate) bucket: hangar_util::Uuid,
    pub(crate) key: String,
    pub(crate) data: ObjectData,
}

impl S3Frontend {
    /// Resolves a copy source for `key` (read permission, no version ids) and
    /// checks the `x-amz-copy-source-if-*` conditions against it.
    pub(crate) async fn copy_source_object(
        &self,
        key: &AccessKey,
        source: &CopySource,
        cond: &Conditions<'_>,
    ) -> S3Result<CopySourceObject> {
        let (bucket_name, src_key, version_id) = copy_source(source)?;
        reject_version_id(version_id.as_ref())?;
        let bucket = self.bucket_for(&bucket_name, key, Need::Read).await?;
        let (version, data) = self
            .model
            .get_object(&bucket, &src_key)
            .await
            .map_err(to_s3)?;
        let meta = data.meta().ok_or_else(|| s3_error!(NoSuchKey))?;
        conditions::check(cond, &meta.etag, version.timestamp, false)?;
        Ok(CopySourceObject {
            bucket,
            key: src_key,
            data,
        })
    }
}

/// Bucket, key and version of a copy source.
pub(crate) fn copy_source(s: &CopySource) -> S3Result<(String, String, Option<String>)> {
    match s {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((
            bucket.to_string(),
            key.to_string(),
            version_id.as_ref().map(ToString::to_string),
        )),
        CopySource::AccessPoint { .. } | CopySource::Outpost { .. } => Err(s3_error!(
            NotImplemented,
            "Access points and outposts are not supported"
        )),
    }
}

/// The headers GET and HEAD answer with for `located`, and the status (206 for
/// a range or one part of several). Checksums are returned only in checksum
/// mode and for the whole object.
fn describe(
    located: &Located,
    ranged: bool,
    checksum_mode: Option<&ChecksumMode>,
) -> (HeadObjectOutput, Option<http::StatusCode>) {
    let Located {
        version,
        meta,
        span,
        parts,
        ..
    } = located;
    let partial = ranged || parts.is_some_and(|n| n > 1);
    let wants_checksum = checksum_mode.is_some_and(|m| m.as_str() == ChecksumMode::ENABLED);
    let c = if wants_checksum && !partial {
        checksums::out(meta.checksum.as_ref())
    } else {
        Default::default()
    };
    let out = HeadObjectOutput {
        content_length: Some(i64::try_from(span.end - span.start).unwrap_or(i64::MAX)),
        content_range: partial.then(|| {
            format!(
                "bytes {}-{}/{}",
                span.start,
                span.end.saturating_sub(1),
                meta.size
            )
        }),
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&meta.etag)),
        last_modified: Some(timestamp(version.timestamp)),
        parts_count: parts.and_then(|n| i32::try_from(n).ok()),
        checksum_crc32: c.0,
        checksum_crc32c: c.1,
        checksum_crc64nvme: c.2,
        checksum_sha1: c.3,
        checksum_sha256: c.4,
        cache_control: headers::stored(meta, "cache-control").cloned(),
        content_disposition: headers::stored(meta, "content-disposition").cloned(),
        content_encoding: headers::stored(meta, "content-encoding").cloned(),
        content_language: headers::stored(meta, "content-language").cloned(),
        content_type: headers::stored(meta, "content-type").cloned(),
        expires: headers::expires(meta),
        metadata: headers::user_metadata(meta),
        ..Default::default()
    };
    (out, partial.then_some(http::StatusCode::PARTIAL_CONTENT))
}

/// `body` once its first chunk was read: data that cannot be read at all
/// fails the request with an error status, instead of a 200 whose body ends
/// at once. (An error later in the body can only cut the stream.)
async fn first_chunk_read(mut body: BodyStream) -> Result<BodyStream, std::io::Error> {
    match body.next().await {
        None => Ok(Box::pin(futures::stream::empty())),
        Some(Err(e)) => Err(e),
        Some(Ok(first)) => Ok(Box::pin(futures::stream::iter([Ok(first)]).chain(body))),
    }
}
