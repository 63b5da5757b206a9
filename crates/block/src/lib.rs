//! The block layer: content-addressed storage of object data.
//!
//! Objects are cut into blocks by the model layer; a block's id is the BLAKE3
//! hash of its (uncompressed) bytes, so equal blocks are stored once.
//! [`BlockStore`] keeps blocks as files under one or more data directories
//! (`<dir>/ab/cd/<hash>`), written to a temporary name then renamed, optionally
//! zstd-compressed, and checks every block against its hash when it is read. A
//! block that fails the check is moved aside (quarantined) and reported as
//! [`Error::Corrupt`]; it is never served.
//!
//! Reference counts live in the metadata engine and change in the caller's
//! transaction ([`BlockStore::incref`], [`BlockStore::decref`]), so a block's
//! count moves atomically with the rows that reference it. A block whose count
//! drops to zero is deleted after a grace delay by [`BlockStore::collect_garbage`].
//! [`BlockStore::sweep`] finds what a crash left behind: stale temporary files,
//! and block files whose reference never became durable.
//!
//! On a cluster, [`ReplicatedBlocks`] writes each block to the nodes of its
//! partition (acknowledged at write quorum) and reads it from the nearest node
//! that has it, checking every received block against its hash.
//!
//! This crate knows nothing of tables, objects or S3.

mod dirs;
pub mod disk;
mod rebalance;
mod refcount;
mod replicated;
mod resync;
mod store;
mod sweep;
mod workers;

pub use dirs::DataDir;
pub use rebalance::RebalanceReport;
pub use replicated::ReplicatedBlocks;
pub use resync::{ResyncReport, ScrubReport, NEW_REFERENCE_DELAY_MSEC};
pub use store::{BlockStore, BlockStoreConfig};
pub use sweep::SweepReport;
pub use workers::{ScrubSettings, ScrubWorker, SweepSettings, SweepWorker};

/// Errors of the block layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A block file could not be read or written.
    #[error("block {hash}: {source}")]
    Io {
        /// The block.
        hash: hangar_util::Hash,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No data directory holds the block.
    #[error("block {hash} is missing")]
    Missing {
        /// The block.
        hash: hangar_util::Hash,
    },
    /// The stored bytes do not match the block's hash (the file was quarantined).
    #[error("block {hash} is corrupt")]
    Corrupt {
        /// The block.
        hash: hangar_util::Hash,
    },
    /// The metadata engine failed.
    #[error(transparent)]
    Db(#[from] hangar_db::Error),
    /// Fewer nodes than the write quorum stored the block.
    #[error("block {hash} not stored: {source}")]
    Replication {
        /// The block.
        hash: hangar_util::Hash,
        /// How many copies were needed and made, and why the others failed.
        source: hangar_cluster::quorum::QuorumError,
    },
    /// No node holding the block could return it intact.
    #[error("block {hash} is unavailable ({errors})")]
    Unavailable {
        /// The block.
        hash: hangar_util::Hash,
        /// Why each node failed.
        errors: String,
    },
    /// A background task panicked or was cancelled.
    #[error("block task failed: {0}")]
    Task(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
