//! Blocks no node has: a loss, or the data of an upload that failed.
//!
//! The block layer's resync finds blocks this node references and should
//! hold that no node has. Waiting brings no copy back, but what that means
//! depends on what references them: data a live version uses is lost (an
//! operator must know, and restore the object), while data an upload wrote
//! rows for and never finished storing is only waiting for its release.
//! Each reference's block row names its owner; the same usage check a
//! release makes ([`super::usage`]) tells which case it is.

use hangar_block::ResyncReport;
use hangar_util::Hash;
use tracing::{debug, error, warn};

use super::usage::Usage;
use super::ObjectService;
use crate::schema::block_row::{data_partition, DataOwner};
use crate::Result;

/// References of one block looked at, at most.
const REFS_PER_BLOCK: usize = 16;

/// What the references of a block no node has say of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingBlock {
    /// A live version uses it: lost.
    Lost(DataOwner),
    /// Only data no version uses or ever can references it: an upload
    /// failed before storing it; the data's release drops the references.
    LeftByFailedUpload,
    /// Not known yet (replicas did not answer, or a row has no owner).
    Unknown,
}

impl ObjectService {
    /// Handles up to `limit` block resync items (those due, or all with
    /// `all`), and says of each referenced block that no node has whether it
    /// is lost (ERROR), left by an upload that failed (DEBUG), or not known
    /// yet (WARN).
    pub async fn resync_some(&self, limit: usize, all: bool) -> Result<ResyncReport> {
        let report = self.inner.data.resync_some(limit, all).await?;
        for hash in &report.nowhere {
            match self.missing_block(*hash).await {
                Ok(MissingBlock::Lost(owner)) => error!(
                    %hash,
                    bucket = %owner.bucket_id,
                    key = %owner.key,
                    version = %owner.version,
                    part = ?owner.part_number,
                    "a block of a live object is on no node: that object's data is lost"
                ),
                Ok(MissingBlock::LeftByFailedUpload) => debug!(
                    %hash,
                    "a block on no node belongs to an upload that failed; its release drops it"
                ),
                Ok(MissingBlock::Unknown) => warn!(
                    %hash,
                    "a referenced block is on no node; whether a live object uses it is not known yet"
                ),
                Err(e) => warn!(
                    %hash,
                    error = %e,
                    "a referenced block is on no node; asking what uses it failed"
                ),
            }
        }
        Ok(report)
    }

    /// Whether `hash`, which no node has, is used by a live version.
    pub async fn missing_block(&self, hash: Hash) -> Result<MissingBlock> {
        let refs = self.inner.block_refs.range(&hash, &[], REFS_PER_BLOCK)?;
        let mut unknown = false;
        for r in refs.into_iter().filter(|r| !r.deleted) {
            let row = self
                .inner
                .block_rows
                .read(&data_partition(&r.data_id), &r.offset.to_be_bytes())
                .await?;
            // A released row (or none) does not use the block; a row
            // without an owner cannot tell.
            let Some(row) = row.filter(|row| !row.deleted) else {
                continue;
            };
            let Some(owner) = row.owner else {
                unknown = true;
                continue;
            };
            match self.data_usage(r.data_id, &owner).await? {
                Usage::InUse => return Ok(MissingBlock::Lost(owner)),
                Usage::Unused => {}
                Usage::Unsure => unknown = true,
            }
        }
        Ok(if unknown {
            MissingBlock::Unknown
        } else {
            MissingBlock::LeftByFailedUpload
        })
    }
}
