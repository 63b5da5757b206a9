//! fjall under the db-engines workloads: one optimistic (serialisable)
//! transaction per read-modify-write, retried on conflict; one snapshot per scan.

use std::path::Path;

use anyhow::bail;
use fjall::{
    KeyspaceCreateOptions, OptimisticTxDatabase, OptimisticTxKeyspace, PersistMode, Readable,
};

use super::{bump, initial_value, key, Engine, CACHE_BYTES};

/// Conflict retries of one transaction before the run is declared failed.
const RETRIES_MAX: u64 = 10_000;

/// A fjall database preloaded with the benchmark records.
pub(super) struct FjallEngine {
    db: OptimisticTxDatabase,
    ks: OptimisticTxKeyspace,
    mode: PersistMode,
}

impl FjallEngine {
    /// Creates a database in `dir` and loads `keys` records in one synced commit.
    /// With `flush`, the preloaded memtable is then written to a disk table, so
    /// reads take the path of a database larger than its memtable (64 MiB).
    pub(super) fn open(dir: &Path, keys: u64, fsync: bool, flush: bool) -> anyhow::Result<Self> {
        let db = OptimisticTxDatabase::builder(dir)
            .cache_size(CACHE_BYTES as u64)
            .open()?;
        let ks = db.keyspace("objects", KeyspaceCreateOptions::default)?;
        let mut tx = db.write_tx()?.durability(Some(PersistMode::SyncAll));
        let value = initial_value();
        for i in 0..keys {
            tx.insert(&ks, key(i), value.as_slice());
        }
        if tx.commit()?.is_err() {
            bail!("preload transaction conflicted");
        }
        if flush {
            // `inner` and `rotate_memtable_and_wait` are public but doc(hidden) in
            // fjall 3; there is no other way to force a flush and wait for it.
            ks.inner().rotate_memtable_and_wait()?;
        }
        let mode = if fsync {
            PersistMode::SyncAll
        } else {
            PersistMode::Buffer
        };
        Ok(Self { db, ks, mode })
    }
}

impl Engine for FjallEngine {
    fn rmw(&self, ids: &[u64]) -> anyhow::Result<u64> {
        for retries in 0..=RETRIES_MAX {
            let mut tx = self.db.write_tx()?.durability(Some(self.mode));
            for &id in ids {
                let k = key(id);
                let mut v = match tx.get(&self.ks, &k)? {
                    Some(v) => v.to_vec(),
                    None => initial_value(),
                };
                bump(&mut v);
                tx.insert(&self.ks, k, v);
            }
            if tx.commit()?.is_ok() {
                return Ok(retries);
            }
        }
        bail!("transaction still conflicting after {RETRIES_MAX} retries")
    }

    fn scan(&self, start: u64, len: usize) -> anyhow::Result<usize> {
        let snapshot = self.db.read_tx();
        let mut n = 0;
        let mut bytes = 0usize;
        for guard in snapshot.range(&self.ks, key(start)..).take(len) {
            let (k, v) = guard.into_inner()?;
            bytes += k.len() + v.len();
            n += 1;
        }
        std::hint::black_box(bytes);
        Ok(n)
    }
}
