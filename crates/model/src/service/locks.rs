//! Node-local locks that make check-then-write sequences atomic among the
//! requests one node coordinates: conditional writes of one key, creations of
//! one bucket name, writes into a bucket against its deletion. On a single
//! node this gives the guarantees of a transaction; across nodes, two such
//! sequences through different nodes can still interleave (the S3
//! compatibility tables say so).

use hangar_util::Hash;
use tokio::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Lock stripes of each kind: enough that unrelated names rarely share one.
const STRIPES: usize = 256;

/// Striped locks of one node.
pub(crate) struct Locks {
    names: Vec<Mutex<()>>,
    buckets: Vec<RwLock<()>>,
}

impl Default for Locks {
    fn default() -> Self {
        Locks {
            names: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            buckets: (0..STRIPES).map(|_| RwLock::new(())).collect(),
        }
    }
}

fn stripe(parts: &[&[u8]]) -> usize {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(&(p.len() as u64).to_le_bytes());
        bytes.extend_from_slice(p);
    }
    usize::from(Hash::of(&bytes).as_bytes()[0]) % STRIPES
}

impl Locks {
    /// Serialises checks and writes of one name: an object key in a bucket,
    /// or a bucket name (with an empty `scope`).
    pub(crate) async fn name(&self, scope: &[u8], name: &[u8]) -> MutexGuard<'_, ()> {
        self.names[stripe(&[scope, name])].lock().await
    }

    /// Held (shared) by writes that add to a bucket.
    pub(crate) async fn bucket_write(&self, bucket: &Hash) -> RwLockReadGuard<'_, ()> {
        self.buckets[stripe(&[bucket.as_bytes()])].read().await
    }

    /// Held (exclusive) by a bucket's deletion.
    pub(crate) async fn bucket_delete(&self, bucket: &Hash) -> RwLockWriteGuard<'_, ()> {
        self.buckets[stripe(&[bucket.as_bytes()])].write().await
    }
}
