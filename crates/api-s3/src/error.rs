//! Model errors to S3 errors, in one exhaustive function.

use hangar_model::Error;
use s3s::{S3Error, S3ErrorCode};
use tracing::{error, warn};

/// How long a client should wait before retrying a request the cluster could
/// not serve: about the time peers take to reconnect.
pub const RETRY_AFTER_SECS: &str = "1";

/// The S3 error for a model error. Internal details go to the log only.
/// When too few nodes answered, the answer is `503 ServiceUnavailable` with
/// `Retry-After`, which every S3 client retries.
pub fn to_s3(e: Error) -> S3Error {
    if e.is_unavailable() {
        warn!(error = %e, "cluster unavailable for a request");
        return unavailable("Too few nodes holding this data answered. Please retry.");
    }
    let (code, message): (S3ErrorCode, String) = match &e {
        Error::NoSuchBucket { .. } => (
            S3ErrorCode::NoSuchBucket,
            "The specified bucket does not exist".into(),
        ),
        Error::NoSuchKey => (
            S3ErrorCode::NoSuchKey,
            "The specified key does not exist.".into(),
        ),
        Error::NoSuchUpload => (
            S3ErrorCode::NoSuchUpload,
            "The specified multipart upload does not exist.".into(),
        ),
        Error::NoSuchAccessKey { .. } => (S3ErrorCode::InvalidAccessKeyId, e.to_string()),
        Error::BucketNotEmpty => (
            S3ErrorCode::BucketNotEmpty,
            "The bucket you tried to delete is not empty".into(),
        ),
        Error::BucketAlreadyExists { owned_by_you: true } => (
            S3ErrorCode::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
                .into(),
        ),
        Error::BucketAlreadyExists {
            owned_by_you: false,
        } => (
            S3ErrorCode::BucketAlreadyExists,
            "The requested bucket name is not available.".into(),
        ),
        Error::InvalidBucketName { .. } => (S3ErrorCode::InvalidBucketName, e.to_string()),
        Error::KeyTooLong => (S3ErrorCode::KeyTooLongError, "Your key is too long".into()),
        Error::AccessDenied => (S3ErrorCode::AccessDenied, "Access Denied".into()),
        Error::BadDigest => (
            S3ErrorCode::BadDigest,
            "The Content-MD5 you specified did not match what we received.".into(),
        ),
        Error::ChecksumMismatch { .. } => (S3ErrorCode::BadDigest, e.to_string()),
        Error::InvalidPart { .. } => (S3ErrorCode::InvalidPart, e.to_string()),
        Error::InvalidPartOrder => (S3ErrorCode::InvalidPartOrder, e.to_string()),
        Error::EntityTooSmall { .. } => (S3ErrorCode::EntityTooSmall, e.to_string()),
        Error::InvalidArgument(m) => (S3ErrorCode::InvalidArgument, m.clone()),
        Error::PreconditionFailed => (
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold".into(),
        ),
        Error::InvalidRange => (
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable".into(),
        ),
        Error::Body(m) => body_error(m),
        Error::BodyTimeout { .. } => (
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.".into(),
        ),
        Error::DataIncomplete { .. }
        | Error::Table(_)
        | Error::Block(_)
        | Error::Db(_)
        | Error::Encoding(_)
        | Error::Layout(_)
        | Error::Internal(_) => {
            error!(error = %e, "internal error");
            (
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.".into(),
            )
        }
    };
    let custom = matches!(code, S3ErrorCode::Custom(_));
    let mut err = S3Error::with_message(code, message);
    if custom {
        // Custom codes have no status of their own; every one we use is a 400.
        err.set_status_code(http::StatusCode::BAD_REQUEST);
    }
    err
}

/// `503 ServiceUnavailable` with `Retry-After`: the request may succeed later.
pub(crate) fn unavailable(message: &'static str) -> S3Error {
    let mut err = S3Error::with_message(S3ErrorCode::ServiceUnavailable, message);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    err.set_headers(headers);
    err
}

/// The S3 error for a request body that could not be read. s3s reports body
/// verification failures through its (private) stream error types, which only
/// reach us as text; their messages name the failure.
fn body_error(message: &str) -> (S3ErrorCode, String) {
    if message.contains("Sha256Mismatch") {
        (
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        )
    } else if message.contains("SignatureMismatch") {
        (
            S3ErrorCode::SignatureDoesNotMatch,
            "The chunk signature we calculated does not match the signature you provided.".into(),
        )
    } else if message.contains("FormatError")
        || message.contains("TooLarge")
        || message.contains("TooMany")
    {
        (
            S3ErrorCode::InvalidRequest,
            "The aws-chunked body is malformed.".into(),
        )
    } else {
        (
            S3ErrorCode::IncompleteBody,
            "The request body could not be read completely".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_verification_failures_get_their_s3_codes() {
        let code = |m: &str| to_s3(Error::Body(m.into())).code().as_str().to_string();
        assert_eq!(
            code("UploadStreamError: Sha256Mismatch"),
            "XAmzContentSHA256Mismatch"
        );
        assert_eq!(
            code("AwsChunkedStreamError: SignatureMismatch"),
            "SignatureDoesNotMatch"
        );
        assert_eq!(code("connection reset"), "IncompleteBody");
    }
}
