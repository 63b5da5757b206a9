//! [`ObjectService`]: the object read/write paths and bucket/key management.

mod buckets;
mod copy;
mod get;
mod keys;
mod list;
mod maintenance;
mod multipart;
mod put;
mod write;

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use hangar_block::BlockStore;
use hangar_cluster::{Layout, NodeId};
use hangar_db::Db;
use hangar_table::Table;
use hangar_util::clock::Clock;

use crate::schema::access_key::AccessKeyTable;
use crate::schema::block_row::BlockRowTable;
use crate::schema::bucket::{BucketAliasTable, BucketTable};
use crate::schema::object::ObjectTable;
use crate::schema::part::PartTable;

pub use buckets::{is_valid_bucket_name, BucketInfo};
pub use get::GetRange;
pub use list::{ListParams, ListResult, ListedObject};
pub use multipart::{CompletedPart, MultipartUpload, UploadedPart};
pub use put::{LateChecksum, Precondition, PutParams, PutResult};

/// A stream of body bytes (request bodies in, object bytes out).
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync>>;

/// Settings of the object paths.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Size objects are cut into.
    pub block_size: usize,
    /// Objects up to this size are stored inside their metadata entry.
    pub inline_threshold: usize,
    /// Memory for block buffers of uploads, shared by all uploads of the node.
    pub upload_buffer_bytes: usize,
    /// How long data stays readable after no version references it any more,
    /// so that reads and copies that started before keep working.
    pub release_delay_msec: u64,
    /// A request body that sends nothing for this long fails with
    /// [`crate::Error::BodyTimeout`]: a stalled client must not hold upload
    /// memory (or a connection) for ever.
    pub body_idle_timeout: std::time::Duration,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            block_size: 1 << 20,
            inline_threshold: 4096,
            upload_buffer_bytes: 32 << 20,
            release_delay_msec: 5 * 60 * 1000,
            body_idle_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// The object store's operations. Cheap to clone.
#[derive(Clone)]
pub struct ObjectService {
    inner: Arc<Inner>,
}

struct Inner {
    config: ModelConfig,
    db: Db,
    clock: Clock,
    blocks: BlockStore,
    buckets: Table<BucketTable>,
    aliases: Table<BucketAliasTable>,
    keys: Table<AccessKeyTable>,
    objects: Table<ObjectTable>,
    parts: Table<PartTable>,
    block_rows: Table<BlockRowTable>,
    upload_buffers: Arc<tokio::sync::Semaphore>,
    /// When the release worker first saw each queued data id (wall msec).
    release_seen: std::sync::Mutex<std::collections::HashMap<hangar_util::Uuid, u64>>,
}

impl std::fmt::Debug for ObjectService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ObjectService {
    /// Builds the service over its tables in `db` and blocks in `blocks`.
    pub fn new(
        config: ModelConfig,
        db: Db,
        blocks: BlockStore,
        layout: &Layout,
        local: NodeId,
        clock: Clock,
    ) -> Self {
        assert!(config.block_size >= 4096, "block size below 4 KiB");
        let parts = Table::new(PartTable, db.clone(), layout.clone(), local);
        let objects = Table::new(
            ObjectTable {
                parts: parts.clone(),
            },
            db.clone(),
            layout.clone(),
            local,
        );
        let block_rows = Table::new(
            BlockRowTable {
                blocks: blocks.clone(),
            },
            db.clone(),
            layout.clone(),
            local,
        );
        let buckets = Table::new(BucketTable, db.clone(), layout.clone(), local);
        let aliases = Table::new(BucketAliasTable, db.clone(), layout.clone(), local);
        let keys = Table::new(AccessKeyTable, db.clone(), layout.clone(), local);
        let permits = (config.upload_buffer_bytes / config.block_size).max(1);
        ObjectService {
            inner: Arc::new(Inner {
                upload_buffers: Arc::new(tokio::sync::Semaphore::new(permits)),
                release_seen: std::sync::Mutex::default(),
                config,
                db,
                clock,
                blocks,
                buckets,
                aliases,
                keys,
                objects,
                parts,
                block_rows,
            }),
        }
    }

    /// The block store.
    pub fn blocks(&self) -> &BlockStore {
        &self.inner.blocks
    }

    /// The metadata database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }
}

#[cfg(test)]
mod tests;
