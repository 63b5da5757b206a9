//! Authentication: secrets come from the key table; anonymous requests are refused.
//!
//! The signature itself is checked by s3s. SigV4 carries its own date check there;
//! what s3s leaves open is checked here, before any operation runs:
//! - SigV2 header signatures, which s3s accepts whatever their date, are held to
//!   the same 15-minute window;
//! - a SigV4 presigned URL may not live longer than 7 days (`X-Amz-Expires`);
//! - when the operator pins a region, a SigV4 signature scoped to another region
//!   is refused.

use std::time::{Duration, SystemTime};

use crate::progress::{Progress, Stage};
use hangar_model::ObjectService;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Error, S3ErrorCode, S3Result};

/// Looks up secrets of access keys in the model.
#[derive(Clone, Debug)]
pub struct KeyStore(pub ObjectService);

#[async_trait::async_trait]
impl S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.0
            .get_key(access_key)
            .await
            .map(|k| SecretKey::from(k.secret))
            .map_err(key_error)
    }
}

/// The S3 error for a failed key lookup: only a key that does not exist is
/// `InvalidAccessKeyId`; a lookup that could not be done (too few replicas
/// answered) is the server's, and the client should retry.
pub(crate) fn key_error(e: hangar_model::Error) -> S3Error {
    match e {
        hangar_model::Error::NoSuchAccessKey { .. } => s3_error!(
            InvalidAccessKeyId,
            "The AWS access key Id you provided does not exist in our records."
        ),
        other => crate::error::to_s3(other),
    }
}

/// Refuses unsigned requests and the signatures s3s lets through that S3 refuses
/// (see the module documentation). Per-bucket permissions are checked by each
/// operation once its bucket is resolved.
#[derive(Clone, Debug, Default)]
pub struct AccessRules {
    /// The only region signatures may be scoped to, if pinned.
    pub pinned_region: Option<String>,
}

#[async_trait::async_trait]
impl S3Access for AccessRules {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_none() {
            return Err(s3_error!(AccessDenied, "Anonymous access is not allowed"));
        }
        let headers = cx.headers();
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if authorization.is_some_and(|a| a.starts_with("AWS ")) {
            // x-amz-date takes precedence over Date when both are sent.
            let date = headers
                .get("x-amz-date")
                .or_else(|| headers.get(http::header::DATE));
            // Compared with the client's clock, as s3s does for SigV4: the
            // real time, not the node's logical one.
            #[allow(clippy::disallowed_methods, reason = "the client's clock is real time")]
            let now = SystemTime::now();
            check_sig_v2_date(date.and_then(|v| v.to_str().ok()), now)?;
        }
        let query = cx.uri().query().unwrap_or("");
        check_presigned_expiry(query_param(query, "X-Amz-Expires").as_deref())?;
        if let Some(pinned) = &self.pinned_region {
            check_pinned_region(pinned, authorization, query)?;
        }
        Progress::mark(cx.extensions_mut(), Stage::Authorised);
        Ok(())
    }
}

/// Refuses a SigV4 signature (header or presigned URL) scoped to a region other
/// than `pinned`.
fn check_pinned_region(pinned: &str, authorization: Option<&str>, query: &str) -> S3Result<()> {
    let (region, code) = if let Some(region) = authorization.and_then(header_scope_region) {
        (region.to_owned(), S3ErrorCode::AuthorizationHeaderMalformed)
    } else if let Some(credential) = query_param(query, "X-Amz-Credential") {
        let region = credential.split('/').nth(2).unwrap_or("").to_owned();
        (region, S3ErrorCode::AuthorizationQueryParametersError)
    } else {
        return Ok(());
    };
    if region == pinned {
        return Ok(());
    }
    Err(S3Error::with_message(
        code,
        format!("the region '{region}' is wrong; expecting '{pinned}'"),
    ))
}

/// Longest validity of a SigV4 presigned URL, as in S3.
pub const PRESIGNED_EXPIRY_MAX_SECS: u64 = 7 * 24 * 3600;

fn check_presigned_expiry(expires: Option<&str>) -> S3Result<()> {
    match expires.map(str::parse::<u64>) {
        None => Ok(()),
        Some(Ok(secs)) if secs <= PRESIGNED_EXPIRY_MAX_SECS => Ok(()),
        Some(_) => Err(s3_error!(
            AuthorizationQueryParametersError,
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800 seconds"
        )),
    }
}

/// The decoded value of `name` in a query string.
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            urlencoding::decode(v).map_or_else(|_| v.to_owned(), std::borrow::Cow::into_owned)
        })
    })
}

/// The region of a SigV4 `Authorization` header's credential scope.
fn header_scope_region(authorization: &str) -> Option<&str> {
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256")?;
    let credential = rest
        .split(',')
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    credential.split('/').nth(2)
}

/// Largest accepted difference between a request's date and the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// Checks the HTTP date of a SigV2 header-signed request against `now`.
fn check_sig_v2_date(date: Option<&str>, now: SystemTime) -> S3Result<()> {
    let Some(signed_at) = date.and_then(parse_date) else {
        return Err(s3_error!(
            AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header"
        ));
    };
    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > MAX_CLOCK_SKEW {
        return Err(s3_error!(
            RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large."
        ));
    }
    Ok(())
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT` and the two obsolete forms), or
/// an RFC 2822 date with a numeric zone (`... +0000`), as s3cmd sends.
fn parse_date(date: &str) -> Option<SystemTime> {
    if let Ok(t) = httpdate::parse_http_date(date) {
        return Some(t);
    }
    let t =
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc2822).ok()?;
    Some(t.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn sig_v2_dates_within_fifteen_minutes_pass() {
        let now = at(1_800_000_000);
        for offset in [0i64, 899, -899, 900, -900] {
            let t = at(1_800_000_000u64.saturating_add_signed(offset));
            let date = httpdate::fmt_http_date(t);
            assert!(check_sig_v2_date(Some(&date), now).is_ok(), "{offset}");
        }
    }

    #[test]
    fn sig_v2_dates_beyond_fifteen_minutes_fail_in_both_directions() {
        let now = at(1_800_000_000);
        for offset in [901i64, -901, 86_400, -86_400] {
            let t = at(1_800_000_000u64.saturating_add_signed(offset));
            let date = httpdate::fmt_http_date(t);
            let err = check_sig_v2_date(Some(&date), now).expect_err("skewed");
            assert_eq!(
                *err.code(),
                s3s::S3ErrorCode::RequestTimeTooSkewed,
                "{offset}"
            );
        }
    }

    #[test]
    fn numeric_zone_dates_are_read() {
        let now = at(1_800_000_000); // Fri, 15 Jan 2027 08:00:00 GMT
        assert!(check_sig_v2_date(Some("Fri, 15 Jan 2027 08:00:00 +0000"), now).is_ok());
        assert!(check_sig_v2_date(Some("Fri, 15 Jan 2027 09:00:00 +0100"), now).is_ok());
        assert!(check_sig_v2_date(Some("Fri, 15 Jan 2027 10:00:00 +0000"), now).is_err());
    }

    #[test]
    fn presigned_urls_live_at_most_seven_days() {
        assert!(check_presigned_expiry(None).is_ok());
        assert!(check_presigned_expiry(Some("604800")).is_ok());
        for bad in ["604801", "99999999999", "-1", "x"] {
            let err = check_presigned_expiry(Some(bad)).expect_err(bad);
            assert_eq!(
                *err.code(),
                s3s::S3ErrorCode::AuthorizationQueryParametersError
            );
        }
    }

    #[test]
    fn scope_regions_are_read_from_headers_and_queries() {
        let h = "AWS4-HMAC-SHA256 Credential=HK1/20261124/eu-west-3/s3/aws4_request, \
                 SignedHeaders=host, Signature=00";
        assert_eq!(header_scope_region(h), Some("eu-west-3"));
        assert_eq!(header_scope_region("AWS HK1:sig"), None);
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=HK1%2F20261124%2Fgarage%2Fs3%2Faws4_request";
        assert_eq!(
            query_param(q, "X-Amz-Credential").as_deref(),
            Some("HK1/20261124/garage/s3/aws4_request")
        );
        assert_eq!(query_param(q, "X-Amz-Expires"), None);
    }

    #[test]
    fn sig_v2_without_a_readable_date_is_refused() {
        let now = at(1_800_000_000);
        for date in [None, Some(""), Some("yesterday")] {
            let err = check_sig_v2_date(date, now).expect_err("no date");
            assert_eq!(*err.code(), s3s::S3ErrorCode::AccessDenied);
        }
    }
}
