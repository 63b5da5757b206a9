//! Errors of the admin API and their HTTP form: one exhaustive mapping to a code
//! and a status, and a JSON body `{"code","message","region","path"}`.

use hangar_cluster::layout_sync::LayoutSyncError;
use hangar_cluster::LayoutError;
use http::{Method, StatusCode};
use serde::Serialize;

/// Errors of the admin API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model refused or failed.
    #[error(transparent)]
    Model(#[from] hangar_model::Error),
    /// No bearer token was given.
    #[error("missing or malformed bearer token")]
    Unauthorized,
    /// The bearer token is wrong.
    #[error("invalid admin token")]
    Forbidden,
    /// No endpoint has this path.
    #[error("no such endpoint: {path}")]
    NoSuchEndpoint {
        /// The path asked for.
        path: String,
    },
    /// The endpoint exists but takes another method.
    #[error("method {method} not allowed, use {allowed}")]
    MethodNotAllowed {
        /// The method used.
        method: Method,
        /// The method the endpoint takes.
        allowed: Method,
    },
    /// The query string or the request's parameters are wrong.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
    },
    /// The body is not the JSON the endpoint takes.
    #[error("invalid JSON body: {source}")]
    InvalidJson {
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// The body is larger than the endpoint accepts.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Reading the request body failed.
    #[error("reading request body: {message}")]
    Body {
        /// The transport's complaint.
        message: String,
    },
    /// An access key with this id already exists.
    #[error("access key {id} already exists")]
    KeyAlreadyExists {
        /// The id.
        id: String,
    },
    /// The layout change was refused (see [`Error::code_and_status`] for the
    /// codes by cause).
    #[error(transparent)]
    Layout(LayoutError),
    /// Nothing to preview, apply or revert.
    #[error("nothing to {action}: no staged change alters the current layout")]
    NothingStaged {
        /// What was asked: `preview`, `apply` or `revert`.
        action: &'static str,
    },
    /// The layout could not be saved.
    #[error("saving the layout: {0}")]
    LayoutStorage(LayoutSyncError),
    /// The operation exists in the API but this node does not implement it.
    #[error("{0}")]
    NotImplemented(String),
}

impl From<LayoutError> for Error {
    fn from(e: LayoutError) -> Self {
        match e {
            LayoutError::NothingStaged => Error::NothingStaged { action: "apply" },
            e => Error::Layout(e),
        }
    }
}

impl From<LayoutSyncError> for Error {
    fn from(e: LayoutSyncError) -> Self {
        match e {
            LayoutSyncError::Layout(e) => e.into(),
            e => Error::LayoutStorage(e),
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::BadRequest`] with `message`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Error::BadRequest {
            message: message.into(),
        }
    }

    /// The error code and HTTP status clients see.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use hangar_model::Error as M;
        match self {
            Error::Model(e) if e.is_unavailable() => {
                ("ServiceUnavailable", StatusCode::SERVICE_UNAVAILABLE)
            }
            Error::Model(e) => match e {
                M::NoSuchBucket { .. } => ("NoSuchBucket", StatusCode::NOT_FOUND),
                M::NoSuchKey => ("NoSuchKey", StatusCode::NOT_FOUND),
                M::NoSuchUpload => ("NoSuchUpload", StatusCode::NOT_FOUND),
                M::NoSuchAccessKey { .. } => ("NoSuchAccessKey", StatusCode::NOT_FOUND),
                M::BucketNotEmpty => ("BucketNotEmpty", StatusCode::CONFLICT),
                M::BucketAlreadyExists { .. } => ("BucketAlreadyExists", StatusCode::CONFLICT),
                M::InvalidBucketName { .. } => ("InvalidBucketName", StatusCode::BAD_REQUEST),
                M::KeyTooLong => ("KeyTooLongError", StatusCode::BAD_REQUEST),
                M::AccessDenied => ("AccessDenied", StatusCode::FORBIDDEN),
                M::BadDigest | M::ChecksumMismatch { .. } => ("BadDigest", StatusCode::BAD_REQUEST),
                M::InvalidPart { .. } => ("InvalidPart", StatusCode::BAD_REQUEST),
                M::InvalidPartOrder => ("InvalidPartOrder", StatusCode::BAD_REQUEST),
                M::EntityTooSmall { .. } => ("EntityTooSmall", StatusCode::BAD_REQUEST),
                M::InvalidArgument(_) => ("InvalidArgument", StatusCode::BAD_REQUEST),
                M::InvalidRange => ("InvalidRange", StatusCode::RANGE_NOT_SATISFIABLE),
                M::PreconditionFailed => ("PreconditionFailed", StatusCode::PRECONDITION_FAILED),
                M::Body(_) => ("IncompleteBody", StatusCode::BAD_REQUEST),
                M::BodyTimeout { .. } => ("RequestTimeout", StatusCode::BAD_REQUEST),
                M::DataIncomplete { .. }
                | M::Table(_)
                | M::Block(_)
                | M::Db(_)
                | M::Encoding(_)
                | M::Layout(_)
                | M::Internal(_) => ("InternalError", StatusCode::INTERNAL_SERVER_ERROR),
            },
            Error::Unauthorized => ("Unauthorized", StatusCode::UNAUTHORIZED),
            Error::Forbidden => ("Forbidden", StatusCode::FORBIDDEN),
            Error::NoSuchEndpoint { .. } => ("NoSuchEndpoint", StatusCode::NOT_FOUND),
            Error::MethodNotAllowed { .. } => ("MethodNotAllowed", StatusCode::METHOD_NOT_ALLOWED),
            Error::BadRequest { .. } => ("InvalidRequest", StatusCode::BAD_REQUEST),
            Error::InvalidJson { .. } => ("InvalidJson", StatusCode::BAD_REQUEST),
            Error::PayloadTooLarge { .. } => ("PayloadTooLarge", StatusCode::PAYLOAD_TOO_LARGE),
            Error::Body { .. } => ("IncompleteBody", StatusCode::BAD_REQUEST),
            Error::KeyAlreadyExists { .. } => ("KeyAlreadyExists", StatusCode::CONFLICT),
            Error::Layout(e) => match e {
                LayoutError::VersionMismatch { .. } => {
                    ("LayoutVersionMismatch", StatusCode::CONFLICT)
                }
                // Not expected: the layout manager hands out timestamps newer
                // than the history's. Trying again would take a newer one.
                LayoutError::StaleTimestamp { .. } => ("LayoutConflict", StatusCode::CONFLICT),
                LayoutError::Assignment(_) => ("ImpossibleLayout", StatusCode::BAD_REQUEST),
                LayoutError::NothingStaged => ("NothingStaged", StatusCode::BAD_REQUEST),
                LayoutError::UnknownNode { .. } | LayoutError::NoSuchNode { .. } => {
                    ("NoSuchNode", StatusCode::BAD_REQUEST)
                }
                LayoutError::AmbiguousNodePrefix { .. } => {
                    ("AmbiguousNodeId", StatusCode::BAD_REQUEST)
                }
                LayoutError::InvalidNodePrefix { .. } => ("InvalidNodeId", StatusCode::BAD_REQUEST),
                LayoutError::EmptyZone { .. }
                | LayoutError::ZeroCapacity { .. }
                | LayoutError::ZeroReplicationFactor
                | LayoutError::InvalidZoneRedundancy { .. } => {
                    ("InvalidLayoutParameter", StatusCode::BAD_REQUEST)
                }
            },
            Error::NothingStaged { .. } => ("NothingStaged", StatusCode::BAD_REQUEST),
            Error::LayoutStorage(_) => ("InternalError", StatusCode::INTERNAL_SERVER_ERROR),
            Error::NotImplemented(_) => ("NotImplemented", StatusCode::NOT_IMPLEMENTED),
        }
    }

    /// The JSON body of this error for a request to `path`. Internal failures are
    /// described in the log, not to the client.
    pub fn body(&self, path: &str) -> ErrorBody {
        let (code, status) = self.code_and_status();
        let message = if status == StatusCode::SERVICE_UNAVAILABLE {
            "too few nodes answered; retry once they are reachable".to_string()
        } else if status.is_server_error() {
            "internal error, see the server log".to_string()
        } else {
            self.to_string()
        };
        ErrorBody {
            code: code.to_string(),
            message,
            region: None,
            path: path.to_string(),
        }
    }
}

/// The JSON body of an error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (`NoSuchBucket`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Always `null` (kept for S3-style clients).
    pub region: Option<String>,
    /// The path of the request.
    pub path: String,
}
