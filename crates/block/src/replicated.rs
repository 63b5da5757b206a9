//! Blocks on the cluster: each block lives on the nodes of its partition (by
//! its hash), is written to all of them and acknowledged at write quorum, and
//! is read from the nearest node that has it, falling over to the next.
//! Every block received from a peer is checked against its hash before it is
//! stored or returned.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use hangar_cluster::quorum::{NodeFailure, SetQuorums};
use hangar_cluster::{NodeId, System};
use hangar_net::{body_from_chunks, CallOptions, IncomingBody, Message, Priority, Reply};
use hangar_util::Hash;
use serde::{Deserialize, Serialize};

use crate::{BlockStore, Error, Result};

/// Shortest wait before a read also asks the next replica.
const MIN_HEDGE_DELAY: Duration = Duration::from_millis(100);
/// Deadline of one block transfer.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);

/// Stores the block that follows (its bytes, uncompressed).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PutBlock {
    hash: Hash,
}

impl Message for PutBlock {
    const ENDPOINT: &'static str = "block/put";
    const PRIORITY: Priority = Priority::Data;
    type Response = ();
}

/// Asks for a block; its bytes follow the response.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct GetBlock {
    hash: Hash,
}

impl Message for GetBlock {
    const ENDPOINT: &'static str = "block/get";
    const PRIORITY: Priority = Priority::Data;
    type Response = ();
}

/// The block store of a node in a cluster. Cheap to clone.
#[derive(Clone)]
pub struct ReplicatedBlocks {
    inner: Arc<Inner>,
}

struct Inner {
    store: BlockStore,
    system: Arc<System>,
    max_block_size: usize,
}

impl ReplicatedBlocks {
    /// Blocks of the node of `system`, kept locally in `store`; blocks larger
    /// than `max_block_size` are refused. Registers the block endpoints.
    pub fn new(store: BlockStore, system: Arc<System>, max_block_size: usize) -> Self {
        let inner = Arc::new(Inner {
            store,
            system,
            max_block_size,
        });
        let rpc = inner.system.rpc().clone();
        let weak = Arc::downgrade(&inner);
        rpc.register_streaming(
            move |_from, PutBlock { hash }, body: Option<IncomingBody>| {
                let weak = weak.clone();
                async move {
                    let inner = weak
                        .upgrade()
                        .ok_or_else(|| "node shutting down".to_string())?;
                    let body = body.ok_or_else(|| "block without data".to_string())?;
                    let data = body
                        .collect(inner.max_block_size)
                        .await
                        .map_err(|e| e.to_string())?;
                    if Hash::of(&data) != hash {
                        tracing::warn!(%hash, "refused a block whose bytes do not match its hash");
                        return Err(format!("block {hash}: bytes do not match the hash"));
                    }
                    inner
                        .store
                        .write(hash, Bytes::from(data))
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Reply::new(()))
                }
            },
        );
        let weak = Arc::downgrade(&inner);
        rpc.register_streaming(move |_from, GetBlock { hash }, _body| {
            let weak = weak.clone();
            async move {
                let inner = weak
                    .upgrade()
                    .ok_or_else(|| "node shutting down".to_string())?;
                let data = inner.store.read(hash).await.map_err(|e| e.to_string())?;
                Ok(Reply::with_body((), body_from_chunks(vec![data])))
            }
        });
        ReplicatedBlocks { inner }
    }

    /// This node's own store.
    pub fn local(&self) -> &BlockStore {
        &self.inner.store
    }

    /// The nodes to read `hash` from, in order: those of the version every
    /// node has synced (nearest first), then those of the other live versions.
    pub fn read_order(&self, hash: &Hash) -> Vec<NodeId> {
        let routing = self.inner.system.layout().live_routing();
        let quorum = self.inner.system.quorum();
        let mut order = quorum.preference_order(routing.read.nodes_of(hash));
        let others: Vec<NodeId> = routing
            .writes
            .iter()
            .flat_map(|l| l.nodes_of(hash).iter().copied())
            .filter(|n| !order.contains(n))
            .collect();
        order.extend(quorum.preference_order(&others));
        order
    }

    /// Writes a block to every node of its partition in every live layout
    /// version; returns once each version has a write quorum of copies (the
    /// other nodes keep receiving it in the background).
    pub async fn put(&self, hash: Hash, data: Bytes) -> Result<()> {
        let _in_flight = self.inner.system.layout().begin_write();
        let mode = self.inner.system.consistency_mode();
        let sets = self
            .inner
            .system
            .layout()
            .live_routing()
            .write_sets(&hash)
            .into_iter()
            .map(|(nodes, q)| (nodes, mode.write_quorum(q)))
            .collect();
        let mut progress = SetQuorums::new(sets);
        let me = self.inner.system.id();
        let pending: FuturesUnordered<_> = progress
            .nodes()
            .into_iter()
            .map(|node| {
                let inner = self.inner.clone();
                let data = data.clone();
                async move {
                    let result = if node == me {
                        inner
                            .store
                            .write(hash, data)
                            .await
                            .map_err(|e| NodeFailure::Failed(e.to_string()))
                    } else {
                        inner.send(node, hash, data).await
                    };
                    (node, result)
                }
            })
            .collect();
        progress
            .collect(pending, |_, ()| {})
            .await
            .map_err(|source| Error::Replication { hash, source })
    }

    /// Reads a block from the nearest node that has it (this node first, if
    /// it holds the block), and asks the next one when a node fails, or is
    /// slow to answer.
    pub async fn get(&self, hash: Hash) -> Result<Bytes> {
        let order = self.read_order(&hash);
        let me = self.inner.system.id();
        let fetch = |node: NodeId| {
            let inner = self.inner.clone();
            async move {
                let result = if node == me {
                    inner.store.read(hash).await.map_err(|e| e.to_string())
                } else {
                    inner.fetch(node, hash).await
                };
                (node, result)
            }
        };
        let mut pending = FuturesUnordered::new();
        let mut next = 0;
        let mut errors = Vec::new();
        loop {
            if pending.is_empty() {
                let Some(node) = order.get(next) else { break };
                pending.push(fetch(*node));
                next += 1;
            }
            let hedge = order
                .get(next)
                .map_or(TRANSFER_TIMEOUT, |n| self.inner.hedge_delay(*n));
            tokio::select! {
                Some((node, result)) = pending.next() => match result {
                    Ok(data) => {
                        if node != me && order.contains(&me) {
                            self.restore_local_copy(hash, data.clone());
                        }
                        return Ok(data);
                    }
                    Err(e) => {
                        tracing::debug!(%hash, %node, "block read failed: {e}");
                        errors.push(format!("{node}: {e}"));
                    }
                },
                () = tokio::time::sleep(hedge), if next < order.len() => {
                    pending.push(fetch(order[next]));
                    next += 1;
                }
            }
        }
        Err(Error::Unavailable {
            hash,
            errors: errors.join("; "),
        })
    }
}

impl ReplicatedBlocks {
    /// Whether this node holds `hash`'s partition in some live layout version.
    pub fn holds(&self, hash: &Hash) -> bool {
        let me = self.inner.system.id();
        self.inner
            .system
            .layout()
            .live_routing()
            .writes
            .iter()
            .any(|l| l.nodes_of(hash).contains(&me))
    }

    /// Fetches `hash` from the other nodes that hold it, nearest first.
    /// `Ok(None)`: every one of them answered that it does not have it.
    pub(crate) async fn fetch_from_peers(&self, hash: Hash) -> Result<Option<Bytes>> {
        let me = self.inner.system.id();
        let mut errors = Vec::new();
        let mut all_missing = true;
        for node in self.read_order(&hash).into_iter().filter(|n| *n != me) {
            match self.inner.fetch(node, hash).await {
                Ok(data) => return Ok(Some(data)),
                Err(e) => {
                    all_missing &= e.contains(&Error::Missing { hash }.to_string());
                    errors.push(format!("{node}: {e}"));
                }
            }
        }
        if all_missing {
            return Ok(None);
        }
        Err(Error::Unavailable {
            hash,
            errors: errors.join("; "),
        })
    }

    /// Stores a block this node should hold but had to fetch (it was missing
    /// or damaged here), in the background.
    fn restore_local_copy(&self, hash: Hash, data: Bytes) {
        let store = self.inner.store.clone();
        tokio::spawn(async move {
            if store.is_present(&hash) {
                return;
            }
            match store.write(hash, data).await {
                Ok(()) => tracing::info!(%hash, "restored a missing or damaged block from a peer"),
                Err(e) => tracing::warn!(%hash, "restoring a block from a peer: {e}"),
            }
        });
    }
}

impl Inner {
    /// The quorum helper's hedge delay, at least [`MIN_HEDGE_DELAY`]: a block
    /// takes longer than a small request.
    fn hedge_delay(&self, node: NodeId) -> Duration {
        self.system.quorum().hedge_delay(node).max(MIN_HEDGE_DELAY)
    }

    fn options() -> CallOptions {
        CallOptions {
            timeout: TRANSFER_TIMEOUT,
            ..CallOptions::default()
        }
    }

    /// Sends a block to `node`; a failure keeps its cause (unreachable,
    /// timed out, or the node's own error) for the quorum error.
    async fn send(&self, node: NodeId, hash: Hash, data: Bytes) -> Result<(), NodeFailure> {
        self.system
            .rpc()
            .call_with(
                node,
                &PutBlock { hash },
                Self::options(),
                Some(body_from_chunks(vec![data])),
            )
            .await
            .map(|_| ())
            .map_err(NodeFailure::from)
    }

    async fn fetch(&self, node: NodeId, hash: Hash) -> Result<Bytes, String> {
        let (_, body) = self
            .system
            .rpc()
            .call_with(node, &GetBlock { hash }, Self::options(), None)
            .await
            .map_err(|e| e.to_string())?;
        let body = body.ok_or_else(|| "no block data".to_string())?;
        let data = body
            .collect(self.max_block_size)
            .await
            .map_err(|e| e.to_string())?;
        if Hash::of(&data) != hash {
            tracing::warn!(%hash, %node, "a peer sent a block that does not match its hash");
            return Err("bytes do not match the hash".into());
        }
        Ok(Bytes::from(data))
    }
}

#[cfg(test)]
mod tests {
    use hangar_cluster::testing::{wait_until, MemoryCluster};
    use hangar_db::Db;
    use hangar_net::memory::LinkState;
    use hangar_util::clock::Clock;

    use super::*;
    use crate::{BlockStoreConfig, DataDir};

    const MIB: usize = 1 << 20;

    struct Nodes {
        cluster: MemoryCluster,
        blocks: Vec<ReplicatedBlocks>,
        dirs: Vec<tempfile::TempDir>,
    }

    async fn start() -> Nodes {
        let cluster = MemoryCluster::start(3, 3, Duration::from_millis(5)).await;
        let dirs: Vec<tempfile::TempDir> =
            (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
        let blocks = cluster
            .systems
            .iter()
            .zip(&dirs)
            .map(|(system, dir)| {
                let config = BlockStoreConfig {
                    data_dirs: vec![DataDir {
                        path: dir.path().to_path_buf(),
                        capacity: 1,
                    }],
                    compression_level: None,
                    fsync: false,
                    gc_delay_msec: 0,
                };
                let db = Db::open_in_memory().expect("db");
                let store = BlockStore::new(config, db, Clock::system()).expect("store");
                ReplicatedBlocks::new(store, system.clone(), 4 * MIB)
            })
            .collect();
        Nodes {
            cluster,
            blocks,
            dirs,
        }
    }

    fn block(seed: u8, len: usize) -> (Hash, Bytes) {
        let data: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        (Hash::of(&data), Bytes::from(data))
    }

    #[tokio::test]
    async fn a_block_written_through_one_node_is_on_every_replica_and_read_anywhere() {
        let n = start().await;
        let (hash, data) = block(1, 3 * MIB + 17);
        n.blocks[0].put(hash, data.clone()).await.expect("put");
        wait_until("on every node", || {
            n.blocks.iter().all(|b| b.local().is_present(&hash))
        })
        .await;
        for b in &n.blocks {
            assert_eq!(b.get(hash).await.expect("get"), data);
        }
    }

    #[tokio::test]
    async fn reads_fall_over_from_a_missing_or_corrupt_copy_to_a_good_one() {
        let n = start().await;
        // Node 2 hears nothing during the write: its copy is missing.
        n.cluster.set_state(2, LinkState::Silent);
        let (hash, data) = block(2, MIB);
        n.blocks[0]
            .put(hash, data.clone())
            .await
            .expect("put at quorum");
        n.cluster.set_state(2, LinkState::Up);
        assert!(!n.blocks[2].local().is_present(&hash));
        assert_eq!(n.blocks[2].get(hash).await.expect("get"), data);
        wait_until("node 2 restored its copy", || {
            n.blocks[2].local().is_present(&hash)
        })
        .await;

        // Node 0's copy is damaged on disk: it is not served.
        let path = crate::dirs::block_path(n.dirs[0].path(), &hash);
        let mut bytes = std::fs::read(&path).expect("block file");
        bytes[1000] ^= 0xff;
        std::fs::write(&path, &bytes).expect("damage");
        assert_eq!(n.blocks[0].get(hash).await.expect("get"), data);
        // The damaged file was set aside and a good copy written back.
        wait_until("node 0 restored its copy", || {
            n.blocks[0].local().is_present(&hash)
        })
        .await;
        assert_eq!(n.blocks[0].local().read(hash).await.expect("local"), data);
    }

    #[tokio::test]
    async fn a_block_that_does_not_match_its_hash_is_refused() {
        let n = start().await;
        let (hash, _) = block(3, 1000);
        let (_, other) = block(4, 1000);
        let err = n.cluster.systems[0]
            .rpc()
            .call_with(
                n.cluster.ids[1],
                &PutBlock { hash },
                CallOptions::default(),
                Some(body_from_chunks(vec![other])),
            )
            .await
            .expect_err("mismatching bytes");
        assert!(err.to_string().contains("do not match"), "{err}");
        assert!(!n.blocks[1].local().is_present(&hash));
    }

    #[tokio::test]
    async fn writes_without_a_quorum_fail_and_reads_of_lost_blocks_say_so() {
        let n = start().await;
        n.cluster.set_state(1, LinkState::Down);
        n.cluster.set_state(2, LinkState::Down);
        let (hash, data) = block(5, 1000);
        let err = n.blocks[0]
            .put(hash, data)
            .await
            .expect_err("one node of three");
        assert!(
            matches!(&err, Error::Replication { source, .. } if source.needed == 2),
            "{err}"
        );
        let (absent, _) = block(6, 1000);
        let err = n.blocks[0].get(absent).await.expect_err("nowhere");
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    }
}

#[cfg(test)]
mod format_fixtures;
