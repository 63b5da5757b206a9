//! Background workers: a loop of steps (resync some blocks, release some
//! rows...) run by one runner that gives every worker the same behaviour:
//! its state published for operators (`hangar worker list`, the admin API),
//! pacing between steps, backoff after failures, a wake-up when work arrives,
//! and a clean stop. The layers that own the work implement [`Worker`]; the
//! server and the simulation spawn them alike.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

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
    /// Failed steps in a row (0 after a step that succeeds).
    pub consecutive_errors: u32,
    /// The last failure, if any: when (wall msec) and why.
    pub last_error: Option<(u64, String)>,
    /// Progress in words ("synced to layout version 3", "pass 42% done").
    pub progress: String,
}

/// What a step leaves for the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// More work is waiting: the next step runs at once.
    Busy,
    /// Nothing to do: the next step runs after the worker's
    /// [`Worker::idle_period`], or as soon as it is woken.
    Idle,
    /// The next step runs after this delay (pacing), or as soon as it is woken.
    After(Duration),
}

/// A background task made of steps. Each step does a bounded amount of work,
/// records what it did in `state`, and says when the next one should run.
#[async_trait::async_trait]
pub trait Worker: Send + 'static {
    /// Short name, unique on a node (`resync`).
    fn name(&self) -> &'static str;
    /// What the worker does, for operators.
    fn description(&self) -> &'static str;
    /// How long an idle worker sleeps before it looks for work again.
    fn idle_period(&self) -> Duration {
        Duration::from_secs(1)
    }
    /// One step. An error is recorded in the worker's state and logged; the
    /// next step then waits for the backoff delay ([`backoff`]). A stop may
    /// drop the step at any await (see [`Workers::run`]).
    async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String>;
}

/// Longest wait after failed steps.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait after `failures` failed steps in a row (at least 1): the idle
/// period, doubled for each further failure, at most [`MAX_BACKOFF`] (or the
/// idle period if that is longer).
pub fn backoff(idle: Duration, failures: u32) -> Duration {
    let doubled = idle.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF.max(idle))
}

struct Entry {
    state: WorkerState,
    wake: Arc<Notify>,
}

/// The workers of a node, their published states and their wake-ups. Cheap to
/// clone.
#[derive(Clone, Default)]
pub struct Workers(Arc<Mutex<BTreeMap<String, Entry>>>);

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Changes worker `name`'s state (registering it on first use).
    pub fn update(&self, name: &str, description: &str, f: impl FnOnce(&mut WorkerState)) {
        let mut all = self.lock();
        let entry = all.entry(name.to_string()).or_insert_with(|| Entry {
            state: WorkerState {
                name: name.to_string(),
                description: description.to_string(),
                ..WorkerState::default()
            },
            wake: Arc::new(Notify::new()),
        });
        f(&mut entry.state);
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
        self.lock().values().map(|e| e.state.clone()).collect()
    }

    /// Wakes worker `name` if it is waiting (idle or pacing): work arrived.
    /// Does nothing if no such worker runs.
    pub fn wake(&self, name: &str) {
        if let Some(e) = self.lock().get(name) {
            e.wake.notify_one();
        }
    }

    fn register(&self, name: &str, description: &str) -> Arc<Notify> {
        self.update(name, description, |_| {});
        self.lock()
            .get(name)
            .map(|e| e.wake.clone())
            .unwrap_or_default()
    }

    fn publish(&self, state: &WorkerState) {
        if let Some(e) = self.lock().get_mut(&state.name) {
            e.state = state.clone();
        }
    }

    /// Runs `worker` on the current runtime until `stop`: one step after the
    /// other, its state published here after each, pausing as the step asks,
    /// backing off after failures. A stop ends a wait at once, and a step at
    /// its next await: every step must be safe to stop there, as it is safe
    /// for the node to crash there.
    pub fn spawn<W: Worker>(
        &self,
        worker: W,
        clock: Clock,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move { registry.run(worker, clock, stop).await })
    }

    /// The loop of [`Workers::spawn`], run by the caller's task.
    pub async fn run<W: Worker>(&self, mut worker: W, clock: Clock, stop: CancellationToken) {
        let (name, description) = (worker.name(), worker.description());
        let wake = self.register(name, description);
        let mut state = self
            .list()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_default();
        while !stop.is_cancelled() {
            let step = tokio::select! {
                () = stop.cancelled() => return,
                r = worker.step(&mut state) => r,
            };
            let wait = match step {
                Ok(next) => {
                    state.consecutive_errors = 0;
                    match next {
                        Next::Busy => None,
                        Next::Idle => Some(worker.idle_period()),
                        Next::After(d) => Some(d),
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = name, error = %e, "worker step failed");
                    state.errors += 1;
                    state.consecutive_errors = state.consecutive_errors.saturating_add(1);
                    state.last_error = Some((clock.wall_msec(), e));
                    Some(backoff(worker.idle_period(), state.consecutive_errors))
                }
            };
            self.publish(&state);
            match wait {
                // Busy: let the other tasks of the runtime run between steps.
                None => tokio::task::yield_now().await,
                Some(d) => {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(d) => {}
                        () = wake.notified() => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fails its first `fail` steps, then has `work` items, one per step,
    /// then is idle; counts its steps.
    struct Counter {
        fail: usize,
        work: usize,
        steps: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl Worker for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        fn description(&self) -> &'static str {
            "counts"
        }
        fn idle_period(&self) -> Duration {
            Duration::from_secs(3600)
        }
        async fn step(&mut self, state: &mut WorkerState) -> Result<Next, String> {
            self.steps.fetch_add(1, Ordering::SeqCst);
            if self.fail > 0 {
                self.fail -= 1;
                return Err("disk on fire".into());
            }
            if self.work == 0 {
                state.busy = false;
                return Ok(Next::Idle);
            }
            self.work -= 1;
            state.busy = true;
            state.done += 1;
            Ok(Next::Busy)
        }
    }

    async fn settle() {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_steps_run_back_to_back_then_the_worker_sleeps_until_woken() {
        let workers = Workers::default();
        let steps = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = workers.spawn(
            Counter {
                fail: 0,
                work: 3,
                steps: steps.clone(),
            },
            Clock::system(),
            stop.clone(),
        );
        settle().await;
        // Three busy steps and the idle one that found nothing.
        assert_eq!(steps.load(Ordering::SeqCst), 4);
        assert_eq!(workers.list()[0].done, 3);
        assert!(!workers.list()[0].busy);
        // Idle for an hour: nothing runs for 59 minutes...
        tokio::time::sleep(Duration::from_secs(59 * 60)).await;
        settle().await;
        assert_eq!(steps.load(Ordering::SeqCst), 4);
        // ...but a wake-up runs a step at once.
        workers.wake("counter");
        settle().await;
        assert_eq!(steps.load(Ordering::SeqCst), 5);
        stop.cancel();
        task.await.expect("the worker stops");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_steps_back_off_and_are_recorded() {
        let workers = Workers::default();
        let steps = Arc::new(AtomicUsize::new(0));
        let stop = CancellationToken::new();
        let task = workers.spawn(
            Counter {
                fail: 3,
                work: 1,
                steps: steps.clone(),
            },
            Clock::system(),
            stop.clone(),
        );
        settle().await;
        assert_eq!(steps.load(Ordering::SeqCst), 1);
        let s = &workers.list()[0];
        assert_eq!((s.errors, s.consecutive_errors), (1, 1));
        assert_eq!(
            s.last_error.as_ref().map(|e| e.1.as_str()),
            Some("disk on fire")
        );
        // The hour-long idle period caps nothing: the backoff is at least it.
        assert_eq!(
            backoff(Duration::from_secs(3600), 1),
            Duration::from_secs(3600)
        );
        tokio::time::sleep(Duration::from_secs(3601)).await;
        settle().await;
        assert_eq!(steps.load(Ordering::SeqCst), 2);
        stop.cancel();
        task.await.expect("the worker stops");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(1), 1), s(1));
        assert_eq!(backoff(s(1), 2), s(2));
        assert_eq!(backoff(s(1), 4), s(8));
        assert_eq!(backoff(s(1), 7), s(60));
        assert_eq!(backoff(s(1), u32::MAX), s(60));
        assert_eq!(backoff(s(120), 3), s(120));
    }

    #[tokio::test]
    async fn a_stop_ends_a_waiting_worker() {
        let workers = Workers::default();
        let stop = CancellationToken::new();
        let task = workers.spawn(
            Counter {
                fail: 0,
                work: 0,
                steps: Arc::new(AtomicUsize::new(0)),
            },
            Clock::system(),
            stop.clone(),
        );
        settle().await;
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops at once")
            .expect("no panic");
    }
}
