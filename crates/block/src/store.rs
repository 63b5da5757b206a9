//! [`BlockStore`]: local block files, reference counts and garbage collection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use hangar_db::{Db, Tx};
use hangar_util::clock::Clock;
use hangar_util::Hash;
use tracing::{debug, warn};

use crate::dirs::{block_files, block_path, DataDir, DataDirs};
use crate::disk::{BlockDisk, OsDisk};
use crate::refcount::{self, GC_QUEUE};
use crate::{Error, Result};

/// First byte of a block file: how the rest is encoded.
const FORMAT_PLAIN: u8 = 0;
const FORMAT_ZSTD: u8 = 1;

/// Block store settings.
#[derive(Clone, Debug)]
pub struct BlockStoreConfig {
    /// Where blocks live.
    pub data_dirs: Vec<DataDir>,
    /// zstd level, or `None` to store blocks uncompressed.
    pub compression_level: Option<i32>,
    /// fsync block files (and their directory) before a write returns.
    pub fsync: bool,
    /// How long an unreferenced block is kept before deletion.
    pub gc_delay_msec: u64,
}

/// Local, content-addressed block storage. Cheap to clone.
#[derive(Clone)]
pub struct BlockStore {
    inner: Arc<Inner>,
}

struct Inner {
    dirs: DataDirs,
    compression_level: Option<i32>,
    fsync: bool,
    gc_delay_msec: u64,
    db: Db,
    clock: Clock,
    disk: Arc<dyn BlockDisk>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("dirs", &self.inner.dirs)
            .finish_non_exhaustive()
    }
}

fn io_err(hash: Hash) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { hash, source }
}

impl BlockStore {
    /// A store over `config.data_dirs` (created if missing), with reference counts in `db`.
    pub fn new(config: BlockStoreConfig, db: Db, clock: Clock) -> std::io::Result<Self> {
        Self::with_disk(config, db, clock, Arc::new(OsDisk))
    }

    /// Like [`BlockStore::new`], its block files read and written through
    /// `disk` (tests give it a failing one).
    pub fn with_disk(
        config: BlockStoreConfig,
        db: Db,
        clock: Clock,
        disk: Arc<dyn BlockDisk>,
    ) -> std::io::Result<Self> {
        for d in &config.data_dirs {
            disk.create_dir_all(&d.path)?;
        }
        Ok(BlockStore {
            inner: Arc::new(Inner {
                dirs: DataDirs::new(config.data_dirs),
                compression_level: config.compression_level,
                fsync: config.fsync,
                gc_delay_msec: config.gc_delay_msec,
                db,
                clock,
                disk,
            }),
        })
    }

    /// Stores `data` as block `hash` (its BLAKE3 hash). Storing a block that is
    /// already present is a no-op.
    pub async fn write(&self, hash: Hash, data: Bytes) -> Result<()> {
        let inner = self.inner.clone();
        run_blocking(move || inner.write_sync(hash, &data)).await
    }

    /// Reads block `hash`, checked against its hash.
    pub async fn read(&self, hash: Hash) -> Result<Bytes> {
        let inner = self.inner.clone();
        run_blocking(move || inner.read_sync(hash)).await
    }

    /// Whether a file for `hash` exists in some data directory (not checked).
    pub fn is_present(&self, hash: &Hash) -> bool {
        self.inner
            .dirs
            .search_order(hash)
            .any(|d| self.inner.disk.exists(&block_path(d, hash)))
    }

    /// Adds a reference to `hash` in the caller's transaction.
    pub fn incref(&self, tx: &mut Tx<'_>, hash: &Hash) -> hangar_db::Result<()> {
        let n = refcount::count(tx, hash)?;
        refcount::set(tx, hash, n + 1)
    }

    /// Drops a reference to `hash` in the caller's transaction; at zero the block
    /// is queued for deletion after the grace delay.
    pub fn decref(&self, tx: &mut Tx<'_>, hash: &Hash) -> hangar_db::Result<()> {
        let n = refcount::count(tx, hash)?;
        if n == 0 {
            warn!(%hash, "reference count would go below zero");
            return Ok(());
        }
        refcount::set(tx, hash, n - 1)?;
        if n == 1 {
            let deadline = self.gc_deadline();
            tx.insert(GC_QUEUE, &refcount::gc_key(deadline, hash), b"")?;
        }
        Ok(())
    }

    /// Current reference count of `hash`.
    pub async fn refcount(&self, hash: Hash) -> Result<u64> {
        let n = self
            .inner
            .db
            .transaction(move |tx| refcount::count(tx, &hash).map_err(Error::from))
            .await?;
        Ok(n)
    }

    /// Deletes up to `limit` blocks whose count has been zero past their grace
    /// delay. Returns how many files were deleted.
    pub async fn collect_garbage(&self, limit: usize) -> Result<usize> {
        let now = self.inner.clock.wall_msec();
        let due = self
            .inner
            .db
            .range(GC_QUEUE, &[], Some(&now.to_be_bytes()), limit)?;
        if due.is_empty() {
            return Ok(0);
        }
        let inner = self.inner.clone();
        let deleted = self
            .inner
            .db
            .transaction(move |tx| {
                let mut deleted = 0;
                for (key, _) in due {
                    tx.remove(GC_QUEUE, &key)?;
                    let Some(hash) = refcount::parse_gc_key(&key) else {
                        continue;
                    };
                    // Deleting inside the transaction (on the writer thread)
                    // orders it with every incref: a block referenced again
                    // before this point is kept.
                    if refcount::count(tx, &hash)? == 0 {
                        deleted += usize::from(inner.delete_files(&hash));
                    }
                }
                Ok::<_, Error>(deleted)
            })
            .await?;
        Ok(deleted)
    }

    /// The data directories' paths.
    pub(crate) fn data_dir_paths(&self) -> Vec<PathBuf> {
        self.inner.dirs.all().map(Path::to_path_buf).collect()
    }

    /// When a block unreferenced now may be deleted.
    pub(crate) fn gc_deadline(&self) -> u64 {
        self.inner.clock.wall_msec() + self.inner.gc_delay_msec
    }

    /// The directory a block belongs in.
    pub(crate) fn primary_dir(&self, hash: &Hash) -> PathBuf {
        self.inner.dirs.primary(hash).to_path_buf()
    }

    /// Whether block files are synced to disk before a write returns.
    pub(crate) fn fsync(&self) -> bool {
        self.inner.fsync
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Where block `hash`'s file would be, in each data directory (tests
    /// damage or remove them).
    pub fn file_paths(&self, hash: &Hash) -> Vec<std::path::PathBuf> {
        self.inner.dirs.all().map(|d| block_path(d, hash)).collect()
    }

    /// Number of block files under all data directories (walks the disk).
    pub fn count_files(&self) -> usize {
        self.inner.dirs.all().map(|d| block_files(d).count()).sum()
    }
}

impl Inner {
    fn write_sync(&self, hash: Hash, data: &[u8]) -> Result<()> {
        debug_assert_eq!(Hash::of(data), hash, "block written under the wrong hash");
        let disk = &*self.disk;
        if let Some(existing) = self
            .dirs
            .search_order(&hash)
            .map(|d| block_path(d, &hash))
            .find(|p| disk.exists(p))
        {
            // Another upload may have renamed this file in place without having
            // synced it yet: this write is acknowledged on its durability too.
            if self.fsync {
                disk.sync(&existing).map_err(io_err(hash))?;
                if let Some(parent) = existing.parent() {
                    disk.sync(parent).map_err(io_err(hash))?;
                }
            }
            return Ok(());
        }
        let compressed = self.compress(data).map_err(io_err(hash))?;
        let (format, body) = match &compressed {
            Some(c) => (FORMAT_ZSTD, c.as_slice()),
            None => (FORMAT_PLAIN, data),
        };
        let path = block_path(self.dirs.primary(&hash), &hash);
        let parent = path.parent().expect("block paths have a parent");
        disk.create_dir_all(parent).map_err(io_err(hash))?;
        let tmp = path.with_extension(format!("tmp{}", rand_suffix()));
        // The file gets its name only once its bytes are written (and synced,
        // with fsync): a failure before leaves no block file, only the
        // temporary one, removed here (or by the sweep after a crash).
        let result = disk
            .write_file(&tmp, &[&[format], body], self.fsync)
            .and_then(|()| disk.rename(&tmp, &path));
        if result.is_err() {
            let _ = disk.remove_file(&tmp);
        }
        result.map_err(io_err(hash))?;
        if self.fsync {
            // The name is durable only once the directory is synced. If that
            // fails, the write is not acknowledged; the file stays, unreferenced
            // (the sweep collects it), or serves a later write of the block.
            disk.sync(parent).map_err(io_err(hash))?;
        }
        Ok(())
    }

    /// The compressed form of `data`, when compression is on and pays off.
    fn compress(&self, data: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
        let Some(level) = self.compression_level else {
            return Ok(None);
        };
        let compressed = zstd::bulk::compress(data, level)?;
        // Incompressible data is stored as is: decompression costs time.
        Ok((compressed.len() < data.len() - data.len() / 16).then_some(compressed))
    }

    fn read_sync(&self, hash: Hash) -> Result<Bytes> {
        for dir in self.dirs.search_order(&hash) {
            let path = block_path(dir, &hash);
            let raw = match self.disk.read(&path) {
                Ok(raw) => raw,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(hash)(e)),
            };
            return match decode(raw) {
                Some(data) if Hash::of(&data) == hash => Ok(data),
                _ => {
                    quarantine(&*self.disk, &path);
                    Err(Error::Corrupt { hash })
                }
            };
        }
        Err(Error::Missing { hash })
    }

    fn delete_files(&self, hash: &Hash) -> bool {
        let mut deleted = false;
        for dir in self.dirs.all() {
            if self.disk.remove_file(&block_path(dir, hash)).is_ok() {
                debug!(%hash, "deleted unreferenced block");
                deleted = true;
            }
        }
        deleted
    }
}

fn decode(raw: Vec<u8>) -> Option<Bytes> {
    let format = *raw.first()?;
    match format {
        // A view past the header byte: no copy.
        FORMAT_PLAIN => Some(Bytes::from(raw).slice(1..)),
        // Blocks are at most 64 MiB; the bound guards against a corrupt frame.
        FORMAT_ZSTD => zstd::bulk::decompress(&raw[1..], 64 << 20)
            .ok()
            .map(Bytes::from),
        _ => None,
    }
}

fn quarantine(disk: &dyn BlockDisk, path: &Path) {
    let to: PathBuf = path.with_extension("corrupted");
    warn!(path = %path.display(), "corrupt block quarantined");
    if let Err(e) = disk.rename(path, &to) {
        warn!(error = %e, "cannot quarantine corrupt block");
    }
}

fn rand_suffix() -> u32 {
    // Unique enough to keep two concurrent writers of one block apart.
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests;
