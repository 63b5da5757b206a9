//! Who holds what: node identities, the cluster layout (which nodes hold each
//! partition) and the replication parameters that define write and read quorums.
//!
//! Data is split into [`PARTITION_COUNT`] partitions by the first byte of a
//! partition key's hash. Upper layers ask [`Layout::nodes_of`] for the nodes of a
//! partition and [`ReplicationParams`] how many of them must answer. A single node
//! is a cluster of one: [`Layout::single_node`].
//!
//! ```
//! use hangar_cluster::{Layout, NodeId, ReplicationParams};
//! use hangar_util::Hash;
//! let me = NodeId::from_public_key(&[7; 32]);
//! let layout = Layout::single_node(me);
//! assert_eq!(layout.nodes_of(&Hash::of(b"bucket")), &[me]);
//! assert_eq!(ReplicationParams::new(1).write_quorum(), 1);
//! ```
//!
//! The operator's view of the layout (node roles, staged changes, applied
//! versions) is the [`history::LayoutHistory`]; its [`LayoutHistory::routing`]
//! gives the [`Layout`] that requests are routed with.

pub mod assignment;
mod consistency;
mod files;
pub mod history;
pub mod layout_sync;
pub mod membership;
pub mod quorum;
pub mod system;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transitions;

pub use consistency::ConsistencyMode;
pub use hangar_util::NodeId;
pub use system::{ClusterConfig, ClusterHealth, ClusterStatus, NodeStatus, System};

pub use history::{
    LayoutDiff, LayoutError, LayoutHistory, LayoutParams, LayoutVersion, NodeDiff, NodeRole,
    StagedChanges, StagedRole,
};

use hangar_util::Hash;
use serde::{Deserialize, Serialize};

/// Locks `m`, carrying on if a panicking thread poisoned it (the data under
/// these locks stays consistent at every await-free step).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::time::Duration;

    /// Waits (bounded by `limit`) until `f` holds; panics naming `what` if not.
    pub(crate) async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
        let start = tokio::time::Instant::now();
        while start.elapsed() < limit {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("not within {limit:?}: {what}");
    }
}

/// Number of partitions the key space is split into.
pub const PARTITION_COUNT: usize = 256;

/// Index of a partition, `0..PARTITION_COUNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition(pub u16);

impl Partition {
    /// The partition a hash falls in.
    pub fn of(hash: &Hash) -> Self {
        Partition(u16::from(hash.as_bytes()[0]))
    }
}

/// How many copies of each item are kept and how many must answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationParams {
    factor: usize,
}

impl ReplicationParams {
    /// Parameters for `factor` copies.
    pub fn new(factor: usize) -> Self {
        assert!(factor >= 1, "replication factor must be at least 1");
        ReplicationParams { factor }
    }
    /// Number of copies.
    pub fn factor(&self) -> usize {
        self.factor
    }
    /// Copies that must acknowledge a write: a majority.
    pub fn write_quorum(&self) -> usize {
        self.factor / 2 + 1
    }
    /// Copies that must answer a read so that it meets every write quorum.
    pub fn read_quorum(&self) -> usize {
        self.factor + 1 - self.write_quorum()
    }
}

/// Where requests go while layout versions are live (see
/// [`history::LayoutHistory::live_versions`]): writes must reach a write quorum
/// in each of `writes`; reads go to `read`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// One layout per live version with an assignment, oldest first.
    pub writes: Vec<Layout>,
    /// The newest version every node has synced.
    pub read: Layout,
}

impl Routing {
    /// Routing with a single version for reads and writes.
    pub fn single(layout: Layout) -> Self {
        Routing {
            writes: vec![layout.clone()],
            read: layout,
        }
    }

    /// For each live version, the nodes holding the partition of `hash` and
    /// the write quorum there.
    pub fn write_sets(&self, hash: &Hash) -> Vec<(Vec<NodeId>, usize)> {
        self.writes
            .iter()
            .map(|l| (l.nodes_of(hash).to_vec(), l.params().write_quorum()))
            .collect()
    }
}

/// The assignment of partitions to nodes at one layout version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    layout_version: u64,
    params: ReplicationParams,
    /// For each partition, its nodes in preference order.
    assignment: Vec<Vec<NodeId>>,
    /// Every node of `assignment`, in id order (asked on every request to a
    /// fully replicated table: computed once).
    #[serde(skip)]
    all: Vec<NodeId>,
}

/// Every node of `assignment`, in id order.
fn nodes_in(assignment: &[Vec<NodeId>]) -> Vec<NodeId> {
    let mut nodes: Vec<NodeId> = assignment.iter().flatten().copied().collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

impl Layout {
    /// The layout of version `layout_version`: `assignment` lists, for each of
    /// the [`PARTITION_COUNT`] partitions, its nodes in preference order (a
    /// partition without nodes accepts no write).
    ///
    /// # Panics
    ///
    /// If `assignment` does not have [`PARTITION_COUNT`] entries.
    pub fn new(
        layout_version: u64,
        params: ReplicationParams,
        assignment: Vec<Vec<NodeId>>,
    ) -> Self {
        assert_eq!(
            assignment.len(),
            PARTITION_COUNT,
            "a layout assigns every partition"
        );
        Layout {
            layout_version,
            params,
            all: nodes_in(&assignment),
            assignment,
        }
    }
    /// A layout where `node` holds every partition.
    pub fn single_node(node: NodeId) -> Self {
        Layout {
            layout_version: 1,
            params: ReplicationParams::new(1),
            assignment: vec![vec![node]; PARTITION_COUNT],
            all: vec![node],
        }
    }
    /// This layout's version number.
    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }
    /// Replication parameters.
    pub fn params(&self) -> ReplicationParams {
        self.params
    }
    /// Nodes holding the partition of `hash`.
    pub fn nodes_of(&self, hash: &Hash) -> &[NodeId] {
        self.partition_nodes(Partition::of(hash))
    }
    /// Every node holding at least one partition, in id order.
    pub fn all_nodes(&self) -> Vec<NodeId> {
        if self.all.is_empty() {
            // Decoded (the cache is not stored): computed each time.
            return nodes_in(&self.assignment);
        }
        self.all.clone()
    }
    /// Nodes holding `partition` (none if it is out of range).
    pub fn partition_nodes(&self, partition: Partition) -> &[NodeId] {
        self.assignment
            .get(usize::from(partition.0))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_intersect() {
        for factor in 1..8 {
            let p = ReplicationParams::new(factor);
            assert!(p.write_quorum() + p.read_quorum() > factor);
            assert!(p.write_quorum() <= factor);
        }
        assert_eq!(ReplicationParams::new(3).write_quorum(), 2);
        assert_eq!(ReplicationParams::new(3).read_quorum(), 2);
    }

    #[test]
    fn node_ids_serialise_as_bytes_and_parse_from_hex() {
        let n = NodeId::from_public_key(b"k");
        let bytes = hangar_util::encoding::Versioned::encode(&Wrapped(n)).expect("encode");
        // format byte, then bin8 (0xc4) of length 32.
        assert_eq!(&bytes[..3], &[1, 0xc4, 32]);
        assert_eq!(bytes.len(), 3 + 32);
        let back: Wrapped = hangar_util::encoding::Versioned::decode(&bytes).expect("decode");
        assert_eq!(back.0, n);
        assert_eq!(NodeId::from_hex(&n.to_hex()), Some(n));
        assert_eq!(NodeId::from_hex(&n.to_hex().to_uppercase()), Some(n));
        assert_eq!(NodeId::from_hex("abc"), None);
    }

    #[derive(Serialize, Deserialize)]
    struct Wrapped(NodeId);
    impl hangar_util::encoding::Versioned for Wrapped {
        const TYPE_NAME: &'static str = "Wrapped";
        const FORMAT_VERSION: u8 = 1;
    }

    #[test]
    fn every_partition_has_its_nodes() {
        let n = NodeId::from_public_key(b"k");
        let l = Layout::single_node(n);
        for b in 0..=255u8 {
            let mut h = [0u8; 32];
            h[0] = b;
            assert_eq!(l.nodes_of(&Hash(h)), &[n]);
        }
    }
}
