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
