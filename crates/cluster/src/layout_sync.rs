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
use crate::transitions::{spawn_tracker_worker, WriteGuard, WritesInFlight};
use crate::{lock, Routing};
// A history dated further ahead than RPC clocks may be is refused, so one node
// with a wild clock cannot drag every node's clock into the future.
use hangar_net::MAX_CLOCK_LEAD_MSEC;

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
    pulling: Mutex<HashSet<NodeId>>,
    changes: watch::Sender<Arc<LayoutHistory>>,
    /// The routing of the live versions, for the history it was built from.
    live_routing: Mutex<Option<(Arc<LayoutHistory>, Arc<Routing>)>>,
    /// Writes this node has in flight, by the version they began under.
    writes: Arc<WritesInFlight>,
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
        membership.set_layout_summary(history.current().version, Hash::of(&history.encode()?));
        let (changes, _) = watch::channel(Arc::new(history.clone()));
        let manager = Arc::new(LayoutManager {
            membership: membership.clone(),
            clock,
            path,
            history: Mutex::new(history),
            pulling: Mutex::new(HashSet::new()),
            changes,
            live_routing: Mutex::new(None),
            writes: Arc::default(),
        });
        manager.register();
        spawn_tracker_worker(Arc::downgrade(&manager), membership.rpc().local_id());
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

    /// The current history, shared (cheaper than [`LayoutManager::history`]).
    pub fn snapshot(&self) -> Arc<LayoutHistory> {
        self.changes.borrow().clone()
    }

    /// Where writes and reads go while several versions are live (see
    /// [`LayoutHistory::write_layouts`] and [`LayoutHistory::read_layout`]),
    /// shared until the history changes.
    pub fn live_routing(&self) -> Arc<Routing> {
        let history = self.snapshot();
        let mut cached = lock(&self.live_routing);
        if let Some((built_from, routing)) = cached.as_ref() {
            if Arc::ptr_eq(built_from, &history) {
                return routing.clone();
            }
        }
        let mut writes = history.write_layouts();
        if writes.is_empty() {
            writes.push(history.routing());
        }
        let routing = Arc::new(Routing {
            writes,
            read: history.read_layout(),
        });
        *cached = Some((history, routing.clone()));
        routing
    }

    /// Records a write beginning now; hold the guard until the write has
    /// reached every node it will reach. A new layout version is acknowledged
    /// only once the writes begun under older ones are over.
    pub fn begin_write(&self) -> WriteGuard {
        self.writes.begin(self.snapshot().current().version)
    }

    pub(crate) fn writes(&self) -> &WritesInFlight {
        &self.writes
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
        let (out, encoded) = {
            let mut history = lock(&self.history);
            self.clock.observe(history.max_timestamp());
            let mut next = history.clone();
            let out = f(&mut next, self.clock.now())?;
            (out, self.commit(&mut history, next)?)
        };
        self.push_to_all(encoded);
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
        let encoded = {
            let mut history = lock(&self.history);
            let mut next = history.clone();
            if !next.merge(theirs) {
                return Ok(());
            }
            tracing::info!(peer = %from, version = next.current().version, "layout updated from a peer");
            self.commit(&mut history, next)?
        };
        self.push_to_all(encoded);
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

    /// Makes `next` the current history: saved, published to subscribers and
    /// announced to peers, all under the history lock so that nothing older is
    /// ever published after it. Returns its encoding, for pushing.
    fn commit(
        &self,
        history: &mut LayoutHistory,
        next: LayoutHistory,
    ) -> Result<Arc<Vec<u8>>, LayoutSyncError> {
        let encoded = next.encode()?;
        if let Some(path) = &self.path {
            crate::files::write_atomically(path, &encoded).map_err(|source| {
                LayoutSyncError::Io {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        self.membership
            .set_layout_summary(next.current().version, Hash::of(&encoded));
        self.changes.send_replace(Arc::new(next.clone()));
        *history = next;
        Ok(Arc::new(encoded))
    }

    /// Sends an encoded history to every connected peer.
    fn push_to_all(&self, encoded: Arc<Vec<u8>>) {
        for peer in self.membership.rpc().connected_peers() {
            let rpc = self.membership.rpc().clone();
            let msg = PushLayout(serde_bytes::ByteBuf::from(encoded.as_ref().clone()));
            tokio::spawn(async move {
                if let Err(e) = rpc.call(peer.id, &msg).await {
                    tracing::debug!(peer = %peer.id, "pushing the layout: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod format_fixtures;
