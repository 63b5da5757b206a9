//! Stored object headers: from S3 inputs to the model, and back to outputs.

use std::collections::HashMap;

use hangar_model::schema::object::ObjectMeta;
use s3s::dto::{Metadata, Timestamp, TimestampFormat};
use s3s::{s3_error, S3Result};

/// The standard headers S3 stores with an object, as given in an input.
#[derive(Default)]
pub(crate) struct StandardHeaders<'a> {
    pub cache_control: Option<&'a String>,
    pub content_disposition: Option<&'a String>,
    pub content_encoding: Option<&'a String>,
    pub content_language: Option<&'a String>,
    pub content_type: Option<&'a String>,
    pub expires: Option<&'a Timestamp>,
    pub metadata: Option<&'a Metadata>,
}

/// Headers to store, lowercase names; `x-amz-meta-*` for user metadata.
pub(crate) fn to_stored(h: &StandardHeaders<'_>) -> S3Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut push = |name: &str, v: Option<&String>| {
        if let Some(v) = v {
            out.push((name.to_string(), v.clone()));
        }
    };
    push("cache-control", h.cache_control);
    push("content-disposition", h.content_disposition);
    // `aws-chunked` describes the upload's framing, not the object; every
    // other byte of the header is kept as sent.
    let encoding = h.content_encoding.map(|e| without_aws_chunked(e));
    push(
        "content-encoding",
        encoding.as_ref().filter(|e| !e.is_empty()),
    );
    push("content-language", h.content_language);
    push("content-type", h.content_type);
    if let Some(t) = h.expires {
        out.push(("expires".to_string(), format_http_date(t)?));
    }
    if let Some(m) = h.metadata {
        let mut user: Vec<_> = m.iter().collect();
        user.sort();
        for (k, v) in user {
            out.push((format!("x-amz-meta-{}", k.to_ascii_lowercase()), v.clone()));
        }
    }
    let total: usize = out
        .iter()
        .filter(|(k, _)| k.starts_with("x-amz-meta-"))
        .map(|(k, v)| k.len() - "x-amz-meta-".len() + v.len())
        .sum();
    if total > 2048 {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size."
        ));
    }
    Ok(out)
}

/// `value` without its `aws-chunked` coding (and the comma that joined it),
/// byte-exact when it has none.
fn without_aws_chunked(value: &str) -> String {
    let is_chunked = |p: &str| p.trim().eq_ignore_ascii_case("aws-chunked");
    if !value.split(',').any(is_chunked) {
        return value.to_string();
    }
    value
        .split(',')
        .filter(|p| !is_chunked(p))
        .collect::<Vec<_>>()
        .join(",")
        .trim()
        .to_string()
}

fn format_http_date(t: &Timestamp) -> S3Result<String> {
    let mut buf = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut buf)
        .map_err(|_| s3_error!(InvalidArgument, "invalid Expires"))?;
    String::from_utf8(buf).map_err(|_| s3_error!(InvalidArgument, "invalid Expires"))
}

/// A stored header's value.
pub(crate) fn stored<'a>(meta: &'a ObjectMeta, name: &str) -> Option<&'a String> {
    meta.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// User metadata of a stored object.
pub(crate) fn user_metadata(meta: &ObjectMeta) -> Option<Metadata> {
    let m: HashMap<String, String> = meta
        .headers
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("x-amz-meta-")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    (!m.is_empty()).then_some(m)
}

/// The stored `Expires`, parsed back.
pub(crate) fn expires(meta: &ObjectMeta) -> Option<Timestamp> {
    stored(meta, "expires").and_then(|v| Timestamp::parse(TimestampFormat::HttpDate, v).ok())
}

/// Milliseconds since the epoch as an S3 timestamp.
pub(crate) fn timestamp(msec: u64) -> Timestamp {
    let nanos = i128::from(msec) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .into()
}

/// An ETag value for outputs.
pub(crate) fn etag(v: &str) -> s3s::dto::ETag {
    s3s::dto::ETag::Strong(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::without_aws_chunked;

    #[test]
    fn content_encoding_is_kept_byte_exact_without_aws_chunked() {
        assert_eq!(without_aws_chunked("deflate, gzip"), "deflate, gzip");
        assert_eq!(without_aws_chunked("gzip"), "gzip");
        assert_eq!(without_aws_chunked("aws-chunked"), "");
        assert_eq!(without_aws_chunked("aws-chunked, gzip"), "gzip");
        assert_eq!(without_aws_chunked("gzip,aws-chunked"), "gzip");
        assert_eq!(
            without_aws_chunked("deflate, AWS-Chunked, gzip"),
            "deflate, gzip"
        );
    }
}
