//! Keeping every node's [`LayoutHistory`] the same: the local copy is saved in
//! the metadata directory, changes made here are pushed to every connected
//! peer, and a peer whose ping shows another layout digest is asked for its
//! history, which is merged (a CRDT merge, so the order of exchanges does not
//! matter). Nodes converge within a ping interval of any change.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hangar_net::{CallOptions, Message, NodeId, Priority};
use hangar_util::clock::Clock;
use hangar_util::encoding::Versioned;
use hangar_util::Hash;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::history::{LayoutError, LayoutHistory};
use crate::membership::Membership;

/// A history whose timestamps lead this node's wall clock by more than this is
/// refused, so that one node with a wild clock cannot drag every node's clock
/// into the future (the same bound as for RPC clocks).
const MAX_CLOCK_LEAD_MSEC: u64 = 3_600_000;

/// File name of the layout inside the metadata directory.
pub const LAYOUT_FILE: &str = "cluster_layout";

/// Asks a peer for its layout history (encoded, [`Versioned`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PullLayout;

impl Message for PullLayout {
    const ENDPOINT: &'static str = "cluster/layout/pull";
    const PRIORITY: Priority = Priority::Control;
    type Response = serde_bytes::ByteBuf;
}

/// Gives a peer our layout history (encoded, [`Versioned`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PushLayout(pub serde_bytes::ByteBuf);

impl Message for PushLayout {
    const ENDPOINT: &'static str = "cluster/layout/push";
    const PRIORITY: Priority = Priority::Control;
    type Response = ();
}

/// Errors of layout storage and changes.
#[derive(Debug, thiserror::Error)]
pub enum LayoutSyncError {
    /// The change was refused.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The layout could not be encoded or decoded.
    #[error("layout encoding: {0}")]
    Encoding(#[from] hangar_util::encoding::Error),
    /// A peer's history carries timestamps too far ahead of this node's clock.
    #[error("layout dated {lead_msec} ms ahead of this node's clock")]
    Future {
        /// How far ahead.
        lead_msec: u64,
    },
    /// The layout file could not be read or written.
    #[error("layout file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// This node's copy of the layout, kept in sync with its peers.
pub struct LayoutManager {
    membership: Arc<Membership>,
    clock: Clock,
    path: Option<PathBuf>,
    history: Mutex<LayoutHistory>,
    digest: Mutex<Hash>,
    pulling: Mutex<HashSet<NodeId>>,
    changes: watch::Sender<Arc<LayoutHistory>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LayoutManager {
    /// Loads the layout saved in `metadata_dir` (or starts from `initial`),
    /// registers the layout endpoints and starts following peers.
    pub fn start(
        membership: Arc<Membership>,
        clock: Clock,
        metadata_dir: Option<&Path>,
        initial: LayoutHistory,
    ) -> Result<Arc<Self>, LayoutSyncError> {
        let path = metadata_dir.map(|d| d.join(LAYOUT_FILE));
        let history = match &path {
            Some(p) => match std::fs::read(p) {
                Ok(bytes) => LayoutHistory::decode(&bytes)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => initial,
                Err(source) => {
                    return Err(LayoutSyncError::Io {
                        path: p.clone(),
                        source,
                    })
                }
            },
            None => initial,
        };
        clock.observe(history.max_timestamp());
        let digest = Hash::of(&history.encode()?);
        let (changes, _) = watch::channel(Arc::new(history.clone()));
        let manager = Arc::new(LayoutManager {
            membership: membership.clone(),
            clock,
            path,
            history: Mutex::new(history),
            digest: Mutex::new(digest),
            pulling: Mutex::new(HashSet::new()),
            changes,
        });
        manager.announce();
        manager.register();
        let (tx, mut rx) = mpsc::unbounded_channel();
        membership.on_layout_difference(tx);
        let weak = Arc::downgrade(&manager);
        tokio::spawn(async move {
            while let Some(peer) = rx.recv().await {
                let Some(m) = weak.upgrade() else { return };
                if lock(&m.pulling).insert(peer) {
                    tokio::spawn(async move {
                        m.pull_from(peer).await;
                        lock(&m.pulling).remove(&peer);
                    });
                }
            }
        });
        Ok(manager)
    }

    fn register(self: &Arc<Self>) {
        let rpc = self.membership.rpc();
        let weak = Arc::downgrade(self);
        rpc.register(move |_from, PullLayout| {
            let m = weak.upgrade();
            async move {
                let m = m.ok_or("shutting down")?;
                let bytes = lock(&m.history).encode().map_err(|e| e.to_string())?;
                Ok(serde_bytes::ByteBuf::from(bytes))
            }
        });
        let weak = Arc::downgrade(self);
        rpc.register(move |from, PushLayout(bytes)| {
            let m = weak.upgrade();
            async move {
                let m = m.ok_or("shutting down")?;
                let theirs = LayoutHistory::decode(&bytes).map_err(|e| e.to_string())?;
                m.merge_from(from, &theirs).map_err(|e| e.to_string())
            }
        });
    }

    /// A copy of the current history.
    pub fn history(&self) -> LayoutHistory {
        lock(&self.history).clone()
    }

    /// Follows every change of the history.
    pub fn subscribe(&self) -> watch::Receiver<Arc<LayoutHistory>> {
        self.changes.subscribe()
    }

    /// Changes the history with `f`, given a fresh timestamp; saves and
    /// propagates the result if `f` succeeds.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut LayoutHistory, u64) -> Result<T, LayoutError>,
    ) -> Result<T, LayoutSyncError> {
        let (out, snapshot) = {
            let mut history = lock(&self.history);
            self.clock.observe(history.max_timestamp());
            let mut next = history.clone();
            let out = f(&mut next, self.clock.now())?;
            self.save(&next)?;
            *history = next.clone();
            // Published under the lock, so subscribers never see an older
            // history after a newer one.
            self.changes.send_replace(Arc::new(next.clone()));
            (out, next)
        };
        self.changed(snapshot);
        Ok(out)
    }

    fn merge_from(&self, from: NodeId, theirs: &LayoutHistory) -> Result<(), LayoutSyncError> {
        let lead = theirs
            .max_timestamp()
            .saturating_sub(self.clock.wall_msec());
        if lead > MAX_CLOCK_LEAD_MSEC {
            tracing::warn!(peer = %from, lead_msec = lead, "layout from a peer dated far in the future; ignored");
            return Err(LayoutSyncError::Future { lead_msec: lead });
        }
        self.clock.observe(theirs.max_timestamp());
        let snapshot = {
            let mut history = lock(&self.history);
            let mut next = history.clone();
            if !next.merge(theirs) {
                return Ok(());
            }
            self.save(&next)?;
            *history = next.clone();
            self.changes.send_replace(Arc::new(next.clone()));
            next
        };
        tracing::info!(peer = %from, version = snapshot.current().version, "layout updated from a peer");
        self.changed(snapshot);
        Ok(())
    }

    async fn pull_from(self: &Arc<Self>, peer: NodeId) {
        let options = CallOptions::default();
        let theirs = match self
            .membership
            .rpc()
            .call_with(peer, &PullLayout, options, None)
            .await
        {
            Ok((bytes, _)) => match LayoutHistory::decode(&bytes) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(%peer, "peer sent an undecodable layout: {e}");
                    return;
                }
            },
            Err(e) => {
                tracing::debug!(%peer, "pulling the layout: {e}");
                return;
            }
        };
        if let Err(e) = self.merge_from(peer, &theirs) {
            tracing::warn!(%peer, "merging the layout: {e}");
        }
        // If the peer lacks something we have, give it our merged history.
        let ours = self.history();
        let mut merged = theirs.clone();
        if merged.merge(&ours) {
            self.push_to(peer, &ours).await;
        }
    }

    async fn push_to(&self, peer: NodeId, history: &LayoutHistory) {
        let Ok(bytes) = history.encode() else { return };
        let msg = PushLayout(serde_bytes::ByteBuf::from(bytes));
        if let Err(e) = self.membership.rpc().call(peer, &msg).await {
            tracing::debug!(%peer, "pushing the layout: {e}");
        }
    }

    fn save(&self, history: &LayoutHistory) -> Result<(), LayoutSyncError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = history.encode()?;
        let io = |source| LayoutSyncError::Io {
            path: path.clone(),
            source,
        };
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn announce(&self) {
        let history = lock(&self.history);
        let digest = history
            .encode()
            .map(|b| Hash::of(&b))
            .unwrap_or(Hash([0; 32]));
        *lock(&self.digest) = digest;
        self.membership
            .set_layout_summary(history.current().version, digest);
    }

    fn changed(&self, snapshot: LayoutHistory) {
        self.announce();
        let snapshot = Arc::new(snapshot);
        for peer in self.membership.rpc().connected_peers() {
            let rpc = self.membership.rpc().clone();
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                let Ok(bytes) = snapshot.encode() else { return };
                let msg = PushLayout(serde_bytes::ByteBuf::from(bytes));
                if let Err(e) = rpc.call(peer.id, &msg).await {
                    tracing::debug!(peer = %peer.id, "pushing the layout: {e}");
                }
            });
        }
    }
}
