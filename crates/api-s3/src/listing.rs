//! ListObjects (v1) and ListObjectsV2.

use base64::Engine;
use hangar_model::{ListParams, ListResult};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::error::to_s3;
use crate::headers::{etag, timestamp};
use crate::{Need, S3Frontend};

/// Percent-encodes for `encoding-type=url` (everything but unreserved and `/`).
fn url_encode(s: &str) -> String {
    urlencoding::encode(s).replace("%2F", "/")
}

struct Encoder(bool);

impl Encoder {
    fn apply(&self, s: String) -> String {
        if self.0 {
            url_encode(&s)
        } else {
            s
        }
    }
    fn opt(&self, s: Option<String>) -> Option<String> {
        s.map(|s| self.apply(s))
    }
}

fn encoder(e: Option<&EncodingType>) -> S3Result<Encoder> {
    match e.map(EncodingType::as_str) {
        None => Ok(Encoder(false)),
        Some(EncodingType::URL) => Ok(Encoder(true)),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

fn max_keys(m: Option<i32>) -> S3Result<usize> {
    match m {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(0).min(1000)),
    }
}

fn contents(r: &ListResult, enc: &Encoder) -> Vec<Object> {
    r.objects
        .iter()
        .map(|o| Object {
            key: Some(enc.apply(o.key.clone())),
            e_tag: Some(etag(&o.meta.etag)),
            last_modified: Some(timestamp(o.timestamp)),
            size: Some(i64::try_from(o.meta.size).unwrap_or(i64::MAX)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect()
}

fn prefixes(r: &ListResult, enc: &Encoder) -> Vec<CommonPrefix> {
    r.common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc.apply(p.clone())),
        })
        .collect()
}

impl S3Frontend {
    pub(crate) async fn handle_list_objects(
        &self,
        req: &S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let key = self.key_of(req).await?;
        let i = &req.input;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        let enc = encoder(i.encoding_type.as_ref())?;
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        let params = ListParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after: i.marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(i.max_keys)?,
        };
        let r = self
            .model
            .list_objects(&bucket, &params)
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket.clone()),
            prefix: Some(enc.apply(params.prefix.clone())),
            marker: Some(enc.apply(i.marker.clone().unwrap_or_default())),
            max_keys: Some(i32::try_from(params.max_keys).unwrap_or(1000)),
            is_truncated: Some(r.is_truncated),
            next_marker: if r.is_truncated {
                enc.opt(r.last.clone())
            } else {
                None
            },
            contents: Some(contents(&r, &enc)),
            common_prefixes: Some(prefixes(&r, &enc)),
            delimiter: enc.opt(delimiter),
            encoding_type: i.encoding_type.clone(),
            request_charged: None,
        }))
    }

    pub(crate) async fn handle_list_objects_v2(
        &self,
        req: &S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let key = self.key_of(req).await?;
        let i = &req.input;
        let bucket = self.bucket_for(&i.bucket, &key, Need::Read).await?;
        let enc = encoder(i.encoding_type.as_ref())?;
        let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
        let token_key = match &i.continuation_token {
            Some(t) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })?,
            ),
            None => None,
        };
        let params = ListParams {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after: token_key.or_else(|| i.start_after.clone().filter(|s| !s.is_empty())),
            max_keys: max_keys(i.max_keys)?,
        };
        let r = self
            .model
            .list_objects(&bucket, &params)
            .await
            .map_err(to_s3)?;
        let next = if r.is_truncated {
            r.last
                .as_ref()
                .map(|l| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(l))
        } else {
            None
        };
        let count = r.objects.len() + r.common_prefixes.len();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket.clone()),
            prefix: Some(enc.apply(params.prefix.clone())),
            max_keys: Some(i32::try_from(params.max_keys).unwrap_or(1000)),
            key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
            continuation_token: i.continuation_token.clone(),
            is_truncated: Some(r.is_truncated),
            next_continuation_token: next,
            contents: Some(contents(&r, &enc)),
            common_prefixes: Some(prefixes(&r, &enc)),
            delimiter: enc.opt(delimiter),
            encoding_type: i.encoding_type.clone(),
            start_after: enc.opt(i.start_after.clone()),
            request_charged: None,
        }))
    }
}
