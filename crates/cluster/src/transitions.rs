//! The node's part in layout transitions (see [`crate::history`]'s trackers):
//! it counts the writes in flight by the layout version they started under,
//! acknowledges a new version once no write that may skip it is still running,
//! and records when it has seen every node sync a version.
//!
//! Raising `sync` is the job of the workers that copy data into the node
//! (tables and blocks), once they have synced every partition it holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::history::Tracker;
use crate::layout_sync::LayoutManager;
use crate::{lock, NodeId};

/// How often the node checks whether it can raise its trackers.
const CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Writes in flight, by the layout version current when each began.
#[derive(Debug, Default)]
pub struct WritesInFlight {
    counts: Mutex<BTreeMap<u64, usize>>,
}

impl WritesInFlight {
    /// Records a write beginning under `version`, until the guard is dropped.
    pub fn begin(self: &Arc<Self>, version: u64) -> WriteGuard {
        *lock(&self.counts).entry(version).or_insert(0) += 1;
        WriteGuard {
            writes: self.clone(),
            version,
        }
    }

    /// The oldest version a write in flight began under.
    pub fn oldest(&self) -> Option<u64> {
        lock(&self.counts).keys().next().copied()
    }
}

/// A write in flight; dropping it ends the write.
#[derive(Debug)]
pub struct WriteGuard {
    writes: Arc<WritesInFlight>,
    version: u64,
}

impl Drop for WriteGuard {
    fn drop(&mut self) {
        let mut counts = lock(&self.writes.counts);
        if let Some(n) = counts.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.version);
            }
        }
    }
}

/// Raises this node's `ack` and `sync_ack` when they can move, until the
/// manager is dropped.
pub(crate) fn spawn_tracker_worker(manager: Weak<LayoutManager>, me: NodeId) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_INTERVAL).await;
            let Some(m) = manager.upgrade() else { return };
            let raises = due_raises(&m, me);
            if raises.is_empty() {
                continue;
            }
            let result = m.update(|h, _| {
                for (tracker, version) in &raises {
                    h.raise_tracker(*tracker, me, *version);
                }
                Ok(())
            });
            match result {
                Ok(()) => tracing::debug!(?raises, "layout trackers raised"),
                Err(e) => tracing::warn!("raising layout trackers: {e}"),
            }
        }
    });
}

/// The trackers of `me` that can move now, and to which version.
fn due_raises(m: &LayoutManager, me: NodeId) -> Vec<(Tracker, u64)> {
    let h = m.snapshot();
    let current = h.current().version;
    let mine = |t: &BTreeMap<NodeId, u64>| t.get(&me).copied().unwrap_or(0);
    let mut raises = Vec::new();
    // Every write this node began under an older version has finished: none
    // of its writes can skip the current one any more.
    let no_older_write = m.writes().oldest().is_none_or(|v| v >= current);
    if mine(&h.trackers().ack) < current && no_older_write {
        raises.push((Tracker::Ack, current));
    }
    let synced_by_all = h.tracker_min(Tracker::Sync).min(current);
    if mine(&h.trackers().sync_ack) < synced_by_all {
        raises.push((Tracker::SyncAck, synced_by_all));
    }
    raises
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::history::{NodeRole, Tracker};
    use crate::testing::{wait_until, MemoryCluster};

    #[tokio::test]
    async fn a_new_version_is_acknowledged_once_older_writes_end_and_retires_once_synced() {
        let c = MemoryCluster::start(3, 3, Duration::from_millis(2)).await;
        wait_until("version 1 acknowledged", || {
            c.systems
                .iter()
                .all(|s| s.layout().snapshot().tracker_min(Tracker::Ack) == 1)
        })
        .await;

        // A write begun under version 1 is still running on node 0.
        let write = c.systems[0].layout().begin_write();
        let node = c.ids[0];
        c.systems[1]
            .layout()
            .update(|h, ts| h.stage_role(node, NodeRole::storage("z0", 2 << 40), ts))
            .expect("stage");
        c.systems[1]
            .layout()
            .update(|h, ts| h.apply(Some(2), ts))
            .expect("apply");
        let ack = |i: usize, n: usize| {
            c.systems[i]
                .layout()
                .snapshot()
                .trackers()
                .ack
                .get(&c.ids[n])
                .copied()
        };
        wait_until("nodes 1 and 2 acknowledge version 2", || {
            ack(0, 1) == Some(2) && ack(0, 2) == Some(2)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(ack(1, 0), Some(1), "node 0 still has a version-1 write");
        drop(write);
        wait_until("node 0 acknowledges version 2", || ack(1, 0) == Some(2)).await;

        // Every node synced version 2: each records that all did, and
        // version 1 retires everywhere.
        c.systems[2]
            .layout()
            .update(|h, _| {
                for n in h.tracked_nodes() {
                    h.raise_tracker(Tracker::Sync, n, 2);
                }
                Ok(())
            })
            .expect("sync");
        wait_until("version 1 retired", || {
            c.systems.iter().all(|s| {
                let h = s.layout().snapshot();
                h.live_versions().len() == 1 && h.tracker_min(Tracker::SyncAck) == 2
            })
        })
        .await;
    }
}
