//! The node's background workers, as operators see them (`hangar worker
//! list`, `hangar status`, the admin API's `GetWorkerStatus`), and the ones
//! this layer owns: following layout changes, fetching missing blocks, and
//! releasing what nothing uses. [`ObjectService::spawn_workers`] starts them
//! with the block store's scrub and sweep; the server and the simulation call
//! it alike.

use std::time::Duration;

use hangar_block::{ScrubSettings, ScrubWorker, SweepSettings, SweepWorker};
pub use hangar_util::worker::{Next, Worker, WorkerState, Workers};
use tokio_util::sync::CancellationToken;

use crate::service::LayoutSyncStep;
use crate::ObjectService;

/// Periods and batch sizes of the background workers.
#[derive(Clone, Copy, Debug)]
pub struct WorkerSettings {
    /// How often the layout sync worker looks for a new layout version.
    pub layout_sync_period: Duration,
    /// How long the resync and release workers sleep when they found nothing
    /// to do (they are woken sooner when work is queued through this node).
    pub idle_period: Duration,
    /// Resync items handled per step.
    pub resync_per_step: usize,
    /// Block rows released per release step.
    pub release_rows_per_step: usize,
    /// Blocks deleted per release step.
    pub gc_blocks_per_step: usize,
    /// Tombstones looked at per table and release step.
    pub tombstones_per_step: usize,
    /// How often every table compares its partitions with their other
    /// replicas (anti-entropy).
    pub anti_entropy_period: Duration,
    /// The scrub.
    pub scrub: ScrubSettings,
    /// The sweep of the data directories.
    pub sweep: SweepSettings,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            layout_sync_period: Duration::from_secs(2),
            idle_period: Duration::from_secs(1),
            resync_per_step: 64,
            release_rows_per_step: 4096,
            gc_blocks_per_step: 1024,
            tombstones_per_step: 256,
            anti_entropy_period: Duration::from_secs(60),
            scrub: ScrubSettings::default(),
            sweep: SweepSettings::default(),
        }
    }
}

/// Names of the workers [`ObjectService::spawn_workers`] starts.
pub mod names {
    /// [`super::LayoutSyncWorker`].
    pub const LAYOUT_SYNC: &str = "layout-sync";
    /// [`super::ResyncWorker`].
    pub const RESYNC: &str = "resync";
    /// [`super::ReleaseWorker`].
    pub const RELEASE: &str = "release";
    /// [`super::AntiEntropyWorker`].
    pub const ANTI_ENTROPY: &str = "anti-entropy";
    /// The block store's scrub.
    pub const SCRUB: &str = "scrub";
    /// The block store's sweep.
    pub const SWEEP: &str = "sweep";
}

impl ObjectService {
    /// Starts every background worker of the node on the current runtime:
    /// anti-entropy, layout sync, resync, release (data, blocks and
    /// tombstones no longer used), scrub and sweep. They run until `stop`. `rebuilding`: the
    /// metadata is being rebuilt from other nodes (the first sweep waits).
    pub fn spawn_workers(
        &self,
        settings: WorkerSettings,
        rebuilding: bool,
        stop: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let workers = self.workers();
        let clock = self.clock().clone();
        vec![
            workers.spawn(
                AntiEntropyWorker {
                    model: self.clone(),
                    period: settings.anti_entropy_period,
                    passes: 0,
                },
                clock.clone(),
                stop.clone(),
            ),
            workers.spawn(
                LayoutSyncWorker {
                    model: self.clone(),
                    period: settings.layout_sync_period,
                },
                clock.clone(),
                stop.clone(),
            ),
            workers.spawn(
                ResyncWorker {
                    model: self.clone(),
                    settings,
                },
                clock.clone(),
                stop.clone(),
            ),
            workers.spawn(
                ReleaseWorker {
                    model: self.clone(),
                    settings,
                    tombstones_removed: 0,
                },
                clock.clone(),
                stop.clone(),
            ),
            workers.spawn(
                ScrubWorker::new(self.blocks().clone(), settings.scrub),
                clock.clone(),
                stop.clone(),
            ),
            workers.spawn(
                SweepWorker::new(self.blocks().clone(), settings.sweep, rebuilding),
                clock,
                stop.clone(),
            ),
        ]
    }
}

/// Compares every table partition this node holds with its other replicas
/// and exchanges what differs, once per period (see
/// [`ObjectService::sync_tables`]).
pub struct AntiEntropyWorker {
    model: ObjectService,
    period: Duration,
    passes: u64,
}

#[async_trait::async_trait]
impl Worker for AntiEntropyWorker {
    fn name(&self) -> &'static str {
        names::ANTI_ENTROPY
    }

    fn description(&self) -> &'static str {
        "compares every table partition with its other replicas and repairs differences"
    }

    fn idle_period(&self) -> Duration {
        self.period
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        // A first pass waits a period: right after a start, the peers are
        // still being dialled.
        if self.passes == 0 && state.progress.is_empty() {
            state.progress = "first pass in one period".into();
            return Ok(Next::After(self.period));
        }
        state.busy = true;
        let failed = self.model.sync_tables().await;
        self.passes += 1;
        state.busy = false;
        state.done += 1;
        state.errors += failed as u64;
        state.progress = if failed == 0 {
            format!(
                "{} passes since start; the last synced every partition",
                self.passes
            )
        } else {
            format!(
                "{} passes since start; in the last, {failed} partition syncs failed (retried next pass)",
                self.passes
            )
        };
        Ok(Next::After(self.period))
    }
}

/// Follows layout changes (see [`ObjectService::layout_sync_step`]).
pub struct LayoutSyncWorker {
    model: ObjectService,
    period: Duration,
}

#[async_trait::async_trait]
impl Worker for LayoutSyncWorker {
    fn name(&self) -> &'static str {
        names::LAYOUT_SYNC
    }

    fn description(&self) -> &'static str {
        "syncs this node's partitions and blocks after a layout change"
    }

    fn idle_period(&self) -> Duration {
        self.period
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        let step = self
            .model
            .layout_sync_step()
            .await
            .map_err(|e| e.to_string())?;
        let system = self.model.system();
        let history = system.layout().snapshot();
        let mine = history
            .trackers()
            .sync
            .get(&system.id())
            .copied()
            .unwrap_or(0);
        let current = history.current().version;
        state.busy = !matches!(step, LayoutSyncStep::Idle);
        if let LayoutSyncStep::Synced { .. } = step {
            state.done += 1;
        }
        state.progress = match step {
            LayoutSyncStep::Incomplete { partitions, blocks } => format!(
                "syncing to layout version {current}: {partitions} partition syncs and {blocks} blocks still failing"
            ),
            _ if mine < current => format!(
                "synced to layout version {mine}; version {current} waits for every node's acknowledgement"
            ),
            _ => format!("synced to layout version {mine}"),
        };
        Ok(Next::Idle)
    }
}

/// Fetches blocks this node references and lacks, as they fall due
/// (see [`ObjectService::resync_some`]).
pub struct ResyncWorker {
    model: ObjectService,
    settings: WorkerSettings,
}

#[async_trait::async_trait]
impl Worker for ResyncWorker {
    fn name(&self) -> &'static str {
        names::RESYNC
    }

    fn description(&self) -> &'static str {
        "fetches blocks this node should hold but lacks"
    }

    fn idle_period(&self) -> Duration {
        self.settings.idle_period
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        let r = self
            .model
            .resync_some(self.settings.resync_per_step, false)
            .await
            .map_err(|e| e.to_string())?;
        state.busy = r.checked > 0;
        state.done += r.fetched as u64;
        state.queued = self
            .model
            .blocks()
            .resync_queue_len()
            .ok()
            .map(|n| n as u64);
        state.errors += r.failed as u64;
        state.progress = format!("{} blocks fetched since start", state.done);
        Ok(if r.checked == 0 {
            Next::Idle
        } else {
            Next::Busy
        })
    }
}

/// Releases data no version uses, deletes blocks past their grace delay and
/// removes tombstones every replica has seen.
pub struct ReleaseWorker {
    model: ObjectService,
    settings: WorkerSettings,
    tombstones_removed: u64,
}

#[async_trait::async_trait]
impl Worker for ReleaseWorker {
    fn name(&self) -> &'static str {
        names::RELEASE
    }

    fn description(&self) -> &'static str {
        "releases data no version uses and deletes unreferenced blocks"
    }

    fn idle_period(&self) -> Duration {
        self.settings.idle_period
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        // Each part is attempted whatever the others did: one failing must
        // not hold the others back. The failures are reported together.
        let m = &self.model;
        let s = &self.settings;
        let mut errors = Vec::new();
        let mut count = |what: &str, r: crate::Result<usize>| match r {
            Ok(n) => n,
            Err(e) => {
                errors.push(format!("{what}: {e}"));
                0
            }
        };
        let ended = count(
            "releasing the parts of ended uploads",
            m.release_ended_uploads().await,
        );
        let released = count(
            "releasing data",
            m.release_some(s.release_rows_per_step).await,
        );
        let deleted = count(
            "deleting unreferenced blocks",
            m.blocks()
                .collect_garbage(s.gc_blocks_per_step)
                .await
                .map_err(crate::Error::from),
        );
        let tombstones = count(
            "removing tombstones",
            m.collect_tombstones(s.tombstones_per_step).await,
        );
        state.queued = m.release_queue_len().ok().map(|n| n as u64);
        let waiting = m.tombstones_waiting().unwrap_or(0);
        self.tombstones_removed += tombstones as u64;
        state.busy = released > 0 || deleted > 0 || tombstones > 0;
        state.done += (ended + released + deleted) as u64;
        state.progress = format!(
            "{} block rows released and files deleted, {} tombstones removed since start; {waiting} tombstones waiting",
            state.done, self.tombstones_removed
        );
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(if state.busy { Next::Busy } else { Next::Idle })
    }
}
