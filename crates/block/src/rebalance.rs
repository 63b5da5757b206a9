//! Rebalance: moving block files to the data directory their hash assigns
//! them, after directories were added, removed from the list or resized.
//!
//! A block is readable from any directory while it moves: the new file is
//! complete (and synced, with fsync on) under its final name before the old
//! one is removed, and readers search every directory.

use std::path::{Path, PathBuf};

use hangar_util::Hash;
use tracing::{info, warn};

use crate::dirs::{block_files_under, block_path};
use crate::store::run_blocking;
use crate::{BlockStore, Result};

/// What a rebalance pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebalanceReport {
    /// Block files looked at.
    pub checked: u64,
    /// Block files moved to their directory.
    pub moved: u64,
    /// Bytes moved (on-disk size).
    pub bytes_moved: u64,
    /// Files that could not be moved (logged); they stay readable where they are.
    pub failed: u64,
}

impl BlockStore {
    /// Moves every block file that is not in the directory its hash assigns it
    /// to that directory. Safe at any time: concurrent reads, writes and
    /// garbage collection of the same blocks stay correct.
    pub async fn rebalance(&self) -> Result<RebalanceReport> {
        let store = self.clone();
        run_blocking(move || Ok(store.rebalance_sync())).await
    }

    fn rebalance_sync(&self) -> RebalanceReport {
        let mut report = RebalanceReport::default();
        let dirs = self.data_dir_paths();
        // One top-level prefix (1/256 of the blocks) at a time, listed in
        // every directory before anything moves: a file is looked at once,
        // and memory stays bounded whatever the number of blocks.
        for prefix in 0..=255u8 {
            let top = format!("{prefix:02x}");
            let files: Vec<(PathBuf, Hash, PathBuf)> = dirs
                .iter()
                .flat_map(|dir| {
                    block_files_under(&dir.join(&top))
                        .map(move |(hash, path)| (dir.clone(), hash, path))
                })
                .collect();
            for (dir, hash, path) in files {
                report.checked += 1;
                let target_dir = self.primary_dir(&hash);
                if target_dir == dir {
                    continue;
                }
                let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                match self.move_block(&path, &block_path(&target_dir, &hash)) {
                    Ok(true) => {
                        report.moved += 1;
                        report.bytes_moved += size;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        report.failed += 1;
                        warn!(%hash, from = %path.display(), error = %e, "rebalance: cannot move block");
                    }
                }
            }
        }
        info!(
            checked = report.checked,
            moved = report.moved,
            bytes = report.bytes_moved,
            failed = report.failed,
            "rebalance of the data directories done"
        );
        report
    }

    /// Moves `from` to `to`; returns false if `from` vanished meanwhile (a
    /// garbage collection). An existing `to` (the same block, written there
    /// since) is kept and `from` dropped.
    fn move_block(&self, from: &Path, to: &Path) -> std::io::Result<bool> {
        let parent = to.parent().expect("block paths have a parent");
        std::fs::create_dir_all(parent)?;
        if !to.exists() {
            // A rename works within one file system; between two, copy to a
            // temporary name, sync, then rename into place.
            if std::fs::rename(from, to).is_ok() {
                self.sync_dir(parent)?;
                return Ok(true);
            }
            let tmp = to.with_extension("tmp-rebalance");
            match std::fs::copy(from, &tmp) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
            let placed = (|| {
                if self.fsync() {
                    std::fs::File::open(&tmp)?.sync_all()?;
                }
                std::fs::rename(&tmp, to)?;
                self.sync_dir(parent)
            })();
            if let Err(e) = placed {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        match std::fs::remove_file(from) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        if self.fsync() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
