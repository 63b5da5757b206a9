//! The metadata engine seam. Everything Hangar stores about buckets, keys, objects
//! and block reference counts goes through [`Db`]: named trees of ordered byte keys,
//! point reads, bounded range reads, and atomic read-modify-write transactions.
//!
//! Writes are grouped: concurrent [`Db::transaction`] calls are run one after the
//! other by a single writer thread inside one engine transaction and made durable
//! by one commit (one fsync when [`Durability::Fsync`] is configured). Each call is
//! still atomic on its own: a closure that returns an error leaves nothing behind.
//!
//! A commit that is not made durable at once (fsync off, or
//! [`Db::transaction_unsynced`]) is also appended to a write-ahead log before
//! its caller is answered, so a killed process loses no commit; only a
//! machine crash can lose the last second of them (see the `wal` module).
//!
//! The engine is [redb](https://docs.rs/redb) (see `docs/decisions/001-metadata-engine.md`);
//! the same engine on a [`MemoryDisk`] serves tests ([`Db::open_in_memory`],
//! [`Db::open_on`]), which can crash it as a process or machine crash would.
//!
//! ```
//! # tokio_test();
//! # fn tokio_test() {
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! use hangar_db::{Db, Tree};
//! const ITEMS: Tree = Tree("items");
//! let db = Db::open_in_memory().unwrap();
//! db.transaction(|tx| tx.insert(ITEMS, b"k", b"v")).await.unwrap();
//! assert_eq!(db.get(ITEMS, b"k").unwrap().as_deref(), Some(&b"v"[..]));
//! # });
//! # }
//! ```

mod disk;
mod engine;
mod wal;
mod writer;

pub use disk::{Crash, MemoryDisk};
pub use engine::{Db, DbConfig, Durability, Tree};
pub use writer::Tx;

/// Errors of the metadata engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The storage engine failed (I/O, corruption, ...).
    #[error("metadata engine: {0}")]
    Engine(#[from] redb::Error),
    /// The writer thread is gone (the database is shutting down).
    #[error("metadata writer stopped")]
    WriterStopped,
    /// A transaction closure aborted with its own error.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The write-ahead log could not be read or written.
    #[error("metadata write-ahead log: {0}")]
    Log(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn engine_err(e: impl Into<redb::Error>) -> Error {
    Error::Engine(e.into())
}

#[cfg(test)]
mod tests;
