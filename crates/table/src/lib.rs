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
//! A table is placed in one of two ways:
//!
//! - [`Table::new`]: a fixed layout of which only this node is reachable (the
//!   single-node server). A layout whose write quorum needs other nodes is
//!   refused with [`Error::Quorum`] rather than silently under-replicated.
//! - [`Table::replicated`]: on the cluster, per the current layout and a
//!   [`Replication`] policy (sharded on the partition's nodes, or full on every
//!   storage node). [`Table::insert`] sends the entry to every replica and
//!   returns once a write quorum stored it; [`Table::read`] and
//!   [`Table::read_range`] ask a read quorum (nearest replicas first, hedged
//!   when one is slow), merge the answers entry by entry before the caller
//!   filters anything, and send the merged entries back to the replicas that
//!   answered with older ones (read repair). One RPC endpoint serves every
//!   table of a node ([`Replicator`]).

mod batch;
mod coalesce;
mod merkle;
mod remote;
mod replication;
mod table;

#[cfg(test)]
mod replicated_tests;
#[cfg(test)]
mod test_items;

pub use batch::WriteBatch;
pub use remote::Replicator;
pub use replication::{Placement, Replication};
pub use table::{Entry, GcReport, ReplicaAnswers, ScanPage, SyncReport, Table, TableSchema};

/// Errors of the table layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metadata engine failed.
    #[error(transparent)]
    Db(#[from] hangar_db::Error),
    /// A stored entry could not be decoded (or encoded).
    #[error(transparent)]
    Encoding(#[from] hangar_util::encoding::Error),
    /// Fewer replicas than the quorum answered (or could answer): a read or
    /// write refused rather than served from, or left on, too few copies.
    #[error(transparent)]
    Quorum(#[from] hangar_cluster::quorum::QuorumError),
    /// A replica answered something that makes no sense.
    #[error("table protocol: {0}")]
    Protocol(String),
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
