//! Conditional requests (RFC 9110 §13 as S3 applies them).

use s3s::dto::{ETag, ETagCondition, Timestamp};
use s3s::{s3_error, S3Result};

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
