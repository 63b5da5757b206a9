//! The disk seam of the block store: every file operation on a block's path
//! goes through a [`BlockDisk`]. [`OsDisk`] is the operating system's;
//! [`FaultyDisk`] (feature `testing`) wraps it and fails chosen operations as
//! a failing disk does: I/O errors, a full disk, torn writes and failed
//! fsyncs.

use std::io::Write;
use std::path::Path;

/// The file operations the block store needs. Blocking: called from the
/// blocking thread pool.
pub trait BlockDisk: Send + Sync + 'static {
    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()>;
    /// Whether something exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Creates (or truncates) the file at `path` and writes `parts` in order;
    /// then syncs it if `sync`.
    fn write_file(&self, path: &Path, parts: &[&[u8]], sync: bool) -> std::io::Result<()>;
    /// Syncs the file or directory at `path` (its data and its entries).
    fn sync(&self, path: &Path) -> std::io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()>;
    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> std::io::Result<()>;
}

/// The operating system's file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsDisk;

impl BlockDisk for OsDisk {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn write_file(&self, path: &Path, parts: &[&[u8]], sync: bool) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        // Written one after the other: no copy to join them.
        for part in parts {
            f.write_all(part)?;
        }
        if sync {
            f.sync_all()?;
        }
        Ok(())
    }

    fn sync(&self, path: &Path) -> std::io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::rename(from, to)
    }

    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_file(path)
    }
}

#[cfg(any(test, feature = "testing"))]
pub use faulty::{DiskOp, Fault, FaultyDisk};

#[cfg(any(test, feature = "testing"))]
mod faulty {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::{BlockDisk, OsDisk};

    /// An operation of [`BlockDisk`] a fault can hit.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum DiskOp {
        /// [`BlockDisk::write_file`].
        Write,
        /// [`BlockDisk::sync`], and the sync inside `write_file`.
        Sync,
        /// [`BlockDisk::read`].
        Read,
        /// [`BlockDisk::rename`].
        Rename,
    }

    /// What a faulty operation does.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fault {
        /// Fails with EIO, the error of a failing medium.
        Eio,
        /// Fails with ENOSPC: the disk is full. A write leaves the bytes that
        /// fitted (half of them).
        NoSpace,
        /// A write that reports success but keeps only the first half of its
        /// bytes, as after a crash that lost the rest of an unsynced write or
        /// a disk that lies about it.
        Torn,
    }

    struct Rule {
        op: DiskOp,
        fault: Fault,
        /// Matching operations to let through first.
        skip: usize,
        /// Operations left to hit; `None`: every one until cleared.
        remaining: Option<usize>,
    }

    /// An [`OsDisk`] that fails the operations it is told to. Cheap to
    /// clone; clones share their faults, so a test keeps one to steer the
    /// disk a store uses.
    #[derive(Clone, Default)]
    pub struct FaultyDisk {
        rules: Arc<Mutex<Vec<Rule>>>,
        hits: Arc<Mutex<Vec<(DiskOp, Fault)>>>,
    }

    impl FaultyDisk {
        /// A disk with no faults yet.
        pub fn new() -> Self {
            Self::default()
        }

        /// Every later `op` fails with `fault` until [`FaultyDisk::clear`].
        pub fn fail_always(&self, op: DiskOp, fault: Fault) {
            self.push(op, fault, 0, None);
        }

        /// The next `n` `op`s fail with `fault`.
        pub fn fail_next(&self, op: DiskOp, fault: Fault, n: usize) {
            self.push(op, fault, 0, Some(n));
        }

        /// The `op` after the next `skip` ones fails with `fault`, once (the
        /// directory's sync after the file's, say).
        pub fn fail_after(&self, op: DiskOp, fault: Fault, skip: usize) {
            self.push(op, fault, skip, Some(1));
        }

        /// Removes every fault: the disk works again.
        pub fn clear(&self) {
            self.lock_rules().clear();
        }

        /// The faults that hit an operation so far, in order.
        pub fn hits(&self) -> Vec<(DiskOp, Fault)> {
            self.hits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        }

        fn push(&self, op: DiskOp, fault: Fault, skip: usize, remaining: Option<usize>) {
            if remaining == Some(0) {
                return;
            }
            self.lock_rules().push(Rule {
                op,
                fault,
                skip,
                remaining,
            });
        }

        fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<Rule>> {
            self.rules
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// The fault that hits this `op`, if any (using it up).
        fn fault(&self, op: DiskOp) -> Option<Fault> {
            let mut rules = self.lock_rules();
            let i = rules.iter().position(|r| r.op == op)?;
            if rules[i].skip > 0 {
                rules[i].skip -= 1;
                return None;
            }
            let fault = rules[i].fault;
            if let Some(n) = &mut rules[i].remaining {
                *n -= 1;
                if *n == 0 {
                    rules.remove(i);
                }
            }
            self.hits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((op, fault));
            Some(fault)
        }
    }

    fn error(fault: Fault) -> std::io::Error {
        match fault {
            // The errno values of Linux.
            Fault::NoSpace => std::io::Error::from_raw_os_error(28),
            Fault::Eio | Fault::Torn => std::io::Error::from_raw_os_error(5),
        }
    }

    fn half(parts: &[&[u8]]) -> Vec<u8> {
        let all: Vec<u8> = parts.concat();
        all[..all.len() / 2].to_vec()
    }

    impl BlockDisk for FaultyDisk {
        fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
            OsDisk.create_dir_all(path)
        }

        fn exists(&self, path: &Path) -> bool {
            OsDisk.exists(path)
        }

        fn write_file(&self, path: &Path, parts: &[&[u8]], sync: bool) -> std::io::Result<()> {
            match self.fault(DiskOp::Write) {
                None => {}
                Some(Fault::Eio) => {
                    OsDisk.write_file(path, &[], false)?;
                    return Err(error(Fault::Eio));
                }
                Some(Fault::NoSpace) => {
                    OsDisk.write_file(path, &[&half(parts)], false)?;
                    return Err(error(Fault::NoSpace));
                }
                Some(Fault::Torn) => return OsDisk.write_file(path, &[&half(parts)], sync),
            }
            OsDisk.write_file(path, parts, false)?;
            if sync {
                self.sync(path)?;
            }
            Ok(())
        }

        fn sync(&self, path: &Path) -> std::io::Result<()> {
            match self.fault(DiskOp::Sync) {
                Some(f) => Err(error(f)),
                None => OsDisk.sync(path),
            }
        }

        fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
            match self.fault(DiskOp::Rename) {
                Some(f) => Err(error(f)),
                None => OsDisk.rename(from, to),
            }
        }

        fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            match self.fault(DiskOp::Read) {
                Some(Fault::Torn) => OsDisk.read(path).map(|b| b[..b.len() / 2].to_vec()),
                Some(f) => Err(error(f)),
                None => OsDisk.read(path),
            }
        }

        fn remove_file(&self, path: &Path) -> std::io::Result<()> {
            OsDisk.remove_file(path)
        }
    }
}
