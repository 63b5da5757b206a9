//! The node the request-level harnesses talk to: one storage node on the
//! in-memory network with its object service (metadata in memory, blocks in
//! a temporary directory) and a bucket `fuzz` its key owns, on a runtime of
//! its own. Rebuilt from scratch every [`REBUILD_EVERY`] inputs so that what
//! the inputs store does not pile up.

use std::sync::{Arc, Mutex};

use hangar_cluster::testing::MemoryCluster;
use hangar_model::schema::access_key::AccessKey;
use hangar_model::{ModelConfig, ObjectService};
use hangar_net::memory::MemoryTransport;
use hangar_net::Connection;
use hangar_table::Replicator;
use hangar_util::clock::Clock;

/// Inputs served by one node before it is replaced by a fresh one.
pub const REBUILD_EVERY: u64 = 20_000;

/// A node and what the harnesses need to reach it.
pub struct FuzzNode {
    /// The node's object service.
    pub service: ObjectService,
    /// A key that owns the bucket `fuzz` and may create buckets.
    pub key: AccessKey,
    /// The in-memory network the node is on.
    pub cluster: MemoryCluster,
    /// Inputs served so far.
    pub served: u64,
    /// A connection from another node, opened by the first harness that
    /// needs one.
    pub peer: Option<(Arc<MemoryTransport>, Arc<dyn Connection>)>,
    _dir: tempfile::TempDir,
    /// The node's runtime (dropped last: the node's tasks end with it).
    pub rt: tokio::runtime::Runtime,
}

impl FuzzNode {
    fn start() -> FuzzNode {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let (service, key, cluster) = rt.block_on(async {
            let cluster = MemoryCluster::start(1, 1, std::time::Duration::ZERO).await;
            let replicator = Replicator::new(cluster.systems[0].clone());
            let config = ModelConfig {
                // The smallest blocks: objects of a few KiB span several.
                inline_threshold: 64,
                ..crate::small_model_config()
            };
            let service = crate::service_on(&replicator, dir.path(), config, Clock::system())
                .expect("object service");
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
        FuzzNode {
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

static NODE: Mutex<Option<FuzzNode>> = Mutex::new(None);

/// Runs `f` with the current node (started, or replaced when it has served
/// [`REBUILD_EVERY`] inputs).
pub fn with_node<T>(f: impl FnOnce(&mut FuzzNode) -> T) -> T {
    let mut guard = NODE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.as_ref().is_none_or(|n| n.served >= REBUILD_EVERY) {
        *guard = None;
        *guard = Some(FuzzNode::start());
    }
    let node = guard.as_mut().expect("started above");
    node.served += 1;
    f(node)
}
