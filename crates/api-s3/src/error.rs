//! Model errors to S3 errors, in one exhaustive function.

use hangar_model::Error;
use s3s::{S3Error, S3ErrorCode};
use tracing::error;

/// The S3 error for a model error. Internal details go to the log only.
pub fn to_s3(e: Error) -> S3Error {
    let (code, message): (S3ErrorCode, String) = match &e {
        Error::NoSuchBucket { .. } => (S3ErrorCode::NoSuchBucket, "The specified bucket does not exist".into()),
        Error::NoSuchKey => (S3ErrorCode::NoSuchKey, "The specified key does not exist.".into()),
        Error::NoSuchUpload => (S3ErrorCode::NoSuchUpload, "The specified multipart upload does not exist.".into()),
        Error::NoSuchAccessKey { .. } => (S3ErrorCode::InvalidAccessKeyId, e.to_string()),
        Error::BucketNotEmpty => (S3ErrorCode::BucketNotEmpty, "The bucket you tried to delete is not empty".into()),
        Error::BucketAlreadyExists { owned_by_you: true } => {
            (S3ErrorCode::BucketAlreadyOwnedByYou, "Your previous request to create the named bucket succeeded and you already own it.".into())
        }
        Error::BucketAlreadyExists { owned_by_you: false } => {
            (S3ErrorCode::BucketAlreadyExists, "The requested bucket name is not available.".into())
        }
        Error::InvalidBucketName { .. } => (S3ErrorCode::InvalidBucketName, e.to_string()),
        Error::KeyTooLong => (S3ErrorCode::KeyTooLongError, "Your key is too long".into()),
        Error::AccessDenied => (S3ErrorCode::AccessDenied, "Access Denied".into()),
        Error::BadDigest => (S3ErrorCode::BadDigest, "The Content-MD5 you specified did not match what we received.".into()),
        Error::ChecksumMismatch { .. } => (S3ErrorCode::BadDigest, e.to_string()),
        Error::InvalidPart { .. } => (S3ErrorCode::InvalidPart, e.to_string()),
        Error::InvalidPartOrder => (S3ErrorCode::InvalidPartOrder, e.to_string()),
        Error::EntityTooSmall { .. } => (S3ErrorCode::EntityTooSmall, e.to_string()),
        Error::InvalidArgument(m) => (S3ErrorCode::InvalidArgument, m.clone()),
        Error::InvalidRange => (S3ErrorCode::InvalidRange, "The requested range is not satisfiable".into()),
        Error::Body(_) => (S3ErrorCode::IncompleteBody, "The request body could not be read completely".into()),
        Error::DataIncomplete { .. } | Error::Table(_) | Error::Block(_) | Error::Db(_) | Error::Encoding(_) => {
            error!(error = %e, "internal error");
            (S3ErrorCode::InternalError, "We encountered an internal error. Please try again.".into())
        }
    };
    S3Error::with_message(code, message)
}
