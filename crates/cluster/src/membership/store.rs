//! The peer list on disk, so that a restarted node finds its peers without
//! its bootstrap list.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hangar_net::NodeId;

/// File name of the peer list inside the metadata directory.
pub const PEERS_FILE: &str = "peers";

/// Reads and writes the peer list file.
#[derive(Clone, Debug)]
pub struct PeerStore {
    path: PathBuf,
}

impl PeerStore {
    /// The peer list in `metadata_dir`.
    pub fn new(metadata_dir: &Path) -> Self {
        PeerStore {
            path: metadata_dir.join(PEERS_FILE),
        }
    }

    /// The saved peers; none if the file is missing or unreadable (logged).
    pub fn load(&self) -> Vec<(NodeId, SocketAddr)> {
        match fs::read(&self.path) {
            Ok(bytes) => rmp_serde::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), "peer list unreadable, ignored: {e}");
                Vec::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "peer list unreadable, ignored: {e}");
                Vec::new()
            }
        }
    }

    /// Replaces the saved peers (atomically).
    pub fn save(&self, peers: &[(NodeId, SocketAddr)]) -> std::io::Result<()> {
        let bytes = rmp_serde::to_vec(peers).map_err(std::io::Error::other)?;
        crate::files::write_atomically(&self.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use hangar_util::fixtures::{Fixtures, Pinned};

    use super::*;

    /// The peer list file, pinned by the fixture
    /// `testdata/formats/PeerList.v1.bin` (see [`hangar_util::fixtures`]):
    /// a node must read the list an older version of it saved. A list it
    /// cannot read is ignored (the node falls back to its bootstrap peers),
    /// so a format change needs a new file version, read beside the old one.
    #[test]
    fn the_peer_list_file_format_is_pinned() {
        let peers = vec![
            (NodeId([7; 32]), "192.0.2.10:3901".parse().expect("v4")),
            (NodeId([9; 32]), "[2001:db8::1]:3901".parse().expect("v6")),
        ];
        let dir = tempfile::tempdir().expect("directory");
        let store = PeerStore::new(dir.path());
        store.save(&peers).expect("saved");
        let saved = fs::read(dir.path().join(PEERS_FILE)).expect("the file");
        let fixtures = Fixtures::in_workspace(env!("CARGO_MANIFEST_DIR"));
        let pinned = Pinned::Stored {
            type_name: "PeerList",
            format_version: 1,
        };
        let fixture = fixtures
            .check(&pinned, &saved)
            .unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.path().join(PEERS_FILE), fixture).expect("written");
        assert_eq!(store.load(), peers);
    }
}
