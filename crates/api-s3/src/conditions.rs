//! Conditional requests (RFC 9110 §13 as S3 applies them).

use std::time::{Duration, UNIX_EPOCH};

use hangar_model::schema::object::ObjectMeta;
use http::{HeaderMap, HeaderValue};
use s3s::dto::{ETag, ETagCondition, Timestamp};
use s3s::{s3_error, S3ErrorCode, S3Result};

use crate::headers;

/// The conditions of a request.
#[derive(Default)]
pub(crate) struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

fn matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(ETag::Strong(v) | ETag::Weak(v)) => v.trim_matches('"') == etag,
    }
}

fn seconds(t: &Timestamp) -> Option<i64> {
    let mut buf = Vec::new();
    t.format(s3s::dto::TimestampFormat::EpochSeconds, &mut buf)
        .ok()?;
    let s = String::from_utf8(buf).ok()?;
    s.split('.').next()?.parse().ok()
}

/// Whether the object (with `etag`, last modified at `modified_msec`) passes the
/// conditions. `304` applies to reads only: a failed `If-None-Match` on a read
/// gives `NotModified`, otherwise `PreconditionFailed`.
pub(crate) fn check(
    c: &Conditions<'_>,
    etag: &str,
    modified_msec: u64,
    is_read: bool,
) -> S3Result<()> {
    let modified = i64::try_from(modified_msec / 1000).unwrap_or(i64::MAX);
    if let Some(m) = c.if_match {
        if !matches(m, etag) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    } else if let Some(t) = c.if_unmodified_since.and_then(seconds) {
        if modified > t {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    }
    let not_modified = || {
        if is_read {
            s3_error!(NotModified)
        } else {
            s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )
        }
    };
    if let Some(m) = c.if_none_match {
        if matches(m, etag) {
            return Err(not_modified());
        }
    } else if let Some(t) = c.if_modified_since.and_then(seconds) {
        if modified <= t {
            return Err(not_modified());
        }
    }
    Ok(())
}

/// [`check`] for a read of the object described by `meta`: a `304 Not
/// Modified` carries the headers RFC 9110 §15.4.5 asks of it (the validators
/// `ETag` and `Last-Modified`, and the caching headers a 200 would send), on
/// which caches rely to refresh what they hold.
pub(crate) fn check_read(
    c: &Conditions<'_>,
    meta: &ObjectMeta,
    modified_msec: u64,
) -> S3Result<()> {
    check(c, &meta.etag, modified_msec, true).map_err(|mut e| {
        if *e.code() == S3ErrorCode::NotModified {
            e.set_headers(not_modified_headers(meta, modified_msec));
        }
        e
    })
}

fn not_modified_headers(meta: &ObjectMeta, modified_msec: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut add = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    add("etag", &format!("\"{}\"", meta.etag));
    let modified = UNIX_EPOCH + Duration::from_millis(modified_msec);
    add("last-modified", &httpdate::fmt_http_date(modified));
    for name in ["cache-control", "expires"] {
        if let Some(v) = headers::stored(meta, name) {
            add(name, v);
        }
    }
    h
}
