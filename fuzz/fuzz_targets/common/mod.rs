//! The node the request-level targets talk to: one storage node on the
//! in-memory network with its object service (metadata in memory, blocks in a
//! temporary directory), on a runtime of its own. Rebuilt from scratch every
//! [`REBUILD_EVERY`] inputs so that what the inputs store does not pile up.

use std::sync::Mutex;

use hangar_block::{BlockStore, BlockStoreConfig, DataDir};
use hangar_cluster::testing::MemoryCluster;
use hangar_db::Db;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::{ModelConfig, ObjectService};
use hangar_table::Replicator;
use hangar_util::clock::Clock;

/// Inputs served by one node before it is replaced by a fresh one.
pub const REBUILD_EVERY: u64 = 20_000;

/// A node and what the targets need to reach it.
pub struct Node {
    pub service: ObjectService,
    pub key: AccessKey,
    pub cluster: MemoryCluster,
    pub served: u64,
    /// A connection from another node, opened by the first target that needs one.
    pub peer: Option<(
        std::sync::Arc<hangar_net::memory::MemoryTransport>,
        std::sync::Arc<dyn hangar_net::Connection>,
    )>,
    _dir: tempfile::TempDir,
    // Dropped last: the node's tasks end with it.
    pub rt: tokio::runtime::Runtime,
}

impl Node {
    fn start() -> Node {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let (service, key, cluster) = rt.block_on(async {
            let cluster = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
            let replicator = Replicator::new(cluster.systems[0].clone());
            let clock = Clock::system();
            let db = Db::open_in_memory().expect("database");
            let blocks = BlockStore::new(
                BlockStoreConfig {
                    data_dirs: vec![DataDir {
                        path: dir.path().join("blocks"),
                        capacity: 1,
                    }],
                    compression_level: Some(1),
                    fsync: false,
                    gc_delay_msec: 0,
                },
                db.clone(),
                clock.clone(),
            )
            .expect("block store");
            let config = ModelConfig {
                // The smallest blocks: objects of a few KiB span several.
                block_size: 4096,
                inline_threshold: 64,
                upload_buffer_bytes: 1 << 20,
                release_delay_msec: 0,
                tombstone_delay_msec: 0,
                ..ModelConfig::default()
            };
            let service = ObjectService::new(config, db, blocks, &replicator, clock);
            let key = service.create_key("fuzz").await.expect("key");
            let key = service
                .update_key(&key.id, None, Some(true))
                .await
                .expect("key may create buckets");
            service
                .create_bucket("fuzz", Some(&key))
                .await
                .expect("bucket owned by the key");
            (service, key, cluster)
        });
        Node {
            service,
            key,
            cluster,
            served: 0,
            peer: None,
            _dir: dir,
            rt,
        }
    }
}

static NODE: Mutex<Option<Node>> = Mutex::new(None);

/// Runs `f` with the current node (started, or replaced when it has served
/// [`REBUILD_EVERY`] inputs).
pub fn with_node<T>(f: impl FnOnce(&mut Node) -> T) -> T {
    let mut guard = NODE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.as_ref().is_none_or(|n| n.served >= REBUILD_EVERY) {
        *guard = None;
        *guard = Some(Node::start());
    }
    let node = guard.as_mut().expect("started above");
    node.served += 1;
    f(node)
}
