//! Tables of CRDT entries: the metadata layer.
//!
//! A table is a [`TableSchema`] (its tree name and [`Entry`] type, plus an
//! [`TableSchema::updated`] hook) stored in the metadata engine. Every entry has a
//! partition key (hashed: it decides which nodes hold the entry) and a sort key
//! (entries of one partition key are kept in sort-key order, for listings).
//!
//! Writes merge the new entry into the stored one ([`hangar_util::crdt::Crdt`]),
//! so replicas converge whatever order writes arrive in. The hook runs in the same
//! engine transaction as the write, which is how one change cascades atomically
//! into other tables (an object version dropping its blocks' reference counts).
//!
//! Writes go through the layout: [`Table::insert`] finds the partition's nodes and
//! needs a write quorum of them. In this release only the local node is reachable,
//! so a layout whose quorum needs other nodes is refused with
//! [`Error::Quorum`] rather than silently under-replicated.

mod table;

pub use table::{Entry, Table, TableSchema};

/// Errors of the table layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metadata engine failed.
    #[error(transparent)]
    Db(#[from] hangar_db::Error),
    /// A stored entry could not be decoded (or encoded).
    #[error(transparent)]
    Encoding(#[from] hangar_util::encoding::Error),
    /// Not enough replicas could take the write.
    #[error(transparent)]
    Quorum(#[from] hangar_cluster::Error),
    /// A schema hook refused or failed the change.
    #[error("{table} hook: {message}")]
    Hook {
        /// Table whose hook failed.
        table: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
