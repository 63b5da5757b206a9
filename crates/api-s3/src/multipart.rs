//! Multipart upload operations.

use hangar_model::CompletedPart;
use hangar_util::Uuid;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::checksums::{self, ChecksumFields};
use crate::conditions::Conditions;
use crate::error::to_s3;
use crate::headers::{self, etag, timestamp, StandardHeaders};
use crate::objects::{body_of, reject_unsupported};
use crate::{Need, S3Frontend};

fn upload_id(s: &str) -> S3Result<Uuid> {
    Uuid::from_hex(s).ok_or_else(|| {
        s3_error!(
            NoSuchUpload,
            "The specified multipart upload does not exist."
        )
    })
}

fn part_number(n: i32) -> S3Result<u32> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive"
            )
        })
}

impl S3Frontend {
    pub(crate) async fn handle_create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
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
        if i.checksum_type
            .as_ref()
            .is_some_and(|t| t.as_str() == ChecksumType::FULL_OBJECT)
        {
            return Err(s3_error!(
                NotImplemented,
                "Full-object checksums of multipart uploads are not supported"
            ));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        let stored = headers::to_stored(&StandardHeaders {
            cache_control: i.cache_control.as_ref(),
            content_disposition: i.content_disposition.as_ref(),
            content_encoding: i.content_encoding.as_ref(),
            content_language: i.content_language.as_ref(),
            content_type: i.content_type.as_ref(),
            expires: i.expires.as_ref(),
            metadata: i.metadata.as_ref(),
        })?;
        let id = self
            .model
            .create_multipart_upload(bucket, &i.key, stored)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id.to_hex()),
            checksum_algorithm: i.checksum_algorithm,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        if i.sse_customer_algorithm.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Server-side encryption is not supported"
            ));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        let params = checksums::put_params(
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
        let r = self
            .model
            .upload_part(
                bucket,
                &i.key,
                upload_id(&i.upload_id)?,
                part_number(i.part_number)?,
                params,
                body_of(i.body),
            )
            .await
            .map_err(to_s3)?;
        let c = checksums::out(r.checksum.as_ref());
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(etag(&r.etag)),
            checksum_crc32: c.0,
            checksum_crc32c: c.1,
            checksum_crc64nvme: c.2,
            checksum_sha1: c.3,
            checksum_sha256: c.4,
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        if i.sse_customer_algorithm.is_some() || i.copy_source_sse_customer_algorithm.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Server-side encryption is not supported"
            ));
        }
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
        let data = source.data;
        let meta = data.meta().ok_or_else(|| s3_error!(NoSuchKey))?;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        let span = match &i.copy_source_range {
            None => 0..meta.size,
            Some(r) => {
                let parsed = Range::parse(r).map_err(|_| {
                    s3_error!(
                        InvalidArgument,
                        "The x-amz-copy-source-range value must be of the form bytes=first-last"
                    )
                })?;
                match parsed {
                    Range::Int {
                        first,
                        last: Some(last),
                    } if last >= first && last < meta.size => first..last + 1,
                    _ => {
                        return Err(s3_error!(
                            InvalidRange,
                            "The requested range is not satisfiable"
                        ))
                    }
                }
            }
        };
        let r = self
            .model
            .upload_part_copy(
                &data,
                span,
                bucket,
                &i.key,
                upload_id(&i.upload_id)?,
                part_number(i.part_number)?,
            )
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(etag(&r.etag)),
                last_modified: Some(timestamp(self.model.clock().wall_msec())),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        if i.if_match.is_some() || i.if_none_match.is_some() || i.mpu_object_size.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "Conditional completion is not supported"
            ));
        }
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        let parts = i
            .multipart_upload
            .and_then(|m| m.parts)
            .ok_or_else(|| s3_error!(MalformedXML, "The XML you provided was not well-formed"))?;
        let mut requested = Vec::with_capacity(parts.len());
        for p in parts {
            let (Some(n), Some(e)) = (p.part_number, p.e_tag) else {
                return Err(s3_error!(
                    MalformedXML,
                    "Each part needs a PartNumber and an ETag"
                ));
            };
            let etag = match e {
                ETag::Strong(v) | ETag::Weak(v) => v,
            };
            requested.push(CompletedPart {
                part_number: part_number(n)?,
                etag,
            });
        }
        let r = self
            .model
            .complete_multipart_upload(bucket, &i.key, upload_id(&i.upload_id)?, &requested)
            .await
            .map_err(to_s3)?;
        let c = checksums::out(r.checksum.as_ref());
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            e_tag: Some(etag(&r.etag)),
            checksum_crc32: c.0,
            checksum_crc32c: c.1,
            checksum_crc64nvme: c.2,
            checksum_sha1: c.3,
            checksum_sha256: c.4,
            checksum_type: r
                .checksum
                .as_ref()
                .map(|_| ChecksumType::from_static(ChecksumType::COMPOSITE)),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let key = self.key_of(&req).await?;
        let i = req.input;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Write).await?;
        self.model
            .abort_multipart_upload(bucket, &i.key, upload_id(&i.upload_id)?)
            .await
            .map_err(to_s3)?;
        let mut resp = S3Response::new(AbortMultipartUploadOutput::default());
        resp.status = Some(http::StatusCode::NO_CONTENT);
        Ok(resp)
    }

    pub(crate) async fn handle_list_parts(
        &self,
        req: &S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let key = self.key_of(req).await?;
        let i = &req.input;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        let marker = match &i.part_number_marker {
            Some(m) => u32::try_from(*m)
                .map_err(|_| s3_error!(InvalidArgument, "invalid part-number-marker"))?,
            None => 0,
        };
        let max = usize::try_from(i.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let (parts, truncated) = self
            .model
            .list_parts(&bucket, &i.key, &upload_id(&i.upload_id)?, marker, max)
            .await
            .map_err(to_s3)?;
        let next = parts.last().and_then(|p| i32::try_from(p.part_number).ok());
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            upload_id: Some(i.upload_id.clone()),
            part_number_marker: i.part_number_marker,
            next_part_number_marker: next,
            max_parts: i32::try_from(max).ok(),
            is_truncated: Some(truncated),
            parts: Some(
                parts
                    .iter()
                    .map(|p| {
                        let c = checksums::out(p.checksum.as_ref());
                        Part {
                            part_number: i32::try_from(p.part_number).ok(),
                            e_tag: Some(etag(&p.etag)),
                            size: i64::try_from(p.size).ok(),
                            last_modified: Some(timestamp(p.timestamp)),
                            checksum_crc32: c.0,
                            checksum_crc32c: c.1,
                            checksum_crc64nvme: c.2,
                            checksum_sha1: c.3,
                            checksum_sha256: c.4,
                        }
                    })
                    .collect(),
            ),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    pub(crate) async fn handle_list_multipart_uploads(
        &self,
        req: &S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let key = self.key_of(req).await?;
        let i = &req.input;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        if i.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(s3_error!(
                NotImplemented,
                "Delimiters are not supported when listing multipart uploads"
            ));
        }
        if i.encoding_type.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "encoding-type is not supported when listing multipart uploads"
            ));
        }
        if i.upload_id_marker.is_some() {
            return Err(s3_error!(
                NotImplemented,
                "upload-id-marker is not supported when listing multipart uploads"
            ));
        }
        let max = usize::try_from(i.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let prefix = i.prefix.clone().unwrap_or_default();
        let (uploads, truncated) = self
            .model
            .list_multipart_uploads(&bucket, &prefix, i.key_marker.as_deref(), max)
            .await
            .map_err(to_s3)?;
        let last = uploads
            .last()
            .map(|u| (u.key.clone(), u.upload_id.to_hex()));
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(i.bucket.clone()),
            prefix: Some(prefix),
            key_marker: i.key_marker.clone(),
            upload_id_marker: i.upload_id_marker.clone(),
            next_key_marker: last.as_ref().map(|l| l.0.clone()),
            next_upload_id_marker: last.map(|l| l.1),
            max_uploads: i32::try_from(max).ok(),
            is_truncated: Some(truncated),
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|u| MultipartUpload {
                        key: Some(u.key),
                        upload_id: Some(u.upload_id.to_hex()),
                        initiated: Some(timestamp(u.timestamp)),
                        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}
