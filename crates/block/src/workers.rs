//! The block store's background workers: the scrub, which reads every block
//! back once per period, and the sweep, which cleans what crashes left in the
//! data directories (see [`BlockStore::sweep`]).

use std::time::{Duration, SystemTime};

use hangar_util::worker::{Next, Worker, WorkerState};

use crate::BlockStore;

/// Pacing of the scrub.
#[derive(Clone, Copy, Debug)]
pub struct ScrubSettings {
    /// How often every block is read back.
    pub period: Duration,
    /// Blocks read per step.
    pub per_step: usize,
    /// How long the scrub rests after a step, relative to the step's
    /// duration: it never takes more than `1 / (1 + tranquility)` of the disk
    /// from user requests.
    pub tranquility: f64,
    /// How often an idle scrub looks whether a pass is due (`hangar repair
    /// scrub` starts one).
    pub recheck: Duration,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        ScrubSettings {
            period: Duration::from_secs(30 * 24 * 3600),
            per_step: 16,
            tranquility: 4.0,
            recheck: Duration::from_secs(5),
        }
    }
}

/// Reads every block back once per [`ScrubSettings::period`], a few at a time.
pub struct ScrubWorker {
    blocks: BlockStore,
    settings: ScrubSettings,
}

impl ScrubWorker {
    /// The scrub of `blocks`.
    pub fn new(blocks: BlockStore, settings: ScrubSettings) -> Self {
        ScrubWorker { blocks, settings }
    }
}

#[async_trait::async_trait]
impl Worker for ScrubWorker {
    fn name(&self) -> &'static str {
        "scrub"
    }

    fn description(&self) -> &'static str {
        "reads every block back and repairs damaged ones from peers"
    }

    fn idle_period(&self) -> Duration {
        self.settings.recheck
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        let now = self.blocks.clock().wall_msec();
        let last = self.blocks.last_scrub_msec().map_err(|e| e.to_string())?;
        let period = u64::try_from(self.settings.period.as_millis()).unwrap_or(u64::MAX);
        if let Some(last) = last {
            let due = last.saturating_add(period);
            if due > now {
                state.busy = false;
                state.progress = format!(
                    "last pass ended {} h ago; next in {} h",
                    (now - last) / 3_600_000,
                    (due - now) / 3_600_000
                );
                // Checked again soon: `hangar repair scrub` may start a pass.
                let wait = Duration::from_millis(due - now).min(self.settings.recheck);
                return Ok(Next::After(wait));
            }
        }
        let started = tokio::time::Instant::now();
        let r = self
            .blocks
            .scrub_some(self.settings.per_step)
            .await
            .map_err(|e| e.to_string())?;
        state.busy = true;
        state.done += r.checked as u64;
        state.errors += r.damaged as u64;
        state.progress = format!("{} blocks checked since start", state.done);
        let rest = started
            .elapsed()
            .mul_f64(self.settings.tranquility)
            .max(Duration::from_millis(10));
        Ok(Next::After(rest))
    }
}

/// Pacing of the sweep.
#[derive(Clone, Copy, Debug)]
pub struct SweepSettings {
    /// How often the data directories are swept after the sweep that follows
    /// every start.
    pub period: Duration,
    /// Age a file must have for a periodic sweep to touch it.
    pub min_age: Duration,
}

impl Default for SweepSettings {
    fn default() -> Self {
        SweepSettings {
            period: Duration::from_secs(24 * 3600),
            min_age: Duration::from_secs(3600),
        }
    }
}

/// Sweeps the data directories: once right after start (everything written
/// before the start is fair game), then once per period.
pub struct SweepWorker {
    blocks: BlockStore,
    settings: SweepSettings,
    /// Files modified at or after it are left alone; `None` until the first
    /// sweep may run.
    cutoff: Option<SystemTime>,
    sweeps: u64,
}

/// The operating system's time, to compare with the modification times of
/// files on disk.
#[allow(
    clippy::disallowed_methods,
    reason = "file times are the operating system's"
)]
fn disk_now() -> SystemTime {
    SystemTime::now()
}

impl SweepWorker {
    /// The sweep of `blocks`. When the metadata is being rebuilt from other
    /// nodes (`rebuilding`), every block file looks unreferenced until it is
    /// back: the first sweep then waits a period.
    pub fn new(blocks: BlockStore, settings: SweepSettings, rebuilding: bool) -> Self {
        SweepWorker {
            blocks,
            settings,
            cutoff: (!rebuilding).then(disk_now),
            sweeps: 0,
        }
    }
}

#[async_trait::async_trait]
impl Worker for SweepWorker {
    fn name(&self) -> &'static str {
        "sweep"
    }

    fn description(&self) -> &'static str {
        "removes what crashes left in the data directories"
    }

    fn idle_period(&self) -> Duration {
        self.settings.period
    }

    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
        let Some(cutoff) = self.cutoff else {
            self.cutoff = Some(disk_now() - self.settings.min_age);
            state.progress = "waiting for the metadata rebuild".into();
            return Ok(Next::After(self.settings.period));
        };
        state.busy = true;
        let r = self.blocks.sweep(cutoff).await.map_err(|e| e.to_string())?;
        self.sweeps += 1;
        state.busy = false;
        state.done += r.temp_files_removed + r.orphans_queued;
        state.progress = format!(
            "{} sweeps since start; the last looked at {} block files, removed {} temporary files and queued {} orphan blocks",
            self.sweeps, r.block_files, r.temp_files_removed, r.orphans_queued
        );
        self.cutoff = Some(disk_now() - self.settings.min_age);
        Ok(Next::After(self.settings.period))
    }
}
