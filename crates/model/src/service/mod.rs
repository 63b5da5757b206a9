//! [`ObjectService`]: the object read/write paths and bucket/key management.

mod buckets;
mod copy;
mod get;
mod keys;
mod layout_sync;
mod list;
mod locks;
mod maintenance;
mod missing;
mod multipart;
mod put;
mod repair;
mod usage;
mod write;

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use hangar_block::{BlockStore, ReplicatedBlocks};
use hangar_db::Db;
use hangar_table::{Replication, Replicator, Table};
use hangar_util::clock::Clock;

use crate::schema::access_key::AccessKeyTable;
use crate::schema::block_ref::BlockRefTable;
use crate::schema::block_row::BlockRowTable;
use crate::schema::bucket::{BucketAliasTable, BucketTable};
use crate::schema::object::ObjectTable;
use crate::schema::part::PartTable;

pub use buckets::{is_valid_bucket_name, BucketInfo};
pub use get::GetRange;
pub use layout_sync::{LayoutSyncStep, TableRoots};
pub use list::{ListParams, ListResult, ListedObject};
pub use missing::MissingBlock;
pub use multipart::{CompletedPart, MultipartUpload, UploadedPart};
pub use put::{LateChecksum, Precondition, PutParams, PutResult};
pub use repair::VersionsRepairReport;

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
    /// How long a release waits before asking the replicas again when they
    /// could not tell that no version uses the data (some did not answer,
    /// or a stale one still uses it).
    pub release_retry_msec: u64,
    /// A request body that sends nothing for this long fails with
    /// [`crate::Error::BodyTimeout`]: a stalled client must not hold upload
    /// memory (or a connection) for ever.
    pub body_idle_timeout: std::time::Duration,
    /// How long a tombstone (a deleted object, released block rows) is kept
    /// on every replica before it may be removed.
    pub tombstone_delay_msec: u64,
    /// `repair versions` leaves alone data written less than this long ago:
    /// its upload may still be going on, or its commit still spreading.
    pub orphan_grace_msec: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            block_size: 1 << 20,
            inline_threshold: 4096,
            upload_buffer_bytes: 32 << 20,
            release_delay_msec: 5 * 60 * 1000,
            release_retry_msec: 60 * 1000,
            body_idle_timeout: std::time::Duration::from_secs(60),
            tombstone_delay_msec: 10 * 60 * 1000,
            orphan_grace_msec: 24 * 60 * 60 * 1000,
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
    data: ReplicatedBlocks,
    replicator: Replicator,
    buckets: Table<BucketTable>,
    aliases: Table<BucketAliasTable>,
    keys: Table<AccessKeyTable>,
    objects: Table<ObjectTable>,
    parts: Table<PartTable>,
    block_rows: Table<BlockRowTable>,
    block_refs: Table<BlockRefTable>,
    locks: locks::Locks,
    workers: crate::workers::Workers,
    /// The oldest live layout version when this node last dropped what it no
    /// longer holds.
    offloaded_for: std::sync::atomic::AtomicU64,
    upload_buffers: Arc<tokio::sync::Semaphore>,
    /// Where the release worker's next look at its queue starts.
    release_cursor: tokio::sync::Mutex<Vec<u8>>,
    /// Called at each [`crate::CrashPoint`] (tests crash the node there).
    crash_hook: std::sync::RwLock<Option<crate::CrashHook>>,
}

impl std::fmt::Debug for ObjectService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectService")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ObjectService {
    /// Builds the service of the node of `replicator`: its tables are kept in
    /// `db` and replicated on the cluster, its blocks kept in `blocks` and
    /// replicated too. Registers the table and block endpoints.
    pub fn new(
        config: ModelConfig,
        db: Db,
        blocks: BlockStore,
        replicator: &Replicator,
        clock: Clock,
    ) -> Self {
        assert!(config.block_size >= 4096, "block size below 4 KiB");
        let objects = Table::replicated(ObjectTable, db.clone(), replicator, Replication::Sharded);
        let parts = Table::replicated(PartTable, db.clone(), replicator, Replication::Sharded);
        let block_rows =
            Table::replicated(BlockRowTable, db.clone(), replicator, Replication::Sharded);
        let block_refs = Table::replicated(
            BlockRefTable {
                blocks: blocks.clone(),
            },
            db.clone(),
            replicator,
            Replication::Sharded,
        );
        let buckets = Table::replicated(BucketTable, db.clone(), replicator, Replication::Full);
        let aliases =
            Table::replicated(BucketAliasTable, db.clone(), replicator, Replication::Full);
        let keys = Table::replicated(AccessKeyTable, db.clone(), replicator, Replication::Full);
        let data = ReplicatedBlocks::new(
            blocks.clone(),
            replicator.system().clone(),
            config.block_size,
        );
        let permits = (config.upload_buffer_bytes / config.block_size).max(1);
        ObjectService {
            inner: Arc::new(Inner {
                upload_buffers: Arc::new(tokio::sync::Semaphore::new(permits)),
                release_cursor: tokio::sync::Mutex::default(),
                crash_hook: std::sync::RwLock::default(),
                locks: locks::Locks::default(),
                workers: crate::workers::Workers::default(),
                offloaded_for: std::sync::atomic::AtomicU64::new(0),
                config,
                db,
                clock,
                blocks,
                data,
                replicator: replicator.clone(),
                buckets,
                aliases,
                keys,
                objects,
                parts,
                block_rows,
                block_refs,
            }),
        }
    }

    /// The state of the node's background workers.
    pub fn workers(&self) -> &crate::workers::Workers {
        &self.inner.workers
    }

    /// The cluster this node belongs to.
    pub(crate) fn system(&self) -> &std::sync::Arc<hangar_cluster::System> {
        self.inner.replicator.system()
    }

    /// The node's blocks on the cluster.
    pub fn data(&self) -> &ReplicatedBlocks {
        &self.inner.data
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

    /// Calls `hook` at each [`crate::CrashPoint`] this node's writes and
    /// releases reach: the seam crash tests use to stop a node at a precise
    /// step. Replaces any earlier hook.
    pub fn set_crash_hook(&self, hook: crate::CrashHook) {
        *self
            .inner
            .crash_hook
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(hook);
    }

    /// Reports reaching `point` to the crash hook, if any.
    pub(crate) fn step(&self, point: crate::CrashPoint) {
        let hook = self
            .inner
            .crash_hook
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(point);
        }
    }
}

#[cfg(test)]
mod tests;
