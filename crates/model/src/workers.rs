//! What the background workers are doing, for operators (`hangar worker
//! list`, `hangar status`, the admin API's `GetWorkerStatus`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One worker's state.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerState {
    /// Short name (`resync`, `scrub`...).
    pub name: String,
    /// What it does.
    pub description: String,
    /// Whether it had work at its last step.
    pub busy: bool,
    /// Items handled since the node started.
    pub done: u64,
    /// Items waiting, for workers with a queue.
    pub queued: Option<u64>,
    /// Steps that failed since the node started.
    pub errors: u64,
    /// The last failure, if any: when (wall msec) and why.
    pub last_error: Option<(u64, String)>,
    /// Progress in words ("synced to layout version 3", "pass 42% done").
    pub progress: String,
}

/// The workers of a node. Cheap to clone.
#[derive(Clone, Default)]
pub struct Workers(Arc<Mutex<BTreeMap<String, WorkerState>>>);

impl Workers {
    /// Changes worker `name`'s state (registering it on first use).
    pub fn update(&self, name: &str, description: &str, f: impl FnOnce(&mut WorkerState)) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let state = all.entry(name.to_string()).or_insert_with(|| WorkerState {
            name: name.to_string(),
            description: description.to_string(),
            ..WorkerState::default()
        });
        f(state);
    }

    /// Records a failed step of worker `name` at `now_msec`.
    pub fn failed(&self, name: &str, description: &str, now_msec: u64, error: String) {
        self.update(name, description, |s| {
            s.errors += 1;
            s.last_error = Some((now_msec, error));
        });
    }

    /// Every worker, by name.
    pub fn list(&self) -> Vec<WorkerState> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}
