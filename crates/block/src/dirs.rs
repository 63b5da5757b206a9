//! Data directories and where a block goes among them.

use std::path::{Path, PathBuf};

use hangar_util::Hash;

/// A directory holding blocks, with a capacity that weighs its share of blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDir {
    /// Where the blocks are.
    pub path: PathBuf,
    /// Relative capacity (bytes, or any unit shared by all directories).
    pub capacity: u64,
}

/// The directories, with a deterministic choice of one per block.
#[derive(Clone, Debug)]
pub(crate) struct DataDirs {
    dirs: Vec<DataDir>,
    total: u64,
}

impl DataDirs {
    pub(crate) fn new(dirs: Vec<DataDir>) -> Self {
        assert!(!dirs.is_empty(), "at least one data directory is required");
        let total = dirs.iter().map(|d| d.capacity.max(1)).sum();
        DataDirs { dirs, total }
    }

    /// The directory a new block goes to: a point on the capacity-weighted line,
    /// chosen by the hash, so directories fill in proportion to capacity.
    pub(crate) fn primary(&self, hash: &Hash) -> &Path {
        let mut x = u64::from_le_bytes(
            hash.as_bytes()[8..16]
                .try_into()
                .expect("an 8-byte slice of a 32-byte hash"),
        ) % self.total;
        for d in &self.dirs {
            let w = d.capacity.max(1);
            if x < w {
                return &d.path;
            }
            x -= w;
        }
        &self.dirs[self.dirs.len() - 1].path
    }

    /// Every directory, primary first: a block written under an older set of
    /// directories may sit in any of them.
    pub(crate) fn search_order<'a>(&'a self, hash: &Hash) -> impl Iterator<Item = &'a Path> {
        let primary = self.primary(hash);
        std::iter::once(primary).chain(
            self.dirs
                .iter()
                .map(|d| d.path.as_path())
                .filter(move |p| *p != primary),
        )
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|d| d.path.as_path())
    }
}

/// `dir/ab/cd/<hex>`.
pub(crate) fn block_path(dir: &Path, hash: &Hash) -> PathBuf {
    let hex = hash.to_hex();
    dir.join(&hex[0..2]).join(&hex[2..4]).join(hex)
}

/// The entries of `dir` (none if it cannot be read).
pub(crate) fn list_dir(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries.flatten().map(|e| e.path()).collect()
}

/// Every block file under `dir` (`ab/cd/<hex>`), with its hash. Temporary and
/// quarantined files (which have an extension) are skipped.
pub(crate) fn block_files(dir: &Path) -> impl Iterator<Item = (Hash, PathBuf)> {
    list_dir(dir)
        .into_iter()
        .flat_map(|top| block_files_under(&top))
}

/// Every block file under one top-level directory `dir/ab` (`cd/<hex>`).
pub(crate) fn block_files_under(top: &Path) -> impl Iterator<Item = (Hash, PathBuf)> {
    list_dir(top)
        .into_iter()
        .flat_map(|b| list_dir(&b))
        .filter_map(|f| {
            let hash = Hash::from_hex(f.file_name()?.to_str()?)?;
            Some((hash, f))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_spread_in_proportion_to_capacity() {
        let dirs = DataDirs::new(vec![
            DataDir {
                path: "a".into(),
                capacity: 100,
            },
            DataDir {
                path: "b".into(),
                capacity: 300,
            },
        ]);
        let n = 4000u32;
        let in_b = (0..n)
            .filter(|i| dirs.primary(&Hash::of(&i.to_le_bytes())) == Path::new("b"))
            .count();
        let share = in_b as f64 / f64::from(n);
        assert!((0.70..0.80).contains(&share), "share of b = {share}");
    }
}
