//! The model: buckets, access keys, objects, versions and multipart uploads, and
//! [`ObjectService`], the one implementation of the object read and write paths
//! that every API (S3, admin, website) calls.
//!
//! Tables ([`schema`]) are stored through `hangar_table`; object bytes through
//! `hangar_block`. The model glues the two: block rows take block references in
//! the same transaction ([`schema::block_row::BlockRowTable`]), and versions that
//! disappear queue their data for release ([`release`]), which drops those
//! references in the background.

pub mod checksum;
mod crash_point;
mod error;
pub mod release;
pub mod schema;
mod service;
pub mod workers;

pub use crash_point::{CrashHook, CrashPoint};
pub use error::{Error, Result};
pub use service::{
    is_valid_bucket_name, BodyStream, BucketInfo, CompletedPart, GetRange, LateChecksum,
    LayoutSyncStep, ListParams, ListResult, ListedObject, MissingBlock, ModelConfig,
    MultipartUpload, ObjectService, Precondition, PutParams, PutResult, TableRoots, UploadedPart,
    VersionsRepairReport,
};
