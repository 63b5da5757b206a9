//! The orphan sweep: cleans what a crash can leave in the data directories.
//!
//! Two kinds of leftovers exist. Temporary files (`<hash>.tmp<n>`) of writes cut
//! short; and orphan blocks: block files whose reference was not yet durable when
//! the node crashed (an upload's block references become durable only with the
//! transaction that commits the upload). The sweep walks every data directory,
//! deletes temporary files last modified before a cutoff, and queues every block
//! file modified before the cutoff whose reference count is zero for garbage collection, with
//! the usual grace delay. The check and the queueing run in one metadata
//! transaction, ordered with every incref, so a block referenced again meanwhile
//! is kept; a block queued twice is harmless, as collection checks the count again.
//! Quarantined `.corrupted` files are left for the operator.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hangar_util::Hash;
use tracing::{debug, info, warn};

use crate::dirs::list_dir;
use crate::refcount::{self, GC_QUEUE};
use crate::store::{run_blocking, BlockStore};
use crate::{Error, Result};

/// Block files checked per metadata transaction.
const HASHES_PER_TX: usize = 256;
/// Pause between two top-level directories, so a sweep stays in the background.
const PAUSE_BETWEEN_DIRS: Duration = Duration::from_millis(5);

/// What one sweep found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Block files looked at.
    pub block_files: u64,
    /// Temporary files deleted.
    pub temp_files_removed: u64,
    /// Unreferenced block files queued for garbage collection.
    pub orphans_queued: u64,
}

/// The files of one top-level directory (`<data dir>/ab`) worth acting on.
#[derive(Default)]
struct Found {
    block_files: u64,
    old_blocks: Vec<Hash>,
    old_temps: Vec<PathBuf>,
}

impl BlockStore {
    /// Walks all data directories once (see the module documentation). Files
    /// modified at or after `cutoff` are never touched: they may belong to writes
    /// in progress. Right after a start, the start time is a safe cutoff.
    pub async fn sweep(&self, cutoff: SystemTime) -> Result<SweepReport> {
        let mut report = SweepReport::default();
        let roots: Vec<PathBuf> = self.data_dir_paths();
        for root in roots {
            let tops = list_dir(&root);
            for top in tops {
                let found = run_blocking(move || Ok(scan_top(&top, cutoff))).await?;
                report.block_files += found.block_files;
                for tmp in found.old_temps {
                    match std::fs::remove_file(&tmp) {
                        Ok(()) => {
                            debug!(path = %tmp.display(), "removed stale temporary block file");
                            report.temp_files_removed += 1;
                        }
                        Err(e) => {
                            warn!(path = %tmp.display(), error = %e, "cannot remove temporary file");
                        }
                    }
                }
                for chunk in found.old_blocks.chunks(HASHES_PER_TX) {
                    report.orphans_queued += self.queue_if_unreferenced(chunk.to_vec()).await?;
                }
                tokio::time::sleep(PAUSE_BETWEEN_DIRS).await;
            }
        }
        if report.temp_files_removed > 0 || report.orphans_queued > 0 {
            info!(
                block_files = report.block_files,
                temp_files_removed = report.temp_files_removed,
                orphans_queued = report.orphans_queued,
                "data directory sweep cleaned up crash leftovers"
            );
        }
        Ok(report)
    }

    /// Queues each hash whose count is zero for collection; returns how many.
    async fn queue_if_unreferenced(&self, hashes: Vec<Hash>) -> Result<u64> {
        let deadline = self.gc_deadline();
        self.db()
            .transaction(move |tx| {
                let mut queued = 0;
                for hash in hashes {
                    if refcount::count(tx, &hash)? == 0 {
                        tx.insert(GC_QUEUE, &refcount::gc_key(deadline, &hash), b"")?;
                        queued += 1;
                    }
                }
                Ok::<_, Error>(queued)
            })
            .await
    }
}

fn modified_before(path: &Path, cutoff: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t < cutoff)
}

/// Scans `<data dir>/ab/*/*`.
fn scan_top(top: &Path, cutoff: SystemTime) -> Found {
    let mut found = Found::default();
    for leaf in list_dir(top) {
        for file in list_dir(&leaf) {
            let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(hash) = Hash::from_hex(name) {
                found.block_files += 1;
                if modified_before(&file, cutoff) {
                    found.old_blocks.push(hash);
                }
            } else if name.contains(".tmp") && modified_before(&file, cutoff) {
                found.old_temps.push(file);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests;
