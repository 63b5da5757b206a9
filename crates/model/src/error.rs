//! Errors of the model, in the vocabulary of objects and buckets.

use crate::checksum::ChecksumAlgorithm;

/// Errors of the model layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket does not exist (or the key cannot see it).
    #[error("no such bucket: {name}")]
    NoSuchBucket {
        /// Bucket name.
        name: String,
    },
    /// The object does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// The multipart upload does not exist.
    #[error("no such upload")]
    NoSuchUpload,
    /// The access key does not exist.
    #[error("no such access key: {id}")]
    NoSuchAccessKey {
        /// Key id.
        id: String,
    },
    /// The bucket still holds objects or uploads.
    #[error("bucket is not empty")]
    BucketNotEmpty,
    /// The bucket name is taken.
    #[error("bucket already exists")]
    BucketAlreadyExists {
        /// Whether the requesting key already owns it.
        owned_by_you: bool,
    },
    /// The bucket name is not valid.
    #[error("invalid bucket name: {name}")]
    InvalidBucketName {
        /// Bucket name.
        name: String,
    },
    /// The object key is longer than 1024 bytes or empty.
    #[error("invalid object key")]
    KeyTooLong,
    /// The key lacks the permission.
    #[error("access denied")]
    AccessDenied,
    /// Content-MD5 did not match the body.
    #[error("content-md5 does not match the body")]
    BadDigest,
    /// A checksum header did not match the body.
    #[error("{} checksum does not match the body", algorithm.as_str())]
    ChecksumMismatch {
        /// The algorithm.
        algorithm: ChecksumAlgorithm,
    },
    /// A part in a completion list is missing or its ETag differs.
    #[error("invalid part {part_number}")]
    InvalidPart {
        /// The part.
        part_number: u32,
    },
    /// Parts of a completion list are not in ascending order.
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is below the minimum size.
    #[error("part {part_number} is smaller than the minimum part size")]
    EntityTooSmall {
        /// The part.
        part_number: u32,
    },
    /// A request parameter is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A write's precondition did not hold when it committed.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The requested range is outside the object.
    #[error("requested range not satisfiable")]
    InvalidRange,
    /// Reading the request body failed (client went away, bad framing, ...).
    #[error("request body: {0}")]
    Body(String),
    /// The client sent no body bytes for longer than the idle timeout.
    #[error("request body: nothing received for {seconds} s")]
    BodyTimeout {
        /// The timeout.
        seconds: u64,
    },
    /// The block rows of stored data do not cover its size.
    #[error("data {data_id} is incomplete")]
    DataIncomplete {
        /// The data id.
        data_id: hangar_util::Uuid,
    },
    /// Table layer failure.
    #[error(transparent)]
    Table(#[from] hangar_table::Error),
    /// Block layer failure.
    #[error(transparent)]
    Block(#[from] hangar_block::Error),
    /// Metadata engine failure.
    #[error(transparent)]
    Db(#[from] hangar_db::Error),
    /// Stored value encoding failure.
    #[error(transparent)]
    Encoding(#[from] hangar_util::encoding::Error),
    /// The cluster layout could not be updated.
    #[error("layout update: {0}")]
    Layout(String),
    /// A fault of this server that no request caused (a task that panicked
    /// or was cancelled).
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// Whether too few nodes answered: the cluster cannot serve the request
    /// now, and the same request may succeed once they are back.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Table(hangar_table::Error::Quorum(_))
                | Error::Block(
                    hangar_block::Error::Replication { .. }
                        | hangar_block::Error::Unavailable { .. }
                )
        )
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
