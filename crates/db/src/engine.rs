//! [`Db`]: reads straight from the engine, writes through the group-commit writer.

use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, TableDefinition};

use crate::disk::{EngineFile, MemoryDisk, RealFile};
use crate::wal::Wal;
use crate::writer::{replay_log, Job, Writer};
use crate::{engine_err, Error, Result, Tx};

/// A named tree (table) of byte keys to byte values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tree(pub &'static str);

impl Tree {
    pub(crate) fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.0)
    }
}

/// When a commit reaches the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every commit is fsynced before [`Db::transaction`] returns (default).
    Fsync,
    /// Commits are not synced one by one, but at least once a second. Each
    /// reaches the operating system (the write-ahead log) before
    /// [`Db::transaction`] returns, so a crash of the process loses nothing;
    /// a crash of the machine may lose the last second of commits, never
    /// one without those before it, and never leaves an inconsistent
    /// database.
    NoFsync,
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// Commit durability.
    pub durability: Durability,
    /// Engine page cache size in bytes.
    pub cache_size_bytes: usize,
    /// Longest time a commit that is not durable waits for one that is
    /// (without fsync, what a machine crash may lose).
    pub sync_interval: std::time::Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            durability: Durability::Fsync,
            cache_size_bytes: 16 << 20,
            sync_interval: std::time::Duration::from_secs(1),
        }
    }
}

/// A handle to the metadata database. Cloning is cheap and shares the database.
#[derive(Clone)]
pub struct Db {
    inner: Arc<redb::Database>,
    writer: Arc<Writer>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (or creates) the database file at `path`, with its write-ahead
    /// log beside it (same name, extension `wal`), and applies the commits
    /// the log holds that the file lacks.
    pub fn open(path: &Path, config: &DbConfig) -> Result<Self> {
        let fresh = !path.exists();
        let db = redb::Database::builder()
            .set_cache_size(config.cache_size_bytes)
            .create(path)
            .map_err(engine_err)?;
        let log_path = path.with_extension("wal");
        let log_err = |e: std::io::Error| Error::Log(format!("{}: {e}", log_path.display()));
        let log = RealFile::open(&log_path).map_err(log_err)?;
        if fresh {
            // A log left beside a database that is gone belongs to it.
            crate::disk::DiskFile::set_len(&log, 0).map_err(log_err)?;
        }
        Self::from_engine(db, config, Box::new(log))
    }

    /// Opens (or creates) the database held on `disk`, as [`Db::open`] does
    /// with files: for tests and simulations that crash it
    /// ([`MemoryDisk::crash`]).
    pub fn open_on(disk: &MemoryDisk, config: &DbConfig) -> Result<Self> {
        let db = redb::Database::builder()
            .set_cache_size(config.cache_size_bytes)
            .create_with_backend(EngineFile(disk.file("meta.redb")))
            .map_err(engine_err)?;
        Self::from_engine(db, config, Box::new(disk.file("meta.wal")))
    }

    /// A database held in memory, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::open_on(
            &MemoryDisk::default(),
            &DbConfig {
                durability: Durability::NoFsync,
                ..DbConfig::default()
            },
        )
    }

    fn from_engine(
        db: redb::Database,
        config: &DbConfig,
        log: Box<dyn crate::disk::DiskFile>,
    ) -> Result<Self> {
        let mut wal = Wal::new(log).map_err(|e| Error::Log(e.to_string()))?;
        let last_seq = replay_log(&db, &mut wal)?;
        let inner = Arc::new(db);
        let writer = Arc::new(Writer::spawn(inner.clone(), config, wal, last_seq));
        Ok(Db { inner, writer })
    }

    /// Reads one value.
    pub fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let rtx = self.inner.begin_read().map_err(engine_err)?;
        let table = match rtx.open_table(tree.def()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(engine_err(e)),
        };
        let v = table.get(key).map_err(engine_err)?;
        Ok(v.map(|g| g.value().to_vec()))
    }

    /// Reads at most `limit` entries with `start <= key < end` (`end = None`: no
    /// upper bound), in ascending key order.
    pub fn range(
        &self,
        tree: Tree,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let rtx = self.inner.begin_read().map_err(engine_err)?;
        let table = match rtx.open_table(tree.def()) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(engine_err(e)),
        };
        let iter = match end {
            Some(end) => table.range::<&[u8]>(start..end),
            None => table.range::<&[u8]>(start..),
        }
        .map_err(engine_err)?;
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item.map_err(engine_err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Runs `f` atomically: either all its writes are committed or none. `f` runs on
    /// the writer thread, grouped with concurrent transactions into one commit, and
    /// must not block for long. Returns once the commit is durable as configured.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<crate::Error> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.run(f, true).await
    }

    /// Like [`Db::transaction`], but returns once committed, before the commit is
    /// durable: it becomes durable with the next durable commit, which may be the
    /// caller's own next [`Db::transaction`]. Commits stay in order, so a crash
    /// loses a suffix of unsynced commits, never one without those before it.
    /// For writes whose loss in a crash is harmless until a later durable
    /// transaction that relies on them, such as the block references of an
    /// upload that is not acknowledged yet.
    pub async fn transaction_unsynced<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<crate::Error> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.run(f, false).await
    }

    async fn run<T, E, F>(&self, f: F, durable: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<crate::Error> + Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (job, rx) = Job::new(f, durable);
        self.writer.submit(job).map_err(E::from)?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(E::from(crate::Error::WriterStopped)),
        }
    }

    /// Number of transactions committed and number of engine commits since start;
    /// their ratio is the group-commit batching factor.
    pub fn commit_stats(&self) -> (u64, u64) {
        self.writer.stats()
    }
}
