//! Where the database keeps its bytes: real files, or a [`MemoryDisk`] that
//! tests and simulations can crash.
//!
//! A database is two files: the engine's (redb) and the write-ahead log
//! ([`crate::wal`]). On a real machine they are files in one directory. A
//! [`MemoryDisk`] keeps both in memory and remembers, for each, what the
//! process has written (what the operating system holds) and what was last
//! synced (what a disk holds after a power cut). [`MemoryDisk::crash`] keeps
//! one or the other, as a process crash or a machine crash would, and cuts off
//! every handle opened before, so a "crashed" database writes nothing more.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, MutexGuard};

/// A file the database reads and writes at offsets.
pub(crate) trait DiskFile: Send + Sync + std::fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reads exactly `out.len()` bytes at `offset`.
    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()>;
    /// Writes `data` at `offset`, growing the file if needed.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Truncates or extends (with zeros) to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes everything written so far survive a power cut.
    fn sync(&self) -> io::Result<()>;
}

/// A real file.
#[derive(Debug)]
pub(crate) struct RealFile(Mutex<File>);

impl RealFile {
    /// Opens (or creates) `path` for reading and writing.
    pub(crate) fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(RealFile(Mutex::new(file)))
    }

    fn file(&self) -> MutexGuard<'_, File> {
        // A panic while holding it cannot leave the file handle inconsistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl DiskFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file().metadata()?.len())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let mut f = self.file();
        f.seek(SeekFrom::Start(offset))?;
        f.read_exact(out)
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut f = self.file();
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(data)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file().set_len(len)
    }

    fn sync(&self) -> io::Result<()> {
        self.file().sync_data()
    }
}

/// What a crash keeps of a [`MemoryDisk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crash {
    /// The process died: everything it wrote is still in the operating
    /// system's cache, synced or not.
    Process,
    /// The machine lost power: only what was synced is left.
    Machine,
}

/// The files of one database, held in memory. Cloning shares them.
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// use hangar_db::{Crash, Db, DbConfig, Durability, MemoryDisk, Tree};
/// let disk = MemoryDisk::default();
/// let config = DbConfig { durability: Durability::NoFsync, ..DbConfig::default() };
/// let db = Db::open_on(&disk, &config).unwrap();
/// db.transaction(|tx| tx.insert(Tree("t"), b"k", b"v")).await.unwrap();
/// disk.crash(Crash::Process);
/// // The old handle is cut off; a new one finds the commit.
/// let db = Db::open_on(&disk, &config).unwrap();
/// assert_eq!(db.get(Tree("t"), b"k").unwrap().as_deref(), Some(&b"v"[..]));
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryDisk {
    state: Arc<Mutex<DiskState>>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// Bumped by every crash: handles of an older generation are dead.
    generation: u64,
    files: BTreeMap<&'static str, MemoryFileState>,
}

#[derive(Debug, Default, Clone)]
struct MemoryFileState {
    /// What the process wrote.
    written: Vec<u8>,
    /// What the last sync made durable.
    synced: Vec<u8>,
}

impl MemoryDisk {
    /// Crashes every database open on this disk: their handles fail from now
    /// on, and the files keep what `crash` says survives. Open the database
    /// again with [`crate::Db::open_on`].
    pub fn crash(&self, crash: Crash) {
        let mut state = self.lock();
        state.generation += 1;
        if crash == Crash::Machine {
            for f in state.files.values_mut() {
                f.written = f.synced.clone();
            }
        }
    }

    /// A handle to file `name` of the current generation.
    pub(crate) fn file(&self, name: &'static str) -> MemoryFile {
        let mut state = self.lock();
        state.files.entry(name).or_default();
        MemoryFile {
            disk: self.clone(),
            name,
            generation: state.generation,
        }
    }

    /// Bytes of file `name` as the process wrote them (for tests that damage
    /// a file on purpose).
    pub fn contents(&self, name: &str) -> Vec<u8> {
        self.lock()
            .files
            .get(name)
            .map(|f| f.written.clone())
            .unwrap_or_default()
    }

    /// Replaces the bytes of file `name`, written and synced alike.
    pub fn set_contents(&self, name: &str, bytes: Vec<u8>) {
        if let Some(f) = self.lock().files.get_mut(name) {
            f.synced.clone_from(&bytes);
            f.written = bytes;
        }
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A handle to one file of a [`MemoryDisk`].
#[derive(Debug)]
pub(crate) struct MemoryFile {
    disk: MemoryDisk,
    name: &'static str,
    generation: u64,
}

impl MemoryFile {
    fn with<T>(&self, f: impl FnOnce(&mut MemoryFileState) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.disk.lock();
        if state.generation != self.generation {
            return Err(io::Error::other(
                "the process that opened this file crashed",
            ));
        }
        let file = state
            .files
            .get_mut(self.name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        f(file)
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the file",
    )
}

impl DiskFile for MemoryFile {
    fn len(&self) -> io::Result<u64> {
        self.with(|f| Ok(f.written.len() as u64))
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.with(|f| {
            let start = usize::try_from(offset).map_err(|_| out_of_range())?;
            let source = f
                .written
                .get(start..start + out.len())
                .ok_or_else(out_of_range)?;
            out.copy_from_slice(source);
            Ok(())
        })
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.with(|f| {
            let start = usize::try_from(offset).map_err(|_| out_of_range())?;
            let end = start + data.len();
            if f.written.len() < end {
                f.written.resize(end, 0);
            }
            f.written[start..end].copy_from_slice(data);
            Ok(())
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(|f| {
            f.written
                .resize(usize::try_from(len).map_err(|_| out_of_range())?, 0);
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with(|f| {
            f.synced.clone_from(&f.written);
            Ok(())
        })
    }
}

/// The engine's file on a [`MemoryDisk`], as redb sees it.
#[derive(Debug)]
pub(crate) struct EngineFile(pub(crate) MemoryFile);

impl redb::StorageBackend for EngineFile {
    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.0.read_at(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.0.write_at(offset, data)
    }
}
